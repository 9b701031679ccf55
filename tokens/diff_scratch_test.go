package tokens

import (
	"encoding/json"
	"os"
	"testing"
)

func TestScratchDiff(t *testing.T) {
	data, err := os.ReadFile("/tmp/tkdiff/corpus.json")
	if err != nil {
		t.Skip(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, e := range []Encoding{CL100KBase, O200KBase} {
		c, _ := ForEncoding(e)
		for _, r := range rows {
			text := r["text"].(string)
			want := int(r[string(e)].(float64))
			if got := c.Count(text); got != want {
				bad++
				if bad < 15 {
					s := text
					if len(s) > 80 {
						s = s[:80]
					}
					t.Errorf("%s %q (len %d): got %d want %d", e, s, len(text), got, want)
				}
			}
		}
	}
	t.Logf("%d mismatches of %d", bad, 2*len(rows))
}

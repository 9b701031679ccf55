package service

import (
	"encoding/json"
	"testing"
)

// FuzzMessageText feeds message contents from agent files (bytes from
// outside) to the reader of their text: it must not panic, and what it
// accepts as a string it returns as is.
func FuzzMessageText(f *testing.F) {
	for _, s := range []string{
		`"hello"`, `[{"type":"text","text":"hi"}]`, `[{"type":"reasoning","reasoning":"hm"},{"type":"text","text":"x"}]`,
		`null`, `[]`, `{}`, `[1]`, `"\u0000"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		text, err := messageText(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil && (err != nil || text != s) {
			t.Fatalf("string content %q read as %q, %v", s, text, err)
		}
	})
}

package tokens_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/engram-dev/engram/tokens"
)

// partTexts are texts with many places to cut: prose, code, lists, numbers,
// punctuation and paths before and after newlines, and whitespace runs.
func partTexts() []string {
	texts := []string{
		"You are Letta.\n\nYour task is to converse.\n### Memory [last modified: 2026-12-06 10:00:00 PM UTC+0000]\n12 previous messages\n<persona>\nI am Sam.\n</persona>\n",
		"end.\n\n/path/to/file\nnext\n  \n\t\nword 123\n4567\n's\n'll do\nX\n",
		"func main() {\n\tfmt.Println(\"hello\")\n}\n\n// comment\nvar x = 1\n",
		"日本語\nテキスト\nabc\n🎉\nxyz\r\nCRLF\r\n\r\nline\n",
	}
	// Random texts over an alphabet chosen to stress the pre-tokenizers.
	alphabet := []string{"a", "B", "z", "7", "42", " ", "  ", "\n", "\n\n", "\r\n", "\t", ".", "!", "/", "'s", "'ll", "é", "日", "🎉", "-", "#", "\"", "word", "Word", "WORD", " the"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		var b strings.Builder
		for range 50 + r.IntN(400) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		texts = append(texts, b.String())
	}
	return texts
}

func TestPartsCountLikeTheWhole(t *testing.T) {
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		c := counter(t, enc)
		cuts := 0
		for _, text := range partTexts() {
			want := c.Count(text)
			got, joined := 0, ""
			for part := range tokens.Parts(text, 1) {
				got += c.Count(part)
				joined += part
				cuts++
			}
			if joined != text {
				t.Fatalf("%s: parts of %q join to %q", enc, text, joined)
			}
			if got != want {
				t.Fatalf("%s: parts of %q count %d, the whole %d", enc, text, got, want)
			}
		}
		if cuts < 1000 {
			t.Fatalf("%s: only %d parts over the texts: the test cuts too little to mean anything", enc, cuts)
		}
	}
}

func TestMemoCountsLikeTheCounter(t *testing.T) {
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		c := counter(t, enc)
		m := c.Memo(64)
		base := strings.Repeat("Line of the persona, with words.\n", 40)
		for i := range 200 {
			// A long text that changes in one line each time, as a system
			// prompt does; and, every so often, one seen before.
			text := base + "### Memory: " + strings.Repeat("x", i%7) + " previous messages\n" + base
			if got, want := m.Count(text), c.Count(text); got != want {
				t.Fatalf("%s: memo counts %d, counter %d (i=%d)", enc, got, want, i)
			}
		}
		for _, text := range partTexts() {
			long := strings.Repeat(text, 1+2048/max(len(text), 1))
			if got, want := m.Count(long), c.Count(long); got != want {
				t.Fatalf("%s: memo counts %d, counter %d for %q", enc, got, want, long)
			}
		}
	}
}

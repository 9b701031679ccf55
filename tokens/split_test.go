package tokens

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// patterns are OpenAI's pre-tokenization patterns
// (tiktoken_ext/openai_public.py), as tiktoken-go writes them for regexp2.
// The hand-written splitters must split exactly as these do.
var patterns = map[Encoding]string{
	CL100KBase: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	O200KBase: strings.Join([]string{
		`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
		`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
		`\p{N}{1,3}`,
		` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
		`\s*[\r\n]+`,
		`\s+(?!\S)`,
		`\s+`,
	}, "|"),
}

var compiled = sync.OnceValue(func() map[Encoding]*regexp2.Regexp {
	m := map[Encoding]*regexp2.Regexp{}
	for enc, p := range patterns {
		m[enc] = regexp2.MustCompile(p, regexp2.None)
	}
	return m
})

// regexpPieces splits s with enc's pattern on a backtracking engine. A byte
// not covered by any match would be lost by the encoder; the patterns cover
// every rune, so the pieces must tile s.
func regexpPieces(t testing.TB, enc Encoding, s string) []string {
	t.Helper()
	re := compiled()[enc]
	var pieces []string
	r, b := 0, 0 // rune and byte offsets of the scan
	advance := func(to int) {
		for ; r < to; r++ {
			_, n := utf8.DecodeRuneInString(s[b:])
			b += n
		}
	}
	m, err := re.FindRunesMatch([]rune(s))
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		start := b
		advance(m.Index)
		if b != start {
			t.Fatalf("%s: %q: regexp skipped %q", enc, s, s[start:b])
		}
		advance(m.Index + m.Length)
		pieces = append(pieces, s[start:b])
	}
	if err != nil {
		t.Fatal(err)
	}
	return pieces
}

func splitPieces(enc Encoding, s string) []string {
	split := splitters[enc]
	var pieces []string
	for i := 0; i < len(s); {
		j := split(s, i)
		pieces = append(pieces, s[i:j])
		i = j
	}
	return pieces
}

func checkSplit(t *testing.T, s string) {
	t.Helper()
	for _, enc := range []Encoding{CL100KBase, O200KBase} {
		got, want := splitPieces(enc, s), regexpPieces(t, enc, s)
		if !slices.Equal(got, want) {
			t.Errorf("%s: split(%q)\n got %q\nwant %q", enc, s, got, want)
		}
	}
}

// TestSplitMatchesRegexp compares the splitters with the patterns on the
// golden texts and on random strings drawn from every class the patterns
// distinguish.
func TestSplitMatchesRegexp(t *testing.T) {
	data, err := os.ReadFile("testdata/counts.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Text string }
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		checkSplit(t, r.Text)
	}
	alphabet := []rune("aZ ǅʰ\u0301\u20dd日1½Ⅻ٣'sStTrReEvVmMlLdD.!/\\-_ \t\r\n\u00a0\u2003\u3000\u0085\u2028\u200b\ufeff\x1c🎉\u017f\u212a\u0130")
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := make([]rune, rnd.IntN(24))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		checkSplit(t, string(b))
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"hello world", "I'M FINE'S", " \n\n  x\r\n", "e\u0301X'll", "ǅa", "12345", "a/b//\n", "\xff\xfe ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSplit(t, s)
	})
}

// TestMergeHeapMatchesScan checks that the heap merge, used for pieces
// longer than shortPiece, merges exactly as tiktoken's scan.
func TestMergeHeapMatchesScan(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{"ab", "abc ", "etaoin shrdlu", "日本", "=-", "\x00\xff"}
	for _, enc := range []Encoding{CL100KBase, O200KBase} {
		c, err := ForEncoding(enc)
		if err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			a := alphabets[rnd.IntN(len(alphabets))]
			b := make([]byte, 2+rnd.IntN(shortPiece-1))
			for i := range b {
				b[i] = a[rnd.IntN(len(a))]
			}
			piece := string(b)
			if scan, heap := c.bpe.mergeScan(piece), c.bpe.mergeHeap(piece); scan != heap {
				t.Fatalf("%s: %q: scan %d, heap %d", enc, piece, scan, heap)
			}
		}
	}
}

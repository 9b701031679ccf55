package ingest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/engram-dev/engram/tokens"
)

func cl100k(t testing.TB) *tokens.Counter {
	t.Helper()
	c, err := tokens.ForEncoding(tokens.CL100KBase)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// prose returns n words of deterministic pseudo-random text with
// punctuation, newlines, paragraphs, numbers and some non-ASCII words.
func prose(seed uint64, n int) string {
	words := []string{"the", "agent", "remembers", "archival", "memory", "passages", "and", "searches",
		"them", "when", "asked", "Letta", "engram", "JetStream", "stream", "of", "events", "naïve",
		"café", "日本語", "数据", "2026", "3.14159", "tokenizer", "supercalifragilistic", "a", "is", "to"}
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := range n {
		if i > 0 {
			switch r.IntN(40) {
			case 0:
				b.WriteString(".\n\n")
			case 1:
				b.WriteString(",\n")
			case 2:
				b.WriteString(". ")
			case 3:
				b.WriteString("  ")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	b.WriteString(".\n")
	return b.String()
}

// nonSpace returns s without white space.
func nonSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// checkChunks asserts Chunk's guarantees for text and opt, and returns the
// spans.
func checkChunks(t testing.TB, text string, opt ChunkOptions) []Span {
	t.Helper()
	c := opt.Counter
	if c == nil {
		c = cl100k(t)
	}
	size := opt.size()
	overlap := min(max(opt.Overlap, 0), size-1)
	spans := ChunkSpans(text, opt)
	chunks := Chunk(text, opt)
	if len(chunks) != len(spans) {
		t.Fatalf("Chunk gave %d chunks, ChunkSpans %d spans", len(chunks), len(spans))
	}
	if again := Chunk(text, opt); !slices.Equal(chunks, again) {
		t.Fatalf("Chunk is not deterministic")
	}
	if strings.TrimSpace(text) == "" && len(chunks) > 0 {
		t.Fatalf("white space gave %d chunks", len(chunks))
	}
	var rebuilt strings.Builder
	prevEnd := 0
	for i, s := range spans {
		ch := chunks[i]
		if s.Start < 0 || s.End > len(text) || s.Start >= s.End || text[s.Start:s.End] != ch {
			t.Fatalf("chunk %d: span %v does not locate %q", i, s, ch)
		}
		if strings.TrimSpace(ch) != ch || ch == "" {
			t.Fatalf("chunk %d %q is empty or untrimmed", i, ch)
		}
		if n := c.Count(ch); n > size && utf8.RuneCountInString(ch) > 1 {
			t.Fatalf("chunk %d has %d tokens, over the size %d: %q", i, n, size, ch)
		}
		if i > 0 {
			p := spans[i-1]
			if s.Start < p.Start || s.End <= p.End {
				t.Fatalf("chunk %d %v does not move past chunk %d %v", i, s, i-1, p)
			}
			if s.Start < p.End {
				if overlap == 0 {
					t.Fatalf("chunks %d and %d overlap with Overlap 0", i-1, i)
				}
				if n := c.Count(text[s.Start:p.End]); n > overlap {
					t.Fatalf("chunks %d and %d share %d tokens, over the overlap %d: %q", i-1, i, n, overlap, text[s.Start:p.End])
				}
			} else if gap := text[p.End:s.Start]; strings.TrimSpace(gap) != "" {
				t.Fatalf("text %q between chunks %d and %d is in no chunk", gap, i-1, i)
			}
		}
		// Each part separately: joining parts could make a valid character
		// of invalid UTF-8 bytes.
		rebuilt.WriteString(nonSpace(text[max(s.Start, prevEnd):s.End]))
		prevEnd = s.End
	}
	if rebuilt.String() != nonSpace(text) {
		t.Fatalf("chunks less overlaps do not cover the text:\n got %q\nwant %q", rebuilt.String(), nonSpace(text))
	}
	return spans
}

func TestChunkTokenTextSplitter(t *testing.T) {
	// One token per letter-word: with size 3 and overlap 1, llama-index's
	// TokenTextSplitter gives exactly these chunks.
	got := Chunk("a b c d e f", ChunkOptions{Size: 3, Overlap: 1})
	want := []string{"a b c", "c d e", "e f"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got = Chunk("a b c d e f g", ChunkOptions{Size: 3})
	want = []string{"a b c", "d e f", "g"}
	if !slices.Equal(got, want) {
		t.Errorf("no overlap: got %q, want %q", got, want)
	}
}

func TestChunkProperties(t *testing.T) {
	long := strings.Repeat("x", 5000)                              // no spaces, no newlines
	lines := strings.Repeat("line-of-words-without-spaces\n", 200) // newlines only
	texts := map[string]string{
		"prose":      prose(1, 3000),
		"prose2":     prose(2, 700),
		"short":      "A short note.",
		"no spaces":  "head " + long + " tail",
		"newlines":   lines,
		"unicode":    strings.Repeat("日本語のテキスト、", 300),
		"spaces":     "   lots     of   \n\n  space   \t ",
		"emoji":      strings.Repeat("👩‍👩‍👧‍👦 ", 200),
		"json lines": prose(3, 200) + "\n" + strings.Repeat("key.path[0]: value\n", 100),
	}
	opts := []ChunkOptions{
		DefaultChunkOptions(), {Size: 50, Overlap: 10}, {Size: 8, Overlap: 3}, {Size: 5},
		{Size: 2, Overlap: 1}, {Size: 1}, {Size: 300, Overlap: ArchivalChunkOverlap}, {Size: 10, Overlap: 50},
	}
	for name, text := range texts {
		for _, opt := range opts {
			t.Run(fmt.Sprintf("%s/%d-%d", name, opt.Size, opt.Overlap), func(t *testing.T) {
				checkChunks(t, text, opt)
			})
		}
	}
}

func TestChunkDefaults(t *testing.T) {
	c := cl100k(t)
	text := prose(4, 5000)
	spans := checkChunks(t, text, DefaultChunkOptions())
	if len(spans) < 10 {
		t.Fatalf("5000 words gave %d chunks of 300 tokens", len(spans))
	}
	overlapped := 0
	for i, s := range spans {
		n := c.Count(text[s.Start:s.End])
		// Packing is greedy: every chunk but the last is nearly full.
		if i < len(spans)-1 && n < DefaultChunkSize-30 {
			t.Errorf("chunk %d has only %d tokens", i, n)
		}
		if i > 0 && s.Start < spans[i-1].End {
			overlapped++
		}
	}
	if overlapped < len(spans)-1 {
		t.Errorf("only %d of %d consecutive pairs overlap", overlapped, len(spans)-1)
	}
	if got := Chunk(text, ChunkOptions{}); len(got) >= len(spans) {
		t.Errorf("without overlap, %d chunks; with, %d", len(got), len(spans))
	}
}

func TestChunkEmpty(t *testing.T) {
	for _, s := range []string{"", " ", "\n\n\t", "\u00a0\u2003"} {
		if got := Chunk(s, DefaultChunkOptions()); len(got) != 0 {
			t.Errorf("Chunk(%q) = %q; want none", s, got)
		}
	}
	if got := Chunk("  one passage  ", DefaultChunkOptions()); !slices.Equal(got, []string{"one passage"}) {
		t.Errorf("short text: %q", got)
	}
}

func TestChunkOptionsValidate(t *testing.T) {
	if err := DefaultChunkOptions().Validate(); err != nil {
		t.Error(err)
	}
	for _, o := range []ChunkOptions{{Size: -1}, {Overlap: -1}, {Size: 10, Overlap: 10}, {Overlap: 300}} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// FuzzChunk checks that Chunk never panics and never loses text, for any
// bytes and small sizes.
func FuzzChunk(f *testing.F) {
	f.Add("a b c d e f", uint8(3), uint8(1))
	f.Add(prose(5, 100), uint8(20), uint8(5))
	f.Add(strings.Repeat("x", 300)+"\n y", uint8(4), uint8(2))
	f.Add("\xff\xfe bad \x80 utf8", uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, text string, size, overlap uint8) {
		checkChunks(t, text, ChunkOptions{Size: int(size%64) + 1, Overlap: int(overlap % 64)})
	})
}

// TestChunkRandom runs the checks on many small random texts over an
// alphabet chosen to make the tokenizer's edge cases common (runs of
// spaces and newlines, digits next to letters, invalid UTF-8).
func TestChunkRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alpha := []string{"A", "B", "0", "12", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\xff", "é", "日", "'s", "'", ".", ",", "-", "ab", "Hello", "é\u0301", "🙂"}
	for range 5000 {
		var b strings.Builder
		for range r.IntN(60) {
			b.WriteString(alpha[r.IntN(len(alpha))])
		}
		checkChunks(t, b.String(), ChunkOptions{Size: r.IntN(10) + 1, Overlap: r.IntN(10)})
	}
}

package tokens_test

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/engram-dev/engram/tokens"
)

// counter returns the shared Counter for enc.
func counter(t testing.TB, enc tokens.Encoding) *tokens.Counter {
	t.Helper()
	c, err := tokens.ForEncoding(enc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The expected counts were produced by OpenAI's tiktoken 0.14.0.
func TestCount(t *testing.T) {
	tests := []struct {
		text         string
		cl100k, o200 int
	}{
		{"", 0, 0},
		{"hello world", 2, 2},
		{"tiktoken is great!", 6, 6},
		{"Héllo wörld — naïve café 🎉🚀 日本語のテキスト", 24, 20},
		{"👨‍👩‍👧‍👦 ❤️‍🔥 👍🏽 🇯🇵🇫🇷 ✅", 44, 26},
		{"<|endoftext|> is counted as text, not as a special token", 17, 17},
		{"I'm sure they'll say it's fine; we've done it, you'd agree, THEY'RE RIGHT.", 23, 19},
		{"func main() {\n\tfmt.Println(\"hello\")\n}\n", 10, 10},
	}
	for _, tt := range tests {
		for enc, want := range map[tokens.Encoding]int{tokens.CL100KBase: tt.cl100k, tokens.O200KBase: tt.o200} {
			if got := counter(t, enc).Count(tt.text); got != want {
				t.Errorf("%s: Count(%q) = %d, want %d", enc, tt.text, got, want)
			}
		}
	}
}

// TestCountGolden checks Count against tiktoken on the texts in
// testdata/counts.json (see testdata/gen_counts.py): prose, code, many
// scripts, emoji, unusual whitespace, random mixes and long runs.
func TestCountGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/counts.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 500 {
		t.Fatalf("only %d rows in counts.json", len(rows))
	}
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		c := counter(t, enc)
		for i, r := range rows {
			text := r["text"].(string)
			want := int(r[string(enc)].(float64))
			if got := c.Count(text); got != want {
				t.Errorf("%s: row %d: Count(%.60q) = %d, want %d", enc, i, text, got, want)
			}
		}
	}
}

func TestCountInvalidUTF8(t *testing.T) {
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		c := counter(t, enc)
		for _, s := range []string{"\xff", "ab\xffcd", "\xe6\x97", "日本\x80語", strings.Repeat("\xfe", 300)} {
			if n := c.Count(s); n < 1 || n > len(s) {
				t.Errorf("%s: Count(%q) = %d, want 1..%d", enc, s, n, len(s))
			}
		}
	}
}

func TestForModel(t *testing.T) {
	tests := []struct {
		model string
		want  tokens.Encoding
	}{
		{"gpt-4o", tokens.O200KBase},
		{"gpt-4o-mini-2024-07-18", tokens.O200KBase},
		{"GPT-4o", tokens.O200KBase},
		{"openai/gpt-4o-mini", tokens.O200KBase},
		{"chatgpt-4o-latest", tokens.O200KBase},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", tokens.O200KBase},
		{"gpt-4.1", tokens.O200KBase},
		{"gpt-4.1-nano", tokens.O200KBase},
		{"gpt-4.5-preview", tokens.O200KBase},
		{"gpt-5", tokens.O200KBase},
		{"gpt-oss-120b", tokens.O200KBase},
		{"o1", tokens.O200KBase},
		{"o1-mini", tokens.O200KBase},
		{"o3-mini", tokens.O200KBase},
		{"o4-mini", tokens.O200KBase},
		{"gpt-4", tokens.CL100KBase},
		{"gpt-4-turbo", tokens.CL100KBase},
		{"gpt-4-0613", tokens.CL100KBase},
		{"gpt-3.5-turbo", tokens.CL100KBase},
		{"ft:gpt-3.5-turbo:acme::x", tokens.CL100KBase},
		{"text-embedding-3-small", tokens.CL100KBase},
		{"claude-3-5-sonnet-20241022", tokens.CL100KBase},
		{"anthropic/claude-sonnet-4", tokens.CL100KBase},
		{"llama-3.1-70b", tokens.CL100KBase},
		{"mistral-large", tokens.CL100KBase},
		{"", tokens.CL100KBase},
	}
	for _, tt := range tests {
		if got := tokens.EncodingForModel(tt.model); got != tt.want {
			t.Errorf("EncodingForModel(%q) = %s, want %s", tt.model, got, tt.want)
		}
		c, err := tokens.ForModel(tt.model)
		if err != nil {
			t.Fatalf("ForModel(%q): %v", tt.model, err)
		}
		if c.Encoding() != tt.want {
			t.Errorf("ForModel(%q).Encoding() = %s, want %s", tt.model, c.Encoding(), tt.want)
		}
	}
}

// TestForModelShares checks that models with one encoding share one loaded
// Counter.
func TestForModelShares(t *testing.T) {
	same := func(a, b string) {
		t.Helper()
		ca, err := tokens.ForModel(a)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := tokens.ForModel(b)
		if err != nil {
			t.Fatal(err)
		}
		if ca != cb {
			t.Errorf("ForModel(%q) and ForModel(%q) returned different Counters", a, b)
		}
	}
	same("gpt-4o", "o1-mini")
	same("gpt-4.1", "o3")
	same("gpt-4", "claude-3-opus")
	same("gpt-3.5-turbo", "unknown-model")
	o, _ := tokens.ForModel("gpt-4o")
	c, _ := tokens.ForModel("gpt-4")
	if o == c {
		t.Error("gpt-4o and gpt-4 share a Counter")
	}
}

func TestForEncodingUnknown(t *testing.T) {
	if c, err := tokens.ForEncoding("p50k_base"); err == nil {
		t.Errorf("ForEncoding(p50k_base) = %v, nil; want an error", c)
	}
}

// TestConcurrent counts from many goroutines at once; run it with -race.
func TestConcurrent(t *testing.T) {
	texts := []string{"hello world", "tiktoken is great!", "Héllo wörld — naïve café 🎉🚀 日本語のテキスト", sample, strings.Repeat("ab", 300)}
	models := []string{"gpt-4o", "gpt-4", "o3-mini", "claude-3-haiku"}
	want := map[string]int{}
	for _, m := range models {
		c, err := tokens.ForModel(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			want[m+"\x00"+s] = c.Count(s)
		}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				m := models[(g+i)%len(models)]
				c, err := tokens.ForModel(m)
				if err != nil {
					t.Error(err)
					return
				}
				s := texts[i%len(texts)]
				if got := c.Count(s); got != want[m+"\x00"+s] {
					t.Errorf("%s: Count(%.20q) = %d, want %d", m, s, got, want[m+"\x00"+s])
				}
				c.Messages([]tokens.Message{{Role: "user", Content: s}})
			}
		})
	}
	wg.Wait()
}

// sample is about 2 KB of the text an agent's context holds: prose, code,
// JSON and a little non-English.
var sample = func() string {
	const para = `The agent read the design notes and summarised them: the event log is the source of truth, projections are deterministic state machines, and every append states the sequence it expects. ` +
		"```go\nfunc (p *Projection) Apply(e events.Envelope) error {\n\tif e.Seq != p.seq+1 {\n\t\treturn fmt.Errorf(\"apply %d: %w\", e.Seq, ErrGap)\n\t}\n\tp.seq = e.Seq\n\treturn nil\n}\n```\n" +
		`{"tool":"search","arguments":{"query":"projection snapshot restore","limit":5}} ` +
		"Zusammenfassung: Die Projektion ist deterministisch. 要約：投影は決定的です。 🚀\n\n"
	s := strings.Repeat(para, 2048/len(para)+1)
	return strings.ToValidUTF8(s[:2048], "")
}()

func BenchmarkCount(b *testing.B) {
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		b.Run(string(enc), func(b *testing.B) {
			c := counter(b, enc)
			b.SetBytes(int64(len(sample)))
			b.ReportAllocs()
			for b.Loop() {
				c.Count(sample)
			}
		})
	}
}

// FuzzCount checks what holds for any input: a token covers at least one
// byte, and non-empty text has at least one token.
func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "hello world", "Héllo 🎉", "  \n\n x", "'S'll", "\xff\xfe", strings.Repeat("z", 200)} {
		f.Add(s)
	}
	cl := counter(f, tokens.CL100KBase)
	o2 := counter(f, tokens.O200KBase)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []*tokens.Counter{cl, o2} {
			n := c.Count(s)
			if n > len(s) || (n == 0) != (s == "") {
				t.Errorf("%s: Count(%q) = %d", c.Encoding(), s, n)
			}
		}
	})
}

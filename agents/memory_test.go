package agents

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// compileSystemFmt is CompileSystem as it was written with fmt, the
// reference the one-buffer version must match byte for byte.
func compileSystemFmt(prompt string, blocks []Block, recall, archival int, modified time.Time) string {
	var b strings.Builder
	for i, bl := range blocks {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "<%s characters=\"%d/%d\">\n%s\n</%s>", bl.Label, utf8.RuneCountInString(bl.Value), bl.Limit, bl.Value, bl.Label)
	}
	core := fmt.Sprintf("### Memory [last modified: %s]\n"+
		"%d previous messages between you and the user are stored in recall memory (use functions to access them)\n"+
		"%d total memories you created are stored in archival memory (use functions to access them)\n"+
		"\nCore memory shown below (limited in size, additional information stored in archival / recall memory):\n%s",
		LocalTime(modified), recall, archival, b.String())
	if strings.Contains(prompt, "{CORE_MEMORY}") {
		return strings.ReplaceAll(prompt, "{CORE_MEMORY}", core)
	}
	return prompt + "\n" + core
}

// TestCompileSystemAsWithFmt: the system message is what the fmt version
// wrote, for prompts with the memory at the end, in place, or twice, and
// blocks of any text, none included.
func TestCompileSystemAsWithFmt(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	words := []string{"I am Sam.", "Name: Ada", "", "日本語", "😀", "%d %s %%", "\n", "<persona>", "{CORE_MEMORY}", "\xff"}
	text := func() string {
		var b strings.Builder
		for range r.IntN(5) {
			b.WriteString(words[r.IntN(len(words))])
		}
		return b.String()
	}
	for range 5000 {
		var blocks []Block
		for range r.IntN(4) {
			blocks = append(blocks, Block{ID: "block-1", Label: text(), Value: text(), Limit: r.IntN(5000) - 10})
		}
		prompt := text()
		at := time.Date(2026, 12, 6, r.IntN(24), r.IntN(60), 0, 0, time.FixedZone("X", r.IntN(7)*3600))
		recall, archival := r.IntN(100000)-5, r.IntN(100)
		if got, want := CompileSystem(prompt, blocks, recall, archival, at), compileSystemFmt(prompt, blocks, recall, archival, at); got != want {
			t.Fatalf("prompt %q, blocks %+v:\ngot  %q\nwant %q", prompt, blocks, got, want)
		}
	}
}

// BenchmarkCompileSystem compiles a system message of the default prompt's
// size with two blocks, in one buffer and, as the baseline, with fmt.
//
//	go test ./agents -run '^$' -bench CompileSystem
func BenchmarkCompileSystem(b *testing.B) {
	prompt := strings.Repeat("You are MemGPT, the latest version of Limnal Corporation's digital companion. ", 60)
	blocks := []Block{{Label: "persona", Value: "I am Sam. I like tea and long walks.", Limit: 5000}, {Label: "human", Value: "Name: Ada", Limit: 5000}}
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		f    func(string, []Block, int, int, time.Time) string
	}{{"fmt", compileSystemFmt}, {"direct", CompileSystem}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.f(prompt, blocks, 42, 3, at)
			}
		})
	}
}

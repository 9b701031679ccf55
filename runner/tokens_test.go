package runner

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/tokens"
)

// The tool schemas' estimate is remembered by name, and a tool whose
// description or parameters changed is counted again.
func TestContextTokensFollowToolChanges(t *testing.T) {
	l := &Loop{cfg: Config{CountTokens: func(s string) int { return len(strings.Fields(s)) }}}
	st := agents.State{System: "you are an agent", Tools: []agents.Tool{
		{Name: "send_message", Description: "Sends a message to the human user.", Parameters: json.RawMessage(`{"type":"object"}`)},
	}}
	first := l.contextTokens(st)
	if again := l.contextTokens(st); again != first {
		t.Fatalf("the same state counted %d, then %d", first, again)
	}
	st.Tools[0].Description = "Sends a message to the human user, in several more words than before."
	if longer := l.contextTokens(st); longer <= first {
		t.Fatalf("a longer description counted %d, no more than the %d before it", longer, first)
	}
	st.Tools[0].Description = "Sends a message to the human user."
	if back := l.contextTokens(st); back != first {
		t.Fatalf("the first description again counted %d, want %d", back, first)
	}
	st.Tools[0].Parameters = json.RawMessage(`{"type":"object", "properties": {"message": {"type": "string"}}}`)
	if params := l.contextTokens(st); params <= first {
		t.Fatalf("longer parameters counted %d, no more than the %d before them", params, first)
	}
}

// BenchmarkContextTokens estimates a step's context as the runner does
// before each model call: a system prompt of some kilobytes whose memory
// section changes every step, a hundred messages, ten tools.
func BenchmarkContextTokens(b *testing.B) {
	c, err := tokens.ForEncoding(tokens.CL100KBase)
	if err != nil {
		b.Fatal(err)
	}
	memo := c.Memo(4096)
	l := &Loop{cfg: Config{CountTokens: memo.Count}}
	persona := strings.Repeat("I am Sam, a helpful agent who remembers what the user tells me.\n", 60)
	st := agents.State{}
	for i := range 100 {
		st.Context = append(st.Context, agents.Message{Role: "user", Content: fmt.Sprintf(`{"type": "user_message", "message": "message %d about the weather and the news", "time": "2026-12-06 08:00:00 PM UTC+0000"}`, i)})
	}
	for i := range 10 {
		st.Tools = append(st.Tools, agents.Tool{Name: fmt.Sprintf("tool_%d", i), Description: strings.Repeat("Does a thing with the memory. ", 10),
			Parameters: json.RawMessage(`{"type":"object","properties":{"label":{"type":"string","description":"Section of the memory to be edited."},"content":{"type":"string"}}}`)})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		st.System = "You are Letta.\n" + persona + fmt.Sprintf("### Memory [last modified: 2026-12-06]\n%d previous messages between you and the user are stored in recall memory\n", i) + persona
		l.contextTokens(st)
	}
}

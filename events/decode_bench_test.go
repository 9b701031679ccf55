package events

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkDecode decodes the events a replay is made of: a user message
// (the bulk of any log) and an assistant step packed with its tool return.
func BenchmarkDecode(b *testing.B) {
	now := time.Now().UTC()
	agg := Aggregate{Kind: KindAgent, ID: NewID(PrefixAgent, now)}
	msg, err := Encode(Envelope{Aggregate: agg, Command: NewID("cmd", now), Time: now,
		Event: &MessageAppended{ID: MessageID(NewID(PrefixMessage, now)), Role: "user", Text: "hello there, how are you today?"}})
	if err != nil {
		b.Fatal(err)
	}
	packed, err := EncodePacked([]Envelope{
		{Aggregate: agg, Command: "cmd-1", Time: now, Event: &MessageAppended{ID: MessageID(NewID(PrefixMessage, now)), Role: "assistant",
			Text: strings.Repeat("Thinking about the answer. ", 4), ToolCalls: []ToolCall{{ID: "call_1", Name: "send_message", Arguments: `{"message":"Hello, Ada!"}`}}}},
		{Aggregate: agg, Command: "cmd-1", Time: now, Event: &MessageAppended{ID: MessageID(NewID(PrefixMessage, now)), Role: "tool", Name: "send_message", ToolCallID: "call_1", Text: `{"status":"OK","message":"None"}`}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"message", msg}, {"packed-step", packed}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeAll(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

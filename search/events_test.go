package search_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/search"
)

func TestFromEvent(t *testing.T) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	created := at.Add(-time.Hour)
	agent := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	source := events.Aggregate{Kind: events.KindSource, ID: "source-1"}
	env := func(agg events.Aggregate, ev events.Event) events.Envelope {
		return events.Envelope{Seq: 42, Type: ev.EventType(), Aggregate: agg, Time: at, Event: ev}
	}
	msg := func(m events.MessageAppended) *events.MessageAppended { return &m }
	cases := []struct {
		name string
		env  events.Envelope
		want search.Batch
		ok   bool
	}{
		{"agent passage", env(agent, &events.PassageInserted{ID: "passage-1", AgentID: "agent-1", Text: "hi", Tags: []string{"x"}, Embedding: []float32{1, 2}}),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "passage-1", Kind: "passage", Owner: "agent-1", Text: "hi", Tags: []string{"x"}, Time: at, Seq: 42, Vector: []float32{1, 2}}}}, true},
		{"source passage with its time", env(source, &events.PassageInserted{ID: "passage-2", SourceID: "source-1", Text: "doc", CreatedAt: &created}),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "passage-2", Kind: "passage", Owner: "source-1", Text: "doc", Time: created, Seq: 42}}}, true},
		{"passage naming no owner", env(source, &events.PassageInserted{ID: "passage-3", Text: "doc"}),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "passage-3", Kind: "passage", Owner: "source-1", Text: "doc", Time: at, Seq: 42}}}, true},
		{"passage deleted", env(agent, &events.PassageDeleted{ID: "passage-1"}), search.Batch{Seq: 42, Delete: []string{"passage-1"}}, true},
		{"agent deleted", env(agent, &events.AgentDeleted{}), search.Batch{Seq: 42, DeleteOwner: []string{"agent-1"}}, true},
		{"source deleted", env(source, &events.SourceDeleted{}), search.Batch{Seq: 42, DeleteOwner: []string{"source-1"}}, true},
		{"user message in its envelope", env(agent, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: "message-1", Role: "user",
			Text: `{"type": "user_message", "message": "Where is my umbrella?", "time": "2026-05-04 03:02:01 AM UTC+0000"}`}}),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "message-1", Kind: "message", Owner: "agent-1", Text: "Where is my umbrella?", Role: "user", Time: at, Seq: 42}}}, true},
		{"plain user text", env(agent, msg(events.MessageAppended{ID: "message-2", Role: "user", Text: "just words"})),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "message-2", Kind: "message", Owner: "agent-1", Text: "just words", Role: "user", Time: at, Seq: 42}}}, true},
		{"assistant thought and send_message", env(agent, msg(events.MessageAppended{ID: "message-3", Role: "assistant", Text: "User wants the umbrella.",
			ToolCalls: []events.ToolCall{{ID: "c1", Name: "send_message", Arguments: `{"message": "It is by the door.", "request_heartbeat": false}`}}})),
			search.Batch{Seq: 42, Put: []search.Doc{{ID: "message-3", Kind: "message", Owner: "agent-1", Text: "User wants the umbrella. It is by the door.", Role: "assistant", Time: at, Seq: 42}}}, true},
		{"assistant calling another tool", env(agent, msg(events.MessageAppended{ID: "message-4", Role: "assistant",
			ToolCalls: []events.ToolCall{{ID: "c2", Name: "archival_memory_search", Arguments: `{"query": "umbrella"}`}}})), search.Batch{Seq: 42}, false},
		{"heartbeat", env(agent, msg(events.MessageAppended{ID: "message-5", Role: "user", Text: `{"type": "heartbeat", "reason": "[This is an automated system message hidden from the user] Function called using request_heartbeat=true, returning control"}`})), search.Batch{Seq: 42}, false},
		{"tool return", env(agent, msg(events.MessageAppended{ID: "message-6", Role: "tool", Text: `{"status": "OK", "message": "None"}`, ToolCallID: "c1"})), search.Batch{Seq: 42}, false},
		{"system", env(agent, msg(events.MessageAppended{ID: "message-7", Role: "system", Text: "You are..."})), search.Batch{Seq: 42}, false},
		{"other event", env(agent, &events.AgentUpdated{}), search.Batch{Seq: 42}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := search.FromEvent(c.env)
			if ok != c.ok {
				t.Fatalf("ok = %v", ok)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
			again, _ := search.FromEvent(c.env)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("not deterministic:\n%s", diff)
			}
		})
	}
}

package bus

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/engram-dev/engram/events"
)

func TestReadAggregates(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-A"}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-B"}
	other := events.Aggregate{Kind: events.KindAgent, ID: "agent-O"}
	appendOne := func(env events.Envelope) events.Seq {
		t.Helper()
		seq, err := l.Append(ctx, events.Batch{Command: events.NewID("cmd", env.Time), Events: []events.Envelope{env}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	appendOne(agentEnv(a.ID, &events.AgentCreated{ID: "agent-A", Name: "a"}))
	appendOne(agentEnv(other.ID, &events.AgentCreated{ID: "agent-O", Name: "o"}))
	appendOne(blockEnv(b.ID, &events.BlockCreated{ID: "block-B", Label: "human"}))
	// A packed message: two events of A in one message.
	packed := events.Batch{Command: "packed", Events: []events.Envelope{
		agentEnv(a.ID, &events.MessageAppended{ID: "message-1", Role: "user", Text: "hi"}),
		agentEnv(a.ID, &events.MessageAppended{ID: "message-2", Role: "assistant", Text: "hello"}),
	}}
	pseq, err := l.Append(ctx, packed)
	if err != nil {
		t.Fatal(err)
	}
	appendOne(agentEnv(other.ID, &events.AgentUpdated{}))

	read := func(aggs []events.Aggregate, from, to events.Seq, max int) []string {
		t.Helper()
		var out []string
		var sel []events.Selector
		for _, a := range aggs {
			sel = append(sel, events.Selector{Aggregate: a})
		}
		err := l.Read(ctx, sel, from, to, func(env events.Envelope) (bool, error) {
			out = append(out, fmt.Sprintf("%d.%d %s", env.Seq, env.Part, env.Type))
			return len(out) < max, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name     string
		aggs     []events.Aggregate
		from, to events.Seq
		max      int
		want     []string
	}{
		{"agent and block", []events.Aggregate{a, b}, 0, 0, 100, []string{"1.0 agent_created", "3.0 block_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq)}},
		{"from", []events.Aggregate{a, b}, 2, 0, 100, []string{"3.0 block_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq)}},
		{"to", []events.Aggregate{a, b}, 0, 3, 100, []string{"1.0 agent_created", "3.0 block_created"}},
		{"stop early", []events.Aggregate{a, b}, 0, 0, 2, []string{"1.0 agent_created", "3.0 block_created"}},
		{"nothing in range", []events.Aggregate{b}, 4, 0, 100, nil},
		{"no aggregate", nil, 0, 0, 100, nil},
	}
	t.Run("by type", func(t *testing.T) {
		var got []string
		sel := []events.Selector{{Aggregate: a, Types: []events.Type{events.TypeAgentCreated}}, {Aggregate: other, Types: []events.Type{events.TypeAgentUpdated}}}
		if err := l.Read(ctx, sel, 0, 0, func(env events.Envelope) (bool, error) {
			got = append(got, fmt.Sprintf("%d.%d %s", env.Seq, env.Part, env.Type))
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		// A's packed message comes whole: its events' types are not in its subject.
		want := []string{"1.0 agent_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq), fmt.Sprintf("%d.0 agent_updated", pseq+1)}
		if !slices.Equal(got, want) {
			t.Fatalf("read = %q, want %q", got, want)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := read(tc.aggs, tc.from, tc.to, tc.max); !slices.Equal(got, tc.want) {
				t.Fatalf("read = %q, want %q", got, tc.want)
			}
		})
	}
}

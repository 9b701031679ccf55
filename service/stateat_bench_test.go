package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
)

// historyRig is a node holding one agent with n events of its own (one a
// message, as a step's message is: user, assistant and block edits
// alternate), interleaved with as many events of 100 other agents.
//
// With summarize set, every 100th event of the agent rewrites its context
// window to its last 10 messages, as summarizing does; without, the window
// grows to 9,000 messages.
func historyRig(b *testing.B, n int, summarize bool) (*node.Node, string) {
	b.Helper()
	ctx := context.Background()
	cfg := node.DefaultConfig(b.TempDir())
	cfg.SyncAlways = false
	nd, err := node.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nd.Close(ctx) })
	a, err := nd.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada"}}, Model: nil})
	if err != nil {
		b.Fatal(err)
	}
	human := a.Blocks[0].ID
	now := time.Now().UTC()
	others := make([]string, 100)
	var batch []events.Envelope
	for i := range others {
		others[i] = events.NewID(events.PrefixAgent, now)
		batch = append(batch, events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: others[i]}, Time: now,
			Event: &events.AgentCreated{ID: events.AgentID(others[i]), Name: fmt.Sprint("other ", i)}})
	}
	var window []events.MessageID
	for i := 0; i < n; i++ {
		var env events.Envelope
		switch {
		case summarize && i%100 == 99:
			keep := append([]events.MessageID(nil), window[max(0, len(window)-10):]...)
			window = keep
			env = events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: a.ID}, Event: &events.AgentUpdated{MessageIDs: &keep}}
		case i%10 == 9:
			v := fmt.Sprintf("Name: Ada\nfact %d", i)
			env = events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: human}, Event: &events.BlockUpdated{Value: &v}}
		default:
			m := events.MessageID(events.NewID(events.PrefixMessage, now))
			window = append(window, m)
			env = events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: a.ID},
				Event: &events.MessageAppended{ID: m, Role: "user", Text: "hello there, how are you today?"}}
		}
		env.Time = now
		other := events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: others[i%len(others)]}, Time: now,
			Event: &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "noise"}}
		batch = append(batch, env, other)
		if len(batch) >= 1000 {
			if _, err := nd.Log.Append(ctx, events.Batch{Command: events.NewID("cmd", now), Events: batch}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	seq, err := nd.Log.Append(ctx, events.Batch{Command: events.NewID("cmd", now), Events: batch})
	if err != nil {
		b.Fatal(err)
	}
	if err := nd.Projection.WaitFor(ctx, seq); err != nil {
		b.Fatal(err)
	}
	if err := nd.Service.WaitIndexed(ctx); err != nil { // the indexer's work must not be timed
		b.Fatal(err)
	}
	return nd, a.ID
}

// BenchmarkStateAt rebuilds an agent with 10k events (in a log of 20k) as
// of its last event, by sequence.
//
//	go test ./service -run '^$' -bench 'StateAt|HistoryPage' -benchtime 20x
func BenchmarkStateAt(b *testing.B) {
	for _, summarize := range []bool{true, false} {
		name := "summarized"
		if !summarize {
			name = "window=9000"
		}
		b.Run(name, func(b *testing.B) { benchStateAt(b, summarize) })
	}
}

func benchStateAt(b *testing.B, summarize bool) {
	nd, id := historyRig(b, 10_000, summarize)
	ctx := context.Background()
	last, err := nd.Log.LastSeq(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := nd.Service.StateAt(ctx, id, api.At{Seq: uint64(last)})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(st.Agents[events.AgentID(id)].Messages); n < 8000 {
			b.Fatalf("%d messages", n)
		}
	}
}

// BenchmarkHistoryPage reads a page of 100 events from the middle of the
// same agent's history.
func BenchmarkHistoryPage(b *testing.B) {
	nd, id := historyRig(b, 10_000, true)
	ctx := context.Background()
	last, err := nd.Log.LastSeq(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs, err := nd.Service.History(ctx, id, api.EventFilter{After: uint64(last) / 2, Limit: 100})
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != 100 {
			b.Fatalf("%d events", len(evs))
		}
	}
}

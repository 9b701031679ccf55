package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
)

// TestHostedAndOldCreationsReplay runs a log that holds an agent created
// the way engram now writes it (one message hosting its blocks' creation)
// beside one written the old way (an atomic batch, one message per event),
// edits both agents' blocks with expectations, and rebuilds the projections
// from the whole log: both read the same, and the versions the rebuild
// derives are the ones the log's expectations check (later edits succeed).
func TestHostedAndOldCreationsReplay(t *testing.T) {
	ctx := context.Background()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.SnapshotEvery = -1
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := n.Log.LastSeq(ctx)
	hosted, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada"}, {Label: "persona", Value: "I am Sam"}}})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := n.Log.LastSeq(ctx); after != before+1 {
		t.Fatalf("creating an agent with two blocks appended %d messages, want 1", after-before)
	}

	// The old form: what engram appended before hosted messages.
	old := events.Aggregate{Kind: events.KindAgent, ID: events.NewID(events.PrefixAgent, time.Now())}
	blk := events.Aggregate{Kind: events.KindBlock, ID: events.NewID(events.PrefixBlock, time.Now())}
	now := time.Now().UTC()
	before, _ = n.Log.LastSeq(ctx)
	seq, err := n.Log.Append(ctx, events.Batch{Command: "old-create",
		Expect: []events.Expectation{{Aggregate: old}, {Aggregate: blk}},
		Events: []events.Envelope{
			{Aggregate: old, Time: now, Event: &events.AgentCreated{ID: events.AgentID(old.ID), Name: "old", AgentType: "memgpt_agent", BlockIDs: []events.BlockID{events.BlockID(blk.ID)}}},
			{Aggregate: blk, Time: now, Event: &events.BlockCreated{ID: events.BlockID(blk.ID), Label: "human", Value: "Name: Bob", Limit: 5000}},
			{Aggregate: old, Time: now, Event: &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "system", Text: "You are old."}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if seq != before+3 {
		t.Fatalf("the old form appended %d messages, want 3", seq-before)
	}
	if err := n.Projection.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	edit := func(n *node.Node, agent, value string) {
		t.Helper()
		if _, err := n.Service.UpdateAgentBlock(ctx, agent, "human", api.UpdateBlock{Value: &value}); err != nil {
			t.Fatalf("edit %s: %v", agent, err)
		}
	}
	edit(n, hosted.ID, "Name: Ada Lovelace")
	edit(n, old.ID, "Name: Bob Smith")
	n.Close(ctx)

	cfg.NoRestore = true // rebuild from the whole log
	n, err = node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	for _, tc := range []struct{ agent, want string }{{hosted.ID, "Name: Ada Lovelace"}, {old.ID, "Name: Bob Smith"}} {
		b, err := n.Service.GetAgentBlock(ctx, tc.agent, "human")
		if err != nil || b.Value != tc.want {
			t.Fatalf("%s after the rebuild: %+v, %v; want %q", tc.agent, b, err, tc.want)
		}
		edit(n, tc.agent, tc.want+"!")
		if b, err := n.Service.GetAgentBlock(ctx, tc.agent, "human"); err != nil || b.Value != tc.want+"!" {
			t.Fatalf("%s edited after the rebuild: %+v, %v", tc.agent, b, err)
		}
	}
	p, err := n.Service.GetAgentBlock(ctx, hosted.ID, "persona")
	if err != nil || p.Value != "I am Sam" {
		t.Fatalf("hosted persona after the rebuild: %+v, %v", p, err)
	}
}

package service_test

import (
	"context"
	"testing"

	"github.com/engram-dev/engram/api"
)

// TestStateAtFindsHostedBlock: a block created with one agent is stored in
// that agent's message (hosted); another agent it is attached to must still
// see it, with its edits, in its state at a point, and its creation in its
// history, in log order.
func TestStateAtFindsHostedBlock(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "persona", Value: "I am Sam"}}})
	if err != nil {
		t.Fatal(err)
	}
	var shared string
	for _, blk := range a.Blocks {
		if blk.Label == "human" {
			shared = blk.ID
		}
	}
	if _, err := n.Service.AttachBlock(ctx, b.ID, shared); err != nil {
		t.Fatal(err)
	}
	v := "Name: Ada Lovelace"
	if _, err := n.Service.UpdateBlock(ctx, shared, api.UpdateBlock{Value: &v}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		got, err := n.Service.GetAgentAt(ctx, id, api.At{Seq: uint64(n.Projection.Applied())})
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, blk := range got.Blocks {
			labels[blk.Label] = blk.Value
		}
		if labels["human"] != v {
			t.Errorf("agent %s at now: blocks %v, want human %q", id, labels, v)
		}
		hist, err := n.Service.History(ctx, id, api.EventFilter{Types: []string{"block_created", "block_updated", "core_block_attached"}})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for i, e := range hist {
			if i > 0 && (e.Seq < hist[i-1].Seq || e.Seq == hist[i-1].Seq && e.Part <= hist[i-1].Part) {
				t.Errorf("agent %s history out of order at %d: %+v", id, i, hist)
			}
			if e.Aggregate == "block/"+shared {
				seen = append(seen, e.Type)
			}
		}
		if len(seen) != 2 || seen[0] != "block_created" || seen[1] != "block_updated" {
			t.Errorf("agent %s history of the shared block: %v, want its creation and its update", id, seen)
		}
	}
}

package service_test

import (
	"context"
	"fmt"
	"strings"
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

// TestBlocksMadeTogetherPageInOrder: the blocks an agent's creation makes
// share one log message (a hosted creation); a list of blocks still pages
// through them one at a time in the order they were made, each once.
func TestBlocksMadeTogetherPageInOrder(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	var blocks []api.CreateBlock
	for i := range 6 {
		blocks = append(blocks, api.CreateBlock{Label: fmt.Sprintf("b%d", i), Value: "v"})
	}
	a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{Model: ptr("openai/gpt-4o-mini"), MemoryBlocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, b := range a.Memory.Blocks {
		want = append(want, b.ID)
	}
	for range 20 { // the projection's maps iterate in another order each time
		var got []string
		after := ""
		for {
			page, err := r.n.Service.ListBlocks(ctx, api.BlockFilter{}, api.Page{After: after, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page[0].ID)
			after = page[0].ID
			if len(got) > len(want) {
				t.Fatalf("paging went on past the %d blocks: %v", len(want), got)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged %v; want the blocks in the order made %v", got, want)
		}
	}
}

package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

func start(t testing.TB) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// startAt starts a node on dir (fsync off) for a test that restarts it; the
// caller closes it.
func startAt(t testing.TB, dir string, edit ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	for _, e := range edit {
		e(&cfg)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

func TestConcurrentBlockUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: ""}}})
	if err != nil {
		t.Fatal(err)
	}
	before := n.Projection.Applied()
	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.Service.UpdateAgentBlock(ctx, a.ID, "human", api.UpdateBlock{Value: ptr(fmt.Sprint("fact ", i))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Projection.Applied() - before; got != writers {
		t.Fatalf("%d events for %d updates", got, writers)
	}
	t.Logf("%d conflicts retried", n.Service.Conflicts())
}

func TestConcurrentCreatesDoNotConflict(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	before := n.Service.Conflicts()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: ptr(fmt.Sprint("agent ", i))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c := n.Service.Conflicts() - before; c != 0 {
		t.Fatalf("creating distinct agents caused %d conflicts", c)
	}
	list, err := n.Service.ListAgents(ctx, api.AgentFilter{}, api.Page{})
	if err != nil || len(list) != 20 {
		t.Fatalf("list = %d agents, %v", len(list), err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	kctx := service.WithIdempotencyKey(ctx, "create-sam")
	a1, err := n.Service.CreateAgent(kctx, api.CreateAgent{Name: ptr("sam"), MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	applied := n.Projection.Applied()
	a2, err := n.Service.CreateAgent(kctx, api.CreateAgent{Name: ptr("sam"), MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if a1.ID != a2.ID || a1.Blocks[0].ID != a2.Blocks[0].ID {
		t.Fatalf("retry created another agent: %s vs %s", a1.ID, a2.ID)
	}
	if n.Projection.Applied() != applied {
		t.Fatal("retry appended events")
	}
	// An update retried with the same key, after another write, is still one event.
	uctx := service.WithIdempotencyKey(ctx, "edit-1")
	if _, err := n.Service.UpdateAgentBlock(uctx, a1.ID, "human", api.UpdateBlock{Value: ptr("one")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Service.UpdateAgentBlock(ctx, a1.ID, "human", api.UpdateBlock{Value: ptr("two")}); err != nil {
		t.Fatal(err)
	}
	applied = n.Projection.Applied()
	if _, err := n.Service.UpdateAgentBlock(uctx, a1.ID, "human", api.UpdateBlock{Value: ptr("one")}); err != nil {
		t.Fatal(err)
	}
	b, _ := n.Service.GetAgentBlock(ctx, a1.ID, "human")
	if n.Projection.Applied() != applied || b.Value != "two" {
		t.Fatalf("retried update applied again: value %q, events %d→%d", b.Value, applied, n.Projection.Applied())
	}
	// Archival insert retried returns the same passage.
	pctx := service.WithIdempotencyKey(ctx, "remember-1")
	p1, err := n.Service.InsertArchival(pctx, a1.ID, api.CreatePassage{Text: "likes tea"})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := n.Service.InsertArchival(pctx, a1.ID, api.CreatePassage{Text: "likes tea"})
	if err != nil || len(p2) != 1 || p1[0].ID != p2[0].ID {
		t.Fatalf("retried insert: %+v %v", p2, err)
	}
	if s, _ := n.Service.ArchivalSummary(ctx, a1.ID); s.Size != 1 {
		t.Fatalf("archival size %d after a retried insert", s.Size)
	}
}

func TestBadInputAppendsNothing(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "old", Limit: ptr(10)}}})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 101)
	cases := []struct {
		name string
		kind fault.Kind
		run  func() error
	}{
		{"over limit", fault.Invalid, func() error {
			_, err := n.Service.UpdateAgentBlock(ctx, a.ID, "human", api.UpdateBlock{Value: ptr("much too long")})
			return err
		}},
		{"empty agent name", fault.Invalid, func() error {
			_, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: ptr("")})
			return err
		}},
		{"long agent name", fault.Invalid, func() error {
			_, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: &long})
			return err
		}},
		{"unknown agent", fault.NotFound, func() error {
			_, err := n.Service.GetAgent(ctx, "agent-01JD000000000000000000000A")
			return err
		}},
		{"malformed id", fault.Unprocessable, func() error {
			_, err := n.Service.GetAgent(ctx, "agent-nope")
			return err
		}},
		{"unknown label", fault.NotFound, func() error {
			_, err := n.Service.UpdateAgentBlock(ctx, a.ID, "nope", api.UpdateBlock{Value: ptr("x")})
			return err
		}},
		{"metadata not an object", fault.Unprocessable, func() error {
			_, err := n.Service.CreateAgent(ctx, api.CreateAgent{Metadata: []byte(`[1]`)})
			return err
		}},
		{"duplicate labels", fault.Invalid, func() error {
			_, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "a"}, {Label: "a"}}})
			return err
		}},
		{"empty passage", fault.Invalid, func() error {
			_, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "  "})
			return err
		}},
		{"unknown tool name", fault.Invalid, func() error { // 400 "Tools not found by name", as Letta
			_, err := n.Service.CreateAgent(ctx, api.CreateAgent{Tools: []string{"no_such_tool"}})
			return err
		}},
		{"tool without annotations", fault.Invalid, func() error {
			_, err := n.Service.CreateTool(ctx, api.CreateTool{SourceCode: "def f(x):\n    \"\"\"Do.\n\n    Args:\n        x: a thing\n    \"\"\"\n"}, true)
			return err
		}},
		{"duplicate source", fault.Invalid, func() error {
			if _, err := n.Service.CreateSource(ctx, api.CreateSource{Name: "docs"}); err != nil && !fault.Is(err, fault.Invalid) {
				return err
			}
			_, err := n.Service.CreateSource(ctx, api.CreateSource{Name: "docs"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := n.Projection.Applied()
			err := c.run()
			if fault.KindOf(err) != c.kind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, fault.KindOf(err), c.kind)
			}
			if c.name != "duplicate source" && n.Projection.Applied() != before {
				t.Fatalf("a refused command appended %d events", n.Projection.Applied()-before)
			}
		})
	}
	b, _ := n.Service.GetAgentBlock(ctx, a.ID, "human")
	if b.Value != "old" {
		t.Fatalf("refused edit changed the block to %q", b.Value)
	}
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	a, _ := n.Service.CreateAgent(ctx, api.CreateAgent{})
	var ids []string
	for i := 0; i < 7; i++ {
		p, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: fmt.Sprint("memory ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p[0].ID)
	}
	// Walk forward in pages of 3 until an empty page, as the SDKs do.
	var seen []string
	after := ""
	for {
		page, err := n.Service.ListArchival(ctx, a.ID, api.Page{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			seen = append(seen, p.ID)
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("paged %v, want %v", seen, ids)
	}
	before, err := n.Service.ListArchival(ctx, a.ID, api.Page{Before: ids[5], Limit: 2})
	if err != nil || len(before) != 2 || before[0].ID != ids[3] || before[1].ID != ids[4] {
		t.Fatalf("before page = %v, %v", before, err)
	}
	desc, _ := n.Service.ListArchival(ctx, a.ID, api.Page{Order: "desc", Limit: 1})
	if len(desc) != 1 || desc[0].ID != ids[6] {
		t.Fatalf("desc first = %v", desc)
	}
	if _, err := n.Service.ListArchival(ctx, a.ID, api.Page{After: "passage-01JD000000000000000000000P"}); !fault.Is(err, fault.NotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

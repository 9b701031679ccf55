package node_test

import (
	"context"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/node"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	limit, memgpt := 50, "memgpt_agent" // eight base tools
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{AgentType: &memgpt, MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada", Limit: &limit}, {Label: "persona", Value: "I am Sam"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Blocks) != 2 || len(a.Tools) != 8 || a.Name == "" {
		t.Fatalf("agent = %+v", a)
	}
	v := "Name: Ada Lovelace"
	if _, err := n.Service.UpdateAgentBlock(ctx, a.ID, "human", api.UpdateBlock{Value: &v}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "likes tea"}); err != nil {
		t.Fatal(err)
	}
	n.Close(ctx)
	n, err = node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	b, err := n.Service.GetAgentBlock(ctx, a.ID, "human")
	if err != nil || b.Value != v {
		t.Fatalf("after restart: %+v %v", b, err)
	}
	ps, err := n.Service.ListArchival(ctx, a.ID, api.Page{})
	if err != nil || len(ps) != 1 || ps[0].Text != "likes tea" {
		t.Fatalf("archival after restart: %+v %v", ps, err)
	}
	t.Logf("ready in %v", n.Ready)
}

func TestDataDirLocked(t *testing.T) {
	ctx := context.Background()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start(ctx, cfg); err == nil {
		t.Fatal("a second node started on the same data directory")
	}
	n.Close(ctx)
	n2, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart after close: %v", err)
	}
	n2.Close(ctx)
}

package service_test

import (
	"context"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// TestBodiesFollowTheLog: the body cache a node feeds from its follower
// holds every message event but system messages as stored (an agent's
// boot messages), decoded as a load from the log decodes it, and
// nothing that is not a message; a cache that starts at the end of the log
// holds none of what came before.
func TestBodiesFollowTheLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bodies := service.NewBodies(0)
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	cfg.Service.Bodies = bodies
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	memgpt := "memgpt_agent" // boot messages beside the system message
	_, err = n.Service.CreateAgent(ctx, api.CreateAgent{AgentType: &memgpt, MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	seq := n.Projection.Applied()
	envs, err := n.Log.LoadAll(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	msgs := 0
	for _, env := range envs {
		got, ok := bodies.Get(seq, env.Part)
		m, isMsg := events.AsMessage(env.Event)
		if want := isMsg && m.Role != "system"; want != ok {
			t.Errorf("part %d (%s): cached %v, want %v", env.Part, env.Type, ok, want)
		}
		if ok {
			msgs++
			if got.Seq != env.Seq || got.Type != env.Type || got.Command != env.Command || !got.Time.Equal(env.Time) {
				t.Errorf("part %d: cached %+v, the log holds %+v", env.Part, got, env)
			}
		}
	}
	if msgs == 0 {
		t.Fatal("the creation holds no message event")
	}
	n.Close(ctx)

	// Started again: the cache the node makes begins at the log's end.
	late := service.NewBodies(seq)
	cfg.Service.Bodies = late
	n, err = node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if _, ok := late.Get(seq, 1); ok || late.Applied() < seq {
		t.Errorf("a cache starting at %d holds the backlog, or is behind it (applied %d)", seq, late.Applied())
	}
}

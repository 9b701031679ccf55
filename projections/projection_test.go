package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

func TestProjectionFollowsSkipsAndRestores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := bus.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	s, err := bus.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	appendEv := func(cmd string, ev events.Event) events.Seq {
		seq, err := l.Append(ctx, events.Batch{Command: cmd, Events: []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: ev}}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	appendEv("c1", &events.AgentCreated{ID: "agent-1", Name: "one"})
	// An event this build cannot read (a newer version's, or damage) is skipped.
	if _, err := s.JetStream().Publish(ctx, "ev.default.agent.00.agent-1.from_the_future", []byte(`{"type":"from_the_future"}`)); err != nil {
		t.Fatal(err)
	}
	name := "two"
	last := appendEv("c2", &events.AgentUpdated{Name: &name})

	p := projections.New(l, projections.Config{})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	p.Read(func(st *projections.State) {
		if a := st.Agents["agent-1"]; a == nil || a.Name != "two" || st.Skipped != 1 {
			t.Fatalf("state: agent %+v, skipped %d", a, st.Skipped)
		}
	})
	if err := p.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done

	// A new projection starts from the snapshot and follows only what came after.
	name = "three"
	last = appendEv("c3", &events.AgentUpdated{Name: &name})
	p2 := projections.New(l, projections.Config{})
	p2.Restore(ctx)
	if p2.Applied() != last-1 {
		t.Fatalf("restored at %d, want %d", p2.Applied(), last-1)
	}
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	go p2.Run(runCtx)
	if err := p2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	p2.Read(func(st *projections.State) {
		if a := st.Agents["agent-1"]; a == nil || a.Name != "three" {
			t.Fatalf("after restore and follow: %+v", a)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer wcancel()
	if err := p2.WaitFor(wctx, last+10); err == nil {
		t.Fatal("WaitFor an event that never comes returned nil")
	}
}

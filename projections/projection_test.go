package projections_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

func TestProjectionFollowsSkipsAndRestores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, l := relaxedLog(ctx, t)
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

// TestReadsWaitForTheDisk feeds a projection ahead of the disk (bus.Log.Ahead,
// as a node does) while the log's fsync is held back: the state holds the
// new event for ReadAhead at once, but Read and Snapshot wait until the
// event is on disk, so no client reads, and no snapshot keeps, what a power
// failure could take back.
func TestReadsWaitForTheDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := bus.DefaultConfig(t.TempDir())
	cfg.SyncAlways = true // group commit: engram syncs the log itself
	s, err := bus.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hold atomic.Bool
	release := make(chan struct{})
	var freed sync.Once
	free := func() { freed.Do(func() { hold.Store(false); close(release) }) }
	defer free()
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{BeforeSync: func() {
		if hold.Load() {
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	first, err := l.Append(ctx, events.Batch{Command: "c1", Events: []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: &events.AgentCreated{ID: "agent-1", Name: "one"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := projections.New(l, projections.Config{SnapshotEvery: -1, Durable: l.Durable})
	f := projections.NewFollower(l.Ahead(), projections.FollowerConfig{})
	f.Feed(p)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go f.Run(runCtx)
	if err := p.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	nameIn := func(read func(func(*projections.State))) string {
		var name string
		read(func(st *projections.State) {
			if a := st.Agents["agent-1"]; a != nil {
				name = a.Name
			}
		})
		return name
	}

	hold.Store(true)
	two := "two"
	appended := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, events.Batch{Command: "c2", Events: []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: &events.AgentUpdated{Name: &two}}}})
		appended <- err
	}()
	for nameIn(p.ReadAhead) != "two" {
		if ctx.Err() != nil {
			t.Fatal("the projection never applied the event ahead of the disk")
		}
		time.Sleep(time.Millisecond)
	}
	read := make(chan string, 1)
	go func() { read <- nameIn(p.Read) }()
	snapped := make(chan error, 1)
	go func() { snapped <- p.Snapshot(ctx) }()
	// An answer resting on the new event waits for it; one resting on an
	// event on disk does not wait for the others' fsync.
	settled := make(chan string, 1)
	go func() {
		var name string
		err := p.ReadSettled(ctx, func(st *projections.State) events.Seq {
			a := st.Agents["agent-1"]
			name = a.Name
			return a.Version.Newest()
		})
		if err != nil {
			name = err.Error()
		}
		settled <- name
	}()
	if err := p.ReadSettled(ctx, func(*projections.State) events.Seq { return first }); err != nil {
		t.Fatalf("ReadSettled on an event on disk: %v", err)
	}
	select {
	case name := <-read:
		t.Fatalf("Read returned %q while the event was not on disk", name)
	case name := <-settled:
		t.Fatalf("ReadSettled returned %q while the event it rests on was not on disk", name)
	case err := <-snapped:
		t.Fatalf("Snapshot returned (%v) while the event was not on disk", err)
	case err := <-appended:
		t.Fatalf("the append was acknowledged (%v) while the disk was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, _, err := l.LoadSnapshot(ctx, "projections-v5"); err == nil {
		t.Fatal("a snapshot was saved while what it holds was not on disk")
	}

	free()
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if name := <-read; name != "two" {
		t.Fatalf("Read after the disk: %q", name)
	}
	if name := <-settled; name != "two" {
		t.Fatalf("ReadSettled after the disk: %q", name)
	}
	if err := <-snapped; err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.LoadSnapshot(ctx, "projections-v5"); err != nil {
		t.Fatalf("no snapshot once the disk has the event (is the name still projections-v5?): %v", err)
	}
}

// TestRestoresOlderSnapshot checks that a snapshot of the format before
// (v4: the whole state in one gob) is restored when no newer one exists,
// and deleted once a newer one is saved.
func TestRestoresOlderSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, l := relaxedLog(ctx, t)
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	seq, err := l.Append(ctx, events.Batch{Command: "c1", Events: []events.Envelope{{Aggregate: agg, Time: time.Now(),
		Event: &events.AgentCreated{ID: "agent-1", Name: "one"}}}})
	if err != nil {
		t.Fatal(err)
	}
	// An older engram's snapshot at seq, of a state this log never held
	// (another name), so the test sees which one was restored.
	old := projections.NewState()
	old.Applied = seq
	old.Agents["agent-1"] = &projections.Agent{ID: "agent-1", Name: "from the v4 snapshot", Created: seq,
		Messages: []projections.Ref{{ID: "message-1", Seq: seq}}, MessageIDs: []events.MessageID{"message-1"}}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(old); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot(ctx, "projections-v4", seq, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	p := projections.New(l, projections.Config{})
	p.Restore(ctx)
	if p.Applied() != seq {
		t.Fatalf("restored at %d, want %d", p.Applied(), seq)
	}
	p.Read(func(st *projections.State) {
		if a := st.Agents["agent-1"]; a == nil || a.Name != "from the v4 snapshot" || len(a.Messages) != 1 || len(a.MessageIDs) != 1 {
			t.Fatalf("restored agent %+v", a)
		}
	})
	if err := p.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.LoadSnapshot(ctx, "projections-v5"); err != nil {
		t.Fatalf("no v5 snapshot after Snapshot: %v", err)
	}
	if _, _, err := l.LoadSnapshot(ctx, "projections-v4"); err == nil {
		t.Fatal("the v4 snapshot is still there after a v5 one was saved")
	}
	p2 := projections.New(l, projections.Config{})
	p2.Restore(ctx)
	p2.Read(func(st *projections.State) {
		if a := st.Agents["agent-1"]; p2.Applied() != seq || a == nil || a.Name != "from the v4 snapshot" || len(a.Messages) != 1 {
			t.Fatalf("restored from v5 at %d: %+v", p2.Applied(), a)
		}
	})
}

// relaxedLog starts a server (fsync relaxed) that the test's end stops, and
// opens a log on it.
func relaxedLog(ctx context.Context, t *testing.T) (*bus.Server, *bus.Log) {
	t.Helper()
	cfg := bus.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	s, err := bus.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

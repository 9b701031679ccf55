package node_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
)

// fillLog appends n events: 1000 agents, then messages spread over them, in
// atomic batches of 1000 (the fastest way to build a large log).
func fillLog(b *testing.B, nd *node.Node, n int) {
	ctx := context.Background()
	now := time.Now().UTC()
	agents := make([]events.AgentID, 1000)
	var batch []events.Envelope
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := nd.Log.Append(ctx, events.Batch{Command: events.NewID("cmd", now), Events: batch}); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range agents {
		agents[i] = events.AgentID(events.NewID(events.PrefixAgent, now))
		batch = append(batch, events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: string(agents[i])}, Time: now,
			Event: &events.AgentCreated{ID: agents[i], Name: fmt.Sprint("agent ", i), System: "You are a test agent."}})
	}
	flush()
	for i := len(agents); i < n; i++ {
		a := agents[i%len(agents)]
		batch = append(batch, events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: string(a)}, Time: now,
			Event: &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "hello there, how are you today?"}})
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
}

// BenchmarkRestart measures time to ready on a log of ENGRAM_BENCH_EVENTS
// events (default 1,000,000): with a snapshot, and replaying everything.
//
//	go test ./node -run '^$' -bench Restart -benchtime 1x
func BenchmarkRestart(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ENGRAM_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	dir := b.TempDir()
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	cfg.SnapshotEvery = -1
	nd, err := node.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	fillLog(b, nd, n)
	nd.Close(ctx)
	b.ResetTimer()
	for _, withSnap := range []bool{false, true} {
		name := "replay-all"
		if withSnap {
			name = "snapshot"
		}
		b.Run(name, func(b *testing.B) {
			if withSnap { // write a snapshot at the end of the log first
				c := cfg
				c.NoRestore, c.SnapshotEvery = true, 0
				nd, err := node.Start(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				nd.Close(ctx)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := cfg
				c.NoRestore = !withSnap
				c.SnapshotEvery = 0
				if !withSnap {
					c.SnapshotEvery = -1
				}
				nd, err := node.Start(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if got := nd.Projection.Applied(); int(got) < n {
					b.Fatalf("ready with %d of %d events", got, n)
				}
				b.ReportMetric(nd.Ready.Seconds(), "s-to-ready")
				b.ReportMetric(float64(n)/nd.Ready.Seconds(), "events/s")
				nd.Close(ctx)
			}
		})
	}
}

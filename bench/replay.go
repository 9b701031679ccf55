package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/projections"
)

// runReplay builds a log of n events (1,000 agents, then user messages
// spread over them), then measures: the projection rebuild rate (a fresh
// projection following the whole log) beside a raw read of the same log;
// and a node's time to ready, replaying everything and from a snapshot.
func runReplay(ctx context.Context, env *Env) ([]Row, error) {
	n := env.ReplayEvents
	if n == 0 {
		n = 1_000_000
		if env.Quick {
			n = 20_000
		}
	}
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	cfg.SnapshotEvery = -1
	nd, err := node.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fillStart := time.Now()
	if err := fillLog(ctx, nd, n); err != nil {
		nd.Close(ctx)
		return nil, err
	}
	fillTook := time.Since(fillStart)
	total := int(nd.Projection.Applied())

	// Raw read: follow the log, count, no decoding.
	rawStart := time.Now()
	if err := follow(ctx, nd, total, false); err != nil {
		nd.Close(ctx)
		return nil, err
	}
	rawTook := time.Since(rawStart)
	// Rebuild: a fresh projection applies the whole log.
	p := projections.New(nd.Log, projections.Config{SnapshotEvery: -1})
	pctx, cancel := context.WithCancel(ctx)
	rebuildStart := time.Now()
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	err = p.CatchUp(ctx)
	rebuildTook := time.Since(rebuildStart)
	cancel()
	<-done
	nd.Close(ctx)
	if err != nil {
		return nil, err
	}
	rawRate := float64(total) / rawTook.Seconds()
	rebuildRate := float64(total) / rebuildTook.Seconds()
	size := fmt.Sprintf("%s events", thousands(int64(total)))
	note := fmt.Sprintf("log built in %s", fillTook.Round(time.Millisecond))
	if n < 1_000_000 {
		note += fmt.Sprintf("; %s events, not the 1,000,000 the target names (--quick or --replay-events)", thousands(int64(total)))
	}
	rows := []Row{{
		What:     fmt.Sprintf("projection rebuild from the log (follow, decode, apply), %s", size),
		Engram:   rate(rebuildRate, "events/s"),
		Baseline: fmt.Sprintf("raw ordered-consumer read of the same log, no decoding: %s", rate(rawRate, "events/s")),
		Ratio:    fmt.Sprintf("%.2f× the raw time", rawRate/rebuildRate),
		Target:   verdict("≥ 200,000 events/s", rebuildRate >= 200_000),
		Note:     note,
		Metrics:  map[string]float64{"events": float64(total), "rebuild_per_s": rebuildRate, "raw_per_s": rawRate},
	}}

	for _, snap := range []bool{false, true} {
		c := cfg
		if snap { // write a snapshot at the end of the log first
			c.NoRestore, c.SnapshotEvery = true, 0
			w, err := node.Start(ctx, c)
			if err != nil {
				return rows, err
			}
			w.Close(ctx)
		}
		c.NoRestore = !snap
		c.SnapshotEvery = -1
		if snap {
			c.SnapshotEvery = 0
		}
		r, err := node.Start(ctx, c)
		if err != nil {
			return rows, err
		}
		ready := r.Ready
		got := int(r.Projection.Applied())
		r.Close(ctx)
		if got < total {
			return rows, fmt.Errorf("ready with %d of %d events", got, total)
		}
		what, target := "restart, replaying the whole log", "—"
		if snap {
			what, target = "restart from a snapshot at the end of the log", "< 2 s with 1,000,000 events: not measured (smaller log)"
			if total >= 1_000_000 {
				target = verdict("< 2 s with 1,000,000 events", ready < 2*time.Second)
			}
		}
		rows = append(rows, Row{
			What:     fmt.Sprintf("%s, %s: time to ready", what, size),
			Engram:   fmt.Sprintf("%s (%s)", dur(ready), rate(float64(total)/ready.Seconds(), "events/s")),
			Baseline: "—", Ratio: "—", Target: target, Note: note,
			Metrics: map[string]float64{"events": float64(total), "ready_s": ready.Seconds()},
		})
	}
	return rows, nil
}

// fillLog appends about n events: 1,000 agents (fewer for small n), then
// user messages spread over them, in atomic batches of 1,000.
func fillLog(ctx context.Context, nd *node.Node, n int) error {
	now := time.Now().UTC()
	ids := make([]events.AgentID, min(1000, max(1, n/20)))
	var batch []events.Envelope
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := nd.Log.Append(ctx, events.Batch{Command: events.NewID("cmd", now), Events: batch})
		batch = batch[:0]
		return err
	}
	for i := range ids {
		ids[i] = events.AgentID(events.NewID(events.PrefixAgent, now))
		batch = append(batch, events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: string(ids[i])}, Time: now,
			Event: &events.AgentCreated{ID: ids[i], Name: fmt.Sprint("agent ", i), System: "You are a test agent."}})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for i := len(ids); i < n; i++ {
		a := ids[i%len(ids)]
		batch = append(batch, events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: string(a)}, Time: now,
			Event: &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "hello there, how are you today?"}})
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	last, err := nd.Log.LastSeq(ctx)
	if err != nil {
		return err
	}
	return nd.Projection.WaitFor(ctx, last)
}

// follow reads total events from the start of the log, decoding each when
// decode is set.
func follow(ctx context.Context, nd *node.Node, total int, decode bool) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := 0
	err := nd.Log.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
		if decode {
			if _, err := events.DecodeAll(data); err != nil {
				return err
			}
		}
		count++
		if count >= total {
			cancel()
		}
		return nil
	})
	if count < total {
		return fmt.Errorf("read %d of %d events: %w", count, total, err)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

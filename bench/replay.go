package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/verify"
)

// runReplay builds a log of n events (1,000 agents, then user messages
// spread over them) and measures a node's start: rebuilding its
// projections from the whole log (the rate, beside a raw read of the same
// log, and the time to ready), and restoring from a snapshot.
//
// The log is written with asynchronous raw publishes of engram's own
// encoded events under their subjects (building it is set-up, not a
// measurement), on a bare JetStream server, so no projection applies it
// while it is written.
func runReplay(ctx context.Context, env *Env) ([]Row, error) {
	n := replayEvents(env)
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	// No checkpoints: the checkpointer's first read of a log it has never
	// checkpointed would share the CPUs with the replay being measured.
	cfg.Checkpoints = verify.CheckpointConfig{Every: -1, Interval: -1}
	fillStart := time.Now()
	bcfg := bus.DefaultConfig(filepath.Join(dir, "nats")) // where node.Start keeps it
	bcfg.SyncAlways = false
	s, err := bus.StartServer(ctx, bcfg)
	if err != nil {
		return nil, err
	}
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{})
	if err == nil {
		err = fillLog(ctx, s, l, n)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	fillTook := time.Since(fillStart)
	last, err := l.LastSeq(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	total := int(last)

	// Raw reads, counting, no decoding: with an ordered consumer (Follow),
	// and as a node's follower reads (FollowPending: batched direct gets of
	// what is stored, then an ordered consumer).
	rawStart, rawCPU := time.Now(), cpuTime()
	if err := follow(ctx, l, total, false); err != nil {
		s.Close()
		return nil, err
	}
	orderedRate := float64(total) / time.Since(rawStart).Seconds()
	orderedCPU := cpuTime() - rawCPU
	rawStart, rawCPU = time.Now(), cpuTime()
	if err := followPending(ctx, l, total); err != nil {
		s.Close()
		return nil, err
	}
	rawRate := float64(total) / time.Since(rawStart).Seconds()
	pendingCPU := cpuTime() - rawCPU
	s.Close()
	size := fmt.Sprintf("%s events", thousands(int64(total)))
	note := fmt.Sprintf("log written in %s (raw async publishes)", fillTook.Round(time.Millisecond))
	if n < 1_000_000 {
		note += fmt.Sprintf("; %s events, not the 1,000,000 the target names (--quick or --replay-events)", thousands(int64(total)))
	}

	// Start a node that replays everything (its projections rebuilt from
	// the log: follow, decode, apply), then close it: Close writes the
	// snapshot that the second start restores from (and a copy of it the
	// second start decodes while its server starts); then start once more
	// without that copy, as after a crash, restoring from the snapshot
	// store.
	var rows []Row
	for _, snap := range []bool{false, true} {
		c := cfg
		c.NoRestore = !snap
		c.SnapshotEvery = 1 << 30 // none while replaying; one at Close
		stopProfile := func() {}
		profile := env.ReplayProfile
		if snap {
			profile = env.RestartProfile
		}
		if profile != "" {
			if stopProfile, err = startProfile(profile); err != nil {
				return rows, err
			}
		}
		startCPU := cpuTime()
		r, err := node.Start(ctx, c)
		rebuildCPU := cpuTime() - startCPU
		stopProfile()
		if err != nil {
			return rows, err
		}
		ready, phases := r.Ready, r.StartPhases
		got := int(r.Projection.Applied())
		r.Close(ctx)
		if got < total {
			return rows, fmt.Errorf("ready with %d of %d events", got, total)
		}
		perS := float64(total) / ready.Seconds()
		if !snap {
			rows = append(rows, Row{
				What:   fmt.Sprintf("restart rebuilding the projections from the whole log (follow, decode, apply), %s: rate and time to ready", size),
				Engram: fmt.Sprintf("%s (%s)", rate(perS, "events/s"), dur(ready)),
				Baseline: fmt.Sprintf("raw read of the same log, no decoding, as the follower reads it (batched direct gets, then an ordered consumer): %s; with an ordered consumer alone: %s",
					rate(rawRate, "events/s"), rate(orderedRate, "events/s")),
				Ratio:  fmt.Sprintf("%.2f× the raw time", rawRate/perS),
				Target: verdict("≥ 200,000 events/s", perS >= 200_000),
				Note: note + fmt.Sprintf("; CPU time of the process: rebuild %.1f µs/event, raw read as the follower reads it %.1f µs/event, ordered-consumer raw read %.1f µs/event",
					us(rebuildCPU)/float64(total), us(pendingCPU)/float64(total), us(orderedCPU)/float64(total)),
				Metrics: map[string]float64{"events": float64(total), "rebuild_per_s": perS, "raw_per_s": rawRate,
					"raw_ordered_per_s": orderedRate, "ready_s": ready.Seconds(), "rebuild_cpu_us_per_event": us(rebuildCPU) / float64(total),
					"raw_cpu_us_per_event": us(pendingCPU) / float64(total), "raw_ordered_cpu_us_per_event": us(orderedCPU) / float64(total)},
			})
			continue
		}
		if err := os.Remove(filepath.Join(dir, node.SnapshotCopyFile)); err != nil {
			return rows, fmt.Errorf("no copy of the snapshot after Close: %w", err)
		}
		r, err = node.Start(ctx, c)
		if err != nil {
			return rows, err
		}
		stored, storedPhases := r.Ready, r.StartPhases
		got = int(r.Projection.Applied())
		r.Close(ctx)
		if got < total {
			return rows, fmt.Errorf("ready with %d of %d events", got, total)
		}
		target := "< 2 s with 1,000,000 events: not measured (smaller log)"
		if total >= 1_000_000 {
			target = verdict("< 2 s with 1,000,000 events (both starts)", max(ready, stored) < 2*time.Second)
		}
		rows = append(rows, Row{
			What: fmt.Sprintf("restart from a snapshot at the end of the log, %s: time to ready", size),
			Engram: fmt.Sprintf("%s (%s) after a clean stop; %s from the snapshot store alone (as after a crash)",
				dur(ready), rate(perS, "events/s"), dur(stored)),
			Baseline: "—", Ratio: "—", Target: target,
			Note: note + "; where the time went after a clean stop (the copy of the snapshot it left decoded while the server starts): " + phaseNote(phases) +
				"; from the store: " + phaseNote(storedPhases),
			Metrics: map[string]float64{"events": float64(total), "ready_s": ready.Seconds(), "ready_store_s": stored.Seconds()},
		})
	}
	return rows, nil
}

// phaseNote lists the steps of a node's start that took 10 ms or more,
// "name ms", and what the others took together.
func phaseNote(phases []node.Phase) string {
	var parts []string
	var rest time.Duration
	for _, p := range phases {
		if p.Took < 10*time.Millisecond {
			rest += p.Took
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, dur(p.Took)))
	}
	return strings.Join(append(parts, fmt.Sprintf("the rest %s", dur(rest))), ", ")
}

// fillLog appends about n events: 1,000 agents (fewer for small n), then
// user messages spread over them, each event its own message under its
// subject, as engram would have stored it.
func fillLog(ctx context.Context, s *bus.Server, l *bus.Log, n int) error {
	now := time.Now().UTC()
	js := s.JetStream()
	pub := func(agg events.Aggregate, ev events.Event) error {
		data, err := events.Encode(events.Envelope{Aggregate: agg, Command: events.NewID("cmd", now), Time: now, Event: ev})
		if err != nil {
			return err
		}
		subj := bus.Subject(l.Tenant(), agg, ev.EventType())
		return unstalled(ctx, js, func() error {
			_, err := js.PublishAsync(subj, data)
			return err
		})
	}
	ids := make([]events.AgentID, min(1000, max(1, n/20)))
	for i := range ids {
		ids[i] = events.AgentID(events.NewID(events.PrefixAgent, now))
		if err := pub(events.Aggregate{Kind: events.KindAgent, ID: string(ids[i])},
			&events.AgentCreated{ID: ids[i], Name: fmt.Sprint("agent ", i), System: "You are a test agent."}); err != nil {
			return err
		}
	}
	for i := len(ids); i < n; i++ {
		a := ids[i%len(ids)]
		if err := pub(events.Aggregate{Kind: events.KindAgent, ID: string(a)},
			&events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "hello there, how are you today?"}); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	last, err := l.LastSeq(ctx)
	if err != nil {
		return err
	}
	if int(last) != n {
		return fmt.Errorf("log holds %d events after writing %d", last, n)
	}
	return nil
}

// follow reads total events from the start of the log, decoding each when
// decode is set.
func follow(ctx context.Context, l *bus.Log, total int, decode bool) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := 0
	err := l.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
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

// followPending reads total events from the start of the log as a node's
// follower does (bus.Log.FollowPending), without decoding.
func followPending(ctx context.Context, l *bus.Log, total int) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := 0
	err := l.FollowPending(fctx, 1, func(events.Seq, []byte, uint64) error {
		if count++; count >= total {
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

// replayEvents is the size of the replay and verify workloads' log.
func replayEvents(env *Env) int {
	switch {
	case env.ReplayEvents > 0:
		return env.ReplayEvents
	case env.Quick:
		return 20_000
	}
	return 1_000_000
}

// unstalled runs an asynchronous publish; when too many are outstanding
// (the server is slow to acknowledge: a busy machine), it waits until every
// one is acknowledged and publishes again, instead of failing the workload.
func unstalled(ctx context.Context, js jetstream.JetStream, publish func() error) error {
	for {
		err := publish()
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startProfile starts a CPU profile written to file and returns what
// stops it.
func startProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

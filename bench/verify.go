package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/verify"
)

// runVerify measures engram verify: walking a sealed log and checking
// every message's seal, expectation and the checkpoints, beside a raw
// read of the same log (an ordered consumer, no decoding, no checks) in
// the same run. The log has the replay workload's shape (1,000 agents,
// then user messages spread over them), each message sealed with the
// expectation Append would have sent, and ends with a checkpoint.
func runVerify(ctx context.Context, env *Env) ([]Row, error) {
	n := replayEvents(env)
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	bcfg := bus.DefaultConfig(filepath.Join(dir, "nats"))
	bcfg.SyncAlways = false
	s, err := bus.StartServer(ctx, bcfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	key, _, err := verify.LoadOrCreateKey(filepath.Join(dir, verify.KeyFile))
	if err != nil {
		return nil, err
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		return nil, err
	}
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{Sealer: sealer})
	if err != nil {
		return nil, err
	}
	fillStart := time.Now()
	if err := fillSealedLog(ctx, s, l, sealer, n); err != nil {
		return nil, err
	}
	headFile := filepath.Join(dir, verify.HeadFile)
	if err := checkpointOnce(ctx, l, headFile, events.Seq(n)); err != nil {
		return nil, err
	}
	fillTook := time.Since(fillStart)
	last, err := l.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	total := int(last)

	rawStart := time.Now()
	if err := follow(ctx, l, total, false); err != nil {
		return nil, err
	}
	rawTook := time.Since(rawStart)
	head, err := verify.ReadHead(headFile)
	if err != nil {
		return nil, err
	}
	vStart := time.Now()
	rep, err := verify.Log(ctx, l, sealer, head)
	if err != nil {
		return nil, err
	}
	vTook := time.Since(vStart)
	if !rep.Verified || rep.Messages != uint64(total) || rep.Checkpoints < 1 {
		return nil, fmt.Errorf("verify of the fixture: %s", rep.Summary)
	}
	rawRate, vRate := float64(total)/rawTook.Seconds(), float64(total)/vTook.Seconds()
	note := fmt.Sprintf("log written in %s (sealed raw async publishes, checkpoints written once it was stored)", fillTook.Round(time.Millisecond))
	return []Row{{
		What:     fmt.Sprintf("engram verify: walk the log, check every seal, expectation and checkpoint, %s messages: rate (time)", thousands(int64(total))),
		Engram:   fmt.Sprintf("%s (%s)", rate(vRate, "events/s"), dur(vTook)),
		Baseline: fmt.Sprintf("raw ordered-consumer read of the same log, no decoding: %s (%s)", rate(rawRate, "events/s"), dur(rawTook)),
		Ratio:    fmt.Sprintf("%.2f× the raw time", rawRate/vRate),
		Target:   "—",
		Note:     note,
		Metrics:  map[string]float64{"events": float64(total), "verify_per_s": vRate, "raw_per_s": rawRate, "verify_s": vTook.Seconds()},
	}}, nil
}

// fillSealedLog appends about n messages as fillLog does, each sealed with
// the headers Append sets: the command, and an expectation on the agent's
// previous sequence (none for its creation), which the asynchronous
// publishes on one connection can compute because the stream is theirs
// alone and stores them in order.
func fillSealedLog(ctx context.Context, s *bus.Server, l *bus.Log, sealer *bus.Sealer, n int) error {
	now := time.Now().UTC()
	js := s.JetStream()
	lastOf := map[events.AgentID]events.Seq{}
	seq := events.Seq(0)
	pub := func(a events.AgentID, ev events.Event) error {
		agg := events.Aggregate{Kind: events.KindAgent, ID: string(a)}
		cmd := events.NewID("cmd", now)
		data, err := events.Encode(events.Envelope{Aggregate: agg, Command: cmd, Time: now, Event: ev})
		if err != nil {
			return err
		}
		m := nats.NewMsg(bus.Subject(l.Tenant(), agg, ev.EventType()))
		m.Data = data
		m.Header.Set("Engram-Command", cmd)
		m.Header.Set("Nats-Msg-Id", cmd)
		m.Header.Set("Nats-Expected-Last-Subject-Sequence", fmt.Sprint(lastOf[a]))
		m.Header.Set("Nats-Expected-Last-Subject-Sequence-Subject", bus.AggregateFilter(l.Tenant(), agg))
		sealer.Seal(m)
		seq++
		lastOf[a] = seq
		return unstalled(ctx, js, func() error { _, err := js.PublishMsgAsync(m); return err })
	}
	ids := make([]events.AgentID, min(1000, max(1, n/20)))
	for i := range ids {
		ids[i] = events.AgentID(events.NewID(events.PrefixAgent, now))
		if err := pub(ids[i], &events.AgentCreated{ID: ids[i], Name: fmt.Sprint("agent ", i), System: "You are a test agent."}); err != nil {
			return err
		}
	}
	for i := len(ids); i < n; i++ {
		if err := pub(ids[i%len(ids)], &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "hello there, how are you today?"}); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if last, err := l.LastSeq(ctx); err != nil || int(last) != n {
		return fmt.Errorf("log holds %d messages after writing %d (%v): an expectation failed?", last, n, err)
	}
	return nil
}

// checkpointOnce runs a checkpointer until it has checkpointed through.
func checkpointOnce(ctx context.Context, l *bus.Log, headFile string, through events.Seq) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c := verify.NewCheckpointer(l, verify.CheckpointConfig{Every: -1, Interval: 50 * time.Millisecond, HeadFile: headFile})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for {
		if h, err := verify.ReadHead(headFile); err != nil {
			return err
		} else if h != nil && h.Through >= through {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("checkpointer stopped: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("no checkpoint through %d: %w", through, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

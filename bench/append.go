package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// runAppend measures one engram append (encode, expected-version check,
// idempotency id, publish, ack) against a raw JetStream publish of the same
// bytes to the same stream, with fsync before ack and relaxed. The two
// alternate in rounds so that a noisy neighbour hits both alike.
func runAppend(ctx context.Context, env *Env) ([]Row, error) {
	n := 2000
	if env.Quick {
		n = 100
	}
	var rows []Row
	for _, sync := range []bool{true, false} {
		name := "fsync before ack (default)"
		if !sync {
			name = "relaxed (--sync relaxed)"
		}
		dir, err := env.Dir()
		if err != nil {
			return rows, err
		}
		cfg := bus.DefaultConfig(dir)
		cfg.SyncAlways = sync
		s, err := bus.StartServer(ctx, cfg)
		if err != nil {
			return rows, err
		}
		eng, unsealed, raw, err := appendRounds(ctx, s, n, 1)
		s.Close()
		if err != nil {
			return rows, err
		}
		ratioV := float64(eng.mean()) / float64(raw.mean())
		rows = append(rows, Row{
			What:     "append one ~260-byte event, " + name + ": mean (p50 / p99)",
			Engram:   fmt.Sprintf("%s (%s / %s)", dur(eng.mean()), dur(eng.pct(.5)), dur(eng.pct(.99))),
			Baseline: fmt.Sprintf("raw JetStream publish of the same bytes: %s (%s / %s)", dur(raw.mean()), dur(raw.pct(.5)), dur(raw.pct(.99))),
			Ratio:    fmt.Sprintf("%.2f×", ratioV),
			Target:   verdict("≤ 2×", ratioV <= 2),
			Note:     fmt.Sprintf("%d appends each, alternating in rounds of 50; sealed, as the server appends", n),
			Metrics: map[string]float64{"engram_mean_us": us(eng.mean()), "engram_p50_us": us(eng.pct(.5)), "engram_p99_us": us(eng.pct(.99)),
				"raw_mean_us": us(raw.mean()), "raw_p50_us": us(raw.pct(.5)), "raw_p99_us": us(raw.pct(.99)), "ratio": ratioV},
		})
		sealRatio := float64(eng.pct(.5)) / float64(unsealed.pct(.5))
		rows = append(rows, Row{
			What:     "sealing's cost: append one ~260-byte event with its seal (HMAC-SHA256), " + name + ": p50 (mean / p99)",
			Engram:   fmt.Sprintf("%s (%s / %s)", dur(eng.pct(.5)), dur(eng.mean()), dur(eng.pct(.99))),
			Baseline: fmt.Sprintf("the same append unsealed: %s (%s / %s)", dur(unsealed.pct(.5)), dur(unsealed.mean()), dur(unsealed.pct(.99))),
			Ratio:    fmt.Sprintf("p50 %.2f×", sealRatio),
			Target:   "—",
			Note:     fmt.Sprintf("%d appends each, alternating in rounds of 50", n),
			Metrics: map[string]float64{"sealed_p50_us": us(eng.pct(.5)), "unsealed_p50_us": us(unsealed.pct(.5)),
				"sealed_mean_us": us(eng.mean()), "unsealed_mean_us": us(unsealed.mean()), "ratio_p50": sealRatio},
		})
	}
	return rows, nil
}

// appendRounds alternates n sealed appends, n unsealed ones and n raw
// publishes of the same bytes, on a log of the given replicas.
func appendRounds(ctx context.Context, s *bus.Server, n, replicas int) (eng, unsealed, raw latencies, err error) {
	key := make([]byte, bus.SealKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, nil, err
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		return nil, nil, nil, err
	}
	sealed, err := bus.OpenLog(ctx, s, bus.LogConfig{Sealer: sealer, Replicas: replicas})
	if err != nil {
		return nil, nil, nil, err
	}
	plain, err := bus.OpenLog(ctx, s, bus.LogConfig{Replicas: replicas})
	if err != nil {
		return nil, nil, nil, err
	}
	v := strings.Repeat("The user likes green tea. ", 8)
	ev := &events.BlockUpdated{Value: &v}
	rawAgg := events.Aggregate{Kind: events.KindBlock, ID: "block-raw"}
	data, err := events.Encode(events.Envelope{Aggregate: rawAgg, Command: "cmd-raw", Time: time.Now().UTC(), Event: ev})
	if err != nil {
		return nil, nil, nil, err
	}
	subj := bus.Subject(sealed.Tenant(), rawAgg, events.TypeBlockUpdated)
	js := s.JetStream()
	// appends runs one round of appends to l on its own aggregate.
	type series struct {
		l       *bus.Log
		agg     events.Aggregate
		version events.Seq
		lat     *latencies
	}
	appends := func(x *series, from, to int) error {
		for i := from; i < to; i++ {
			start := time.Now()
			seq, err := x.l.Append(ctx, events.Batch{
				Command: fmt.Sprint("cmd-", x.agg.ID, "-", i),
				Expect:  []events.Expectation{{Aggregate: x.agg, Version: x.version}},
				Events:  []events.Envelope{{Aggregate: x.agg, Time: time.Now().UTC(), Event: ev}},
			})
			if err != nil {
				return err
			}
			*x.lat = append(*x.lat, time.Since(start))
			x.version = seq
		}
		return nil
	}
	sx := &series{l: sealed, agg: events.Aggregate{Kind: events.KindBlock, ID: "block-bench"}, lat: &eng}
	px := &series{l: plain, agg: events.Aggregate{Kind: events.KindBlock, ID: "block-unsealed"}, lat: &unsealed}
	const round = 50
	for done := 0; done < n; done += round {
		end := min(done+round, n)
		if err := appends(sx, done, end); err != nil {
			return nil, nil, nil, err
		}
		if err := appends(px, done, end); err != nil {
			return nil, nil, nil, err
		}
		for i := done; i < end; i++ {
			start := time.Now()
			if _, err := js.Publish(ctx, subj, data); err != nil {
				return nil, nil, nil, err
			}
			raw = append(raw, time.Since(start))
		}
	}
	return eng, unsealed, raw, nil
}

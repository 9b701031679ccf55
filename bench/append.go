package bench

import (
	"context"
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
		eng, raw, err := appendRounds(ctx, s, n)
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
			Note:     fmt.Sprintf("%d appends each, alternating in rounds of 50", n),
			Metrics: map[string]float64{"engram_mean_us": us(eng.mean()), "engram_p50_us": us(eng.pct(.5)), "engram_p99_us": us(eng.pct(.99)),
				"raw_mean_us": us(raw.mean()), "raw_p50_us": us(raw.pct(.5)), "raw_p99_us": us(raw.pct(.99)), "ratio": ratioV},
		})
	}
	return rows, nil
}

func appendRounds(ctx context.Context, s *bus.Server, n int) (eng, raw latencies, err error) {
	l, err := bus.OpenLog(ctx, s, bus.LogConfig{})
	if err != nil {
		return nil, nil, err
	}
	v := strings.Repeat("The user likes green tea. ", 8)
	ev := &events.BlockUpdated{Value: &v}
	agg := events.Aggregate{Kind: events.KindBlock, ID: "block-bench"}
	rawAgg := events.Aggregate{Kind: events.KindBlock, ID: "block-raw"}
	data, err := events.Encode(events.Envelope{Aggregate: rawAgg, Command: "cmd-raw", Time: time.Now().UTC(), Event: ev})
	if err != nil {
		return nil, nil, err
	}
	subj := bus.Subject(l.Tenant(), rawAgg, events.TypeBlockUpdated)
	js := s.JetStream()
	var version events.Seq
	const round = 50
	for done := 0; done < n; done += round {
		for i := done; i < min(done+round, n); i++ {
			start := time.Now()
			seq, err := l.Append(ctx, events.Batch{
				Command: fmt.Sprint("cmd-bench-", i),
				Expect:  []events.Expectation{{Aggregate: agg, Version: version}},
				Events:  []events.Envelope{{Aggregate: agg, Time: time.Now().UTC(), Event: ev}},
			})
			if err != nil {
				return nil, nil, err
			}
			eng = append(eng, time.Since(start))
			version = seq
		}
		for i := done; i < min(done+round, n); i++ {
			start := time.Now()
			if _, err := js.Publish(ctx, subj, data); err != nil {
				return nil, nil, err
			}
			raw = append(raw, time.Since(start))
		}
	}
	return eng, raw, nil
}

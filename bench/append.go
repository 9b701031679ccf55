package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// runAppend measures one engram append (encode, expected-version check,
// idempotency id, publish, ack) against a raw JetStream publish of the same
// bytes, with fsync before ack and relaxed; and, with fsync, appends from
// concurrent writers with group commit against nats-server's own fsync of
// each write (groupRows). The two
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
		// With fsync, engram's appends are group commits (bus/durable.go)
		// and nats-server itself does not fsync; the raw publishes go to a
		// second server that fsyncs each one, as JetStream does on its own.
		rawSrv := s
		if sync {
			rcfg := bus.DefaultConfig(filepath.Join(dir, "raw"))
			rcfg.SyncInServer = true
			if rawSrv, err = bus.StartServer(ctx, rcfg); err != nil {
				s.Close()
				return rows, err
			}
		}
		eng, unsealed, raw, err := appendRounds(ctx, s, rawSrv, n)
		var group []Row
		if err == nil && sync {
			group, err = groupRows(ctx, s, rawSrv, env)
		}
		if rawSrv != s {
			rawSrv.Close()
		}
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
		rows = append(rows, group...)
	}
	return rows, nil
}

func appendRounds(ctx context.Context, s, rawSrv *bus.Server, n int) (eng, unsealed, raw latencies, err error) {
	key := make([]byte, bus.SealKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, nil, err
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		return nil, nil, nil, err
	}
	sealed, err := bus.OpenLog(ctx, s, bus.LogConfig{Sealer: sealer})
	if err != nil {
		return nil, nil, nil, err
	}
	plain, err := bus.OpenLog(ctx, s, bus.LogConfig{})
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
	if _, err := bus.OpenLog(ctx, rawSrv, bus.LogConfig{}); err != nil { // makes its stream
		return nil, nil, nil, err
	}
	js := rawSrv.JetStream()
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

// groupRows measures appends from 1 and 16 concurrent writers, each on
// its own aggregate, with group commit (s) and with nats-server fsyncing
// each write (inServer), alternating in rounds.
func groupRows(ctx context.Context, s, inServer *bus.Server, env *Env) ([]Row, error) {
	span := time.Second
	if env.Quick {
		span = 100 * time.Millisecond
	}
	group, err := bus.OpenLog(ctx, s, bus.LogConfig{})
	if err != nil {
		return nil, err
	}
	each, err := bus.OpenLog(ctx, inServer, bus.LogConfig{})
	if err != nil {
		return nil, err
	}
	v := strings.Repeat("The user likes green tea. ", 8)
	ev := &events.BlockUpdated{Value: &v}
	// run has writers append for span, each to its own aggregate, and
	// returns how many appends were made.
	versions := map[string]events.Seq{}
	var mu sync.Mutex
	run := func(l *bus.Log, name string, writers int) (int, error) {
		var (
			wg    sync.WaitGroup
			count atomic.Int64
			first error
		)
		deadline := time.Now().Add(span)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				agg := events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprintf("block-%s-%d", name, w)}
				mu.Lock()
				version := versions[agg.ID]
				mu.Unlock()
				for i := 0; time.Now().Before(deadline); i++ {
					seq, err := l.Append(ctx, events.Batch{
						Command: fmt.Sprintf("cmd-%s-%d-%d", agg.ID, version, i),
						Expect:  []events.Expectation{{Aggregate: agg, Version: version}},
						Events:  []events.Envelope{{Aggregate: agg, Time: time.Now().UTC(), Event: ev}},
					})
					if err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
						break
					}
					version = seq
					count.Add(1)
				}
				mu.Lock()
				versions[agg.ID] = version
				mu.Unlock()
			}()
		}
		wg.Wait()
		return int(count.Load()), first
	}
	const rounds = 3
	var rows []Row
	rates := map[string]float64{}
	for _, writers := range []int{1, 16} {
		var g, e int
		for r := 0; r < rounds; r++ {
			n, err := run(group, "group", writers)
			if err != nil {
				return rows, err
			}
			g += n
			if n, err = run(each, "each", writers); err != nil {
				return rows, err
			}
			e += n
		}
		secs := (rounds * span).Seconds()
		gr, er := float64(g)/secs, float64(e)/secs
		rates[fmt.Sprint("group", writers)], rates[fmt.Sprint("each", writers)] = gr, er
		what := fmt.Sprintf("appends per second, %d writer(s) at once on their own aggregates, fsync before ack: group commit", writers)
		note := fmt.Sprintf("%d rounds of %s each, alternating", rounds, span)
		row := Row{
			What:     what,
			Engram:   rate(gr, "appends/s"),
			Baseline: fmt.Sprintf("nats-server fsyncing each write (bus.Config.SyncInServer, engram before group commit): %s", rate(er, "appends/s")),
			Ratio:    fmt.Sprintf("%.2f×", gr/er),
			Target:   "—",
			Note:     note,
			Metrics:  map[string]float64{"group_per_s": gr, "each_per_s": er, "writers": float64(writers)},
		}
		if writers > 1 {
			scale := gr / rates["group1"]
			row.Target = verdict("≥ 3× one writer's rate", scale >= 3)
			row.Note += fmt.Sprintf("; %.2f× one writer's group-commit rate (nats-server's own fsync: %.2f×)", scale, er/rates["each1"])
			row.Metrics["scale"] = scale
		}
		rows = append(rows, row)
	}
	return rows, nil
}

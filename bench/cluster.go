package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/freeport"
)

// runCluster measures appends on a three-member cluster on loopback, in
// this process (three embedded NATS servers routed to each other, the log
// replicated three times, fsync relaxed as a cluster usually runs): an
// engram append beside a raw R3 JetStream publish of the same bytes, and
// beside an engram append on one server alone (R1, relaxed too); then the
// time from shutting the event stream leader's server down to the first
// append acknowledged after it, over a few shutdowns. Then, when the bench
// can start server processes (Options.Server), REST writes and SIGKILL
// failover over three of them (runClusterProcs). Three servers on one
// machine share its CPU and disk: on three machines the network adds to
// the latency and takes the contention away.
func runCluster(ctx context.Context, env *Env) ([]Row, error) {
	n, kills := 1000, 3
	if env.Quick {
		n, kills = 100, 1
	}
	cfgs, err := clusterConfigs(env, 3)
	if err != nil {
		return nil, err
	}
	servers := make([]*bus.Server, len(cfgs))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	start := func(i int) error {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		s, err := bus.StartServer(sctx, cfgs[i])
		servers[i] = s
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for i := range cfgs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = start(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	eng, _, raw, err := appendRounds(ctx, servers[0], servers[0], n, 3)
	if err != nil {
		return nil, fmt.Errorf("R3 appends: %w", err)
	}
	// One server alone, relaxed as well.
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	cfg := bus.DefaultConfig(dir)
	cfg.SyncAlways = false
	alone, err := bus.StartServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r1, _, _, err := appendRounds(ctx, alone, alone, n, 1)
	alone.Close()
	if err != nil {
		return nil, fmt.Errorf("R1 appends: %w", err)
	}
	rawRatio := float64(eng.pct(.5)) / float64(raw.pct(.5))
	r1Ratio := float64(eng.pct(.5)) / float64(r1.pct(.5))
	rows := []Row{{
		What:     "append one ~260-byte event on a 3-node R3 cluster (one machine, relaxed fsync): p50 (p99)",
		Engram:   fmt.Sprintf("%s (%s)", dur(eng.pct(.5)), dur(eng.pct(.99))),
		Baseline: fmt.Sprintf("raw R3 JetStream publish of the same bytes: %s (%s)", dur(raw.pct(.5)), dur(raw.pct(.99))),
		Ratio:    fmt.Sprintf("p50 %.2f×", rawRatio),
		Target:   verdict("≤ 2×", rawRatio <= 2),
		Note:     fmt.Sprintf("%d appends each, alternating in rounds of 50, sealed", n),
		Metrics: map[string]float64{"r3_p50_us": us(eng.pct(.5)), "r3_p99_us": us(eng.pct(.99)),
			"raw_r3_p50_us": us(raw.pct(.5)), "raw_r3_p99_us": us(raw.pct(.99)), "ratio_p50": rawRatio},
	}, {
		What:     "the same append, R3 on three nodes vs R1 on one: p50 (p99)",
		Engram:   fmt.Sprintf("R3: %s (%s)", dur(eng.pct(.5)), dur(eng.pct(.99))),
		Baseline: fmt.Sprintf("R1, one server alone: %s (%s)", dur(r1.pct(.5)), dur(r1.pct(.99))),
		Ratio:    fmt.Sprintf("p50 %.2f×", r1Ratio),
		Target:   "—",
		Note:     "what replication costs a write here",
		Metrics:  map[string]float64{"r1_p50_us": us(r1.pct(.5)), "r1_p99_us": us(r1.pct(.99)), "ratio_p50": r1Ratio},
	}}

	// Failover: shut the stream leader's server down, append through
	// another until one is acknowledged, start the server again.
	var took latencies
	for k := 0; k < kills; k++ {
		leader := -1
		for deadline := time.Now().Add(30 * time.Second); leader < 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for i, s := range servers {
				if _, stream := s.Leader(); stream {
					leader = i
				}
			}
		}
		if leader < 0 {
			return rows, errors.New("failover: no server leads the event stream")
		}
		other := (leader + 1) % len(servers)
		l, err := bus.OpenLog(ctx, servers[other], bus.LogConfig{Replicas: 3})
		if err != nil {
			return rows, err
		}
		agg := events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprintf("block-failover-%d", k)}
		v := "after the leader went"
		began := time.Now()
		servers[leader].Close()
		servers[leader] = nil
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err = l.Append(actx, events.Batch{Command: fmt.Sprintf("cmd-failover-%d", k),
			Events: []events.Envelope{{Aggregate: agg, Time: time.Now().UTC(), Event: &events.BlockUpdated{Value: &v}}}})
		cancel()
		if err != nil {
			return rows, fmt.Errorf("failover %d: %w", k+1, err)
		}
		took = append(took, time.Since(began))
		if err := start(leader); err != nil {
			return rows, fmt.Errorf("failover %d: restart: %w", k+1, err)
		}
	}
	rows = append(rows, Row{
		What:     fmt.Sprintf("failover: the stream leader's server shut down → the next append acknowledged, over %d shutdowns: p50 (max)", kills),
		Engram:   fmt.Sprintf("%s (%s)", dur(took.pct(.5)), dur(took.pct(1))),
		Baseline: "—",
		Ratio:    "—",
		Target:   "—",
		Note:     "in process: the server shuts down (its leaderships step down first), it is not killed; a SIGKILLed leader takes an election (6–10 s in the cluster tests)",
		Metrics:  map[string]float64{"failover_p50_s": took.pct(.5).Seconds(), "failover_max_s": took.pct(1).Seconds()},
	})
	for _, s := range servers {
		if s != nil {
			s.Close()
		}
	}
	servers = nil
	more, err := runClusterProcs(ctx, env)
	return append(rows, more...), err
}

// clusterConfigs configures n members on loopback route ports, each
// listing all.
func clusterConfigs(env *Env, n int) ([]bus.Config, error) {
	ports, err := freeport.Take(n)
	if err != nil {
		return nil, err
	}
	var peers []string
	for _, p := range ports {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	cfgs := make([]bus.Config, n)
	for i := range cfgs {
		dir, err := env.Dir()
		if err != nil {
			return nil, err
		}
		cfgs[i] = bus.DefaultConfig(dir)
		cfgs[i].Name = fmt.Sprintf("n%d", i+1)
		cfgs[i].SyncAlways = false
		cfgs[i].Cluster = &bus.Cluster{Name: "bench", Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]), Peers: peers}
	}
	return cfgs, nil
}

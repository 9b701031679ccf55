package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
)

// runMemory creates many idle agents (each with two core-memory blocks, as
// an agent usually has) and reports the growth of the Go heap in use after
// a full collection, per agent. The node runs the embedded NATS server in
// the same process, so the figure includes JetStream's per-subject index of
// the agents' events, not only engram's projections.
func runMemory(ctx context.Context, env *Env) ([]Row, error) {
	n := env.IdleAgents
	if n == 0 {
		n = 10_000
		if env.Quick {
			n = 500
		}
	}
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	nd, err := startQuietNode(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() { nd.Close(context.Background()) }()
	before := heapInuse()
	start := time.Now()
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit := 2000
			for i := w; i < n; i += workers {
				name := fmt.Sprint("idle-", i)
				_, err := nd.Service.CreateAgent(ctx, api.CreateAgent{
					Name: &name,
					MemoryBlocks: []api.CreateBlock{
						{Label: "persona", Value: "I am Sam, a helpful assistant.", Limit: &limit},
						{Label: "human", Value: "Name: Ada. Likes green tea.", Limit: &limit},
					},
				})
				if err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	took := time.Since(start)
	after := heapInuse()
	per := float64(int64(after)-int64(before)) / float64(n)
	rows := []Row{{
		What:     fmt.Sprintf("memory per idle agent, %s agents with two blocks each: Go heap in use after GC, growth ÷ agents", thousands(int64(n))),
		Engram:   fmt.Sprintf("%.1f KB", per/1024),
		Baseline: "—", Ratio: "—",
		Target:  verdict("< 20 KB", per < 20*1024),
		Note:    fmt.Sprintf("includes the in-process NATS server's per-subject state; agents created in %s", took.Round(time.Millisecond)),
		Metrics: map[string]float64{"agents": float64(n), "per_agent_bytes": per, "heap_before_bytes": float64(before), "heap_after_bytes": float64(after)},
	}}
	// Restart over the same log: no snapshot (the quiet node takes none),
	// so the projections are rebuilt from every agent's events.
	events := nd.Projection.Applied()
	if err := nd.Close(ctx); err != nil {
		return rows, err
	}
	began := time.Now()
	if nd, err = startQuietNode(ctx, dir); err != nil {
		return rows, err
	}
	ready := time.Since(began)
	if got := len(nd.Service.Untaken()); got != 0 {
		return rows, fmt.Errorf("after restart %d agents have untaken inputs; want none", got)
	}
	rows = append(rows, Row{
		What:     fmt.Sprintf("restart with %s idle agents (%s log messages), no snapshot: time to ready", thousands(int64(n)), thousands(int64(events))),
		Engram:   dur(ready),
		Baseline: "—", Ratio: "—", Target: "—",
		Note:    "the whole log replayed into the projections; the search index is on disk and is not rebuilt",
		Metrics: map[string]float64{"agents": float64(n), "events": float64(events), "ready_s": ready.Seconds()},
	})
	return rows, nil
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/engram-dev/engram/api"
)

// MemoryChildFlag is the hidden flag of the command in Options.Self that
// runs the memory workload at one size in that process and writes its rows
// to stdout as JSON (RunMemoryChild): `engram bench --memory-child N`.
const MemoryChildFlag = "memory-child"

// memorySizes is how many idle agents each of the memory workload's
// measurements creates.
func memorySizes(env *Env) []int {
	switch {
	case len(env.MemoryAgents) > 0:
		return env.MemoryAgents
	case env.Quick:
		return []int{500, 2000}
	}
	return []int{10_000, 100_000}
}

// runMemory measures the heap an idle agent costs and the restart over
// their log, once per size of Options.MemoryAgents. With Options.Self each
// size runs in a fresh process of its own (MemoryChildFlag), so the heap it
// measures holds nothing an earlier workload or size left in this one;
// without it (go test) each runs here, after whatever ran before it.
func runMemory(ctx context.Context, env *Env) ([]Row, error) {
	var rows []Row
	for _, n := range memorySizes(env) {
		var r []Row
		var err error
		if len(env.Self) > 0 {
			if env.Progress != nil {
				fmt.Fprintf(env.Progress, "bench: memory: %s idle agents, in a fresh process\n", thousands(int64(n)))
			}
			r, err = memoryInChild(ctx, env, n)
		} else {
			r, err = memoryAt(ctx, env, n)
		}
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// memoryInChild runs one size of the memory workload in a child process,
// Options.Self with MemoryChildFlag, and returns the rows it writes.
func memoryInChild(ctx context.Context, env *Env, n int) ([]Row, error) {
	args := append(env.Self[1:len(env.Self):len(env.Self)], "--"+MemoryChildFlag, strconv.Itoa(n))
	if env.TempDir != "" {
		args = append(args, "--tmp", env.TempDir)
	}
	if env.Quick {
		args = append(args, "--quick")
	}
	cmd := exec.CommandContext(ctx, env.Self[0], args...)
	// Cancelled, the child is asked to stop, so that it removes its data
	// directory, and killed if it has not within the delay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var res memoryChildResult
	// The first JSON value is the child's answer (a test binary standing in
	// for engram prints its verdict after it).
	if err := json.NewDecoder(&out).Decode(&res); err != nil {
		return nil, fmt.Errorf("memory workload in a child process (%s agents): %v; %v; stderr: %s", thousands(int64(n)), runErr, err, lastLines(errOut.String(), 5))
	}
	for i := range res.Rows {
		res.Rows[i].Note += "; measured in a fresh process"
		if res.Rows[i].Metrics != nil {
			res.Rows[i].Metrics["fresh_process"] = 1
		}
	}
	if res.Error != "" {
		return res.Rows, fmt.Errorf("memory workload in a child process (%s agents): %s", thousands(int64(n)), res.Error)
	}
	if runErr != nil {
		return res.Rows, fmt.Errorf("memory workload in a child process (%s agents): %v; stderr: %s", thousands(int64(n)), runErr, lastLines(errOut.String(), 5))
	}
	return res.Rows, nil
}

// memoryChildResult is what a child writes: its rows, and its error.
type memoryChildResult struct {
	Rows  []Row  `json:"rows"`
	Error string `json:"error,omitempty"`
}

// RunMemoryChild runs the memory workload at n agents in this process and
// writes its rows, with the error if it failed, as one JSON object to w:
// what the child process of MemoryChildFlag does. opts gives Quick and
// TempDir; its Self is ignored.
func RunMemoryChild(ctx context.Context, opts Options, n int, w io.Writer) error {
	if n <= 0 {
		return fmt.Errorf("--%s: %d agents; want a positive number", MemoryChildFlag, n)
	}
	env := &Env{Options: opts}
	rows, err := memoryAt(ctx, env, n)
	env.cleanup()
	for i := range rows {
		rows[i].Workload = "memory"
	}
	res := memoryChildResult{Rows: rows}
	if err != nil {
		res.Error = err.Error()
	}
	if jerr := json.NewEncoder(w).Encode(res); jerr != nil {
		return jerr
	}
	return err
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" / ")))
}

// memoryAt creates n idle agents (each with two core-memory blocks, as an
// agent usually has) in a fresh node and reports the growth of the Go heap
// in use after a full collection, per agent; then restarts the node over
// their log and reports the time to ready. The node runs the embedded NATS
// server in the same process, so the figure includes JetStream's
// per-subject index of the agents' events, not only engram's projections.
func memoryAt(ctx context.Context, env *Env, n int) ([]Row, error) {
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	nd, err := startQuietNode(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() { nd.Close(context.Background()) }()
	before := heapAfterGC()
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
	after := heapAfterGC()
	per := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(n)
	live := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	rows := []Row{{
		What:     fmt.Sprintf("memory per idle agent, %s agents with two blocks each: Go heap in use after GC, growth ÷ agents", thousands(int64(n))),
		Engram:   fmt.Sprintf("%.1f KB", per/1024),
		Baseline: "—", Ratio: "—",
		Target: verdict("< 20 KB", per < 20*1024),
		Note: fmt.Sprintf("includes the in-process NATS server's per-subject state; live objects alone (heap allocated after GC) %.1f KB; agents created in %s",
			live/1024, took.Round(time.Millisecond)),
		Metrics: map[string]float64{"agents": float64(n), "per_agent_bytes": per, "per_agent_live_bytes": live,
			"heap_before_bytes": float64(before.HeapInuse), "heap_after_bytes": float64(after.HeapInuse)},
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

// heapAfterGC reads the heap's statistics after a full collection. The
// workload's figure is HeapInuse, the spans that hold any live object: what
// the process keeps. It also depends on how often the collector ran while
// the agents were made (GOGC, and the live heap it is paced by: with
// GOGC=800 the same agents measured 20.1 KB where GOGC=100 gave 13.0 KB,
// their live bytes unchanged), so HeapAlloc, the live objects alone, is
// reported beside it.
func heapAfterGC() runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

package bench

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/server"
)

// BenchmarkInsertVsUpdate drives one client against a server on its
// defaults (fsync before ack), as the rest workload's one-client rows do,
// but alternates REST block updates and archival inserts in rounds of 500
// on the same agent, so that whatever else runs on the machine weighs on
// both alike; a round is long enough that the background work an insert
// leaves (the search index's writes and merges) falls mostly in its own
// round. b.N is the number of requests of each kind. It reports each one's
// mean, p50 and p99 and the ratio of their means (the insert's time over the
// update's: the inverse of their throughputs' ratio):
//
//	go test ./bench -run '^$' -bench InsertVsUpdate -benchtime 2000x
func BenchmarkInsertVsUpdate(b *testing.B) {
	cfg := server.DefaultConfig(b.TempDir())
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	srv, err := server.Start(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(b.Context()) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	var a api.AgentState
	if err := do(client, "POST", srv.URL+"/v1/agents", `{"name":"ab","memory_blocks":[{"label":"human","value":"Name: Ada","limit":5000}]}`, &a); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("The user likes green tea. ", 8)
	update := func(i int) error {
		return do(client, "PATCH", srv.URL+"/v1/agents/"+a.ID+"/core-memory/blocks/human", fmt.Sprintf(`{"value":%q}`, fmt.Sprint(value, i)), nil)
	}
	insert := func(i int) error {
		return do(client, "POST", srv.URL+"/v1/agents/"+a.ID+"/archival-memory", fmt.Sprintf(`{"text":%q}`, fmt.Sprint(value, i)), nil)
	}
	// Warm up both paths (connections, the index's first segments).
	for i := range 50 {
		if err := update(-i - 1); err != nil {
			b.Fatal(err)
		}
		if err := insert(-i - 1); err != nil {
			b.Fatal(err)
		}
	}
	const round = 500
	var upd, ins latencies
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		for _, op := range []struct {
			do  func(int) error
			lat *latencies
		}{{update, &upd}, {insert, &ins}} {
			for j := i; j < min(i+round, b.N); j++ {
				t := time.Now()
				if err := op.do(j); err != nil {
					b.Fatal(err)
				}
				*op.lat = append(*op.lat, time.Since(t))
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(us(upd.mean()), "update-µs-mean")
	b.ReportMetric(us(upd.pct(.5)), "update-µs-p50")
	b.ReportMetric(us(upd.pct(.99)), "update-µs-p99")
	b.ReportMetric(us(ins.mean()), "insert-µs-mean")
	b.ReportMetric(us(ins.pct(.5)), "insert-µs-p50")
	b.ReportMetric(us(ins.pct(.99)), "insert-µs-p99")
	b.ReportMetric(float64(ins.mean())/float64(upd.mean()), "insert/update-mean")
}

var restProfile = flag.String("rest-cpuprofile", "", "BenchmarkBlockUpdateClients: write a CPU profile of the timed requests to this file")

// BenchmarkBlockUpdateClients drives REST block updates against a server on
// its defaults (fsync before ack) from 1 and 16 concurrent clients, each on
// its own agent, as the rest workload's block-update rows do; b.N is the
// number of requests over all clients. It reports the rate (ops/s), the
// log's fsync rounds per request and the process's CPU time per request
// (server and client alike, user and system: what the machine's cores pay,
// which the rate on a shared machine hides); run it with -cpuprofile to see
// where that time goes. Its interleaved case alternates 1 and 16 clients
// in short slices and reports both rates and their ratio, which background
// load sways far less than two rates measured seconds apart:
//
//	go test ./bench -run '^$' -bench BlockUpdateClients/interleaved -benchtime 20x
//
// -rest-cpuprofile profiles the timed requests alone,
// not the server's start and the agents' creation (use one sub-benchmark):
//
//	go test ./bench -run '^$' -bench BlockUpdateClients/clients=16 -benchtime 20000x -rest-cpuprofile cpu.pprof
func BenchmarkBlockUpdateClients(b *testing.B) {
	cfg := server.DefaultConfig(b.TempDir())
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	var rounds atomic.Int64
	cfg.Node.BeforeSync = func() { rounds.Add(1) }
	srv, err := server.Start(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(b.Context()) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	const maxClients = 16
	ids := make([]string, maxClients)
	for i := range ids {
		var a api.AgentState
		if err := do(client, "POST", srv.URL+"/v1/agents", fmt.Sprintf(`{"name":"bu-%d","memory_blocks":[{"label":"human","value":"Name: Ada","limit":5000}]}`, i), &a); err != nil {
			b.Fatal(err)
		}
		ids[i] = a.ID
	}
	value := strings.Repeat("The user likes green tea. ", 8)
	update := func(g int, i int64) error {
		return do(client, "PATCH", srv.URL+"/v1/agents/"+ids[g]+"/core-memory/blocks/human", fmt.Sprintf(`{"value":%q}`, fmt.Sprint(value, i)), nil)
	}
	// interleaved alternates slices of 1 and 16 clients, 300 ms each, b.N
	// pairs, so that the two rates share whatever else the machine runs
	// (which the ratio of two rates taken seconds apart does not).
	b.Run("interleaved", func(b *testing.B) {
		var ops [2]int64
		var took [2]time.Duration
		for range b.N {
			for k, clients := range []int{1, maxClients} {
				var n atomic.Int64
				var wg sync.WaitGroup
				var failed atomic.Pointer[error]
				start := time.Now()
				deadline := start.Add(300 * time.Millisecond)
				for g := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := int64(0); time.Now().Before(deadline); i++ {
							if err := update(g, i); err != nil {
								failed.Store(&err)
								return
							}
							n.Add(1)
						}
					}()
				}
				wg.Wait()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
				ops[k] += n.Load()
				took[k] += time.Since(start)
			}
		}
		one, many := float64(ops[0])/took[0].Seconds(), float64(ops[1])/took[1].Seconds()
		b.ReportMetric(one, "ops/s-1")
		b.ReportMetric(many, "ops/s-16")
		b.ReportMetric(many/one, "ratio")
	})
	for _, clients := range []int{1, maxClients} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			if *restProfile != "" {
				f, err := os.Create(*restProfile)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err)
				}
			}
			r0, cpu0 := rounds.Load(), processCPU(b)
			start := time.Now()
			for g := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if err := update(g, i); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			took := time.Since(start)
			r1, cpu1 := rounds.Load(), processCPU(b)
			if *restProfile != "" {
				pprof.StopCPUProfile()
			}
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/took.Seconds(), "ops/s")
			b.ReportMetric(float64(r1-r0)/float64(b.N), "fsyncs/op")
			b.ReportMetric(us(cpu1-cpu0)/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time the process has used so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

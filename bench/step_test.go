package bench

import (
	"fmt"
	"testing"
)

// The step workload's rig under go test (see step.go for what one send
// is and how engram's own time is measured):
//
//	go test ./bench -run '^$' -bench 'Step' -benchtime 200x
//
// One iteration is one send. Agents are created before the timer starts.

// startStepBench starts a rig for b and closes it when b ends.
func startStepBench(b *testing.B, syncAlways, withMetrics bool) *stepRig {
	b.Helper()
	r, err := startStepRig(b.Context(), b.TempDir(), syncAlways, withMetrics)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.close)
	return r
}

// reportStep reports the p50 and p99 of engram's own time per step and the
// mean model time.
func reportStep(b *testing.B, eng, model latencies) {
	if len(eng) == 0 {
		return
	}
	b.ReportMetric(us(eng.pct(.5)), "engram-µs-p50")
	b.ReportMetric(us(eng.pct(.99)), "engram-µs-p99")
	b.ReportMetric(us(model.mean()), "model-µs/op")
}

// BenchmarkStep runs one agent at a time, one send per iteration, as the
// workload's first two rows do: a relaxed log (no fsync per event) and
// fsync on. relaxed+metrics also records every Prometheus series, as a
// server does; the workload has no such row, and this is where the cost of
// the series is measured (README, Metrics).
func BenchmarkStep(b *testing.B) {
	for _, mode := range []struct {
		name          string
		sync, metrics bool
	}{{"relaxed", false, false}, {"relaxed+metrics", false, true}, {"fsync", true, false}} {
		b.Run(mode.name, func(b *testing.B) {
			r := startStepBench(b, mode.sync, mode.metrics)
			ids, err := r.newAgents(b.Context(), agentsFor(b.N))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			eng, model, err := r.drive(b.Context(), ids, b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportStep(b, eng, model)
		})
	}
}

// BenchmarkStepsParallel keeps 1, 16 and 100 agents busy at once, as the
// workload's steps-per-second rows do, b.N sends spread over them. steps/s
// is the whole throughput, model round trips included: the scripted server
// runs in this process and competes for the same CPUs, so under load the
// engram-own times also include waiting for a CPU.
func BenchmarkStepsParallel(b *testing.B) {
	for _, k := range []int{1, 16, 100} {
		b.Run(fmt.Sprintf("agents=%d", k), func(b *testing.B) {
			r := startStepBench(b, false, false)
			ids, shares, err := r.busyAgents(b.Context(), k, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			eng, model, took, err := r.driveBusy(b.Context(), ids, shares)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/took.Seconds(), "steps/s")
			reportStep(b, eng, model)
		})
	}
}

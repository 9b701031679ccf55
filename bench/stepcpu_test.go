package bench

import (
	"fmt"
	"testing"

	"github.com/engram-dev/engram/service"
)

// BenchmarkStepRead measures the CPU of what a step reads before it calls
// the model, without the log's round trips: the run's model (ModelFor) and
// the step's context (StepContext) of an agent whose context holds about
// 50 messages, as the step workload's agents do on average. Nothing is
// appended in the timed loop, so the figure is engram's own work alone.
//
//	go test ./bench -run '^$' -bench 'StepRead' -benchtime 20000x
func BenchmarkStepRead(b *testing.B) {
	r := startStepBench(b, false, false)
	ids, err := r.newAgents(b.Context(), 1)
	if err != nil {
		b.Fatal(err)
	}
	for i := range sendsPerAgent / 2 {
		if _, err := r.n.Service.SendMessage(b.Context(), ids[0], []service.Input{{Role: "user", Text: fmt.Sprint("message ", i)}}, service.SendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	sc, err := r.n.Service.StepContext(b.Context(), ids[0], service.Scope{})
	if err != nil {
		b.Fatal(err)
	}
	if len(sc.State.Context) < sendsPerAgent {
		b.Fatalf("the context holds %d messages, want at least %d", len(sc.State.Context), sendsPerAgent)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := r.n.Service.ModelFor(ids[0], service.Scope{}); err != nil {
			b.Fatal(err)
		}
		if _, err := r.n.Service.StepContext(b.Context(), ids[0], service.Scope{}); err != nil {
			b.Fatal(err)
		}
	}
}

package runner

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// TestOneAgentInOrderAgentsInParallel: one agent's inputs are processed one
// at a time in the order dispatched, and acknowledged after; another agent
// runs meanwhile; an idle agent holds no goroutine.
func TestOneAgentInOrderAgentsInParallel(t *testing.T) {
	var (
		mu      sync.Mutex
		order   = map[string][]events.Seq{}
		running = map[string]int{}
		overlap bool
	)
	gate := make(chan struct{})
	r := New(ProcessorFunc(func(ctx context.Context, agentID string, seq events.Seq) error {
		mu.Lock()
		running[agentID]++
		if running[agentID] > 1 {
			overlap = true
		}
		order[agentID] = append(order[agentID], seq)
		mu.Unlock()
		if agentID == "a" && seq == 1 {
			<-gate // a is busy with its first input
		}
		mu.Lock()
		running[agentID]--
		mu.Unlock()
		return nil
	}), 0, nil)
	acks := make(chan events.Seq, 16)
	in := func(agent string, seq events.Seq) bus.Input {
		return bus.Input{AgentID: agent, Seq: seq, Ack: func() { acks <- seq }}
	}
	r.Dispatch(in("a", 1))
	r.Dispatch(in("a", 2))
	r.Dispatch(in("b", 3))
	r.Dispatch(in("a", 4))
	if got := <-acks; got != 3 {
		t.Fatalf("first ack %d; want b's input 3, answered while a is busy", got)
	}
	close(gate)
	for _, want := range []events.Seq{1, 2, 4} {
		if got := <-acks; got != want {
			t.Fatalf("ack %d; want %d", got, want)
		}
	}
	mu.Lock()
	if overlap || len(order["a"]) != 3 || order["a"][0] != 1 || order["a"][1] != 2 || order["a"][2] != 4 {
		t.Errorf("agent a ran %v (overlapping: %v)", order["a"], overlap)
	}
	mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); r.Busy() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d agents still busy after their inputs were answered", r.Busy())
		}
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseCancelsRunsAndLeavesInputsUnacknowledged: Close cancels a run
// going on, which then is not acknowledged (the log delivers it again), and
// inputs dispatched after Close are dropped.
func TestCloseCancelsRunsAndLeavesInputsUnacknowledged(t *testing.T) {
	started := make(chan struct{})
	r := New(ProcessorFunc(func(ctx context.Context, agentID string, seq events.Seq) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), 0, nil)
	acked := make(chan events.Seq, 4)
	r.Dispatch(bus.Input{AgentID: "a", Seq: 1, Ack: func() { acked <- 1 }})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.Dispatch(bus.Input{AgentID: "b", Seq: 2, Ack: func() { acked <- 2 }})
	select {
	case seq := <-acked:
		t.Fatalf("input %d acknowledged after Close", seq)
	case <-time.After(50 * time.Millisecond):
	}
	if r.Busy() != 0 {
		t.Errorf("%d agents busy after Close", r.Busy())
	}
}

// TestCloseIsBoundedByItsContext: a run that ignores cancellation does not
// hold Close past its context.
func TestCloseIsBoundedByItsContext(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	started := make(chan struct{})
	r := New(ProcessorFunc(func(context.Context, string, events.Seq) error {
		close(started)
		<-hold
		return nil
	}), 0, nil)
	r.Dispatch(bus.Input{AgentID: "a", Seq: 1})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v; want the context's deadline", err)
	}
}

// TestAtMostMaxRunsAtOnce: with five busy agents and room for two runs, no
// more than two run at once and every input is answered.
func TestAtMostMaxRunsAtOnce(t *testing.T) {
	var (
		mu        sync.Mutex
		now, peak int
	)
	r := New(ProcessorFunc(func(context.Context, string, events.Seq) error {
		mu.Lock()
		now++
		peak = max(peak, now)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		now--
		mu.Unlock()
		return nil
	}), 2, nil)
	acks := make(chan events.Seq, 8)
	for i := range 5 {
		seq := events.Seq(i + 1)
		r.Dispatch(bus.Input{AgentID: string(rune('a' + i)), Seq: seq, Ack: func() { acks <- seq }, Progress: func() {}})
	}
	for range 5 {
		select {
		case <-acks:
		case <-time.After(5 * time.Second):
			t.Fatal("not every input was answered")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != 2 {
		t.Errorf("%d runs at once at most; want 2", peak)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAnotherDeliveryOfTheRunningInput: an input dispatched as it was
// stored (no acknowledgement) and its consumer's delivery queued while it
// runs are one run: the delivery is acknowledged when the run ends, not run
// again; an input queued behind it is still run.
func TestAnotherDeliveryOfTheRunningInput(t *testing.T) {
	var mu sync.Mutex
	var ran []events.Seq
	gate := make(chan struct{})
	r := New(ProcessorFunc(func(ctx context.Context, agentID string, seq events.Seq) error {
		mu.Lock()
		ran = append(ran, seq)
		mu.Unlock()
		if seq == 1 {
			<-gate
		}
		return nil
	}), 0, nil)
	defer r.Close(context.Background())
	acks := make(chan events.Seq, 4)
	r.Dispatch(bus.Input{AgentID: "a", Seq: 1}) // as stored
	r.Dispatch(bus.Input{AgentID: "a", Seq: 1, Ack: func() { acks <- 1 }})
	r.Dispatch(bus.Input{AgentID: "a", Seq: 2, Ack: func() { acks <- 2 }})
	close(gate)
	for _, want := range []events.Seq{1, 2} {
		select {
		case got := <-acks:
			if got != want {
				t.Fatalf("ack %d; want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("input %d not acknowledged", want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 2 || ran[0] != 1 || ran[1] != 2 {
		t.Fatalf("processed %v; want [1 2]: the second delivery of 1 is answered by its run", ran)
	}
}

// TestQueuedInputsStayInProgress: while an agent's run goes on, the inputs
// queued behind it are reported in progress too, so the log does not
// deliver them again meanwhile (after bus.InputAckWait).
func TestQueuedInputsStayInProgress(t *testing.T) {
	gate := make(chan struct{})
	r := New(ProcessorFunc(func(ctx context.Context, agentID string, seq events.Seq) error {
		if seq == 1 {
			<-gate
		}
		return nil
	}), 0, nil)
	defer r.Close(context.Background())
	var running, queued atomic.Int32
	r.Dispatch(bus.Input{AgentID: "a", Seq: 1, Progress: func() { running.Add(1) }})
	r.Dispatch(bus.Input{AgentID: "a", Seq: 2, Progress: func() { queued.Add(1) }})
	deadline := time.Now().Add(bus.InputAckWait)
	for queued.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(gate)
	if queued.Load() == 0 || running.Load() == 0 {
		t.Fatalf("in progress %d times (running) and %d (queued) within the ack wait", running.Load(), queued.Load())
	}
}

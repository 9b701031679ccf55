// Package runner runs agents. The node that owns an agent's partition hands
// it the agent's inputs (client messages and run requests, as the log
// delivers them); the Runner answers each agent's inputs one at a time, in
// log order, with one goroutine per busy agent that ends when the agent is
// idle, and the Loop runs each send: it builds each step's context, calls the
// model, runs the tools (the sandbox, Go functions), summarizes when the
// context overflows, stores each step through the service's commands and
// reports each message to the callers waiting. Different agents run in
// parallel. No other path runs an agent: a send on any node only appends its
// input and waits for the run's reports.
package runner

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// Processor runs an agent on its inputs up to the one at seq (Loop.Process).
type Processor interface {
	Process(ctx context.Context, agentID string, seq events.Seq) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, agentID string, seq events.Seq) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, agentID string, seq events.Seq) error {
	return f(ctx, agentID, seq)
}

// DefaultMaxRuns is how many agents run at once unless configured: runs
// mostly wait on the model, so many fit, but not without bound.
const DefaultMaxRuns = 64

// Runner answers agents' inputs. Its zero value is not usable; call New.
type Runner struct {
	proc  Processor
	log   *slog.Logger
	slots chan struct{}  // one per run going on: at most cap(slots) at once
	stop  chan struct{}  // closed by Close: runs going on are cancelled
	wg    sync.WaitGroup // one per busy agent's goroutine

	mu      sync.Mutex             // guards busy and closing
	busy    map[string][]bus.Input // agents with a running goroutine, and their queued inputs
	closing bool
}

// New returns a runner that runs agents with proc, at most maxRuns at once
// (0 means DefaultMaxRuns); busy agents beyond that wait their turn.
func New(proc Processor, maxRuns int, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if maxRuns <= 0 {
		maxRuns = DefaultMaxRuns
	}
	return &Runner{proc: proc, log: logger, slots: make(chan struct{}, maxRuns), stop: make(chan struct{}), busy: map[string][]bus.Input{}}
}

// Dispatch queues an input for its agent's goroutine, starting one if the
// agent is idle. It does not block. Once the runner is closing, inputs are
// dropped unacknowledged: the log delivers them again to whoever runs next.
func (r *Runner) Dispatch(in bus.Input) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return
	}
	q, running := r.busy[in.AgentID]
	r.busy[in.AgentID] = append(q, in)
	if !running {
		r.wg.Add(1)
		go r.work(in.AgentID)
	}
}

// Busy is the number of agents with a run going or queued.
func (r *Runner) Busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.busy)
}

// work answers an agent's queued inputs until none is left.
func (r *Runner) work(agentID string) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		q := r.busy[agentID]
		if len(q) == 0 || r.closing {
			delete(r.busy, agentID)
			r.mu.Unlock()
			return
		}
		in := q[0]
		r.busy[agentID] = q[1:]
		r.mu.Unlock()
		err := r.run(in)
		if err != nil && r.stopping() {
			r.mu.Lock()
			delete(r.busy, agentID) // the input comes again after restart
			r.mu.Unlock()
			return
		}
		if err != nil {
			r.log.Warn("agent run failed", "agent", agentID, "err", err)
		}
		for _, a := range r.answered(in) {
			a()
		}
	}
}

// answered takes from the agent's queue the other deliveries of in, which
// its run answered too (an input dispatched as it was stored comes again
// from its consumer), and returns the acknowledgements of them all.
func (r *Runner) answered(in bus.Input) []func() {
	var acks []func()
	if in.Ack != nil {
		acks = append(acks, in.Ack)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.busy[in.AgentID]
	if !slices.ContainsFunc(q, func(o bus.Input) bool { return o.Seq == in.Seq }) {
		return acks
	}
	rest := make([]bus.Input, 0, len(q))
	for _, o := range q {
		switch {
		case o.Seq != in.Seq:
			rest = append(rest, o)
		case o.Ack != nil:
			acks = append(acks, o.Ack)
		}
	}
	r.busy[in.AgentID] = rest
	return acks
}

// run processes one input when a slot is free, telling the log it is in
// progress while it waits and while the run goes on, so that it is not
// delivered to another node meanwhile.
func (r *Runner) run(in bus.Input) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-done:
		}
	}()
	go func() {
		t := time.NewTicker(bus.InputAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.progress(in)
			}
		}
	}()
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	return r.proc.Process(ctx, in.AgentID, in.Seq)
}

// progress tells the log that in, and the inputs queued behind it for its
// agent, are in progress. A queued input may be one this run answers: an
// input dispatched as it was stored (see node) runs while its consumer's
// delivery of it waits here, and must not be delivered again meanwhile.
func (r *Runner) progress(in bus.Input) {
	r.mu.Lock()
	fns := make([]func(), 0, 1+len(r.busy[in.AgentID]))
	for _, q := range append([]bus.Input{in}, r.busy[in.AgentID]...) {
		if q.Progress != nil {
			fns = append(fns, q.Progress)
		}
	}
	r.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

func (r *Runner) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// Close stops taking inputs, cancels the runs going on (a step in flight
// stores nothing; its input comes again after restart) and waits for the
// agents' goroutines, or for ctx to end.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closing {
		r.closing = true
		close(r.stop)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

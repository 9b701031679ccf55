package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/service"
)

// Store is what a run reads and how it stores what happened: the commands
// and queries of package service that runs issue. *service.Service is one.
type Store interface {
	// WaitApplied waits until the read models hold the event at seq.
	WaitApplied(ctx context.Context, seq events.Seq) error
	// Applied is how far the read models have applied the log. They hold
	// events not yet on disk (a run starts on its inputs while their fsync
	// is under way, bus/ahead.go), so a run tells no one anything and runs
	// no tool before Durable says its inputs are on disk.
	Applied() events.Seq
	// Durable returns once the event at seq is on disk.
	Durable(ctx context.Context, seq events.Seq) error
	// EachWaiting hands fn the agent's untaken inputs up to upTo, oldest first.
	EachWaiting(ctx context.Context, agentID string, upTo events.Seq, fn func(service.Waiting) bool) error
	// StillWaiting reports whether the input id waits for a run.
	StillWaiting(agentID string, id events.MessageID) bool
	// RunCancelled reports whether a client cancelled the run.
	RunCancelled(run string) bool
	// ModelFor finds the model of the agent's run in scope, or says what
	// to configure.
	ModelFor(agentID string, in service.Scope) (agents.Model, string, error)
	// StepContext reads what the next step of the agent's run in scope
	// reads: its conversation's context window.
	StepContext(ctx context.Context, agentID string, in service.Scope) (service.StepContext, error)
	// CommitStep stores a step and returns its messages and sequence once
	// it is stored, before the read models hold it (WaitApplied); a
	// conflict wraps events.ErrConflict.
	CommitStep(ctx context.Context, agentID string, st service.Step) ([]api.LettaMessage, events.Seq, error)
	// CommitSummary stores a summary in place of what it summarizes.
	CommitSummary(ctx context.Context, agentID string, sum service.Summary) error
	// TakeRequests takes run requests out of the agent's queue without a step.
	TakeRequests(ctx context.Context, agentID string, ids []events.MessageID) error
	// UnfinishedRun finds the agent's run that goes on after a stored
	// step (its node stopped or died after it), or nil.
	UnfinishedRun(ctx context.Context, agentID string) (*service.Unfinished, error)
	// RunProgress is how many steps a run stored (-1: an unknown run) and
	// whether it goes on.
	RunProgress(run string) (steps int, goesOn bool)
	// FailRun records, best effort, that a run under way failed.
	FailRun(ctx context.Context, agentID, run string, cause error)
	// RewindToLastUser cuts the context window after the last user message.
	RewindToLastUser(ctx context.Context, agentID string) error
	// AgentTool finds one of the agent's tools by name.
	AgentTool(agentID, name string) (projections.Tool, json.RawMessage, error)
	// AgentSecrets opens the agent's tool environment variables (nil
	// when it has none).
	AgentSecrets(agentID string) (map[string]string, error)
	// RecallArchival ranks the passages the agent sees.
	RecallArchival(ctx context.Context, agentID, query string, offset, limit int) ([]service.Hit, int, error)
	// RecallMessages ranks or lists the agent's user and assistant messages.
	RecallMessages(ctx context.Context, agentID string, q search.Query) ([]service.Hit, int, error)
}

// Config configures a Loop. Zero values take the defaults noted.
type Config struct {
	Runs        service.RunBus   // carries reports to the callers waiting; nil: nobody hears them
	Tools       ToolRunner       // runs custom Python tools; nil: they cannot run
	MaxSteps    int              // longest chain of one run; 0 means 50
	CountTokens func(string) int // token counter for summarizing; nil: about 4 bytes a token
	Clock       func() time.Time // nil means time.Now
	Metrics     *metrics.Metrics // records steps, model and tool calls, active runs; nil records nothing
	Logger      *slog.Logger     // nil discards
	// BeforeStepCommit, when set, is called after the model answered and
	// before the step's events are stored. It exists for fault-injection
	// tests (killing the process at that moment); leave it nil.
	BeforeStepCommit func()
}

// Loop runs agents: for an input the runner hands it, it takes the agent's
// oldest unanswered send, builds each step's context, calls the model, runs
// the tools, summarizes when the context overflows, stores each step through
// the Store and reports each message to the callers waiting. It implements
// Processor. It is safe for concurrent use with distinct agents; the Runner
// gives it one agent at a time.
type Loop struct {
	store Store
	cfg   Config

	failed sync.Map // first input id of a send whose run failed here → true, until a run of it succeeds
	tokens tokenCache
	tools  toolCounts
	goMu   sync.RWMutex // guards goFuncs
	goFunc map[events.ToolID]GoFunc
	calls  sync.WaitGroup // Go tool calls that outlived their timeout
}

// NewLoop returns a Loop over store.
func NewLoop(store Store, cfg Config) *Loop {
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = 50
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Loop{store: store, cfg: cfg}
}

// Close waits for the Go tool calls that outlived their timeout (Go code
// cannot be stopped, only asked to), or for ctx to end, and then says that
// some did not stop. Call it after the Runner's Close.
func (l *Loop) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("a Go tool call that outlived its timeout did not stop: %w", ctx.Err())
	}
}

// Process answers the inputs of an agent that no run has taken, up to the
// one at seq: first a run that stored steps but not its last (its node
// stopped or died after a step; see continueRun), then the oldest send,
// each send's inputs in a run of their own. Reports go to the run bus under
// each taken input's id. An earlier send whose run failed in this process
// is left to its own retry (or to the next start), not run again for a
// later one. It returns the failure of the run of the input at seq, if it
// failed.
func (l *Loop) Process(ctx context.Context, agentID string, seq events.Seq) error {
	if err := l.store.WaitApplied(ctx, seq); err != nil {
		return err
	}
	if err := l.continueUnfinished(ctx, agentID); err != nil {
		return err
	}
	for {
		take, err := l.nextSend(ctx, agentID, seq)
		if err != nil || len(take) == 0 {
			return err
		}
		own := take[len(take)-1].Seq >= seq
		err = l.runSend(ctx, agentID, take)
		if errors.Is(err, errTakenElsewhere) {
			return nil // that run reports to its senders
		}
		if err != nil && l.leftForNextOwner(ctx, agentID, take) {
			return err
		}
		if err != nil {
			l.failed.Store(take[0].ID, true)
			l.dropRequests(ctx, agentID, take)
			l.store.FailRun(ctx, agentID, service.RunOf(string(take[0].ID)), err)
		} else {
			l.failed.Delete(take[0].ID)
		}
		if own || ctx.Err() != nil {
			return err
		}
	}
}

// nextSend lists the inputs of the oldest send no run has taken, received
// up to seq: its first input and those sent in the same command; or a run
// request on its own. A send whose run failed in this process is passed
// over, unless it holds seq or a request to resend it is reached; that
// request joins the send it names, or, when that send is no longer
// waiting, is returned alone.
func (l *Loop) nextSend(ctx context.Context, agentID string, seq events.Seq) ([]service.Waiting, error) {
	var (
		sends [][]service.Waiting // the sends passed over, for a resend to find
		send  []service.Waiting   // the send being gathered
		found []service.Waiting
	)
	// decide ends the send gathered: it is the one to run, or passed over.
	decide := func() bool {
		if len(send) == 0 {
			return false
		}
		if req := send[0].Request; req != nil && req.Kind == events.RunResend {
			for _, old := range sends {
				if old[0].ID == req.Input {
					l.failed.Delete(old[0].ID)
					found = append(old, send[0])
					return true
				}
			}
			found = send
			return true
		}
		if _, failed := l.failed.Load(send[0].ID); failed && send[len(send)-1].Seq < seq {
			sends = append(sends, send)
			send = nil
			return false
		}
		found = send
		return true
	}
	err := l.store.EachWaiting(ctx, agentID, seq, func(w service.Waiting) bool {
		if len(send) > 0 && (w.Request != nil || send[0].Request != nil || w.Command != send[0].Command) {
			if decide() { // the inputs of one send are stored together
				return false
			}
			send = nil
		}
		send = append(send, w)
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		decide()
	}
	return found, nil
}

// runSend runs the agent on one send's inputs until the chain ends.
func (l *Loop) runSend(ctx context.Context, agentID string, take []service.Waiting) error {
	defer l.cfg.Metrics.RunStarted()()
	ids := make([]events.MessageID, len(take))
	for i, in := range take {
		ids[i] = in.ID
	}
	report := l.reporter(ids, take[len(take)-1].Seq)
	fail := func(err error) error {
		// The run that took them reports; one left to the next owner has
		// not failed.
		if !errors.Is(err, errTakenElsewhere) && !l.leftForNextOwner(ctx, agentID, take) {
			w := fault.ToWire(err)
			report(service.RunReport{Error: &w})
		}
		return err
	}
	done := func() error {
		report(service.RunReport{Done: &api.LettaResponse{StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
			Usage: api.Usage{MessageType: "usage_statistics", RunIDs: []string{}}}, Seq: l.store.Applied()})
		return nil
	}
	r := run{loop: l, agentID: agentID, take: take, id: service.RunOf(string(take[0].ID)), maxSteps: l.cfg.MaxSteps, clientTools: take[0].ClientTools, scope: take[0].Scope,
		read: take[len(take)-1].Seq}
	if take[0].MaxSteps > 0 { // the sender's limit, whoever runs it
		r.maxSteps = take[0].MaxSteps
	}
	var err error
	if req := take[0].Request; req != nil {
		switch req.Kind {
		case events.RunResend:
			// The send it names is answered already: the request only
			// leaves the queue.
			if err := l.takeRequests(ctx, agentID, take); err != nil {
				return fail(err)
			}
			return done()
		case events.RunSummarize:
			if err := l.summarizeNow(ctx, agentID); err != nil {
				return fail(err)
			}
			if err := l.takeRequests(ctx, agentID, take); err != nil {
				return fail(err)
			}
			return done()
		}
	}
	if r.model, r.name, err = l.store.ModelFor(agentID, r.scope); err != nil {
		return fail(err)
	}
	first, err := l.requestedInput(ctx, agentID, take)
	if err != nil {
		return fail(err)
	}
	// A sender offers to take tokens under its send's last input, the one
	// it watches: one question to the bus per run.
	if l.cfg.Runs != nil && l.cfg.Runs.WantsTokens(string(take[len(take)-1].ID)) {
		r.onDelta = func(d agents.Delta) { report(service.RunReport{Delta: &d}) }
	}
	r.onMessage = func(m api.LettaMessage) { report(service.RunReport{Message: &m}) }
	resp, err := r.from(ctx, first)
	if err != nil {
		return fail(err)
	}
	// The callers hear the run ended while the read models apply its last
	// step (they wait for Seq themselves); the next send is looked for once
	// they hold it.
	report(service.RunReport{Done: &api.LettaResponse{StopReason: resp.StopReason, Usage: resp.Usage}, Seq: max(r.stored, l.store.Applied())})
	return l.store.WaitApplied(ctx, r.stored)
}

// reporter returns what reports a run's progress to the callers waiting
// on any of its inputs. The first report that says anything but a failure
// waits until the event at read, the last the run had read when it began
// (its last input), is on disk; if that wait fails, only failures are
// reported.
func (l *Loop) reporter(ids []events.MessageID, read events.Seq) func(service.RunReport) {
	var settled atomic.Bool
	return func(r service.RunReport) {
		if l.cfg.Runs == nil {
			return
		}
		if r.Error == nil && !settled.Load() {
			if err := l.store.Durable(context.Background(), read); err != nil {
				return
			}
			settled.Store(true)
		}
		for _, id := range ids {
			l.cfg.Runs.PublishRun(string(id), r)
		}
	}
}

// continueUnfinished continues the agent's run that stored steps but not
// its last, if there is one: the node that ran it stopped or died after a
// step, and its input came to this node, the agent's owner now. The run
// goes on from its last stored step (its next step's input and the turn's
// history are stored with it), so a step stored is never taken again: its
// tools' effects stay once, and the model is asked for the next step. The
// run reports under its inputs' ids, so a client still waiting for it is
// answered. A failure fails the run, unless this node is stopping too: it
// is then left to the next owner again.
func (l *Loop) continueUnfinished(ctx context.Context, agentID string) error {
	u, err := l.store.UnfinishedRun(ctx, agentID)
	if err != nil || u == nil {
		return err
	}
	l.cfg.Logger.Info("continuing a run its node left after a step", "agent", agentID, "run", u.Run, "steps", u.Steps)
	defer l.cfg.Metrics.RunStarted()()
	report := l.reporter(u.Inputs, l.store.Applied())
	r := run{loop: l, agentID: agentID, id: u.Run, maxSteps: l.cfg.MaxSteps, clientTools: u.ClientTools, scope: u.Scope,
		steps: u.Steps, turnCalls: u.Then.Calls, lastOutput: u.Then.LastOutput}
	if u.MaxSteps > 0 {
		r.maxSteps = u.MaxSteps
	}
	resp, err := l.continueRun(ctx, &r, u, report)
	switch {
	case errors.Is(err, errTakenElsewhere):
		return nil // that run reports to its senders
	case err != nil && ctx.Err() != nil:
		if _, goesOn := l.store.RunProgress(u.Run); goesOn {
			return err // this node stops: the next owner continues it
		}
		fallthrough
	case err != nil:
		w := fault.ToWire(err)
		report(service.RunReport{Error: &w})
		l.store.FailRun(ctx, agentID, u.Run, err)
		return nil // the inputs of this call run on
	}
	report(service.RunReport{Done: &api.LettaResponse{StopReason: resp.StopReason, Usage: resp.Usage}, Seq: max(r.stored, l.store.Applied())})
	return l.store.WaitApplied(ctx, r.stored) // as runSend
}

// continueRun steps an unfinished run from its last stored step.
func (l *Loop) continueRun(ctx context.Context, r *run, u *service.Unfinished, report func(service.RunReport)) (api.LettaResponse, error) {
	var err error
	if r.model, r.name, err = l.store.ModelFor(r.agentID, r.scope); err != nil {
		return api.LettaResponse{}, err
	}
	r.onMessage = func(m api.LettaMessage) { report(service.RunReport{Message: &m}) }
	var next *service.Chained
	if u.Then.Kind != "" {
		next = &service.Chained{Kind: u.Then.Kind, Words: u.Then.Words}
	}
	resp, err := r.from(ctx, next)
	// The usage is the whole run's, the steps stored before included.
	resp.Usage.StepCount += u.Steps
	resp.Usage.PromptTokens += u.Usage.PromptTokens
	resp.Usage.CompletionTokens += u.Usage.CompletionTokens
	resp.Usage.TotalTokens += u.Usage.TotalTokens
	return resp, err
}

// leftForNextOwner says whether a run that failed is left to the next
// owner of the agent's partition rather than failed: its node is stopping
// (ctx is the runner's, cancelled only then), and either the run had not
// taken its inputs (they are given back unanswered, and the next owner
// runs them) or it stored steps and goes on after the last (the next owner
// continues it from there: continueUnfinished). Either way the clients
// waiting are answered by the next owner.
func (l *Loop) leftForNextOwner(ctx context.Context, agentID string, take []service.Waiting) bool {
	if ctx.Err() == nil || len(take) == 0 {
		return false
	}
	if l.store.StillWaiting(agentID, take[0].ID) {
		return true
	}
	_, goesOn := l.store.RunProgress(service.RunOf(string(take[0].ID)))
	return goesOn
}

// requestedInput prepares the run of a request: /retry rewinds the context
// to the last user message; a heartbeat or a memory warning is rendered
// now, as the input of the run's first step. A send has none.
func (l *Loop) requestedInput(ctx context.Context, agentID string, take []service.Waiting) (*service.Chained, error) {
	req := take[0].Request
	if req == nil {
		return nil, nil
	}
	switch req.Kind {
	case events.RunRetry:
		return nil, l.store.RewindToLastUser(ctx, agentID)
	case events.RunHeartbeat:
		return &service.Chained{Kind: events.InputHeartbeat, Words: cmp.Or(req.Reason, "Automated timer")}, nil
	case events.RunMemoryWarning:
		return &service.Chained{Kind: events.InputMemoryWarning, Words: agents.MemoryWarning}, nil
	}
	return nil, fault.E(fault.Unprocessable, "unknown kind of run request %q", req.Kind)
}

// takeRequests takes the requests among take out of the agent's queue.
func (l *Loop) takeRequests(ctx context.Context, agentID string, take []service.Waiting) error {
	var ids []events.MessageID
	for _, in := range take {
		if in.Request != nil {
			ids = append(ids, in.ID)
		}
	}
	return l.store.TakeRequests(ctx, agentID, ids)
}

// dropRequests takes the requests of a failed run out of the queue, so that
// they are not run again at the next start; a failed send stays, for its
// client's retry. It is best effort, as FailRun.
func (l *Loop) dropRequests(ctx context.Context, agentID string, take []service.Waiting) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.takeRequests(ctx, agentID, take); err != nil {
		l.cfg.Logger.Warn("cannot take a failed run request out of the queue", "agent", agentID, "err", err)
	}
}

// errTakenElsewhere ends a run whose inputs another run took first.
var errTakenElsewhere = errors.New("the inputs were taken by another run")

package runner

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// run is one run of an agent: the send (or request) it answers, and how
// far it may go.
type run struct {
	loop     *Loop
	agentID  string
	take     []service.Waiting // the inputs its first step takes
	id       string            // the run's id (service.RunOf)
	model    agents.Model
	name     string // the provider's model name
	maxSteps int
	// steps are the steps the run stored (before this process, for a run
	// it continues): one more is stored only if the run still has as many.
	steps     int
	onMessage func(api.LettaMessage) // each message as its step commits
	onDelta   func(agents.Delta)     // tokens as the model writes them; nil: nobody wants them
	// clientTools are the tools the client runs itself, offered for this
	// run (the send's first input's).
	clientTools []events.ClientTool
	// scope is the conversation the send went to, whose context window the
	// run reads and writes, and the model it asked for.
	scope service.Scope
	// turnCalls and lastOutput are the turn's history the tool rules read:
	// the tools called without breaking a rule, and the last one's output.
	turnCalls  []string
	lastOutput string
	// stored is the sequence of the run's last committed step, which the
	// read models may not hold yet (CommitStep does not wait for them).
	stored events.Seq
	// read is the last event the run had read when it began (its last
	// input), which may not be on disk yet: no tool runs before it is.
	read events.Seq
}

// from steps the agent until the chain ends. The first step takes the
// client inputs of the run into the context, or a chained input (a
// heartbeat, a warning) given as first.
func (r *run) from(ctx context.Context, first *service.Chained) (api.LettaResponse, error) {
	resp := api.LettaResponse{
		Messages:   []api.LettaMessage{},
		StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{r.id}},
	}
	next := first // the chained input of the next step
	if len(r.take) > 0 && r.take[0].Message.Role == "approval" {
		// The client answers calls that waited for it: their returns first.
		out, err := r.resolve(ctx)
		if err != nil {
			return resp, err
		}
		r.report(&resp, out)
		r.take = r.take[1:]
		if next = out.next; next == nil && !out.goOn && len(r.take) == 0 {
			return resp, nil // a MemGPT call approved without a heartbeat ends the turn
		}
		if err := r.loop.store.WaitApplied(ctx, r.stored); err != nil {
			return resp, err
		}
	}
	for step := r.steps; ; step++ {
		if r.loop.store.RunCancelled(r.id) {
			resp.StopReason.StopReason = "cancelled" // at a step boundary, as RunCancelled says
			return resp, nil
		}
		if step >= r.maxSteps {
			resp.StopReason.StopReason = "max_steps"
			return resp, nil
		}
		out, err := r.step(ctx, next, step+1 >= r.maxSteps)
		r.take = nil
		if err != nil {
			return resp, err
		}
		resp.Usage.StepCount++
		resp.Usage.PromptTokens += out.Usage.PromptTokens
		resp.Usage.CompletionTokens += out.Usage.CompletionTokens
		resp.Usage.TotalTokens += out.Usage.TotalTokens
		r.report(&resp, out)
		if out.Awaiting {
			resp.StopReason.StopReason = agents.StopRequiresApproval
			return resp, nil
		}
		if next = out.next; next == nil && !out.goOn {
			if out.StopReason == agents.StopToolRule || out.StopReason == agents.StopMaxSteps {
				resp.StopReason.StopReason = out.StopReason // a tool rule ended the turn
			}
			return resp, nil
		}
		// The next step reads the read models: they must hold this one.
		if err := r.loop.store.WaitApplied(ctx, r.stored); err != nil {
			return resp, err
		}
	}
}

// report adds a step's messages to the run's response and reports each.
func (r *run) report(resp *api.LettaResponse, out stepped) {
	for _, m := range out.messages {
		resp.Messages = append(resp.Messages, m)
		if r.onMessage != nil {
			r.onMessage(m)
		}
	}
}

// stepped is what one step did.
type stepped struct {
	agents.Output
	messages []api.LettaMessage // what it stored, as reported
	goOn     bool               // the modern loop goes on with nothing added to the context
	next     *service.Chained   // the MemGPT loop goes on with this input
}

// chain says how the run goes on after a step whose output is out, as the
// step and the agent's tool rules decided (Output.Continue): the modern loop
// after a reply with a tool call, with nothing added to the context; the
// MemGPT loop with a warning (once per summarization period), a failed
// call's or a requested heartbeat. A rule that keeps the turn going with a
// reason gives the model that reason as a heartbeat: in the MemGPT loop
// always, in the modern loop after a reply without a tool call (a required
// tool not yet called), as Letta's loops do.
func chain(sc service.StepContext, out agents.Output) (goOn bool, next *service.Chained) {
	if out.Awaiting {
		return false, nil // the run stops for the client
	}
	if sc.State.Loop == agents.LoopV1 {
		if out.Continue && out.ContinueReason != "" && len(out.Assistant.ToolCalls) == 0 {
			return false, &service.Chained{Kind: events.InputHeartbeat, Words: out.ContinueReason}
		}
		return out.Continue, nil
	}
	if out.Continue && out.ContinueReason != "" && !(out.Warning && !sc.Warned) {
		return false, &service.Chained{Kind: events.InputHeartbeat, Words: out.ContinueReason}
	}
	switch {
	case out.Warning && !sc.Warned:
		return false, &service.Chained{Kind: events.InputMemoryWarning, Words: agents.MemoryWarning}
	case !out.Continue:
		return false, nil
	case out.Failed:
		return false, &service.Chained{Kind: events.InputHeartbeat, Words: agents.HeartbeatFailed}
	}
	return false, &service.Chained{Kind: events.InputHeartbeat, Words: agents.HeartbeatRequested}
}

// step runs one model call and stores its events atomically. A conflict
// with a concurrent write reloads and runs the step again. last says that
// the run may take no further step.
func (r *run) step(ctx context.Context, input *service.Chained, last bool) (stepped, error) {
	l := r.loop
	for attempt := 0; ; attempt++ {
		if attempt > 0 && len(r.take) > 0 && !l.store.StillWaiting(r.agentID, r.take[0].ID) {
			// Another run took these inputs while this step was deciding (two
			// nodes during a partition's handover): the step is theirs.
			return stepped{}, errTakenElsewhere
		}
		sc, err := l.store.StepContext(ctx, r.agentID, r.scope)
		if err != nil {
			return stepped{}, err
		}
		if len(r.take) == 0 && r.id != "" {
			// Read after the context: a step stored by another node's run of
			// this run (a run continued elsewhere) shows here, or voids this
			// step's commit as a conflict, and the step is then theirs.
			if steps, _ := l.store.RunProgress(r.id); steps >= 0 && steps != r.steps {
				return stepped{}, errTakenElsewhere
			}
		}
		now := l.cfg.Clock().UTC()
		var take []events.MessageID
		for _, in := range r.take {
			take = append(take, in.ID)
			if in.Request == nil {
				sc.State.Context = append(sc.State.Context, in.Message)
			}
		}
		if input != nil {
			sc.State.Context = append(sc.State.Context, agents.Message{Role: "user", Content: agents.Render(input.Kind, input.Words, now)})
		}
		sc.State.Model = r.name
		sc.State.Stream = r.onDelta
		sc.State.TurnCalls, sc.State.LastOutput, sc.State.Final = r.turnCalls, r.lastOutput, last
		if sc.State.Loop == agents.LoopV1 {
			withClientTools(&sc.State, r.clientTools)
		}
		if w := sc.State.ContextWindow; w > 0 && attempt < 3 && l.contextTokens(sc.State) > w {
			// The window is already full: summarize before asking the model.
			if err := l.summarize(ctx, r.agentID, r.scope, r.id, r.model, r.name); err != nil && !fault.Is(err, fault.Conflict) {
				return stepped{}, err
			}
			continue // a conflict: the agent changed; decide again from its new state
		}
		out, err := agents.Step(ctx, r.model, sc.State, env{loop: l, agentID: r.agentID, now: now, read: r.read})
		if err == nil {
			l.cfg.Metrics.ModelCall(r.name, out.ModelTime, out.Usage.PromptTokens, out.Usage.CompletionTokens)
			if len(out.Assistant.ToolCalls) > 0 {
				l.cfg.Metrics.Tool(out.Failed, out.ToolTime)
			}
		} else if !errors.Is(err, agents.ErrContextOverflow) && ctx.Err() == nil {
			l.cfg.Metrics.ModelError(r.name)
		}
		if errors.Is(err, agents.ErrContextOverflow) && attempt < 3 {
			if serr := l.summarize(ctx, r.agentID, r.scope, r.id, r.model, r.name); serr != nil && !fault.Is(serr, fault.Conflict) {
				return stepped{}, serr
			}
			continue // the step again, on the shorter context
		}
		if errors.Is(err, agents.ErrContextOverflow) {
			return stepped{}, fault.Wrap(fault.Invalid, err, "the conversation no longer fits the model's context window even after summarizing")
		}
		if err != nil {
			if ctx.Err() != nil {
				return stepped{}, fault.Wrap(fault.Unavailable, err, "request cancelled")
			}
			return stepped{}, fault.Wrap(fault.Unavailable, err, "the model provider failed: %v; nothing was stored for this step, send again to retry", err)
		}
		goOn, next := chain(sc, out)
		calls, lastOutput := append(slices.Clone(r.turnCalls), out.Calls...), cmp.Or(out.LastOutput, r.lastOutput)
		var then *events.RunThen
		if goOn || next != nil {
			then = &events.RunThen{Calls: calls, LastOutput: lastOutput}
			if next != nil {
				then.Kind, then.Words = next.Kind, next.Words
			}
		}
		if l.cfg.BeforeStepCommit != nil {
			l.cfg.BeforeStepCommit()
		}
		msgs, seq, err := l.store.CommitStep(ctx, r.agentID, service.Step{
			Context: sc, Take: take, Input: input, Output: out, Model: r.name, Run: r.id,
			Ends: !goOn && next == nil, Last: last, Now: now, Then: then,
		})
		if errors.Is(err, events.ErrConflict) {
			if attempt < 3 {
				continue // the store waited for the change: decide again
			}
			return stepped{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the step was not stored")
		}
		if err != nil {
			return stepped{}, err
		}
		l.cfg.Metrics.Step(r.name)
		r.stored = seq
		r.steps++
		r.turnCalls, r.lastOutput = calls, lastOutput
		return stepped{Output: out, messages: msgs, goOn: goOn, next: next}, nil
	}
}

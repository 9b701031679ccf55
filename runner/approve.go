package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// Approvals and the client's own tools: a step whose reply calls a deferred
// tool (the client's own, in the modern loop, or one that needs a person's
// approval, in either loop) stores the reply with stop reason
// requires_approval and runs none of its calls (agents.Step); the run ends
// there. The client's answer is the first input of the next send; its run
// begins by resolving the calls (agents.Resolve) in a step that calls no
// model, then goes on as any run does (the MemGPT loop: if the call asked
// for a heartbeat, or was denied).

// withClientTools offers the model the client's tools of the run beside the
// agent's (a client tool replaces an agent tool of the same name), and
// defers their calls to the client.
func withClientTools(st *agents.State, tools []events.ClientTool) {
	if len(tools) == 0 {
		return
	}
	deferred := make(map[string]bool, len(st.Deferred)+len(tools))
	for name := range st.Deferred {
		deferred[name] = true
	}
	for _, t := range tools {
		params := t.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{},"required":[]}`)
		}
		st.Tools = slices.DeleteFunc(st.Tools, func(x agents.Tool) bool { return x.Name == t.Name })
		st.Tools = append(st.Tools, agents.Tool{Name: t.Name, Description: t.Description, Parameters: params})
		deferred[t.Name] = true
	}
	st.Deferred = deferred
}

// answers reads a client's answers by tool call id; an answer without one
// (Letta's older form) answers every call that waits.
func answers(approvals []events.Approval, calls []agents.ToolCall) map[string]agents.Answer {
	out := map[string]agents.Answer{}
	for _, a := range approvals {
		ans := agents.Answer{Approve: a.Approve != nil && *a.Approve, Reason: a.Reason, Return: a.Return, Failed: a.Status == "error"}
		if a.ToolCallID != "" {
			out[a.ToolCallID] = ans
			continue
		}
		for _, c := range calls {
			out[c.ID] = ans
		}
	}
	return out
}

// resolve answers the calls that wait for the client with the client's
// answer, the run's first input, in a step of its own: it takes the answer
// and stores the calls' returns (and what approved calls did to memory).
func (r *run) resolve(ctx context.Context) (stepped, error) {
	l, answer := r.loop, r.take[0]
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !l.store.StillWaiting(r.agentID, answer.ID) {
			return stepped{}, errTakenElsewhere
		}
		sc, err := l.store.StepContext(ctx, r.agentID, r.scope)
		if err != nil {
			return stepped{}, err
		}
		if len(sc.Awaiting) == 0 {
			return stepped{}, fault.E(fault.Invalid, "no tool call of agent %s waits for approval", r.agentID)
		}
		withClientTools(&sc.State, r.clientTools)
		now := l.cfg.Clock().UTC()
		out := agents.Resolve(ctx, sc.State, env{loop: l, agentID: r.agentID, now: now, read: r.read}, sc.Awaiting, answers(answer.Approvals, sc.Awaiting))
		msgs, seq, err := l.store.CommitStep(ctx, r.agentID, service.Step{
			Context: sc, Take: []events.MessageID{answer.ID}, Output: out, Run: r.id, Now: now, Resolves: true,
		})
		if errors.Is(err, events.ErrConflict) {
			if attempt < 3 {
				continue
			}
			return stepped{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the answer was not stored")
		}
		if err != nil {
			return stepped{}, err
		}
		r.stored = seq
		r.turnCalls = append(r.turnCalls, out.Calls...)
		if out.LastOutput != "" {
			r.lastOutput = out.LastOutput
		}
		if sc.State.Loop != agents.LoopV1 {
			goOn, next := chain(sc, out) // a heartbeat, as after the step
			return stepped{Output: out, messages: msgs, goOn: goOn, next: next}, nil
		}
		return stepped{Output: out, messages: msgs, goOn: true}, nil
	}
}

package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Approvals, in the modern loop (LoopV1), as Letta's letta_v1_agent has
// them: a reply that calls a tool in State.Deferred — one the client runs
// (Letta Code's Bash, Read, …) or one that needs a person's approval — runs
// none of its calls. The step ends with Output.Awaiting, the run stops
// (stop reason requires_approval), and the client answers each call: the
// return of a tool it ran, or an approval or a denial of one the server
// runs. Resolve turns the answers into the calls' returns, and the loop
// goes on from there.

// StopRequiresApproval is the stop reason of a run whose last step's tool
// calls wait for the client.
const StopRequiresApproval = "requires_approval"

// Answer is a client's answer to one awaiting tool call.
type Answer struct {
	Approve bool    // run it (a tool the server runs)
	Reason  string  // why it was denied, told to the model
	Return  *string // the client ran it: what it returned
	Failed  bool    // beside Return: the client's run of it failed
}

// DeniedText is what the model reads as the return of a denied call.
func DeniedText(reason string) string {
	return "Error: request to call tool denied. User reason: " + reason
}

// awaits reports whether a reply's calls must wait for the client: one of
// them is deferred.
func awaits(st State, calls []ToolCall) bool {
	for _, c := range calls {
		if st.Deferred[c.Name] {
			return true
		}
	}
	return false
}

// callID gives a call without one (or with one longer than providers
// accept) an id of its own.
func callID(call ToolCall, i int, now time.Time) ToolCall {
	if call.ID == "" {
		call.ID = "call_" + strconv.FormatInt(now.UnixNano(), 36) + "_" + strconv.Itoa(i)
	}
	if len(call.ID) > 40 {
		call.ID = call.ID[:40]
	}
	if strings.TrimSpace(call.Arguments) == "" {
		call.Arguments = "{}"
	}
	return call
}

// Resolve makes the returns of the calls of a step that waited for the
// client, in the calls' order: a call the client ran returns what the
// client gave; an approved call, and one that needed no approval (the same
// reply's other calls), runs now, on st's memory; a denied call, and a
// deferred one the client did not answer, returns the denial. The loop then
// goes on (Continue).
//
// In the MemGPT loop a step has one call, which waited for a person's
// approval: approved, it runs as the step would have run it, and the turn
// goes on as its request_heartbeat and the rules say; denied, the model is
// told so and the turn goes on, as Letta's memgpt_agent does.
func Resolve(ctx context.Context, st State, env Env, calls []ToolCall, answers map[string]Answer) Output {
	if st.Loop != LoopV1 && len(calls) == 1 {
		return resolveMemGPT(ctx, st, env, calls[0], answers)
	}
	now := env.Now()
	out := Output{Continue: true}
	blocks := append([]Block(nil), st.Blocks...)
	began := time.Now()
	for _, call := range calls {
		ret := func(ok bool, msg string) {
			if !ok {
				out.Failed = true
			}
			out.Returns = append(out.Returns, Message{Role: "tool", Name: call.Name, ToolCallID: call.ID, Content: FunctionResponse(ok, msg, now)})
		}
		a, answered := answers[call.ID]
		switch {
		case answered && a.Return != nil:
			ret(!a.Failed, Truncate(*a.Return, FunctionReturnLimit))
			continue
		case answered && !a.Approve:
			ret(false, DeniedText(a.Reason))
			continue
		case !answered && st.Deferred[call.Name]:
			ret(false, DeniedText("the client did not answer this call"))
			continue
		}
		var args map[string]any
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args == nil {
			ret(false, fmt.Sprintf("Error parsing JSON for function '%s' arguments: %s", call.Name, call.Arguments))
			continue
		}
		delete(args, "request_heartbeat")
		delete(args, innerThoughtsParam)
		if !offered(st.Tools, call.Name) {
			ret(false, fmt.Sprintf("[ToolConstraintError] Cannot call %s: the agent has no such tool.", call.Name))
			continue
		}
		result, err := runV1Call(ctx, st, call.Name, args, blocks, env, &out)
		if err != nil {
			ret(false, result)
			continue
		}
		ret(true, truncateReturn(st, call.Name, result))
	}
	out.ToolTime = time.Since(began)
	out.Edits = edited(st.Blocks, blocks)
	return out
}

// resolveMemGPT resolves the one call of a MemGPT step that waited for a
// person's approval (Resolve). The call's return is Output.Returns[0].
func resolveMemGPT(ctx context.Context, st State, env Env, call ToolCall, answers map[string]Answer) Output {
	out := Output{LastOutput: st.LastOutput}
	a, answered := answers[call.ID]
	var args map[string]any
	if answered && a.Approve && (json.Unmarshal([]byte(call.Arguments), &args) != nil || args == nil) {
		answered, a.Reason = false, "its arguments are not a JSON object"
	}
	if !answered || !a.Approve {
		reason := a.Reason
		if !answered && reason == "" {
			reason = "the client did not answer this call"
		}
		out.Failed, out.Continue = true, true
		out.ContinueReason = NonUserPrefix + "Continuing: user denied request to call tool."
		out.Returns = []Message{{Role: "tool", Name: call.Name, ToolCallID: call.ID, Content: FunctionResponse(false, DeniedText(reason), env.Now())}}
		return out
	}
	heartbeat := heartbeatOf(args)
	delete(args, "request_heartbeat")
	names := make([]string, len(st.Tools))
	for i, t := range st.Tools {
		names[i] = t.Name
	}
	out = st.runCall(ctx, call, args, heartbeat, names, env, out)
	ret := *out.Tool
	ret.Name = call.Name
	out.Returns, out.Tool = []Message{ret}, nil
	return out
}

package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// lastToolMessage is the last tool-role message the model was sent.
func lastToolMessage(t *testing.T, script *llmtest.Server) llmtest.Message {
	t.Helper()
	reqs := script.Requests()
	msgs := reqs[len(reqs)-1].Messages
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "tool" {
			return msgs[i]
		}
	}
	t.Fatalf("the model's last request has no tool message: %+v", msgs)
	return llmtest.Message{}
}

func approval(ans ...events.Approval) []service.Input {
	return []service.Input{{Role: "approval", Approvals: ans}}
}

// TestModernClientToolRoundTripAcrossRestart: a call to a client's tool
// stops the run with an approval request and runs nothing; a message sent
// meanwhile is refused (409); the request survives a restart; the client's
// return reaches the model as the call's return, and the turn ends.
func TestModernClientToolRoundTripAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	r := startRig(t, dir, script)
	a := r.modernAgent(t)
	desc := "Run a shell command on the user's machine."
	clientTools := []api.ClientTool{{Name: "exec_command", Description: &desc,
		Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}`)}}
	r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{ID: "call_ls", Name: "exec_command", Arguments: `{"cmd":"ls"}`}}})
	resp, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "What files do I have?"}},
		service.SendOptions{UseAssistantMessage: true, ClientTools: clientTools})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason.StopReason != "requires_approval" {
		t.Fatalf("stop reason %q; want requires_approval", resp.StopReason.StopReason)
	}
	last := resp.Messages[len(resp.Messages)-1]
	if last.MessageType != api.ApprovalRequestMessageType || last.ToolCall == nil || last.ToolCall.Name != "exec_command" || last.ToolCall.ToolCallID != "call_ls" {
		t.Fatalf("last message %+v; want an approval request for exec_command", last)
	}
	offered := false
	for _, tool := range script.Requests()[0].Tools {
		offered = offered || tool.Name == "exec_command"
	}
	if !offered {
		t.Fatal("the client's tool was not offered to the model")
	}
	if _, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hello?"}}, service.SendOptions{}); !fault.Is(err, fault.Conflict) {
		t.Fatalf("a message while a call waits: %v; want Conflict (409)", err)
	}
	r.n.Close(ctx)
	r = startRig(t, dir, script)
	runs, err := r.n.Service.ListRuns(ctx, api.RunFilter{AgentIDs: []string{a.ID}}, api.Page{})
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	if run := runs[0]; run.Status != "completed" || run.StopReason == nil || *run.StopReason != "requires_approval" {
		t.Fatalf("the stopped run after restart: %+v; want completed with stop reason requires_approval", run)
	}
	r.llm.Push(llmtest.Step{Content: "You have a.txt and b.txt."})
	ret := "a.txt\nb.txt"
	resp, err = r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_ls", Return: &ret, Status: "success"}),
		service.SendOptions{UseAssistantMessage: true, ClientTools: clientTools})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(types(resp.Messages), ","); got != "tool_return_message,assistant_message" || resp.StopReason.StopReason != "end_turn" {
		t.Fatalf("after the return: %s, stop %q", got, resp.StopReason.StopReason)
	}
	tm := lastToolMessage(t, script)
	if tm.ToolCallID != "call_ls" || !strings.Contains(tm.Content, "a.txt") {
		t.Fatalf("the model read the return %+v", tm)
	}
	history, err := r.n.Service.ListContextMessages(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range history {
		kinds = append(kinds, m.MessageType)
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "approval_request_message,approval_response_message,tool_return_message,assistant_message") {
		t.Fatalf("context: %s", got)
	}
	// Nothing waits now: an answer to a call not made lately is refused (a
	// repeated answer goes on: TestApprovalAnswersAsLettaChecksThem).
	if _, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_cat", Return: &ret}), service.SendOptions{}); !fault.Is(err, fault.Invalid) {
		t.Fatalf("an answer with nothing waiting: %v; want Invalid", err)
	}
}

// TestModernApprovalDeniedThenApproved: a tool with a requires_approval
// rule waits for a person; a denial is told to the model with its reason
// and changes nothing; an approval runs the call.
func TestModernApprovalDeniedThenApproved(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	rules := json.RawMessage(`[{"type":"requires_approval","tool_name":"memory_insert"}]`)
	if _, err := r.n.Service.UpdateAgent(ctx, a.ID, api.UpdateAgent{ToolRules: rules}); err != nil {
		t.Fatal(err)
	}
	insert := agents.ToolCall{ID: "call_ins", Name: "memory_insert", Arguments: `{"label":"human","new_string":"Likes tea"}`}
	human := func() string {
		blocks, err := r.n.Service.ListAgentBlocks(ctx, a.ID, api.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Label == "human" {
				return b.Value
			}
		}
		return ""
	}
	for _, approve := range []bool{false, true} {
		r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{insert}}, llmtest.Step{Content: "Done."})
		resp := send(t, r, a.ID, "Remember that I like tea.")
		if resp.StopReason.StopReason != "requires_approval" || strings.Contains(human(), "tea") && !approve {
			t.Fatalf("stop %q, human %q", resp.StopReason.StopReason, human())
		}
		resp, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_ins", Approve: &approve, Reason: "not now"}), service.SendOptions{UseAssistantMessage: true})
		if err != nil {
			t.Fatal(err)
		}
		if said(resp) != "Done." || resp.StopReason.StopReason != "end_turn" {
			t.Fatalf("approve=%v: %+v", approve, resp)
		}
		tm := lastToolMessage(t, r.llm)
		denied := strings.Contains(tm.Content, agents.DeniedText("not now"))
		if denied == approve {
			t.Fatalf("approve=%v: the model read %q", approve, tm.Content)
		}
		if strings.Contains(human(), "Likes tea") != approve {
			t.Fatalf("approve=%v: human block %q", approve, human())
		}
	}
}

// TestMemGPTApprovals: in the memgpt_agent loop a call of a tool with a
// requires_approval rule waits for a person, as in Letta's memgpt_agent; a
// message meanwhile is 409 with Letta's detail object; a denial is told to
// the model, which goes on after a heartbeat; an approved call runs and the
// turn goes on if it asked for a heartbeat, and ends if it did not.
func TestMemGPTApprovals(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	rules := json.RawMessage(`[{"type":"requires_approval","tool_name":"core_memory_append"}]`)
	if _, err := r.n.Service.UpdateAgent(ctx, a.ID, api.UpdateAgent{ToolRules: rules}); err != nil {
		t.Fatal(err)
	}
	human := func() string {
		blocks, err := r.n.Service.ListAgentBlocks(ctx, a.ID, api.Page{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Label == "human" {
				return b.Value
			}
		}
		return ""
	}
	appendTea := func(heartbeat bool) llmtest.Step {
		return llmtest.Step{Content: "Ada likes tea.", ToolCalls: []agents.ToolCall{call("core_memory_append", map[string]any{"name": "human", "content": "Likes tea", "request_heartbeat": heartbeat})}}
	}
	answer := func(approve bool) api.LettaResponse {
		t.Helper()
		resp, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{Approve: &approve, Reason: "not now"}), service.SendOptions{UseAssistantMessage: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// Denied: the model reads the denial and a heartbeat, and answers.
	r.llm.Push(appendTea(true), llmtest.Step{ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": "I will not."})}})
	resp := send(t, r, a.ID, "Remember that I like tea.")
	last := resp.Messages[len(resp.Messages)-1]
	if resp.StopReason.StopReason != "requires_approval" || last.MessageType != api.ApprovalRequestMessageType || last.ToolCall == nil || last.ToolCall.Name != "core_memory_append" {
		t.Fatalf("stop %q, last %+v; want an approval request for core_memory_append", resp.StopReason.StopReason, last)
	}
	if strings.Contains(human(), "tea") {
		t.Fatal("a call waiting for approval changed memory")
	}
	_, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hello?"}}, service.SendOptions{})
	data, _ := fault.DataOf(err).(map[string]any)
	if !fault.Is(err, fault.Conflict) || data["code"] != "PENDING_APPROVAL" || data["pending_request_id"] != last.ID {
		t.Fatalf("a message while a call waits: %v, detail %v; want 409 PENDING_APPROVAL naming %s", err, data, last.ID)
	}
	resp = answer(false)
	if said(resp) != "I will not." || resp.StopReason.StopReason != "end_turn" {
		t.Fatalf("after the denial: %+v", resp)
	}
	reqs := r.llm.Requests()
	msgs := reqs[len(reqs)-1].Messages
	if len(msgs) < 2 || !strings.Contains(msgs[len(msgs)-2].Content, agents.DeniedText("not now")) || !strings.Contains(msgs[len(msgs)-1].Content, "Continuing: user denied request to call tool.") {
		t.Fatalf("the model read, last: %+v", msgs[max(0, len(msgs)-2):])
	}
	if strings.Contains(human(), "tea") {
		t.Fatal("a denied call changed memory")
	}

	// Approved with a heartbeat: it runs, and the model goes on.
	r.llm.Push(appendTea(true), llmtest.Step{ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": "Noted."})}})
	send(t, r, a.ID, "Remember that I like tea.")
	resp = answer(true)
	if got := strings.Join(types(resp.Messages), ","); !strings.HasPrefix(got, "tool_return_message,") || said(resp) != "Noted." {
		t.Fatalf("after the approval: %s %+v", got, resp)
	}
	if !strings.Contains(human(), "Likes tea") {
		t.Fatalf("an approved call did not run: human %q", human())
	}

	// Approved without a heartbeat: it runs and the turn ends, no model call.
	r.llm.Push(appendTea(false))
	send(t, r, a.ID, "Remember that I like tea.")
	before := len(r.llm.Requests())
	resp = answer(true)
	if got := strings.Join(types(resp.Messages), ","); got != "tool_return_message" || len(r.llm.Requests()) != before {
		t.Fatalf("approved without a heartbeat: %s, %d model calls after it", got, len(r.llm.Requests())-before)
	}
	if strings.Count(human(), "Likes tea") != 2 {
		t.Fatalf("human %q; want the second append", human())
	}
}

// TestDefaultRequiresApproval: a tool created with default_requires_approval
// gives each agent that gets it — at creation or by attaching it — a
// requires_approval rule for it, as Letta does, once; a restart keeps both.
func TestDefaultRequiresApproval(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := startRig(t, dir, nil)
	yes := true
	src := "def ask_boss(question: str) -> str:\n    \"\"\"Ask the boss.\n\n    Args:\n        question: what to ask\n    \"\"\"\n    return 'yes'\n"
	tool, err := r.n.Service.CreateTool(ctx, api.CreateTool{SourceCode: src, DefaultRequiresApproval: &yes}, true)
	if err != nil {
		t.Fatal(err)
	}
	if tool.DefaultRequiresApproval == nil || !*tool.DefaultRequiresApproval {
		t.Fatalf("tool %+v; want default_requires_approval true", tool)
	}
	rules := func(a api.AgentState) string {
		b, _ := json.Marshal(a.ToolRules)
		return string(b)
	}
	created, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{Model: ptr("openai/gpt-4o-mini"), ToolIDs: []string{tool.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rules(created); strings.Count(got, `"requires_approval"`) != 1 || !strings.Contains(got, `"ask_boss"`) {
		t.Fatalf("created with the tool: rules %s; want one requires_approval rule for ask_boss", got)
	}
	plain := r.modernAgent(t)
	if strings.Contains(rules(plain), "requires_approval") {
		t.Fatalf("an agent without the tool has rules %s", rules(plain))
	}
	for range 2 { // attaching twice adds one rule
		if _, err := r.n.Service.AttachTool(ctx, plain.ID, tool.ID); err != nil {
			t.Fatal(err)
		}
	}
	r.n.Close(ctx)
	r = startRig(t, dir, nil)
	for _, id := range []string{created.ID, plain.ID} {
		a, err := r.n.Service.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rules(a); strings.Count(got, `"requires_approval"`) != 1 || !strings.Contains(got, `"ask_boss"`) {
			t.Fatalf("agent %s after restart: rules %s; want one requires_approval rule for ask_boss", id, got)
		}
	}
}

// TestApprovalAnswersAsLettaChecksThem: an answer must name the calls that
// wait (Letta's "Invalid tool call IDs" otherwise; its older clients' answer
// naming the request's message is read as naming its one call), and an
// answer repeated after its calls were resolved — a client retrying a reply
// it lost — goes on with a keep-alive message instead of failing.
func TestApprovalAnswersAsLettaChecksThem(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	clientTools := []api.ClientTool{{Name: "exec_command", Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}}}`)}}
	opts := service.SendOptions{UseAssistantMessage: true, ClientTools: clientTools}
	r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{ID: "call_ls", Name: "exec_command", Arguments: `{"cmd":"ls"}`}}})
	resp, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "What files do I have?"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	request := resp.Messages[len(resp.Messages)-1]
	ret := "a.txt"
	_, err = r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_other", Return: &ret}), opts)
	if !fault.Is(err, fault.Invalid) || !strings.Contains(strings.ToLower(fault.Message(err)), "invalid tool call ids") || !strings.Contains(fault.Message(err), "'call_ls'") {
		t.Fatalf("an answer naming another call: %v; want 400 Invalid tool call IDs naming call_ls", err)
	}
	// The request's message id names its one call.
	r.llm.Push(llmtest.Step{Content: "You have a.txt."})
	answer := approval(events.Approval{ToolCallID: request.ID, Return: &ret, Status: "success"})
	if resp, err = r.n.Service.SendMessage(ctx, a.ID, answer, opts); err != nil || said(resp) != "You have a.txt." {
		t.Fatalf("an answer naming the request's message: %+v %v", resp, err)
	}
	if tm := lastToolMessage(t, r.llm); tm.ToolCallID != "call_ls" {
		t.Fatalf("the return answered %q; want call_ls", tm.ToolCallID)
	}
	// The same answer again: the agent goes on from a keep-alive message.
	r.llm.Push(llmtest.Step{Content: "Still here."})
	again := approval(events.Approval{ToolCallID: "call_ls", Return: &ret, Status: "success"})
	if resp, err = r.n.Service.SendMessage(ctx, a.ID, again, opts); err != nil || said(resp) != "Still here." {
		t.Fatalf("a repeated answer: %+v %v", resp, err)
	}
	reqs := r.llm.Requests()
	msgs := reqs[len(reqs)-1].Messages
	if last := msgs[len(msgs)-1]; last.Role != "user" || !strings.Contains(last.Content, "keep-alive") {
		t.Fatalf("after a repeated answer the model read %+v; want the keep-alive message", last)
	}
	// With a message after it, that message goes on instead.
	r.llm.Push(llmtest.Step{Content: "Hello again."})
	withMsg := append(approval(events.Approval{ToolCallID: "call_ls", Return: &ret}), service.Input{Role: "user", Text: "hello?"})
	if resp, err = r.n.Service.SendMessage(ctx, a.ID, withMsg, opts); err != nil || said(resp) != "Hello again." {
		t.Fatalf("a repeated answer with a message: %+v %v", resp, err)
	}
	reqs = r.llm.Requests()
	msgs = reqs[len(reqs)-1].Messages
	if last := msgs[len(msgs)-1]; !strings.Contains(last.Content, "hello?") {
		t.Fatalf("the model read %+v last; want the message that followed the answer", last)
	}
	// An answer naming calls never made is still refused.
	if _, err = r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_never", Return: &ret}), opts); !fault.Is(err, fault.Invalid) {
		t.Fatalf("an answer for calls never made: %v; want Invalid", err)
	}
}

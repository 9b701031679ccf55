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
	// Nothing waits now: a message is taken again, an answer is refused.
	if _, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_ls", Return: &ret}), service.SendOptions{}); !fault.Is(err, fault.Invalid) {
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

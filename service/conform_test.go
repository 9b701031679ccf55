package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// loopDialect scripts the model of one loop: a tool call (the MemGPT loop
// asks for a heartbeat in its arguments; the modern loop goes on after any
// call) and an answer (send_message, or plain content).
type loopDialect struct {
	agentType string
	search    func(query string) llmtest.Step // conversation_search, going on
	answer    func(text string) llmtest.Step
}

var dialects = []loopDialect{
	{
		agentType: "memgpt_agent",
		search: func(q string) llmtest.Step {
			return llmtest.Step{Content: "Let me look.", ToolCalls: []agents.ToolCall{call("conversation_search", map[string]any{"query": q, "request_heartbeat": true})}}
		},
		answer: say,
	},
	{
		agentType: "letta_v1_agent",
		search: func(q string) llmtest.Step {
			return llmtest.Step{ToolCalls: []agents.ToolCall{call("conversation_search", map[string]any{"query": q})}}
		},
		answer: func(text string) llmtest.Step { return llmtest.Step{Content: text} },
	},
}

// TestBothLoopsConform runs the behaviour the two loops share against each
// of them: a run_first rule forces the first call, an exit_loop rule ends the
// turn after its tool runs (stop reason tool_rule), max_steps ends a chain
// (stop reason max_steps), and a requires_approval rule stops the run for a
// person whose denial the model reads before it answers.
func TestBothLoopsConform(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	for _, d := range dialects {
		t.Run(d.agentType, func(t *testing.T) {
			agent := func(rules string) api.AgentState {
				t.Helper()
				a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{Model: ptr("openai/gpt-4o-mini"), AgentType: ptr(d.agentType), ToolRules: json.RawMessage(rules)})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			sendOpts := func(a api.AgentState, text string, opts service.SendOptions) api.LettaResponse {
				t.Helper()
				opts.UseAssistantMessage = true
				resp, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: text}}, opts)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			requests := func(from int) []llmtest.Recorded { return r.llm.Requests()[from:] }

			t.Run("run_first", func(t *testing.T) {
				a := agent(`[{"type":"run_first","tool_name":"conversation_search"}]`)
				from := len(r.llm.Requests())
				r.llm.Push(d.search("tea"), d.answer("Found it."))
				resp := sendOpts(a, "What do I like?", service.SendOptions{})
				reqs := requests(from)
				if len(reqs) != 2 || said(resp) != "Found it." {
					t.Fatalf("%d model calls, said %q", len(reqs), said(resp))
				}
				var offered []string
				for _, tool := range reqs[0].Tools {
					offered = append(offered, tool.Name)
				}
				if !slices.Equal(offered, []string{"conversation_search"}) || reqs[0].ToolChoice != "required" {
					t.Fatalf("first call offered %v with tool_choice %q; want only the run_first tool, required", offered, reqs[0].ToolChoice)
				}
				if len(reqs[1].Tools) < 2 {
					t.Fatalf("the second call offered %d tools; want them all again", len(reqs[1].Tools))
				}
			})
			t.Run("exit_loop", func(t *testing.T) {
				a := agent(`[{"type":"exit_loop","tool_name":"conversation_search"}]`)
				from := len(r.llm.Requests())
				r.llm.Push(d.search("tea")) // a further call would find no script and fail the run
				resp := sendOpts(a, "What do I like?", service.SendOptions{})
				if n := len(requests(from)); n != 1 || resp.StopReason.StopReason != "tool_rule" {
					t.Fatalf("%d model calls, stop %q; want 1, tool_rule", n, resp.StopReason.StopReason)
				}
			})
			t.Run("max_steps", func(t *testing.T) {
				a := agent(`[]`)
				from := len(r.llm.Requests())
				r.llm.Push(d.search("a"), d.search("b")) // a third call would fail the run
				resp := sendOpts(a, "Search forever.", service.SendOptions{MaxSteps: 2})
				if n := len(requests(from)); n != 2 || resp.StopReason.StopReason != "max_steps" {
					t.Fatalf("%d model calls, stop %q; want 2, max_steps", n, resp.StopReason.StopReason)
				}
			})
			t.Run("requires_approval", func(t *testing.T) {
				a := agent(`[{"type":"requires_approval","tool_name":"conversation_search"}]`)
				r.llm.Push(d.search("tea"))
				resp := sendOpts(a, "What do I like?", service.SendOptions{})
				if last := resp.Messages[len(resp.Messages)-1]; resp.StopReason.StopReason != agents.StopRequiresApproval || last.MessageType != api.ApprovalRequestMessageType {
					t.Fatalf("stop %q, last %s; want an approval request", resp.StopReason.StopReason, last.MessageType)
				}
				no := false
				r.llm.Push(d.answer("I will not look."))
				resp, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{Approve: &no, Reason: "private"}), service.SendOptions{UseAssistantMessage: true})
				if err != nil {
					t.Fatal(err)
				}
				if said(resp) != "I will not look." || resp.StopReason.StopReason != "end_turn" {
					t.Fatalf("after the denial: said %q, stop %q", said(resp), resp.StopReason.StopReason)
				}
				seen := false
				reqs := r.llm.Requests()
				for _, m := range reqs[len(reqs)-1].Messages {
					seen = seen || m.Role == "tool" && strings.Contains(m.Content, agents.DeniedText("private"))
				}
				if !seen {
					t.Fatal("the model did not read the denial")
				}
			})
		})
	}
}

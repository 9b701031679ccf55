package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
)

// TestToolRulesGovernTheRun: the agent's stored tool rules bind its runs.
// A terminal tool ends the turn after it runs (stop reason tool_rule, no
// further model call); a required-before-exit tool keeps a turn that would
// end without it going, the model told why; the rules are in the system
// message.
func TestToolRulesGovernTheRun(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	rules := json.RawMessage(`[{"type":"exit_loop","tool_name":"memory_insert"},{"type":"required_before_exit","tool_name":"conversation_search"}]`)
	if _, err := r.n.Service.UpdateAgent(ctx, a.ID, api.UpdateAgent{ToolRules: rules}); err != nil {
		t.Fatal(err)
	}
	// An answer before the required tool: the turn goes on with a reason.
	r.llm.Push(
		llmtest.Step{Content: "Done already?"},
		llmtest.Step{ToolCalls: []agents.ToolCall{{ID: "c1", Name: "conversation_search", Arguments: `{"query":"tea"}`}}},
		llmtest.Step{ToolCalls: []agents.ToolCall{{ID: "c2", Name: "memory_insert", Arguments: `{"label":"human","new_string":"Likes tea"}`}}},
		llmtest.Step{Content: "never asked for"},
	)
	resp := send(t, r, a.ID, "Remember that I like tea.")
	if resp.StopReason.StopReason != "tool_rule" {
		t.Fatalf("stop reason %q; want tool_rule (the terminal tool ended the turn)", resp.StopReason.StopReason)
	}
	reqs := r.llm.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model calls; want 3 (answer, required tool, terminal tool)", len(reqs))
	}
	second := reqs[1].Messages
	if last := second[len(second)-1]; last.Role != "user" || !strings.Contains(last.Content, "conversation_search") {
		t.Fatalf("after an early answer the model was given %+v; want a reason naming the required tool", last)
	}
	if !strings.Contains(reqs[0].Messages[0].Content, "memory_insert ends your response") {
		t.Errorf("the rules are not in the system message")
	}
	b, _ := r.n.Service.GetAgentBlock(ctx, a.ID, "human")
	if !strings.Contains(b.Value, "Likes tea") {
		t.Errorf("the terminal tool did not run: %q", b.Value)
	}
	runs, err := r.n.Service.ListRuns(ctx, api.RunFilter{AgentIDs: []string{a.ID}}, api.Page{})
	if err != nil || len(runs) != 1 || runs[0].StopReason == nil || *runs[0].StopReason != "tool_rule" {
		t.Fatalf("runs %+v %v; want one, stopped by tool_rule", runs, err)
	}
}

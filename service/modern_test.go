package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// These tests drive the modern loop (letta_v1_agent) against the scripted
// model, as the MemGPT tests in runtime_test.go drive the 0.5 loop.

// modernAgent creates an agent through the modern API without an agent
// type: Letta 0.16.8's default, letta_v1_agent.
func (r *rig) modernAgent(t *testing.T, tools ...string) api.AgentState {
	t.Helper()
	limit := 200
	a, err := r.n.Service.CreateAgent(context.Background(), api.CreateAgent{
		Model: ptr("openai/gpt-4o-mini"),
		Tools: tools,
		MemoryBlocks: []api.CreateBlock{
			{Label: "persona", Value: "I am Sam.", Limit: &limit},
			{Label: "human", Value: "Name: Ada", Limit: &limit},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.AgentType != "letta_v1_agent" {
		t.Fatalf("default agent_type = %q, want letta_v1_agent", a.AgentType)
	}
	return a
}

func toolNames(ts []api.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestModernAgentDefaults(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	if got := strings.Join(toolNames(a.Tools), ","); got != "conversation_search,memory_insert,memory_replace" {
		t.Errorf("base tools = %s", got)
	}
	if len(a.MessageIDs) != 1 {
		t.Errorf("a new modern agent holds %d messages; want its system message alone", len(a.MessageIDs))
	}
	if a.LLMConfig == nil || a.LLMConfig.PutInnerThoughtsInKwargs == nil || *a.LLMConfig.PutInnerThoughtsInKwargs {
		t.Errorf("put_inner_thoughts_in_kwargs = %v; want false", a.LLMConfig)
	}
}

func TestModernPlainContentEndsTheTurn(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	r.llm.Push(llmtest.Step{Content: "Hello Ada!", Reasoning: "She greets me; greet back."})
	resp := send(t, r, a.ID, "Hi, I am Ada.")
	if got := strings.Join(types(resp.Messages), ","); got != "reasoning_message,assistant_message" {
		t.Fatalf("messages = %s", got)
	}
	if *resp.Messages[0].Reasoning != "She greets me; greet back." || resp.Messages[0].Source == nil || *resp.Messages[0].Source != "reasoner_model" {
		t.Errorf("reasoning = %+v", resp.Messages[0])
	}
	if said(resp) != "Hello Ada!" || resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 1 {
		t.Fatalf("said %q, stop %+v, usage %+v", said(resp), resp.StopReason, resp.Usage)
	}
	reqs := r.llm.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model calls", len(reqs))
	}
	req := reqs[0]
	if last := req.Messages[len(req.Messages)-1]; last.Role != "user" || last.Content != "Hi, I am Ada." {
		t.Errorf("the user's words reach the model as %+v; want them raw, as Letta 0.16 sends them", last)
	}
	if len(req.Messages) != 2 {
		t.Errorf("request holds %d messages; want the system message and the input (no boot, no login)", len(req.Messages))
	}
	for _, tl := range req.Tools {
		if tl.Name == "send_message" || strings.Contains(string(tl.Parameters), "request_heartbeat") || strings.Contains(string(tl.Parameters), "inner_thoughts") {
			t.Errorf("tool offered as the MemGPT loop offers it: %s %s", tl.Name, tl.Parameters)
		}
	}
	// The history shows the same, and the answer feeds the next request as
	// the assistant's content.
	hist, err := r.n.Service.ListMessages(context.Background(), a.ID, api.Page{Order: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(types(hist), ","); got != "system_message,user_message,reasoning_message,assistant_message" {
		t.Errorf("history = %s", got)
	}
	r.llm.Push(llmtest.Step{Content: "Still here."})
	send(t, r, a.ID, "Again?")
	next := r.llm.Requests()[1]
	if m := next.Messages[2]; m.Role != "assistant" || m.Content != "Hello Ada!" {
		t.Errorf("the earlier answer reaches the model as %+v", m)
	}
}

func TestModernToolChainThenAnswer(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t, "web_search")
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("memory_insert", map[string]any{"label": "human", "new_string": "Likes tea"})}},
		llmtest.Step{Content: "Let me also check the web.", ToolCalls: []agents.ToolCall{call("web_search", map[string]any{"query": "tea"}), call("core_memory_append", map[string]any{"name": "human", "content": "x"})}},
		llmtest.Step{Content: "Noted: you like tea."},
	)
	resp := send(t, r, a.ID, "I like tea")
	want := "tool_call_message,tool_return_message,assistant_message,tool_call_message,tool_call_message,tool_return_message,tool_return_message,assistant_message"
	if got := strings.Join(types(resp.Messages), ","); got != want {
		t.Fatalf("messages = %s\nwant       %s", got, want)
	}
	if resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 3 || said(resp) != "Let me also check the web." {
		t.Fatalf("stop %+v usage %+v said %q", resp.StopReason, resp.Usage, said(resp))
	}
	if *resp.Messages[len(resp.Messages)-1].Content != "Noted: you like tea." {
		t.Fatalf("last = %+v", resp.Messages[len(resp.Messages)-1])
	}
	b, _ := r.n.Service.GetAgentBlock(context.Background(), a.ID, "human")
	if b.Value != "Name: Ada\nLikes tea" {
		t.Fatalf("human block = %q", b.Value)
	}
	web, other := *resp.Messages[5].ToolReturn, *resp.Messages[6].ToolReturn
	if !strings.Contains(web, "web_search is not configured on this server") || *resp.Messages[5].Status != "error" {
		t.Errorf("web_search returned %s", web)
	}
	if !strings.Contains(other, "[ToolConstraintError] Cannot call core_memory_append, valid tools include: ['web_search', 'conversation_search', 'memory_insert', 'memory_replace'].") {
		t.Errorf("a tool the agent lacks returned %s", other)
	}
	reqs := r.llm.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model calls", len(reqs))
	}
	// Each step goes on from the tool returns themselves: no heartbeat in
	// between, and the edit is in the next system prompt.
	second := reqs[1]
	if last := second.Messages[len(second.Messages)-1]; last.Role != "tool" || !strings.Contains(last.Content, `"status": "OK"`) {
		t.Errorf("the second step was woken by %+v; want the tool's return", last)
	}
	if !strings.Contains(second.Messages[0].Content, "Name: Ada\nLikes tea") {
		t.Errorf("the edit is not in the next system prompt")
	}
	third := reqs[2]
	if n := len(third.Messages); third.Messages[n-1].Role != "tool" || third.Messages[n-2].Role != "tool" || len(third.Messages[n-3].ToolCalls) != 2 {
		t.Errorf("the two calls and their returns reach the model as %+v", third.Messages[n-3:])
	}
}

func TestModernMaxSteps(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	r.llm.SetResponder(func(llmtest.Recorded) llmtest.Step {
		return llmtest.Step{ToolCalls: []agents.ToolCall{call("conversation_search", map[string]any{"query": "tea"})}}
	})
	resp, err := r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: "search forever"}},
		service.SendOptions{UseAssistantMessage: true, MaxSteps: 3})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason.StopReason != "max_steps" || resp.Usage.StepCount != 3 || len(r.llm.Requests()) != 3 {
		t.Fatalf("stop %+v, usage %+v, %d model calls", resp.StopReason, resp.Usage, len(r.llm.Requests()))
	}
	if got := strings.Join(types(resp.Messages), ","); got != strings.Repeat("tool_call_message,tool_return_message,", 2)+"tool_call_message,tool_return_message" {
		t.Fatalf("messages = %s", got)
	}
	if ret := firstReturn(resp); !strings.Contains(ret, "results") {
		t.Errorf("conversation_search returned %s", ret)
	}
	runs, err := r.n.Service.ListRuns(context.Background(), api.RunFilter{AgentIDs: []string{a.ID}}, api.Page{})
	if err != nil || len(runs) != 1 || runs[0].StopReason == nil || *runs[0].StopReason != "max_steps" || runs[0].Status != "completed" {
		t.Errorf("runs = %+v, %v", runs, err)
	}
}

func TestMemGPTAgentIsUnchangedBesideModernOnes(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	old, modern := r.agent(t), r.modernAgent(t)
	if old.AgentType != "memgpt_agent" || len(old.Tools) != len(agents.BaseTools()) {
		t.Fatalf("memgpt agent: type %q, tools %v", old.AgentType, toolNames(old.Tools))
	}
	r.llm.Push(say("Hi from 0.5."), llmtest.Step{Content: "Hi from v1."})
	if got := said(send(t, r, old.ID, "hi")); got != "Hi from 0.5." {
		t.Errorf("memgpt said %q", got)
	}
	if got := said(send(t, r, modern.ID, "hi")); got != "Hi from v1." {
		t.Errorf("v1 said %q", got)
	}
	reqs := r.llm.Requests()
	if !strings.Contains(reqs[0].Messages[len(reqs[0].Messages)-1].Content, `"type": "user_message"`) {
		t.Errorf("the memgpt input lost its envelope: %q", reqs[0].Messages[len(reqs[0].Messages)-1].Content)
	}
}

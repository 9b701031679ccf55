package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// These tests drive the agent loop against a scripted LLM: a real HTTP
// server on loopback speaking OpenAI's protocol, through the official SDK.

type rig struct {
	n   *node.Node
	llm *llmtest.Server
	cfg node.Config
}

func startRig(t *testing.T, dir string, script *llmtest.Server, mods ...func(*node.Config)) *rig {
	t.Helper()
	if script == nil {
		script = llmtest.NewServer(t)
	}
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test-key", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	handle := "openai/gpt-4o-mini"
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	cfg.Service.Providers = reg
	cfg.Service.Models = []api.Model{{LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 8000, Handle: &handle}, Name: "gpt-4o-mini"}}
	// The hostile-tool tests check whatever isolation the host permits,
	// and say which cases they skip where it is weak.
	cfg.Tools = node.ToolsAny
	for _, mod := range mods {
		mod(&cfg)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return &rig{n: n, llm: script, cfg: cfg}
}

func (r *rig) agent(t *testing.T) api.AgentState {
	t.Helper()
	limit := 200
	a, err := r.n.Service.CreateAgent(context.Background(), api.CreateAgent{
		Model:     ptr("openai/gpt-4o-mini"),
		AgentType: ptr("memgpt_agent"), // the rig's scripts speak the MemGPT loop
		MemoryBlocks: []api.CreateBlock{
			{Label: "persona", Value: "I am Sam.", Limit: &limit},
			{Label: "human", Value: "Name: Ada", Limit: &limit},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func call(name string, args map[string]any) agents.ToolCall {
	b, _ := json.Marshal(args)
	return agents.ToolCall{Name: name, Arguments: string(b)}
}

func say(text string) llmtest.Step {
	return llmtest.Step{Content: "I should answer.", ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": text})}}
}

func send(t *testing.T, r *rig, agentID, text string) api.LettaResponse {
	t.Helper()
	resp, err := r.n.Service.SendMessage(context.Background(), agentID, []service.Input{{Role: "user", Text: text}}, service.SendOptions{UseAssistantMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func firstReturn(resp api.LettaResponse) string {
	for _, m := range resp.Messages {
		if m.MessageType == api.ToolReturnMessageType {
			return *m.ToolReturn
		}
	}
	return ""
}

func said(resp api.LettaResponse) string {
	for _, m := range resp.Messages {
		if m.MessageType == api.AssistantMessageType {
			return *m.Content
		}
	}
	return ""
}

func types(ms []api.LettaMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MessageType)
	}
	return out
}

func TestHeartbeatChainAndMemoryEdit(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(
		llmtest.Step{Content: "Ada likes tea; remember it.", ToolCalls: []agents.ToolCall{call("core_memory_append", map[string]any{"name": "human", "content": "Likes tea", "request_heartbeat": true})}},
		say("Noted, Ada!"),
	)
	resp := send(t, r, a.ID, "I like tea")
	if got := strings.Join(types(resp.Messages), ","); got != "reasoning_message,tool_call_message,tool_return_message,reasoning_message,assistant_message,tool_return_message" {
		t.Fatalf("messages = %s", got)
	}
	if resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 2 {
		t.Fatalf("stop %+v usage %+v", resp.StopReason, resp.Usage)
	}
	if *resp.Messages[4].Content != "Noted, Ada!" {
		t.Fatalf("assistant said %q", *resp.Messages[4].Content)
	}
	b, _ := r.n.Service.GetAgentBlock(context.Background(), a.ID, "human")
	if b.Value != "Name: Ada\nLikes tea" {
		t.Fatalf("human block = %q", b.Value)
	}
	reqs := r.llm.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls", len(reqs))
	}
	first, second := reqs[0], reqs[1]
	if !strings.Contains(first.Messages[0].Content, "Name: Ada") || strings.Contains(first.Messages[0].Content, "Likes tea") {
		t.Fatalf("first system prompt:\n%s", first.Messages[0].Content)
	}
	if !strings.Contains(second.Messages[0].Content, "Name: Ada\nLikes tea") {
		t.Fatalf("the edit is not in the next request's system prompt:\n%s", second.Messages[0].Content)
	}
	last := second.Messages[len(second.Messages)-1]
	if last.Role != "user" || !strings.Contains(last.Content, agents.HeartbeatRequested) {
		t.Fatalf("the second step was not woken by a heartbeat: %+v", last)
	}
	if first.ParallelToolCalls == nil || *first.ParallelToolCalls {
		t.Fatal("parallel tool calls not disabled")
	}
	var tool agents.Tool
	for _, tl := range first.Tools {
		if tl.Name == "core_memory_append" {
			tool = tl
		}
	}
	if !strings.Contains(string(tool.Parameters), `"inner_thoughts"`) {
		t.Fatalf("inner thoughts not requested as an argument: %s", tool.Parameters)
	}
}

func TestOverLimitEditIsRefused(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("core_memory_append", map[string]any{"name": "human", "content": strings.Repeat("x", 300), "request_heartbeat": true})}},
		say("Too long, sorry."),
	)
	resp := send(t, r, a.ID, "remember a lot")
	var ret string
	for _, m := range resp.Messages {
		if m.MessageType == api.ToolReturnMessageType && ret == "" {
			ret = *m.ToolReturn
		}
	}
	if !strings.Contains(ret, `"status": "Failed"`) || !strings.Contains(ret, "character limit") {
		t.Fatalf("the model was not told why: %s", ret)
	}
	b, _ := r.n.Service.GetAgentBlock(context.Background(), a.ID, "human")
	if b.Value != "Name: Ada" {
		t.Fatalf("refused edit changed the block: %q", b.Value)
	}
	reqs := r.llm.Requests()
	if last := reqs[1].Messages[len(reqs[1].Messages)-1]; !strings.Contains(last.Content, agents.HeartbeatFailed) {
		t.Fatalf("a failed function did not chain with the failure heartbeat: %+v", last)
	}
}

func TestArchivalInsertThenSearch(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("archival_memory_insert", map[string]any{"content": "Ada's cat is named Miso.", "request_heartbeat": true})}},
		llmtest.Step{ToolCalls: []agents.ToolCall{call("archival_memory_search", map[string]any{"query": "cat", "request_heartbeat": true})}},
		say("Your cat is Miso."),
	)
	resp := send(t, r, a.ID, "My cat is Miso")
	found := false
	for _, m := range resp.Messages {
		if m.MessageType == api.ToolReturnMessageType && strings.Contains(*m.ToolReturn, "Showing 1 of 1 results") && strings.Contains(*m.ToolReturn, "Miso") {
			found = true
		}
	}
	if !found {
		t.Fatalf("search did not find the inserted memory: %+v", resp.Messages)
	}
	if s, _ := r.n.Service.ArchivalSummary(context.Background(), a.ID); s.Size != 1 {
		t.Fatalf("archival size %d", s.Size)
	}
}

func TestConversationSearchFindsOldMessage(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(say("Nice to meet you."))
	send(t, r, a.ID, "My favourite colour is teal")
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("conversation_search", map[string]any{"query": "favourite colour", "request_heartbeat": true})}},
		say("Teal!"),
	)
	resp := send(t, r, a.ID, "What colour do I like?")
	if ret := firstReturn(resp); !strings.Contains(ret, "My favourite colour is teal") {
		t.Fatalf("conversation_search returned %s", ret)
	}
}

// TestConversationSearchDateBounds checks conversation_search_date with days
// outside what the index holds (1677..2262) and days that end before they
// start: results or none, never a failed tool.
func TestConversationSearchDateBounds(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(say("Nice to meet you."))
	send(t, r, a.ID, "My favourite colour is teal")
	for _, c := range []struct {
		start, end, want string
	}{
		{"1000-01-01", "9999-12-31", "My favourite colour is teal"},
		{"2000-01-01", "9999-12-31", "My favourite colour is teal"},
		{"9999-01-01", "9999-12-31", "No results found"},
		{"1000-01-01", "1001-01-01", "No results found"},
		{"2025-01-02", "2025-01-01", "No results found"},
	} {
		r.llm.Push(
			llmtest.Step{ToolCalls: []agents.ToolCall{call("conversation_search_date", map[string]any{"start_date": c.start, "end_date": c.end, "request_heartbeat": true})}},
			say("Done."),
		)
		resp := send(t, r, a.ID, "What did I say?")
		if ret := firstReturn(resp); !strings.Contains(ret, c.want) || !strings.Contains(ret, `"status": "OK"`) {
			t.Errorf("conversation_search_date %s..%s returned %s, want %q", c.start, c.end, ret, c.want)
		}
	}
}

func TestProviderFailureLeavesNoPartialStep(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	cases := []llmtest.Step{
		{Status: 500},
		{Malformed: true},
		{Empty: true},
		{ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message": "unterminated`}}, Finish: "tool_calls"}, // malformed args: a failed function, chained
	}
	for i, st := range cases[:3] {
		r.llm.Push(st)
		before := r.n.Projection.Applied()
		_, err := r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: fmt.Sprint("hello ", i)}}, service.SendOptions{})
		if !fault.Is(err, fault.Unavailable) || !strings.Contains(fault.Message(err), "model provider failed") {
			t.Fatalf("case %d: err = %v", i, err)
		}
		if got := r.n.Projection.Applied() - before; got != 1 {
			t.Fatalf("case %d: %d events appended; want only the user's message", i, got)
		}
	}
	// A malformed tool call is reported to the model, which then recovers.
	r.llm.Push(cases[3], say("Sorry, let me try again."))
	resp := send(t, r, a.ID, "hi again")
	if !strings.Contains(firstReturn(resp), "Error parsing JSON") {
		t.Fatalf("malformed arguments: %+v", resp.Messages)
	}
}

func TestNoModelIsAClearError(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a, err := r.n.Service.CreateAgent(context.Background(), api.CreateAgent{LLMConfig: json.RawMessage(`{"model":"llama3","model_endpoint_type":"ollama","context_window":8192}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: "hi"}}, service.SendOptions{})
	if !fault.Is(err, fault.Invalid) || !strings.Contains(fault.Message(err), "ollama/llama3") {
		t.Fatalf("err = %v", err)
	}
}

func TestSummarizeOnOverflowSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	r := startRig(t, dir, script)
	a := r.agent(t)
	for i := 0; i < 4; i++ {
		r.llm.Push(say(fmt.Sprint("reply ", i)))
		send(t, r, a.ID, fmt.Sprint("message number ", i, strings.Repeat(" padding", 40)))
	}
	before, _ := r.n.Service.ListContextMessages(context.Background(), a.ID)
	r.llm.Push(
		llmtest.Step{Overflow: true},
		llmtest.Step{Content: "Ada sent four long messages and I replied to each."},
		say("Still here."),
	)
	resp := send(t, r, a.ID, "are you still there?")
	if said(resp) != "Still here." {
		t.Fatalf("after summarizing: %+v", resp.Messages)
	}
	after, _ := r.n.Service.ListContextMessages(context.Background(), a.ID)
	if len(after) >= len(before) {
		t.Fatalf("context did not shrink: %d → %d messages", len(before), len(after))
	}
	hasSummary := func(ms []api.LettaMessage) bool {
		return len(ms) > 1 && ms[1].MessageType == api.UserMessageType && strings.Contains(*ms[1].Content, "The following is a summary of the previous")
	}
	if !hasSummary(after) {
		t.Fatalf("no summary at the head of the context: %+v", after[:2])
	}
	// Every kept tool return still has its call.
	calls := map[string]bool{}
	for _, m := range after {
		if m.ToolCall != nil {
			calls[m.ToolCall.ToolCallID] = true
		}
		if m.MessageType == api.AssistantMessageType {
			calls["assistant"] = true
		}
	}
	r.n.Close(context.Background())
	r2 := startRig(t, dir, script)
	restarted, _ := r2.n.Service.ListContextMessages(context.Background(), a.ID)
	if len(restarted) != len(after) || !hasSummary(restarted) {
		t.Fatalf("after restart the context has %d messages (want %d) and summary %v", len(restarted), len(after), hasSummary(restarted))
	}
	r2.llm.Push(say("Yes."))
	send(t, r2, a.ID, "still usable?")
}

func TestMessagesToOneAgentRunInOrder(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	const n = 10
	r.llm.SetDefault(&llmtest.Step{ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": "ok"})}, Usage: agents.Usage{PromptTokens: 90, CompletionTokens: 10, TotalTokens: 100}})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: fmt.Sprint("msg ", i)}}, service.SendOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// One at a time: model call i sees exactly i+1 of the messages, the
	// newest last, and every earlier one already answered.
	reqs := r.llm.Requests()
	if len(reqs) != n {
		t.Fatalf("%d model calls for %d messages", len(reqs), n)
	}
	for i, req := range reqs {
		ms := req.Messages
		var seen int
		for j, m := range ms {
			if m.Role == "user" && strings.Contains(m.Content, `"msg `) {
				seen++
				if j < len(ms)-1 && ms[j+1].Role != "assistant" {
					t.Fatalf("request %d: message %q was not answered before the next ran", i, m.Content)
				}
			}
		}
		if seen != i+1 || !strings.Contains(ms[len(ms)-1].Content, `"msg `) {
			t.Fatalf("request %d saw %d of the messages; want %d, newest last", i, seen, i+1)
		}
	}
}

func TestRunCommands(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	ctx := context.Background()
	r.llm.Push(say("first answer"))
	send(t, r, a.ID, "question")
	resp, err := r.n.Service.RunCommand(ctx, a.ID, "/memory")
	if err != nil || !strings.Contains(*resp.Messages[0].Content, "<human characters=") {
		t.Fatalf("/memory: %+v %v", resp, err)
	}
	if _, err := r.n.Service.RunCommand(ctx, a.ID, "/rewrite better answer"); err != nil {
		t.Fatal(err)
	}
	msgs, _ := r.n.Service.ListContextMessages(ctx, a.ID)
	found := false
	for _, m := range msgs {
		if m.MessageType == api.AssistantMessageType && *m.Content == "better answer" {
			found = true
		}
	}
	if !found {
		t.Fatal("/rewrite did not change the last reply in context")
	}
	r.llm.Push(say("retried answer"))
	if resp, err := r.n.Service.RunCommand(ctx, a.ID, "/retry"); err != nil || said(resp) != "retried answer" {
		t.Fatalf("/retry: %+v %v", resp, err)
	}
	before, _ := r.n.Service.ListContextMessages(ctx, a.ID)
	if _, err := r.n.Service.RunCommand(ctx, a.ID, "/pop 2"); err != nil {
		t.Fatal(err)
	}
	after, _ := r.n.Service.ListContextMessages(ctx, a.ID)
	if len(after) >= len(before) {
		t.Fatalf("/pop 2: %d → %d", len(before), len(after))
	}
	r.llm.Push(say("beat"))
	if resp, err := r.n.Service.RunCommand(ctx, a.ID, "/heartbeat"); err != nil || resp.Usage.StepCount != 1 {
		t.Fatalf("/heartbeat: %+v %v", resp, err)
	}
	if _, err := r.n.Service.RunCommand(ctx, a.ID, "/nonsense"); !fault.Is(err, fault.Invalid) {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestRetriedSendIsANoOp(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	in := []service.Input{{Role: "user", Text: "hello"}}
	opts := service.SendOptions{UseAssistantMessage: true, Key: "otid-1"}
	r.llm.Push(say("Hi!"))
	first, err := r.n.Service.SendMessage(context.Background(), a.ID, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	applied := r.n.Projection.Applied()
	again, err := r.n.Service.SendMessage(context.Background(), a.ID, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	if said(again) != "Hi!" || len(again.Messages) != len(first.Messages) {
		t.Fatalf("retry answered %+v, first %+v", again.Messages, first.Messages)
	}
	if r.n.Projection.Applied() != applied || len(r.llm.Requests()) != 1 {
		t.Fatalf("a retried send ran again: %d events, %d model calls", r.n.Projection.Applied()-applied, len(r.llm.Requests()))
	}
	// A send whose step failed is answered by its retry, without a second copy of the input.
	r.llm.Push(llmtest.Step{Status: 500}, say("Sorry for the wait."))
	opts.Key = "otid-2"
	if _, err := r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: "are you there?"}}, opts); err == nil {
		t.Fatal("the provider failure was not reported")
	}
	resp, err := r.n.Service.SendMessage(context.Background(), a.ID, []service.Input{{Role: "user", Text: "are you there?"}}, opts)
	if err != nil || said(resp) != "Sorry for the wait." {
		t.Fatalf("retry after a failure: %+v %v", resp, err)
	}
	msgs, _ := r.n.Service.ListContextMessages(context.Background(), a.ID)
	copies := 0
	for _, m := range msgs {
		if m.MessageType == api.UserMessageType && strings.Contains(*m.Content, "are you there?") {
			copies++
		}
	}
	if copies != 1 {
		t.Fatalf("the retried input is in the context %d times", copies)
	}
}

func TestSummarizeWhenTheWindowIsFull(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	// A small window: the long messages below overflow it without the
	// provider having to say so.
	a, err := r.n.Service.CreateAgent(context.Background(), api.CreateAgent{
		LLMConfig: json.RawMessage(`{"model":"gpt-4o-mini","model_endpoint_type":"openai","context_window":3000,"handle":"openai/gpt-4o-mini"}`),
		AgentType: ptr("memgpt_agent"),
	})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("lorem ipsum dolor sit amet ", 60)
	step := say("ok")
	r.llm.SetDefault(&step) // the summarizer gets this reply too; its content serves as the summary
	summarized := false
	for i := 0; i < 8 && !summarized; i++ {
		send(t, r, a.ID, long)
		for _, req := range r.llm.Requests() {
			if len(req.Tools) == 0 && strings.Contains(req.Messages[0].Content, "summarize") {
				summarized = true
			}
		}
	}
	if !summarized {
		t.Fatal("the context grew past the window without a summary")
	}
}

// inflight counts how many model calls run at once.
type inflight struct {
	agents.Model
	mu       sync.Mutex
	now, max int
}

func (m *inflight) Complete(ctx context.Context, req agents.Request) (agents.Response, error) {
	m.mu.Lock()
	m.now++
	m.max = max(m.max, m.now)
	m.mu.Unlock()
	defer func() { m.mu.Lock(); m.now--; m.mu.Unlock() }()
	return m.Model.Complete(ctx, req)
}

func TestManyAgentsRunInParallel(t *testing.T) {
	script := llmtest.NewServer(t)
	step := say("ok")
	step.Delay = 200 * time.Millisecond // long enough for calls to overlap if they may
	step.Usage = agents.Usage{PromptTokens: 90, CompletionTokens: 10, TotalTokens: 100}
	script.SetDefault(&step)
	counter := &inflight{Model: llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test-key", BaseURL: script.URL, MaxRetries: -1, Timeout: 30 * time.Second})}
	reg := llm.NewRegistry()
	reg.Add("openai", counter)
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Service.Providers = reg
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	const agentsN = 100
	ids := make([]string, agentsN)
	for i := range ids {
		a, err := n.Service.CreateAgent(context.Background(), api.CreateAgent{AgentType: ptr("memgpt_agent"), LLMConfig: json.RawMessage(`{"model":"gpt-4o-mini","model_endpoint_type":"openai","context_window":128000}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.Service.SendMessage(context.Background(), id, []service.Input{{Role: "user", Text: "hi"}}, service.SendOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(script.Requests()) != agentsN {
		t.Fatalf("%d model calls for %d agents", len(script.Requests()), agentsN)
	}
	// Serialized, at most one call would be in flight.
	if counter.max < 10 {
		t.Fatalf("at most %d model calls ran at once across %d agents", counter.max, agentsN)
	}
	t.Logf("up to %d agents ran at once", counter.max)
}

func TestCustomPythonToolRuns(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	ctx := context.Background()
	src := `def roll_dice(sides: int, agent_state: "AgentState") -> str:
    """Roll a die.

    Args:
        sides (int): how many sides the die has
    """
    print("rolling for", agent_state["name"])
    if sides < 1:
        raise ValueError("a die needs sides")
    return f"rolled {sides} for {agent_state['memory']['human']['value']}"
`
	tool, err := r.n.Service.CreateTool(ctx, api.CreateTool{SourceCode: src}, true)
	if err != nil {
		t.Fatal(err)
	}
	a := r.agent(t)
	if _, err := r.n.Service.AttachTool(ctx, a.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("roll_dice", map[string]any{"sides": 6, "request_heartbeat": true})}},
		say("Six!"),
	)
	resp := send(t, r, a.ID, "roll a die")
	var ret api.LettaMessage
	for _, m := range resp.Messages {
		if m.MessageType == api.ToolReturnMessageType && ret.ToolReturn == nil {
			ret = m
		}
	}
	if ret.ToolReturn == nil || !strings.Contains(*ret.ToolReturn, "rolled 6 for Name: Ada") || *ret.Status != "success" {
		t.Fatalf("tool return %+v", ret)
	}
	if len(ret.Stdout) == 0 || !strings.Contains(strings.Join(ret.Stdout, "\n"), "rolling for") {
		t.Fatalf("stdout not captured: %v", ret.Stdout)
	}
	// An exception is reported to the model as a failed function, with its type.
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("roll_dice", map[string]any{"sides": 0, "request_heartbeat": true})}},
		say("That die had no sides."),
	)
	resp = send(t, r, a.ID, "roll a die with no sides")
	if got := firstReturn(resp); !strings.Contains(got, `"status": "Failed"`) || !strings.Contains(got, "ValueError: a die needs sides") {
		t.Fatalf("failed tool return: %s", got)
	}
}

// TestSummarizeCommandRunsOnTheOwner: /summarize is a run request that the
// agent's owner runs between runs; too short a window is a 400 that leaves
// nothing queued, and a long one is summarized (one model call without
// tools) into a shorter window that holds the summary.
func TestSummarizeCommandRunsOnTheOwner(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	ctx := context.Background()
	if _, err := r.n.Service.RunCommand(ctx, a.ID, "/summarize"); !fault.Is(err, fault.Invalid) {
		t.Fatalf("/summarize of a new agent: %v; want Invalid (too few messages)", err)
	}
	for i := range 6 {
		r.llm.Push(say(fmt.Sprint("answer ", i)))
		send(t, r, a.ID, fmt.Sprint("question ", i))
	}
	before, _ := r.n.Service.ListContextMessages(ctx, a.ID)
	calls := len(r.llm.Requests())
	r.llm.Push(llmtest.Step{Content: "We talked about six questions."})
	resp, err := r.n.Service.RunCommand(ctx, a.ID, "/summarize")
	if err != nil {
		t.Fatalf("/summarize: %v", err)
	}
	if resp.StopReason.StopReason != "end_turn" || len(resp.Messages) != 0 {
		t.Fatalf("/summarize answered %+v", resp)
	}
	reqs := r.llm.Requests()
	if len(reqs) != calls+1 || len(reqs[calls].Tools) != 0 || !strings.Contains(reqs[calls].Messages[0].Content, "summarize") {
		t.Fatalf("model calls: %d before, %d after; want one summary request", calls, len(reqs))
	}
	after, _ := r.n.Service.ListContextMessages(ctx, a.ID)
	if len(after) >= len(before) {
		t.Fatalf("/summarize: window %d → %d messages", len(before), len(after))
	}
	found := false
	for _, m := range after {
		found = found || (m.Content != nil && strings.Contains(*m.Content, "We talked about six questions."))
	}
	if !found {
		t.Fatal("the summary is not in the context window")
	}
	if left := r.n.Service.Untaken()[a.ID]; left != 0 {
		t.Fatalf("the summary request is still queued at %d", left)
	}
}

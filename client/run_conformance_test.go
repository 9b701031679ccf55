package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// scripts routes model handles to scripted LLM servers, so that tests
// running in parallel on their own nodes each talk to their own script:
// "openai/script-N" is the Nth script registered.
var scripts = &scriptRouter{}

type scriptRouter struct {
	n      atomic.Int64
	models sync.Map // model name → agents.Model
}

func (r *scriptRouter) Lookup(handle string) (agents.Model, string, error) {
	_, name, _ := strings.Cut(handle, "/")
	m, ok := r.models.Load(name)
	if !ok {
		return nil, "", fmt.Errorf("no script for %s", handle)
	}
	return m.(agents.Model), name, nil
}

// script starts a scripted LLM and returns the llm_config that reaches it.
func script(t *testing.T) (*llmtest.Server, *api.LLMConfig) {
	s := llmtest.NewServer(t)
	name := fmt.Sprintf("script-%d", scripts.n.Add(1))
	scripts.models.Store(name, llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test-key", BaseURL: s.URL, MaxRetries: -1, Timeout: 10 * time.Second}))
	handle := "openai/" + name
	return s, &api.LLMConfig{Model: name, ModelEndpointType: "openai", ContextWindow: 128000, Handle: &handle}
}

func reply(text string) llmtest.Step {
	return llmtest.Step{Content: "I will answer.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: fmt.Sprintf(`{"message":%q}`, text)}}}
}

// testRunAgent covers the methods that run an agent: SendMessage,
// UserMessage, GetInContextMessages and RunCommand, with GetMessages and
// GetRecallMemorySummary seeing their results.
func testRunAgent(t *testing.T, ctx context.Context, c client.Client) {
	s, cfg := script(t)
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{LLMConfig: cfg}))(t)
	recall := must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size

	s.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		reply("Noted!"),
	)
	resp := must(c.UserMessage(ctx, a.ID, "I like tea"))(t)
	var said string
	for _, m := range resp.Messages {
		if m.MessageType == api.AssistantMessageType {
			said = *m.Content
		}
	}
	if said != "Noted!" || resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 2 {
		t.Errorf("UserMessage: said %q, stop %+v, usage %+v", said, resp.StopReason, resp.Usage)
	}
	mem := must(c.GetInContextMemory(ctx, a.ID))(t)
	if h, _ := mem.Get("human"); !strings.HasSuffix(h.Value, "\nLikes tea") {
		t.Errorf("the agent's memory edit is missing: %q", h.Value)
	}
	// user, assistant+tool, heartbeat, assistant+tool: 6 more messages.
	if n := must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size; n != recall+6 {
		t.Errorf("recall %d after a two-step run; want %d", n, recall+6)
	}
	ctxMsgs := must(c.GetInContextMessages(ctx, a.ID))(t)
	if last := ctxMsgs[len(ctxMsgs)-1]; last.MessageType != api.ToolReturnMessageType {
		t.Errorf("the context ends with %s", last.MessageType)
	}
	hist := must(c.GetMessages(ctx, a.ID, "", "", 3))(t)
	if len(hist) == 0 || hist[len(hist)-1].MessageType != api.ToolReturnMessageType {
		t.Errorf("GetMessages: %+v", hist)
	}

	s.Push(reply("System noted."))
	resp = must(c.SendMessage(ctx, a.ID, "system", "The user is back."))(t)
	if len(resp.Messages) == 0 {
		t.Error("SendMessage(system) produced nothing")
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1].Messages; !strings.Contains(last[len(last)-1].Content, "system_alert") {
		t.Errorf("the system message did not reach the model as an alert: %+v", last[len(last)-1])
	}

	dump := must(c.RunCommand(ctx, a.ID, "/memory"))(t)
	if len(dump.Messages) != 1 || !strings.Contains(*dump.Messages[0].Content, "Likes tea") {
		t.Errorf("/memory: %+v", dump.Messages)
	}
	// Stored messages, not the LettaMessages they expand into, are popped.
	stored := func() int {
		ids := map[string]bool{}
		for _, m := range must(c.GetInContextMessages(ctx, a.ID))(t) {
			ids[m.ID] = true
		}
		return len(ids)
	}
	before := stored()
	must(c.RunCommand(ctx, a.ID, "/pop 2"))(t)
	if after := stored(); after != before-2 {
		t.Errorf("/pop 2: %d → %d messages in context", before, after)
	}
	_, err := c.RunCommand(ctx, a.ID, "/bogus")
	wantKind(t, "RunCommand(/bogus)", err, fault.Invalid)
	_, err = c.UserMessage(ctx, unknownID(events.PrefixAgent), "hi")
	wantKind(t, "UserMessage to an unknown agent", err, fault.NotFound)
}

// testStreamMessages covers SendMessageStream: messages as their steps
// commit, token deltas of the reasoning, stopping early, and errors.
func testStreamMessages(t *testing.T, ctx context.Context, c client.Client) {
	s, cfg := script(t)
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{LLMConfig: cfg}))(t)

	s.Push(
		llmtest.Step{Content: "Noting it.", ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		reply("Streamed!"),
	)
	var types []string
	var said string
	for m, err := range c.SendMessageStream(ctx, a.ID, "user", "I like tea", false) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		types = append(types, m.MessageType)
		if m.MessageType == api.AssistantMessageType {
			said = *m.Content
		}
	}
	want := []string{api.ReasoningMessageType, api.ToolCallMessageType, api.ToolReturnMessageType,
		api.ReasoningMessageType, api.AssistantMessageType, api.ToolReturnMessageType}
	if strings.Join(types, ",") != strings.Join(want, ",") || said != "Streamed!" {
		t.Errorf("streamed %v saying %q; want %v saying %q", types, said, want, "Streamed!")
	}

	// With tokens, the reasoning comes in pieces that share an id, and is
	// not repeated whole.
	s.Push(reply("In tokens."))
	var pieces []string
	ids := map[string]bool{}
	said = ""
	for m, err := range c.SendMessageStream(ctx, a.ID, "user", "and in tokens?", true) {
		if err != nil {
			t.Fatalf("token stream: %v", err)
		}
		switch m.MessageType {
		case api.ReasoningMessageType:
			pieces = append(pieces, *m.Reasoning)
			ids[m.ID] = true
		case api.AssistantMessageType:
			said = *m.Content
		}
	}
	if strings.Join(pieces, "") != "I will answer." || len(ids) != 1 || said != "In tokens." {
		t.Errorf("token stream: pieces %q (ids %v), said %q", pieces, ids, said)
	}

	// Stopping early stops the waiting, not the run.
	recall := must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size
	s.Push(reply("Finished anyway."))
	for _, err := range c.SendMessageStream(ctx, a.ID, "user", "stop listening", false) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		break
	}
	deadline := time.Now().Add(10 * time.Second)
	for must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size < recall+3 {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not complete after its listener left: recall %d, want %d", must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size, recall+3)
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := 0
	for _, err := range c.SendMessageStream(ctx, unknownID(events.PrefixAgent), "user", "hi", false) {
		n++
		wantKind(t, "SendMessageStream to an unknown agent", err, fault.NotFound)
	}
	if n != 1 {
		t.Errorf("a failed stream yielded %d items; want its error alone", n)
	}
}

// testRunCustomTool: an agent calls a Python tool made with CreateTool and
// gets its result, its prints and, past the tool's timeout, a failure.
func testRunCustomTool(t *testing.T, ctx context.Context, c client.Client) {
	src := `def shout(text: str, times: int = 1) -> str:
    """
    Shout some text.

    Args:
        text (str): What to shout.
        times (int): How many times.
    """
    import time
    print("shouting", text)
    if text == "slowly":
        time.sleep(30)
    return " ".join([text.upper()] * times)
`
	tool := must(c.CreateTool(ctx, src, client.CreateToolOptions{TimeoutSeconds: 1}))(t)
	s, cfg := script(t)
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{LLMConfig: cfg, Tools: []string{tool.Name}}))(t)
	shout := func(args string) api.LettaMessage {
		t.Helper()
		s.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{Name: "shout", Arguments: args}}}, reply("done"))
		resp := must(c.UserMessage(ctx, a.ID, "shout"))(t)
		for _, m := range resp.Messages {
			if m.MessageType == api.ToolReturnMessageType {
				return m
			}
		}
		t.Fatalf("no tool return in %d messages", len(resp.Messages))
		return api.LettaMessage{}
	}
	m := shout(`{"text":"hey","times":2,"request_heartbeat":true}`)
	if !strings.Contains(*m.ToolReturn, "HEY HEY") || *m.Status != "success" || strings.Join(m.Stdout, "\n") != "shouting hey" {
		t.Errorf("shout returned %s (status %s, stdout %q)", *m.ToolReturn, *m.Status, m.Stdout)
	}
	reqs := s.Requests()
	var sent string
	for _, msg := range reqs[len(reqs)-1].Messages {
		if msg.Role == "tool" {
			sent = msg.Content
		}
	}
	if !strings.Contains(sent, "HEY HEY") {
		t.Errorf("the model was sent the tool message %q", sent)
	}
	m = shout(`{"text":"slowly","request_heartbeat":true}`)
	if !strings.Contains(*m.ToolReturn, "TimeoutError: tool shout timed out after 1s") || *m.Status != "error" {
		t.Errorf("slow shout returned %s (status %s)", *m.ToolReturn, *m.Status)
	}
}

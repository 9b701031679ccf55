package service_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
)

// TestAnthropicThinkingAcrossSteps: an agent on a Claude model that thinks,
// with model_settings asking for thinking (Letta's enable_reasoner), asks
// the model for extended thinking; the reply's reasoning is shown as a
// reasoning_message, stored with its signature, and sent back first in the
// assistant message of the run's next step, as the API requires.
func TestAnthropicThinkingAcrossSteps(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	r := startRig(t, t.TempDir(), script, func(cfg *node.Config) {
		reg := cfg.Service.Providers.(*llm.Registry)
		reg.Add("anthropic", llm.NewAnthropic(llm.AnthropicConfig{APIKey: "sk-ant-test", BaseURL: script.AnthropicURL, MaxRetries: -1, Timeout: 5 * time.Second}))
		handle := "anthropic/claude-sonnet-4-5"
		cfg.Service.Models = append(cfg.Service.Models, api.Model{LLMConfig: api.LLMConfig{Model: "claude-sonnet-4-5", ModelEndpointType: "anthropic", ContextWindow: 200000, Handle: &handle}, Name: "claude-sonnet-4-5"})
	})
	a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{
		Model:         ptr("anthropic/claude-sonnet-4-5"),
		ModelSettings: json.RawMessage(`{"provider_type":"anthropic","thinking":{"type":"enabled","budget_tokens":2048}}`),
		MemoryBlocks:  []api.CreateBlock{{Label: "human", Value: "Name: Ada"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	thought := "She likes tea; I should keep that."
	r.llm.Push(
		llmtest.Step{Reasoning: thought, ToolCalls: []agents.ToolCall{{ID: "toolu_1", Name: "memory_insert", Arguments: `{"label":"human","new_string":"Likes tea"}`}}},
		llmtest.Step{Content: "Noted."},
	)
	resp := send(t, r, a.ID, "I like tea.")
	shown := false
	for _, m := range resp.Messages {
		shown = shown || m.MessageType == api.ReasoningMessageType && m.Reasoning != nil && *m.Reasoning == thought
	}
	if !shown || said(resp) != "Noted." {
		t.Fatalf("messages %v; want the reasoning shown and the answer", types(resp.Messages))
	}
	reqs := r.llm.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls; want 2", len(reqs))
	}
	var body struct {
		Thinking struct {
			Type   string `json:"type"`
			Budget int    `json:"budget_tokens"`
		} `json:"thinking"`
		Messages []struct {
			Role    string           `json:"role"`
			Content []map[string]any `json:"content"`
		} `json:"messages"`
	}
	json.Unmarshal(reqs[0].Body, &body)
	if body.Thinking.Type != "enabled" || body.Thinking.Budget != 2048 {
		t.Fatalf("the first call asked for thinking %+v; want enabled, 2048", body.Thinking)
	}
	json.Unmarshal(reqs[1].Body, &body)
	var last []map[string]any
	for _, m := range body.Messages {
		if m.Role == "assistant" {
			last = m.Content
		}
	}
	if len(last) < 2 || last[0]["type"] != "thinking" || last[0]["thinking"] != thought || last[0]["signature"] == "" || last[1]["type"] != "tool_use" {
		t.Fatalf("the second call sent the reply back as %v; want its signed thinking block before the tool call", last)
	}
}

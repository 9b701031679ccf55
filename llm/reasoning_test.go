package llm

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/llmtest"
)

// TestAnthropicThinking: a request with a reasoning budget to a Claude model
// that thinks asks for extended thinking (max_tokens above the budget); the
// reply's signed thinking blocks come back as Response.Thinking, streamed or
// not, and are sent back first in the assistant message of the next request.
// A forced tool call, a model that does not think, and a reply with calls
// but no blocks to send back each turn thinking off.
func TestAnthropicThinking(t *testing.T) {
	for _, stream := range []bool{false, true} {
		step := llmtest.Step{Reasoning: "Ada wants tea; note it.", ToolCalls: []agents.ToolCall{{ID: "toolu_1", Name: "send_message", Arguments: `{"message":"Noted."}`}}}
		s := llmtest.NewServer(t, step, llmtest.Step{Content: "Done."}, llmtest.Step{Content: "x"}, llmtest.Step{Content: "x"}, llmtest.Step{Content: "x"})
		m := NewAnthropic(AnthropicConfig{APIKey: testKey, BaseURL: s.AnthropicURL})
		req := request("claude-sonnet-4-5", stream, new([]agents.Delta))
		req.Tools = []agents.Tool{sendMessage}
		req.Reasoning = agents.Reasoning{Budget: 2048}
		resp, err := m.Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Reasoning != step.Reasoning || len(resp.Thinking) != 1 || resp.Thinking[0].Text != step.Reasoning || resp.Thinking[0].Signature == "" {
			t.Fatalf("stream=%v: reasoning %q, thinking %+v; want the signed block", stream, resp.Reasoning, resp.Thinking)
		}
		thinking := func(i int) (cfg struct {
			Type   string `json:"type"`
			Budget int    `json:"budget_tokens"`
		}, maxTokens int, lastAssistant []map[string]any) {
			var body struct {
				Thinking  json.RawMessage `json:"thinking"`
				MaxTokens int             `json:"max_tokens"`
				Messages  []struct {
					Role    string           `json:"role"`
					Content []map[string]any `json:"content"`
				} `json:"messages"`
			}
			json.Unmarshal(s.Requests()[i].Body, &body)
			json.Unmarshal(body.Thinking, &cfg)
			for _, msg := range body.Messages {
				if msg.Role == "assistant" {
					lastAssistant = msg.Content
				}
			}
			return cfg, body.MaxTokens, lastAssistant
		}
		if cfg, maxTokens, _ := thinking(0); cfg.Type != "enabled" || cfg.Budget != 2048 || maxTokens <= 2048 {
			t.Fatalf("stream=%v: thinking %+v, max_tokens %d; want enabled with 2048 and max_tokens above it", stream, cfg, maxTokens)
		}
		next := req
		next.Messages = append(append([]agents.Message(nil), req.Messages...),
			agents.Message{Role: "assistant", ToolCalls: resp.ToolCalls, Thinking: resp.Thinking},
			agents.Message{Role: "tool", ToolCallID: "toolu_1", Content: "None"})
		if _, err := m.Complete(context.Background(), next); err != nil {
			t.Fatal(err)
		}
		cfg, _, last := thinking(1)
		if cfg.Type != "enabled" || len(last) < 2 || last[0]["type"] != "thinking" || last[0]["signature"] != resp.Thinking[0].Signature || last[0]["thinking"] != step.Reasoning || last[1]["type"] != "tool_use" {
			t.Fatalf("stream=%v: the next request thinks %+v with the assistant's blocks %v; want its signed thinking block first", stream, cfg, last)
		}
		for i, off := range []agents.Request{
			func() agents.Request { r := next; r.ToolChoice = "required"; return r }(),
			func() agents.Request { r := next; r.Model = "claude-3-5-haiku-latest"; return r }(),
			func() agents.Request {
				r := next
				r.Messages = append([]agents.Message(nil), next.Messages...)
				r.Messages[2].Thinking = nil
				return r
			}(),
		} {
			if _, err := m.Complete(context.Background(), off); err != nil {
				t.Fatal(err)
			}
			if cfg, _, _ := thinking(2 + i); cfg.Type != "" {
				t.Errorf("stream=%v case %d: thinking %+v; want none", stream, i, cfg)
			}
		}
	}
}

// TestOpenAIReasoningEffort: reasoning_effort goes to reasoning models only.
func TestOpenAIReasoningEffort(t *testing.T) {
	s := llmtest.NewServer(t, llmtest.Step{Content: "a"}, llmtest.Step{Content: "b"})
	m := NewOpenAI(OpenAIConfig{APIKey: testKey, BaseURL: s.URL})
	for _, model := range []string{"gpt-5-mini", "gpt-4o-mini"} {
		req := request(model, false, nil)
		req.Reasoning = agents.Reasoning{Effort: "high", Budget: 4096}
		if _, err := m.Complete(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"high", ""} {
		var body struct {
			Effort string `json:"reasoning_effort"`
		}
		json.Unmarshal(s.Requests()[i].Body, &body)
		if body.Effort != want {
			t.Errorf("request %d: reasoning_effort %q, want %q", i, body.Effort, want)
		}
	}
}

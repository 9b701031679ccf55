package tokens_test

import (
	"encoding/json"
	"testing"

	"github.com/engram-dev/engram/tokens"
)

// cookbook is the example conversation of OpenAI's "How to count tokens
// with tiktoken", whose prompt the API bills as 129 tokens on gpt-4 and
// gpt-3.5-turbo and 124 on gpt-4o and gpt-4o-mini.
var cookbook = []tokens.Message{
	{Role: "system", Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
	{Role: "system", Name: "example_user", Content: "New synergies will help drive top-line growth."},
	{Role: "system", Name: "example_assistant", Content: "Things working well together will increase revenue."},
	{Role: "system", Name: "example_user", Content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
	{Role: "system", Name: "example_assistant", Content: "Let's talk later when we're less busy about how to do better."},
	{Role: "user", Content: "This late pivot means we don't have time to boil the ocean for the client deliverable."},
}

func TestMessagesCookbook(t *testing.T) {
	for model, want := range map[string]int{"gpt-4": 129, "gpt-3.5-turbo": 129, "gpt-4o": 124, "gpt-4o-mini": 124} {
		c, err := tokens.ForModel(model)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Messages(cookbook); got != want {
			t.Errorf("%s: Messages(cookbook) = %d, want %d", model, got, want)
		}
	}
}

func TestMessagesFormula(t *testing.T) {
	c := counter(t, tokens.CL100KBase)
	tests := []struct {
		name string
		msgs []tokens.Message
		want int
	}{
		{"empty request", nil, 3},
		// 3 per message + "user" 1 + "hello world" 2, + 3 priming.
		{"one message", []tokens.Message{{Role: "user", Content: "hello world"}}, 3 + 1 + 2 + 3},
		// A name adds its tokens and 1.
		{"named", []tokens.Message{{Role: "user", Name: "alice", Content: "hello world"}}, 3 + 1 + 2 + (1 + 1) + 3},
		// Tool calls add their names' and arguments' tokens.
		{"tool call", []tokens.Message{{Role: "assistant", ToolCalls: []tokens.ToolCall{
			{Name: "search", Arguments: `{"q":"x"}`},
			{Name: "search", Arguments: `{"q":"y"}`},
		}}}, 3 + c.Count("assistant") + 2*(c.Count("search")+c.Count(`{"q":"x"}`)) + 3},
		// A tool result adds its call id's tokens.
		{"tool result", []tokens.Message{{Role: "tool", ToolCallID: "call_abc123", Content: "42"}},
			3 + c.Count("tool") + c.Count("call_abc123") + c.Count("42") + 3},
	}
	for _, tt := range tests {
		if got := c.Messages(tt.msgs); got != tt.want {
			t.Errorf("%s: Messages = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestMessagesAdditive checks the documented decomposition: a request's
// count is the reply priming plus each message's count, so conversations
// add up.
func TestMessagesAdditive(t *testing.T) {
	msgs := append(append([]tokens.Message(nil), cookbook...),
		tokens.Message{Role: "assistant", ToolCalls: []tokens.ToolCall{{Name: "lookup", Arguments: `{"term":"boil the ocean"}`}}},
		tokens.Message{Role: "tool", ToolCallID: "call_1", Content: "an impossibly large task"},
	)
	for _, enc := range []tokens.Encoding{tokens.CL100KBase, tokens.O200KBase} {
		c := counter(t, enc)
		sum := tokens.ReplyPriming
		for _, m := range msgs {
			sum += c.Message(m)
		}
		if got := c.Messages(msgs); got != sum {
			t.Errorf("%s: Messages = %d, want ReplyPriming + Σ Message = %d", enc, got, sum)
		}
		for i := range len(msgs) + 1 {
			a, b := msgs[:i], msgs[i:]
			if got, want := c.Messages(msgs), c.Messages(a)+c.Messages(b)-tokens.ReplyPriming; got != want {
				t.Errorf("%s: split at %d: Messages(all) = %d, parts give %d", enc, i, got, want)
			}
		}
	}
}

// TestMessagesMonotonic checks that adding a message, or text, a name or a
// tool call to a message, never lowers the count.
func TestMessagesMonotonic(t *testing.T) {
	c := counter(t, tokens.O200KBase)
	base := []tokens.Message{{Role: "user", Content: "hello"}}
	grown := map[string][]tokens.Message{
		"another message": append(append([]tokens.Message(nil), base...), tokens.Message{Role: "assistant"}),
		"more content":    {{Role: "user", Content: "hello world"}},
		"a name":          {{Role: "user", Content: "hello", Name: "a"}},
		"a tool call":     {{Role: "user", Content: "hello", ToolCalls: []tokens.ToolCall{{Name: "f"}}}},
		"a tool call id":  {{Role: "user", Content: "hello", ToolCallID: "x"}},
	}
	prev := c.Messages(base)
	for name, msgs := range grown {
		if got := c.Messages(msgs); got <= prev {
			t.Errorf("with %s: Messages = %d, not more than %d", name, got, prev)
		}
	}
	// Every message costs at least PerMessage.
	if got := c.Message(tokens.Message{}); got != tokens.PerMessage {
		t.Errorf("Message(zero) = %d, want %d", got, tokens.PerMessage)
	}
}

// weather is the tool of the cookbook's tool-counting example. The API
// bills its definition, with the example's two messages, as 71 tokens on
// gpt-4 and 68 on gpt-4o beyond the messages' own count.
const weather = `{
  "type": "function",
  "function": {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
      "type": "object",
      "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]}
      },
      "required": ["location"]
    }
  }
}`

func TestTools(t *testing.T) {
	compact := `{"type":"function","function":{"name":"get_current_weather","description":"Get the current weather in a given location","parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},"required":["location"]}}}`
	for enc, billed := range map[tokens.Encoding]int{tokens.CL100KBase: 71, tokens.O200KBase: 68} {
		c := counter(t, enc)
		one := c.Tools([]json.RawMessage{json.RawMessage(weather)})
		if want := c.Count(compact); one != want {
			t.Errorf("%s: Tools = %d, want Count(compact JSON) = %d", enc, one, want)
		}
		// Indentation does not matter.
		if got := c.Tools([]json.RawMessage{json.RawMessage(compact)}); got != one {
			t.Errorf("%s: Tools(compact) = %d, Tools(indented) = %d", enc, got, one)
		}
		// The JSON text over-counts the provider's rendering, never under.
		if one < billed {
			t.Errorf("%s: Tools = %d, below the %d the API bills", enc, one, billed)
		}
		// Tools add up, and none is free.
		if got := c.Tools([]json.RawMessage{json.RawMessage(weather), json.RawMessage(weather)}); got != 2*one {
			t.Errorf("%s: two tools = %d, want %d", enc, got, 2*one)
		}
		if got := c.Tools(nil); got != 0 {
			t.Errorf("%s: Tools(nil) = %d, want 0", enc, got)
		}
		// Invalid JSON is counted as it is.
		if got, want := c.Tools([]json.RawMessage{json.RawMessage(`{"broken": `)}), c.Count(`{"broken": `); got != want {
			t.Errorf("%s: Tools(invalid) = %d, want %d", enc, got, want)
		}
	}
}

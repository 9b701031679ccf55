package tokens

import (
	"bytes"
	"encoding/json"
)

// A Message is one chat message, as far as counting it is concerned. It
// mirrors the fields of OpenAI's chat format without depending on any client
// library.
type Message struct {
	Role       string     // "system", "user", "assistant", "tool"
	Content    string     // the text; empty for an assistant message that only calls tools
	Name       string     // optional participant name
	ToolCalls  []ToolCall // an assistant message's tool calls
	ToolCallID string     // a tool message's answer-to id
}

// A ToolCall is one function call an assistant message makes.
type ToolCall struct {
	Name      string // the function's name
	Arguments string // its arguments, as JSON text
}

// The constants of OpenAI's published formula for counting a chat request
// (the "How to count tokens with tiktoken" cookbook).
const (
	// PerMessage is the overhead of each message: the tokens that frame
	// it (<|start|>role ... <|end|>), beyond its role text and content.
	PerMessage = 3
	// PerName is the extra overhead of a message that has a Name.
	PerName = 1
	// ReplyPriming is the overhead of each request: every reply is primed
	// with <|start|>assistant<|message|>.
	ReplyPriming = 3
)

// Messages counts the prompt tokens of a chat request made of msgs, the way
// OpenAI bills it:
//
//	Messages(msgs) = ReplyPriming + Σ Message(m)
//
// so Messages(nil) is ReplyPriming, and for any a and b,
// Messages(append(a, b...)) == Messages(a) + Messages(b) - ReplyPriming.
// Tool definitions sent with the request are counted separately, by
// [Counter.Tools]. For messages of role, content and name, the cookbook
// found this formula to match the API's prompt_tokens on gpt-3.5-turbo,
// gpt-4 and gpt-4o (TestMessagesCookbook repeats its example); tool calls
// and results are an approximation, the same for every call (see
// [Counter.Message]).
func (c *Counter) Messages(msgs []Message) int {
	n := ReplyPriming
	for _, m := range msgs {
		n += c.Message(m)
	}
	return n
}

// Message counts one message of a chat request:
//
//	PerMessage + Count(Role) + Count(Content)
//	+ (Count(Name) + PerName, if Name is set)
//	+ Count(ToolCallID)
//	+ Σ over ToolCalls (Count(call.Name) + Count(call.Arguments))
//
// Every string field is counted, and nothing else: no tokens are added for
// the framing the provider puts around a tool call, while a tool message's
// call id is counted though the provider may not render it. A caller that
// keeps a running total of a growing conversation can add Message of each
// new message to Messages(nil).
func (c *Counter) Message(m Message) int {
	n := PerMessage + c.Count(m.Role) + c.Count(m.Content) + c.Count(m.ToolCallID)
	if m.Name != "" {
		n += c.Count(m.Name) + PerName
	}
	for _, tc := range m.ToolCalls {
		n += c.Count(tc.Name) + c.Count(tc.Arguments)
	}
	return n
}

// Tools counts the prompt tokens of the tool (function) definitions sent
// with a request: the sum, over schemas, of the tokens of each definition's
// JSON text with insignificant whitespace removed, so that indentation does
// not change the count. A schema that is not valid JSON is counted as it
// is. Nothing is added per tool or per request. The provider renders the
// definitions in a form of its own, which it does not publish; the JSON
// text is longer, so this errs on the high side (for the cookbook's weather
// tool, 83 tokens against the 71 gpt-4 bills, 85 against 68 on gpt-4o).
// It is the same for the same schemas, and grows with them.
func (c *Counter) Tools(schemas []json.RawMessage) int {
	n := 0
	var buf bytes.Buffer
	for _, s := range schemas {
		buf.Reset()
		if err := json.Compact(&buf, s); err != nil {
			n += c.Count(string(s))
			continue
		}
		n += c.Count(buf.String())
	}
	return n
}

package agents

import (
	"context"
	"encoding/json"
	"errors"
)

// Model is one chat model behind a provider.
//
// Complete sends one request and returns the model's whole reply. It is safe
// for concurrent use. It returns an error wrapping ErrContextOverflow when
// the provider says the request does not fit the model's context window
// (including a reply cut off by the length limit), and an error wrapping
// ErrProvider for every other failure of the provider (timeouts, HTTP
// errors, unreadable replies), so that the caller can end the request
// without writing a partial step. ctx bounds the whole call.
type Model interface {
	Complete(ctx context.Context, req Request) (Response, error)
}

// Request is one chat completion request, in provider-neutral form.
type Request struct {
	Model       string    // the provider's model name, e.g. "gpt-4o-mini"
	Messages    []Message // the conversation, system message first
	Tools       []Tool    // functions the model may call
	ToolChoice  string    // "auto" (default), "required" or "none"
	Temperature *float64
	MaxTokens   int // 0: the provider's default (Anthropic needs one; use 4096)
	// ParallelToolCalls lets the model ask for several tool calls in one
	// reply; false asks for at most one (the MemGPT loop runs one a step).
	ParallelToolCalls bool
	// Stream, when set, receives text as it is generated (content deltas),
	// before Complete returns. Providers that cannot stream ignore it.
	Stream func(Delta)
	// Reasoning asks the model to reason natively before it answers, where
	// the provider and the model can.
	Reasoning Reasoning
}

// Reasoning is how much native reasoning a request asks for; zero asks for
// none. Budget is Anthropic's extended thinking, in tokens (Claude models
// that think); Effort is an OpenAI reasoning model's reasoning_effort
// ("low", "medium", "high", …).
type Reasoning struct {
	Budget int
	Effort string
}

// Thinking is a block of native reasoning that its provider wants sent back
// with the reply it came with (Anthropic's thinking blocks, signed, and
// redacted ones): Text and Signature, or Redacted, the opaque data of a
// block the provider does not show.
type Thinking struct {
	Text      string `json:"text,omitempty"`
	Signature string `json:"signature,omitempty"`
	Redacted  string `json:"redacted,omitempty"`
}

// Delta is a piece of a reply being generated.
type Delta struct {
	Content   string // text added to the reply's content
	Reasoning string // text added to the reply's native reasoning
	Reply     string // LoopV1: text added to the reply's content, the answer (Content stays empty)
	ToolName  string // set once, when a tool call starts
	ToolArgs  string // text added to the tool call's arguments
}

// Message is one message of the conversation.
type Message struct {
	Role       string     // system | user | assistant | tool
	Content    string     // text; for assistant messages the inner monologue
	Name       string     // optional sender name (user messages)
	ToolCalls  []ToolCall // assistant only
	ToolCallID string     // tool only: the call this answers
	// Thinking, on an assistant message, is the reply's native reasoning as
	// its provider wants it back (see Thinking).
	Thinking []Thinking
}

// ToolCall is a function call the model asked for.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text, exactly as the model produced it
}

// Tool is a function offered to the model.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON schema of the arguments (an object schema)
}

// Response is the model's reply.
type Response struct {
	ID      string
	Content string
	// Reasoning is the model's native reasoning, where the provider returns
	// it (reasoning_content of OpenAI-compatible servers, Anthropic's
	// thinking blocks); empty otherwise.
	Reasoning string
	// Thinking is the reasoning's blocks as the provider wants them back
	// with the reply (Anthropic's); empty for others.
	Thinking     []Thinking
	ToolCalls    []ToolCall
	FinishReason string // "stop", "tool_calls", "length", ...
	Usage        Usage
}

// Usage counts tokens of one call.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
}

// Errors a Model reports.
var (
	ErrContextOverflow = errors.New("context window exceeded")
	ErrProvider        = errors.New("model provider failed")
)

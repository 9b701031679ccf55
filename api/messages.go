package api

import (
	"encoding/json"
	"time"
)

// MessageCreate is one input message of a send.
type MessageCreate struct {
	Role    string          `json:"role"`              // user | system (| assistant, stored as given)
	Content json.RawMessage `json:"content,omitempty"` // a string or a list of {type:"text", text} parts
	Text    *string         `json:"text,omitempty"`    // 0.5 alias of content
	Name    *string         `json:"name,omitempty"`
	Otid    *string         `json:"otid,omitempty"`
	Type    *string         `json:"type,omitempty"` // message (the default) | approval
	// Approvals, on a message of type approval, answer the calls awaiting
	// approval; Approve, ApprovalRequestID and Reason are Letta's older
	// form (one answer for every call of the request).
	Approvals         []Approval `json:"approvals,omitempty"`
	Approve           *bool      `json:"approve,omitempty"`
	ApprovalRequestID *string    `json:"approval_request_id,omitempty"`
	Reason            *string    `json:"reason,omitempty"`

	SenderID    Ignored `json:"sender_id,omitempty"`
	GroupID     Ignored `json:"group_id,omitempty"`
	BatchItemID Ignored `json:"batch_item_id,omitempty"`
}

// SendMessage is the body of POST /v1/agents/{id}/messages.
type SendMessage struct {
	Messages                  []MessageCreate `json:"messages,omitempty"`
	Input                     json.RawMessage `json:"input,omitempty"` // sugar for one user message
	Streaming                 *bool           `json:"streaming,omitempty"`
	StreamSteps               *bool           `json:"stream_steps,omitempty"` // 0.5 alias of streaming
	StreamTokens              *bool           `json:"stream_tokens,omitempty"`
	IncludePings              *bool           `json:"include_pings,omitempty"`
	MaxSteps                  *int            `json:"max_steps,omitempty"`
	UseAssistantMessage       *bool           `json:"use_assistant_message,omitempty"`
	AssistantMessageToolName  *string         `json:"assistant_message_tool_name,omitempty"`
	AssistantMessageToolKwarg *string         `json:"assistant_message_tool_kwarg,omitempty"`
	IncludeReturnMessageTypes []string        `json:"include_return_message_types,omitempty"`

	Background               Ignored      `json:"background,omitempty"`
	OverrideModel            *string      `json:"override_model,omitempty"`
	OverrideSystem           Ignored      `json:"override_system,omitempty"`
	ClientTools              []ClientTool `json:"client_tools,omitempty"`
	ClientSkills             Ignored      `json:"client_skills,omitempty"`
	IncludeCompactionMessage Ignored      `json:"include_compaction_messages,omitempty"`
	ReturnLogprobs           Ignored      `json:"return_logprobs,omitempty"`
	TopLogprobs              Ignored      `json:"top_logprobs,omitempty"`
	ReturnTokenIDs           Ignored      `json:"return_token_ids,omitempty"`
	EnableThinking           Ignored      `json:"enable_thinking,omitempty"`
	ReturnMessageObject      Ignored      `json:"return_message_object,omitempty"`
	RunAsync                 Ignored      `json:"run_async,omitempty"`
	CallbackURL              Ignored      `json:"callback_url,omitempty"`
}

// StopReason says why a run ended.
type StopReason struct {
	MessageType string `json:"message_type"` // "stop_reason"
	StopReason  string `json:"stop_reason"`  // end_turn | max_steps | error | llm_api_error | ...
}

// Usage sums the model usage of a run.
type Usage struct {
	MessageType      string   `json:"message_type"` // "usage_statistics"
	CompletionTokens int      `json:"completion_tokens"`
	PromptTokens     int      `json:"prompt_tokens"`
	TotalTokens      int      `json:"total_tokens"`
	StepCount        int      `json:"step_count"`
	RunIDs           []string `json:"run_ids"`
}

// LettaResponse is what a send returns: the messages the agent produced
// (the input is not echoed), why it stopped, and the usage.
type LettaResponse struct {
	Messages   []LettaMessage `json:"messages"`
	StopReason StopReason     `json:"stop_reason"`
	Usage      Usage          `json:"usage"`
}

// StoredMessage is a message as it is stored and as the model sees it: one
// entry of recall memory (Letta 0.5's Message object). Its text is what the
// model reads (a user's text inside its JSON envelope, a tool's return
// package).
type StoredMessage struct {
	ID         string
	AgentID    string
	Role       string // system | user | assistant | tool
	Text       string
	Name       string
	Model      string
	ToolCalls  []StoredToolCall
	ToolCallID string
	CreatedAt  time.Time
}

// StoredToolCall is a function call inside a stored assistant message.
type StoredToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// MessageUpdate changes a stored message; nil fields are kept.
type MessageUpdate struct {
	Role       *string
	Text       *string
	Name       *string
	ToolCalls  *[]StoredToolCall
	ToolCallID *string
}

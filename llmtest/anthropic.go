package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/engram-dev/engram/agents"
)

// anthropicBlock is a content block of a request message.
type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// anthropicRequest is the part of a messages request the server reads.
type anthropicRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	Stream    bool            `json:"stream"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type                   string `json:"type"`
		DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
	} `json:"tool_choice"`
	Temperature *float64 `json:"temperature"`
}

// decodeAnthropic fills rec from a messages request body, and checks it as
// the service would: the error is the message of its 400 reply.
func decodeAnthropic(body []byte, rec *Recorded) error {
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("There was an issue with your request body: %v", err)
	}
	rec.Model = req.Model
	rec.Stream = req.Stream
	rec.MaxTokens = req.MaxTokens
	rec.Temperature = req.Temperature
	system, err := stringOrTexts(req.System)
	if err != nil {
		return fmt.Errorf("system: %v", err)
	}
	rec.System = system
	if tc := req.ToolChoice; tc != nil {
		rec.ToolChoice = tc.Type
		if tc.DisableParallelToolUse != nil {
			parallel := !*tc.DisableParallelToolUse
			rec.ParallelToolCalls = &parallel
		}
	}
	for _, t := range req.Tools {
		rec.Tools = append(rec.Tools, agents.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema})
	}
	var open map[string]bool // tool_use IDs of the previous assistant message
	for i, m := range req.Messages {
		msg := Message{Role: m.Role}
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		var blocks []anthropicBlock
		var s string
		if err := json.Unmarshal(m.Content, &s); err == nil {
			blocks = []anthropicBlock{{Type: "text", Text: s}}
		} else if err := json.Unmarshal(m.Content, &blocks); err != nil {
			return fmt.Errorf("messages.%d.content: Input should be a valid list", i)
		}
		var texts []string
		uses := map[string]bool{}
		for j, b := range blocks {
			switch b.Type {
			case "text":
				if b.Text == "" {
					return fmt.Errorf("messages.%d.content.%d.text: text content blocks must be non-empty", i, j)
				}
				texts = append(texts, b.Text)
			case "tool_use":
				if m.Role != "assistant" {
					return fmt.Errorf("messages.%d.content.%d: tool_use blocks may only appear in assistant messages", i, j)
				}
				var input map[string]any
				if json.Unmarshal(b.Input, &input) != nil || input == nil {
					return fmt.Errorf("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
				}
				var compact bytes.Buffer
				json.Compact(&compact, b.Input)
				msg.ToolCalls = append(msg.ToolCalls, agents.ToolCall{ID: b.ID, Name: b.Name, Arguments: compact.String()})
				uses[b.ID] = true
			case "tool_result":
				if m.Role != "user" || !open[b.ToolUseID] {
					return fmt.Errorf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
				}
				text, err := stringOrTexts(b.Content)
				if err != nil {
					return fmt.Errorf("messages.%d.content.%d.content: %v", i, j, err)
				}
				msg.ToolResults = append(msg.ToolResults, ToolResult{ToolCallID: b.ToolUseID, Content: text, IsError: b.IsError})
			}
		}
		open = uses
		msg.Content = joinText(texts)
		rec.Messages = append(rec.Messages, msg)
	}
	switch {
	case req.Model == "":
		return fmt.Errorf("model: Field required")
	case req.MaxTokens <= 0:
		return fmt.Errorf("max_tokens: Field required")
	case len(req.Messages) == 0:
		return fmt.Errorf("messages: at least one message is required")
	}
	return nil
}

func (s *Server) serveAnthropic(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rec := newRecorded("anthropic", r, body)
	w.Header().Set("request-id", "req_llmtest")
	if err := decodeAnthropic(body, &rec); err != nil {
		st, _ := s.record(rec, false)
		st.RetryAfter = -1
		writeError(w, st, http.StatusBadRequest, anthropicErrorBody(http.StatusBadRequest, err.Error(), ""))
		return
	}
	st, seq := s.record(rec, true)
	if !s.wait(r.Context(), st) {
		return
	}
	switch {
	case st.exhausted:
		writeError(w, st, http.StatusInternalServerError, anthropicErrorBody(http.StatusInternalServerError, "llmtest: script exhausted", ""))
	case st.Overflow:
		writeError(w, st, http.StatusBadRequest, anthropicErrorBody(http.StatusBadRequest, "prompt is too long: 208317 tokens > 200000 maximum", "invalid_request_error"))
	case st.Status != 0:
		b := st.ErrorBody
		if b == "" {
			b = anthropicErrorBody(st.Status, fmt.Sprintf("llmtest: scripted HTTP %d", st.Status), "")
		}
		writeError(w, st, st.Status, b)
	case st.Malformed && rec.Stream:
		e := startSSE(w)
		e.event("message_start", `{"type":"message_start","message":{"id":`)
	case st.Malformed:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_broken","type":"message","content":[{"type":`)
	case rec.Stream:
		s.streamAnthropic(w, st, rec, seq)
	default:
		writeJSON(w, http.StatusOK, anthropicReply(st, rec, seq, false))
	}
}

// anthropicErrorBody is an error reply as Anthropic shapes it. An empty typ
// is chosen from the status.
func anthropicErrorBody(status int, message, typ string) string {
	if typ == "" {
		switch status {
		case http.StatusBadRequest:
			typ = "invalid_request_error"
		case http.StatusUnauthorized:
			typ = "authentication_error"
		case http.StatusForbidden:
			typ = "permission_error"
		case http.StatusNotFound:
			typ = "not_found_error"
		case http.StatusRequestEntityTooLarge:
			typ = "request_too_large"
		case http.StatusTooManyRequests:
			typ = "rate_limit_error"
		case 529:
			typ = "overloaded_error"
		default:
			typ = "api_error"
		}
	}
	b, _ := json.Marshal(map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": typ, "message": message},
		"request_id": "req_llmtest",
	})
	return string(b)
}

// anthropicStop translates a finish reason in OpenAI's words to Anthropic's.
func anthropicStop(finish string) string {
	switch finish {
	case "stop":
		return "end_turn"
	case "tool_calls":
		return "tool_use"
	case "length":
		return "max_tokens"
	case "content_filter":
		return "refusal"
	}
	return finish
}

// toolInput is a tool call's arguments as a tool_use input: the arguments
// if they are a JSON object, else {}.
func toolInput(args string) json.RawMessage {
	var obj map[string]any
	if json.Unmarshal([]byte(args), &obj) != nil || obj == nil {
		return json.RawMessage(`{}`)
	}
	var b bytes.Buffer
	json.Compact(&b, []byte(args))
	return b.Bytes()
}

type anthropicContent struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"`
	Signature *string         `json:"signature,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

type anthropicMessage struct {
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	Role         string             `json:"role"`
	Model        string             `json:"model"`
	Content      []anthropicContent `json:"content"`
	StopReason   *string            `json:"stop_reason"`
	StopSequence *string            `json:"stop_sequence"`
	Usage        anthropicUsage     `json:"usage"`
}

func anthropicModel(rec Recorded) string {
	if rec.Model == "" {
		return "claude-sonnet-4-5"
	}
	return rec.Model
}

// anthropicReply is the message answering rec with st; start is the shell
// that opens a stream, without content or stop reason.
func anthropicReply(st Step, rec Recorded, seq int, start bool) anthropicMessage {
	u := st.usage(len(rec.Body))
	m := anthropicMessage{
		ID:      fmt.Sprintf("msg_llmtest%04d", seq),
		Type:    "message",
		Role:    "assistant",
		Model:   anthropicModel(rec),
		Content: []anthropicContent{},
		Usage:   anthropicUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens},
	}
	if start {
		m.Usage.OutputTokens = 1
		return m
	}
	stop := anthropicStop(st.finish())
	m.StopReason = &stop
	if st.Empty {
		return m
	}
	if st.Reasoning != "" {
		sig := "llmtest-signature"
		m.Content = append(m.Content, anthropicContent{Type: "thinking", Thinking: &st.Reasoning, Signature: &sig})
	}
	if st.Content != "" {
		m.Content = append(m.Content, anthropicContent{Type: "text", Text: &st.Content})
	}
	for i, c := range st.ToolCalls {
		m.Content = append(m.Content, anthropicContent{Type: "tool_use", ID: toolCallID("toolu_llmtest", c, seq, i), Name: c.Name, Input: toolInput(c.Arguments)})
	}
	return m
}

// streamAnthropic answers rec with st as message stream events:
// message_start, a ping, each content block's start, deltas and stop,
// message_delta with the stop reason and usage, and message_stop.
func (s *Server) streamAnthropic(w http.ResponseWriter, st Step, rec Recorded, seq int) {
	e := startSSE(w)
	e.event("message_start", map[string]any{"type": "message_start", "message": anthropicReply(st, rec, seq, true)})
	e.event("ping", map[string]string{"type": "ping"})
	final := anthropicReply(st, rec, seq, false)
	for i, c := range final.Content {
		start := c
		var deltas []map[string]string
		switch c.Type {
		case "text":
			empty := ""
			start.Text = &empty
			for _, p := range pieces(*c.Text, 4) {
				deltas = append(deltas, map[string]string{"type": "text_delta", "text": p})
			}
		case "thinking":
			empty := ""
			start.Thinking, start.Signature = &empty, &empty
			for _, p := range pieces(*c.Thinking, 4) {
				deltas = append(deltas, map[string]string{"type": "thinking_delta", "thinking": p})
			}
			deltas = append(deltas, map[string]string{"type": "signature_delta", "signature": *c.Signature})
		case "tool_use":
			start.Input = json.RawMessage(`{}`)
			for _, p := range pieces(string(c.Input), 8) {
				deltas = append(deltas, map[string]string{"type": "input_json_delta", "partial_json": p})
			}
		}
		e.event("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": start})
		for _, d := range deltas {
			e.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": d})
		}
		e.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	e.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": final.StopReason, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": final.Usage.OutputTokens},
	})
	e.event("message_stop", map[string]string{"type": "message_stop"})
}

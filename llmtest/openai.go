package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/engram-dev/engram/agents"
)

// openAIRequest is the part of a chat-completions request the server reads.
type openAIRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		Name       string          `json:"name"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Stream            bool            `json:"stream"`
	StreamOptions     *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
}

// decodeOpenAI fills rec from a chat-completions request body, and checks it
// as the service would: the error is the message of its 400 reply.
func decodeOpenAI(body []byte, rec *Recorded) error {
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("We could not parse the JSON body of your request. (%v)", err)
	}
	rec.Model = req.Model
	rec.Stream = req.Stream
	rec.IncludeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	rec.ParallelToolCalls = req.ParallelToolCalls
	rec.Temperature = req.Temperature
	switch {
	case req.MaxCompletionTokens != nil:
		rec.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		rec.MaxTokens = *req.MaxTokens
	}
	if len(req.ToolChoice) > 0 {
		var s string
		if json.Unmarshal(req.ToolChoice, &s) == nil {
			rec.ToolChoice = s
		} else {
			rec.ToolChoice = string(req.ToolChoice)
		}
	}
	for _, t := range req.Tools {
		rec.Tools = append(rec.Tools, agents.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	open := map[string]bool{} // tool calls of the last assistant message not yet answered
	for i, m := range req.Messages {
		text, err := stringOrTexts(m.Content)
		if err != nil {
			return fmt.Errorf("Invalid value for 'messages[%d].content': %v.", i, err)
		}
		msg := Message{Role: m.Role, Content: text, Name: m.Name, ToolCallID: m.ToolCallID}
		switch m.Role {
		case "system", "developer", "user":
		case "assistant":
			open = map[string]bool{}
			for _, c := range m.ToolCalls {
				msg.ToolCalls = append(msg.ToolCalls, agents.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
				open[c.ID] = true
			}
		case "tool":
			if !open[m.ToolCallID] {
				return fmt.Errorf("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.")
			}
		default:
			return fmt.Errorf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.", m.Role)
		}
		rec.Messages = append(rec.Messages, msg)
	}
	switch {
	case req.Model == "":
		return fmt.Errorf("you must provide a model parameter")
	case len(req.Messages) == 0:
		return fmt.Errorf("[] is too short - 'messages'")
	}
	return nil
}

func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rec := newRecorded("openai", r, body)
	if err := decodeOpenAI(body, &rec); err != nil {
		st, _ := s.record(rec, false)
		st.RetryAfter = -1
		writeError(w, st, http.StatusBadRequest, openAIErrorBody(http.StatusBadRequest, err.Error(), "invalid_request_error", ""))
		return
	}
	st, seq := s.record(rec, true)
	if !s.wait(r.Context(), st) {
		return
	}
	switch {
	case st.exhausted:
		writeError(w, st, http.StatusInternalServerError, openAIErrorBody(http.StatusInternalServerError, "llmtest: script exhausted", "server_error", ""))
	case st.Overflow:
		writeError(w, st, http.StatusBadRequest, openAIErrorBody(http.StatusBadRequest,
			"This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
			"invalid_request_error", "context_length_exceeded"))
	case st.Status != 0:
		b := st.ErrorBody
		if b == "" {
			b = openAIErrorBody(st.Status, fmt.Sprintf("llmtest: scripted HTTP %d", st.Status), "", "")
		}
		writeError(w, st, st.Status, b)
	case st.Malformed && rec.Stream:
		e := startSSE(w)
		e.event("", `{"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":`)
	case st.Malformed:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":`)
	case rec.Stream:
		s.streamOpenAI(w, st, rec, seq)
	default:
		writeJSON(w, http.StatusOK, openAIReply(st, rec, seq))
	}
}

// openAIErrorBody is an error reply as OpenAI shapes it. An empty typ is
// chosen from the status.
func openAIErrorBody(status int, message, typ, code string) string {
	if typ == "" {
		switch {
		case status == http.StatusTooManyRequests:
			typ, code = "requests", "rate_limit_exceeded"
		case status == http.StatusUnauthorized:
			typ, code = "invalid_request_error", "invalid_api_key"
		case status >= 500:
			typ = "server_error"
		default:
			typ = "invalid_request_error"
		}
	}
	e := struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}{Message: message, Type: typ}
	if code != "" {
		e.Code = &code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return string(b)
}

type openAIToolCall struct {
	Index    *int   `json:"index,omitempty"` // streaming only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func toOpenAIUsage(u agents.Usage) *openAIUsage {
	return &openAIUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

// toolCallID is the ID of the i-th tool call of reply seq, unless the step
// names one.
func toolCallID(prefix string, c agents.ToolCall, seq, i int) string {
	if c.ID != "" {
		return c.ID
	}
	return fmt.Sprintf("%s%04d%02d", prefix, seq, i)
}

func model(rec Recorded) string {
	if rec.Model == "" {
		return "gpt-4o-mini"
	}
	return rec.Model
}

// openAIReply is the chat.completion object answering rec with st.
func openAIReply(st Step, rec Recorded, seq int) any {
	type message struct {
		Role             string           `json:"role"`
		Content          *string          `json:"content"`
		ReasoningContent string           `json:"reasoning_content,omitempty"` // as DeepSeek and vLLM send it
		Refusal          *string          `json:"refusal"`
		ToolCalls        []openAIToolCall `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		Logprobs     *string `json:"logprobs"`
		FinishReason string  `json:"finish_reason"`
	}
	msg := message{Role: "assistant", ReasoningContent: st.Reasoning}
	if st.Content != "" || len(st.ToolCalls) == 0 {
		msg.Content = &st.Content
	}
	for i, c := range st.ToolCalls {
		var tc openAIToolCall
		tc.ID, tc.Type = toolCallID("call_", c, seq, i), "function"
		tc.Function.Name, tc.Function.Arguments = c.Name, c.Arguments
		msg.ToolCalls = append(msg.ToolCalls, tc)
	}
	choices := []choice{{Message: msg, FinishReason: st.finish()}}
	if st.Empty {
		choices = []choice{}
	}
	return struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		Choices           []choice     `json:"choices"`
		Usage             *openAIUsage `json:"usage"`
		SystemFingerprint string       `json:"system_fingerprint"`
	}{
		ID:                fmt.Sprintf("chatcmpl-%04d", seq),
		Object:            "chat.completion",
		Created:           time.Now().Unix(),
		Model:             model(rec),
		Choices:           choices,
		Usage:             toOpenAIUsage(st.usage(len(rec.Body))),
		SystemFingerprint: "fp_llmtest",
	}
}

// streamOpenAI answers rec with st as chat.completion.chunk events: the role,
// content in pieces, each tool call's id and name then its arguments in
// pieces, the finish reason, the usage if asked for, and [DONE].
func (s *Server) streamOpenAI(w http.ResponseWriter, st Step, rec Recorded, seq int) {
	type delta struct {
		Role             string           `json:"role,omitempty"`
		Content          *string          `json:"content,omitempty"`
		ReasoningContent string           `json:"reasoning_content,omitempty"`
		ToolCalls        []openAIToolCall `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Delta        delta   `json:"delta"`
		Logprobs     *string `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	}
	type chunk struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		SystemFingerprint string       `json:"system_fingerprint"`
		Choices           []choice     `json:"choices"`
		Usage             *openAIUsage `json:"usage,omitempty"`
	}
	e := startSSE(w)
	created := time.Now().Unix()
	send := func(choices []choice, usage *openAIUsage) {
		e.event("", chunk{
			ID: fmt.Sprintf("chatcmpl-%04d", seq), Object: "chat.completion.chunk", Created: created,
			Model: model(rec), SystemFingerprint: "fp_llmtest", Choices: choices, Usage: usage,
		})
	}
	if !st.Empty {
		empty := ""
		send([]choice{{Delta: delta{Role: "assistant", Content: &empty}}}, nil)
		for _, p := range pieces(st.Reasoning, 4) {
			send([]choice{{Delta: delta{ReasoningContent: p}}}, nil)
		}
		for _, p := range pieces(st.Content, 4) {
			send([]choice{{Delta: delta{Content: &p}}}, nil)
		}
		for i, c := range st.ToolCalls {
			idx := i
			var tc openAIToolCall
			tc.Index, tc.ID, tc.Type = &idx, toolCallID("call_", c, seq, i), "function"
			tc.Function.Name = c.Name
			send([]choice{{Delta: delta{ToolCalls: []openAIToolCall{tc}}}}, nil)
			for _, p := range pieces(c.Arguments, 8) {
				var tc openAIToolCall
				tc.Index, tc.Function.Arguments = &idx, p
				send([]choice{{Delta: delta{ToolCalls: []openAIToolCall{tc}}}}, nil)
			}
		}
		finish := st.finish()
		send([]choice{{Delta: delta{}, FinishReason: &finish}}, nil)
	}
	if rec.IncludeUsage {
		send([]choice{}, toOpenAIUsage(st.usage(len(rec.Body))))
	}
	e.event("", "[DONE]")
}

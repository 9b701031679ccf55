package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/engram-dev/engram/agents"
)

// AnthropicBaseURL is Anthropic's own API.
const AnthropicBaseURL = "https://api.anthropic.com"

// FirstUserMessage opens a conversation sent to Anthropic whose first
// message is not the user's, as Letta does: the messages API wants the user
// to speak first.
const FirstUserMessage = "User initializing bootup sequence."

// AnthropicConfig configures an Anthropic provider.
type AnthropicConfig struct {
	// APIKey is sent as a bearer token, as the SDK's API version wants.
	// Anthropic's service requires one.
	APIKey string
	// BaseURL is the API's base URL, without /v1 (the SDK adds
	// /v1/messages). Empty means AnthropicBaseURL.
	BaseURL string
	// Timeout bounds each attempt of a request, streamed replies included;
	// a retry gets a fresh one. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a request is retried after a connection
	// error, a timed-out attempt, or an HTTP 408, 409, 429 or 5xx reply, with
	// the SDK's backoff (or the server's retry-after). Zero means
	// DefaultMaxRetries; negative means none.
	MaxRetries int
	// MaxTokens limits a reply when the request sets no limit. Zero means
	// DefaultMaxTokens.
	MaxTokens int
}

// Validate reports whether c is usable.
func (c AnthropicConfig) Validate() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("negative timeout %v", c.Timeout)
	case c.MaxTokens < 0:
		return fmt.Errorf("negative max tokens %d", c.MaxTokens)
	}
	return checkBaseURL(c.BaseURL)
}

// Anthropic is a chat model served through Anthropic's messages API.
type Anthropic struct {
	client    anthropic.Client
	key       string // to redact from errors
	timeout   time.Duration
	maxTokens int
}

var _ agents.Model = (*Anthropic)(nil)

// NewAnthropic returns a provider configured by cfg. It reads no environment
// variables or credential files. An invalid cfg (see Validate) fails every
// call.
func NewAnthropic(cfg AnthropicConfig) *Anthropic {
	timeout := orDefault(cfg.Timeout, DefaultTimeout)
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithHTTPClient(&http.Client{}),
		option.WithBaseURL(orDefault(cfg.BaseURL, AnthropicBaseURL)),
		option.WithMaxRetries(retries(cfg.MaxRetries)),
		option.WithRequestTimeout(timeout),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	return &Anthropic{
		client:    anthropic.NewClient(opts...),
		key:       cfg.APIKey,
		timeout:   timeout,
		maxTokens: orDefault(cfg.MaxTokens, DefaultMaxTokens),
	}
}

// Complete sends req as one message request, streamed if req.Stream is set.
//
// The system messages become the top-level system prompt; tool results
// become user messages of tool_result blocks; consecutive messages of one
// role are merged into one; a conversation that does not open with the user
// gets FirstUserMessage first. Tool calls whose arguments are not a JSON
// object are sent with input {}. At most one tool call per reply is asked
// for (disable_parallel_tool_use) unless Request.ParallelToolCalls allows
// several. Request.Reasoning.Budget asks a Claude model that thinks
// (anthropicThinks) for extended thinking with that many tokens, as Letta
// does for enable_reasoner; max_tokens is raised above the budget, as the
// API requires. The request then does not think when it must force a tool
// call (thinking allows only tool_choice auto; the rule's forcing matters
// more) nor when the reply it continues called tools without thinking
// blocks to send back (the API refuses that). Thinking blocks of a reply
// become Response.Reasoning (their text) and Response.Thinking (the blocks,
// signed, and redacted ones), and an assistant message's Thinking is sent
// back before its text and calls. Request.Temperature is not sent: the API
// version the SDK speaks has none.
//
// Replies map back with text blocks joined as Content, tool_use blocks as
// ToolCalls (arguments: the input as compact JSON), and the stop reason in
// OpenAI's words ("stop", "tool_calls", "length", "content_filter"). A reply
// cut off at max_tokens, or the provider's "prompt is too long" error, is an
// error wrapping agents.ErrContextOverflow; every other failure, a reply
// without content blocks included, wraps agents.ErrProvider.
func (a *Anthropic) Complete(ctx context.Context, req agents.Request) (agents.Response, error) {
	params, err := a.params(req)
	if err != nil {
		return agents.Response{}, errorf("anthropic", a.key, agents.ErrProvider, 0, err, "%v", err)
	}
	var msg *anthropic.Message
	if req.Stream != nil {
		msg, err = a.stream(ctx, params, req.Stream)
	} else {
		msg, err = a.client.Messages.New(ctx, params)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			err = a.wrap(ctx, err)
		}
		return agents.Response{}, err
	}
	return a.response(msg)
}

// params translates req into the SDK's request.
func (a *Anthropic) params(req agents.Request) (anthropic.MessageNewParams, error) {
	p := anthropic.MessageNewParams{
		Model:     anthropic.Model(req.Model),
		MaxTokens: int64(orDefault(req.MaxTokens, a.maxTokens)),
	}
	var (
		role   string // of the message being built
		blocks []anthropic.ContentBlockParamUnion
	)
	flush := func() {
		switch {
		case len(blocks) == 0:
		case role == "user":
			p.Messages = append(p.Messages, anthropic.NewUserMessage(blocks...))
		default:
			p.Messages = append(p.Messages, anthropic.NewAssistantMessage(blocks...))
		}
		blocks = nil
	}
	add := func(r string, bs ...anthropic.ContentBlockParamUnion) {
		if len(bs) == 0 {
			return
		}
		if r != role {
			flush()
			role = r
		}
		if len(p.Messages) == 0 && len(blocks) == 0 && r != "user" {
			blocks = append(blocks, anthropic.NewTextBlock(FirstUserMessage))
			role = "user"
			flush()
			role = r
		}
		blocks = append(blocks, bs...)
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system":
			if m.Content != "" {
				p.System = append(p.System, anthropic.TextBlockParam{Text: m.Content})
			}
		case "tool":
			add("user", anthropic.NewToolResultBlock(m.ToolCallID, m.Content, false))
		case "assistant":
			var bs []anthropic.ContentBlockParamUnion
			for _, t := range m.Thinking {
				if t.Redacted != "" {
					bs = append(bs, anthropic.NewRedactedThinkingBlock(t.Redacted))
				} else if t.Signature != "" {
					bs = append(bs, anthropic.NewThinkingBlock(t.Signature, t.Text))
				}
			}
			if m.Content != "" {
				bs = append(bs, anthropic.NewTextBlock(m.Content))
			}
			for _, c := range m.ToolCalls {
				bs = append(bs, anthropic.NewToolUseBlock(c.ID, toolInput(c.Arguments), c.Name))
			}
			add("assistant", bs...)
		case "user":
			if m.Content != "" {
				add("user", anthropic.NewTextBlock(m.Content))
			}
		default:
			return p, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	flush()
	if len(p.Messages) == 0 {
		p.Messages = append(p.Messages, anthropic.NewUserMessage(anthropic.NewTextBlock(FirstUserMessage)))
	}
	for _, t := range req.Tools {
		tp := &anthropic.ToolParam{Name: t.Name, InputSchema: inputSchema(t.Parameters)}
		if t.Description != "" {
			tp.Description = anthropic.String(t.Description)
		}
		p.Tools = append(p.Tools, anthropic.ToolUnionParam{OfTool: tp})
	}
	if b := req.Reasoning.Budget; b > 0 && anthropicThinks(req.Model) && req.ToolChoice != "required" && canThink(req.Messages) {
		p.Thinking = anthropic.ThinkingConfigParamOfEnabled(int64(b))
		if p.MaxTokens <= int64(b) {
			p.MaxTokens = int64(b + a.maxTokens)
		}
	}
	if len(req.Tools) > 0 {
		switch req.ToolChoice {
		case "none":
			p.ToolChoice.OfNone = &anthropic.ToolChoiceNoneParam{}
		case "required":
			p.ToolChoice.OfAny = &anthropic.ToolChoiceAnyParam{DisableParallelToolUse: anthropic.Bool(!req.ParallelToolCalls)}
		default:
			p.ToolChoice.OfAuto = &anthropic.ToolChoiceAutoParam{DisableParallelToolUse: anthropic.Bool(!req.ParallelToolCalls)}
		}
	}
	return p, nil
}

// anthropicThinks reports whether a Claude model can think (extended
// thinking), by the names Letta 0.16.8 knows them by.
func anthropicThinks(model string) bool {
	for _, p := range []string{"claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// canThink reports whether a request may think: the assistant's last reply,
// if it called tools, carries thinking blocks to send back (a thinking
// request must begin the last assistant message with them; a reply from
// before thinking was asked for has none, and the request after it does
// not think).
func canThink(msgs []agents.Message) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := msgs[i]; m.Role == "assistant" {
			return len(m.ToolCalls) == 0 || len(m.Thinking) > 0
		}
	}
	return true
}

// toolInput is a tool call's arguments as a tool_use input: the parsed
// object, or {} if the arguments are not a JSON object.
func toolInput(args string) any {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args), &obj); err != nil || obj == nil {
		return map[string]any{}
	}
	return json.RawMessage(args)
}

// inputSchema translates a tool's JSON schema, keeping its values raw.
func inputSchema(raw json.RawMessage) anthropic.ToolInputSchemaParam {
	var s anthropic.ToolInputSchemaParam
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return s
	}
	for k, v := range fields {
		switch k {
		case "type":
		case "properties":
			s.Properties = v
		case "required":
			if json.Unmarshal(v, &s.Required) != nil {
				s.ExtraFields = setField(s.ExtraFields, k, v)
			}
		default:
			s.ExtraFields = setField(s.ExtraFields, k, v)
		}
	}
	return s
}

func setField(m map[string]any, k string, v any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	m[k] = v
	return m
}

// stream sends params with the SDK's streaming API, passes content and tool
// call deltas to emit, and accumulates the whole message.
func (a *Anthropic) stream(ctx context.Context, params anthropic.MessageNewParams, emit func(agents.Delta)) (*anthropic.Message, error) {
	s := a.client.Messages.NewStreaming(ctx, params)
	defer s.Close()
	var (
		msg     anthropic.Message
		stopped bool
	)
	for s.Next() {
		ev := s.Current()
		if err := msg.Accumulate(ev); err != nil {
			return nil, errorf("anthropic", a.key, agents.ErrProvider, 0, err, "unreadable reply: %v", err)
		}
		switch ev.Type {
		case "content_block_start":
			if ev.ContentBlock.Type == "tool_use" {
				emit(agents.Delta{ToolName: ev.ContentBlock.Name})
			}
		case "content_block_delta":
			switch ev.Delta.Type {
			case "text_delta":
				emit(agents.Delta{Content: ev.Delta.Text})
			case "thinking_delta":
				emit(agents.Delta{Reasoning: ev.Delta.Thinking})
			case "input_json_delta":
				if ev.Delta.PartialJSON != "" {
					emit(agents.Delta{ToolArgs: ev.Delta.PartialJSON})
				}
			}
		case "message_stop":
			stopped = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !stopped {
		return nil, errorf("anthropic", a.key, agents.ErrProvider, 0, nil, "stream ended before the reply was finished")
	}
	return &msg, nil
}

// response translates a whole reply.
func (a *Anthropic) response(m *anthropic.Message) (agents.Response, error) {
	switch m.StopReason {
	case anthropic.StopReasonMaxTokens:
		return agents.Response{}, errorf("anthropic", a.key, agents.ErrContextOverflow, 0, nil,
			"reply cut off at max_tokens: the request and reply exceed the model's maximum context length")
	case anthropic.StopReasonModelContextWindowExceeded:
		return agents.Response{}, errorf("anthropic", a.key, agents.ErrContextOverflow, 0, nil,
			"reply cut off: the request and reply exceed the model's maximum context length")
	}
	if len(m.Content) == 0 {
		return agents.Response{}, errorf("anthropic", a.key, agents.ErrProvider, 0, nil, "empty reply: no content blocks")
	}
	resp := agents.Response{
		ID:           m.ID,
		FinishReason: finishReason(m.StopReason),
		Usage: agents.Usage{
			PromptTokens:     int(m.Usage.InputTokens + m.Usage.CacheCreationInputTokens + m.Usage.CacheReadInputTokens),
			CompletionTokens: int(m.Usage.OutputTokens),
		},
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens + resp.Usage.CompletionTokens
	var texts []string
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			texts = append(texts, b.Text)
		case "thinking":
			resp.Reasoning += b.Thinking
			resp.Thinking = append(resp.Thinking, agents.Thinking{Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			resp.Thinking = append(resp.Thinking, agents.Thinking{Redacted: b.Data})
		case "tool_use":
			args := "{}"
			var c bytes.Buffer
			if len(b.Input) > 0 && json.Compact(&c, b.Input) == nil {
				args = c.String()
			}
			resp.ToolCalls = append(resp.ToolCalls, agents.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	resp.Content = strings.Join(texts, "\n")
	return resp, nil
}

// finishReason translates a stop reason to OpenAI's words, which
// agents.Response uses.
func finishReason(r anthropic.StopReason) string {
	switch r {
	case anthropic.StopReasonEndTurn, anthropic.StopReasonStopSequence:
		return "stop"
	case anthropic.StopReasonToolUse:
		return "tool_calls"
	case anthropic.StopReasonMaxTokens:
		return "length"
	case anthropic.StopReasonRefusal:
		return "content_filter"
	}
	return string(r)
}

// wrap translates an SDK error.
func (a *Anthropic) wrap(ctx context.Context, err error) error {
	var api *anthropic.Error
	if errors.As(err, &api) {
		status := api.StatusCode
		if status < 400 {
			status = 0 // an error event in a stream
		}
		msg := api.Message
		if msg == "" {
			msg = strings.TrimSpace(api.RawJSON())
		}
		if msg == "" {
			msg = http.StatusText(api.StatusCode)
		}
		kind := agents.ErrProvider
		if isOverflow(status, msg) {
			kind = agents.ErrContextOverflow
		}
		if t := string(api.Type()); t != "" && status != 0 {
			msg = t + ": " + msg
		}
		return errorf("anthropic", a.key, kind, status, err, "%s", msg)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf("anthropic", a.key, agents.ErrProvider, 0, err, "unreadable reply: %v", err)
	}
	return transportError(ctx, "anthropic", a.key, a.timeout, err)
}

package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/respjson"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/engram-dev/engram/agents"
)

// OpenAIBaseURL is OpenAI's own API.
const OpenAIBaseURL = "https://api.openai.com/v1"

// OpenAIConfig configures an OpenAI provider. The zero value talks to
// api.openai.com without a key.
type OpenAIConfig struct {
	// APIKey is sent as a bearer token. Empty sends none, for local servers
	// that need none.
	APIKey string
	// BaseURL is the API's base URL, up to and including /v1. Empty means
	// OpenAIBaseURL. Any OpenAI-compatible server works: Ollama
	// (http://localhost:11434/v1), vLLM, llama.cpp, LM Studio.
	BaseURL string
	// Timeout bounds each attempt of a request, streamed replies included;
	// a retry gets a fresh one. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a request is retried after a connection
	// error or an HTTP 408, 409, 429 or 5xx reply, with the SDK's backoff
	// (or the server's retry-after). Zero means DefaultMaxRetries; negative
	// means none.
	MaxRetries int
}

// Validate reports whether c is usable.
func (c OpenAIConfig) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("negative timeout %v", c.Timeout)
	}
	return checkBaseURL(c.BaseURL)
}

// OpenAI is a chat model served through OpenAI's chat-completions API.
type OpenAI struct {
	chat    openai.ChatCompletionService
	models  openai.ModelService
	key     string // to redact from errors
	timeout time.Duration
	// official is set for api.openai.com, which takes max_completion_tokens
	// where compatible servers take max_tokens.
	official bool
}

var _ agents.Model = (*OpenAI)(nil)

// NewOpenAI returns a provider configured by cfg. It reads no environment
// variables. An invalid cfg (see Validate) fails every call.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	base := orDefault(cfg.BaseURL, OpenAIBaseURL)
	timeout := orDefault(cfg.Timeout, DefaultTimeout)
	opts := []option.RequestOption{
		option.WithHTTPClient(&http.Client{}),
		option.WithBaseURL(base),
		option.WithMaxRetries(retries(cfg.MaxRetries)),
		option.WithRequestTimeout(timeout),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	u, _ := url.Parse(base)
	// The services are built without openai.NewClient, which would add
	// OPENAI_* settings from the environment.
	return &OpenAI{
		chat:     openai.NewChatCompletionService(opts...),
		models:   openai.NewModelService(opts...),
		key:      cfg.APIKey,
		timeout:  timeout,
		official: u != nil && u.Host == "api.openai.com",
	}
}

// ListModels returns the ids of the models the server offers (GET /models).
func (o *OpenAI) ListModels(ctx context.Context) ([]string, error) {
	var res *http.Response
	page, err := o.models.List(ctx, option.WithResponseInto(&res))
	if err != nil {
		return nil, o.wrap(ctx, err, res)
	}
	ids := make([]string, 0, len(page.Data))
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// Complete sends req as one chat completion, streamed if req.Stream is set
// (with stream_options.include_usage, so that usage is reported either way).
// It asks for at most one tool call per reply (parallel_tool_calls: false)
// unless the request allows several (Request.ParallelToolCalls),
// and sends Request.MaxTokens as max_completion_tokens to api.openai.com,
// as max_tokens to other servers. Request.Reasoning.Effort is sent as
// reasoning_effort to reasoning models (openAIReasons).
// A reply cut off at the length limit is an error wrapping
// agents.ErrContextOverflow, as is the provider's context-length error;
// every other failure, a reply without choices included, wraps
// agents.ErrProvider.
func (o *OpenAI) Complete(ctx context.Context, req agents.Request) (agents.Response, error) {
	params, err := o.params(req)
	if err != nil {
		return agents.Response{}, errorf("openai", o.key, agents.ErrProvider, 0, err, "%v", err)
	}
	var (
		resp agents.Response
		res  *http.Response // the last HTTP reply, for errors the SDK cannot read
		into = option.WithResponseInto(&res)
	)
	if req.Stream != nil {
		resp, err = o.stream(ctx, params, req.Stream, into)
	} else {
		var c *openai.ChatCompletion
		if c, err = o.chat.New(ctx, params, into); err == nil {
			resp, err = o.response(c)
		}
	}
	var e *Error
	if err != nil && !errors.As(err, &e) {
		err = o.wrap(ctx, err, res)
	}
	if err != nil {
		return agents.Response{}, err
	}
	if resp.FinishReason == "length" {
		return agents.Response{}, errorf("openai", o.key, agents.ErrContextOverflow, 0, nil,
			"reply cut off at the length limit: the request and reply exceed the model's maximum context length")
	}
	return resp, nil
}

// params translates req into the SDK's request.
func (o *OpenAI) params(req agents.Request) (openai.ChatCompletionNewParams, error) {
	p := openai.ChatCompletionNewParams{Model: shared.ChatModel(req.Model)}
	for i, m := range req.Messages {
		var mp openai.ChatCompletionMessageParamUnion
		switch m.Role {
		case "system":
			mp.OfSystem = &openai.ChatCompletionSystemMessageParam{
				Content: openai.ChatCompletionSystemMessageParamContentUnion{OfString: openai.String(m.Content)},
			}
		case "user":
			u := &openai.ChatCompletionUserMessageParam{
				Content: openai.ChatCompletionUserMessageParamContentUnion{OfString: openai.String(m.Content)},
			}
			if m.Name != "" {
				u.Name = openai.String(m.Name)
			}
			mp.OfUser = u
		case "assistant":
			a := &openai.ChatCompletionAssistantMessageParam{}
			if m.Content != "" || len(m.ToolCalls) == 0 {
				a.Content.OfString = openai.String(m.Content)
			} else {
				a.Content.OfString = param.Null[string]()
			}
			for _, c := range m.ToolCalls {
				a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID:       c.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: c.Name, Arguments: c.Arguments},
					},
				})
			}
			mp.OfAssistant = a
		case "tool":
			mp.OfTool = &openai.ChatCompletionToolMessageParam{
				Content:    openai.ChatCompletionToolMessageParamContentUnion{OfString: openai.String(m.Content)},
				ToolCallID: m.ToolCallID,
			}
		default:
			return p, fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
		p.Messages = append(p.Messages, mp)
	}
	for _, t := range req.Tools {
		fn := shared.FunctionDefinitionParam{Name: t.Name}
		if t.Description != "" {
			fn.Description = openai.String(t.Description)
		}
		if len(t.Parameters) > 0 {
			// Raw values keep the schema as it was written (numbers
			// are not rounded through float64).
			var schema map[string]json.RawMessage
			if err := json.Unmarshal(t.Parameters, &schema); err != nil {
				return p, fmt.Errorf("tool %s: parameters are not a JSON object: %v", t.Name, err)
			}
			fn.Parameters = shared.FunctionParameters{}
			for k, v := range schema {
				fn.Parameters[k] = v
			}
		}
		p.Tools = append(p.Tools, openai.ChatCompletionToolUnionParam{OfFunction: &openai.ChatCompletionFunctionToolParam{Function: fn}})
	}
	if len(req.Tools) > 0 {
		p.ParallelToolCalls = openai.Bool(req.ParallelToolCalls)
		if req.ToolChoice != "" {
			p.ToolChoice.OfAuto = openai.String(req.ToolChoice)
		}
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	if req.MaxTokens > 0 {
		if o.official {
			p.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
		} else {
			p.MaxTokens = openai.Int(int64(req.MaxTokens))
		}
	}
	if e := req.Reasoning.Effort; e != "" && openAIReasons(req.Model) {
		p.ReasoningEffort = shared.ReasoningEffort(e)
	}
	return p, nil
}

// openAIReasons reports whether an OpenAI model takes reasoning_effort: the
// reasoning models, by the names Letta 0.16.8 knows them by (o1, o3, o4,
// gpt-5). Other models refuse the parameter.
func openAIReasons(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// response translates a whole reply.
func (o *OpenAI) response(c *openai.ChatCompletion) (agents.Response, error) {
	if len(c.Choices) == 0 {
		return agents.Response{}, errorf("openai", o.key, agents.ErrProvider, 0, nil, "empty reply: no choices")
	}
	ch := c.Choices[0]
	resp := agents.Response{
		ID:           c.ID,
		Content:      ch.Message.Content,
		Reasoning:    reasoningOf(ch.Message.JSON.ExtraFields),
		FinishReason: ch.FinishReason,
		Usage: agents.Usage{
			PromptTokens:     int(c.Usage.PromptTokens),
			CompletionTokens: int(c.Usage.CompletionTokens),
			TotalTokens:      int(c.Usage.TotalTokens),
		},
	}
	for _, tc := range ch.Message.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			continue // custom tools are never offered
		}
		resp.ToolCalls = append(resp.ToolCalls, agents.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return resp, nil
}

// stream sends params with the SDK's streaming API, passes content and tool
// call deltas to emit, and assembles the Response a whole reply would have
// given.
func (o *OpenAI) stream(ctx context.Context, params openai.ChatCompletionNewParams, emit func(agents.Delta), opts ...option.RequestOption) (agents.Response, error) {
	params.StreamOptions.IncludeUsage = openai.Bool(true)
	s := o.chat.NewStreaming(ctx, params, opts...)
	defer s.Close()
	var (
		resp      agents.Response
		content   strings.Builder
		reasoning strings.Builder
		calls     []agents.ToolCall
		choices   bool
	)
	for s.Next() {
		chunk := s.Current()
		if chunk.ID != "" {
			resp.ID = chunk.ID
		}
		if chunk.JSON.Usage.Valid() {
			resp.Usage = agents.Usage{
				PromptTokens:     int(chunk.Usage.PromptTokens),
				CompletionTokens: int(chunk.Usage.CompletionTokens),
				TotalTokens:      int(chunk.Usage.TotalTokens),
			}
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			choices = true
			if d := reasoningOf(ch.Delta.JSON.ExtraFields); d != "" {
				reasoning.WriteString(d)
				emit(agents.Delta{Reasoning: d})
			}
			if d := ch.Delta.Content; d != "" {
				content.WriteString(d)
				emit(agents.Delta{Content: d})
			}
			for _, tc := range ch.Delta.ToolCalls {
				i := int(tc.Index)
				if i < 0 || i > 64 {
					return agents.Response{}, errorf("openai", o.key, agents.ErrProvider, 0, nil, "unreadable reply: tool call index %d", i)
				}
				for len(calls) <= i {
					calls = append(calls, agents.ToolCall{})
				}
				if tc.ID != "" {
					calls[i].ID = tc.ID
				}
				if n := tc.Function.Name; n != "" {
					calls[i].Name += n
					emit(agents.Delta{ToolName: n})
				}
				if a := tc.Function.Arguments; a != "" {
					calls[i].Arguments += a
					emit(agents.Delta{ToolArgs: a})
				}
			}
			if ch.FinishReason != "" {
				resp.FinishReason = ch.FinishReason
			}
		}
	}
	if err := s.Err(); err != nil {
		return agents.Response{}, err
	}
	if !choices {
		return agents.Response{}, errorf("openai", o.key, agents.ErrProvider, 0, nil, "empty reply: no choices")
	}
	if resp.FinishReason == "" {
		return agents.Response{}, errorf("openai", o.key, agents.ErrProvider, 0, nil, "stream ended before the reply was finished")
	}
	resp.Content, resp.Reasoning = content.String(), reasoning.String()
	resp.ToolCalls = calls
	return resp, nil
}

// wrap translates an SDK error; res is the last HTTP reply, if any.
func (o *OpenAI) wrap(ctx context.Context, err error, res *http.Response) error {
	var api *openai.Error
	if errors.As(err, &api) {
		msg := api.Message
		if msg == "" {
			msg = bodyMessage(api.Response)
		}
		if msg == "" {
			msg = http.StatusText(api.StatusCode)
		}
		kind := agents.ErrProvider
		if api.Code == "context_length_exceeded" || isOverflow(api.StatusCode, msg, api.Type) {
			kind = agents.ErrContextOverflow
		}
		return errorf("openai", o.key, kind, api.StatusCode, err, "%s", msg)
	}
	if res != nil && res.StatusCode >= 400 {
		// An error reply the SDK could not read, from a compatible server.
		msg := orDefault(bodyMessage(res), http.StatusText(res.StatusCode))
		kind := agents.ErrProvider
		if isOverflow(res.StatusCode, msg) {
			kind = agents.ErrContextOverflow
		}
		return errorf("openai", o.key, kind, res.StatusCode, err, "%s", msg)
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		kind := agents.ErrProvider
		if isOverflow(0, se.Message) {
			kind = agents.ErrContextOverflow
		}
		return errorf("openai", o.key, kind, 0, err, "%s", se.Message)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf("openai", o.key, agents.ErrProvider, 0, err, "unreadable reply: %v", err)
	}
	return transportError(ctx, "openai", o.key, o.timeout, err)
}

// reasoningOf reads the native reasoning OpenAI-compatible servers add to
// a message or a delta (reasoning_content: DeepSeek, vLLM, llama.cpp;
// reasoning: OpenRouter, Ollama), which OpenAI's own types lack.
func reasoningOf(extra map[string]respjson.Field) string {
	for _, k := range []string{"reasoning_content", "reasoning"} {
		if f, ok := extra[k]; ok && f.Raw() != "" {
			var s string
			if json.Unmarshal([]byte(f.Raw()), &s) == nil && s != "" {
				return s
			}
		}
	}
	return ""
}

// bodyMessage is what an error reply that is not shaped as OpenAI shapes
// errors says: its "error" or "message" string, or the start of its text.
// Compatible servers answer such replies.
func bodyMessage(res *http.Response) string {
	if res == nil || res.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	var v struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
		Detail  any    `json:"detail"`
	}
	if json.Unmarshal(b, &v) == nil {
		for _, s := range []any{v.Error, v.Message, v.Detail} {
			if s, ok := s.(string); ok && s != "" {
				return s
			}
		}
	}
	text := strings.TrimSpace(string(b))
	if r := []rune(text); len(r) > 200 {
		text = string(r[:200]) + "…"
	}
	return text
}

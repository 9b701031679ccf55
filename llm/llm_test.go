package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/llmtest"
)

const testKey = "sk-test-0123456789abcdef"

// provider builds one provider against a scripted server.
type provider struct {
	name  string
	model string
	new   func(s *llmtest.Server, timeout time.Duration, retries int) agents.Model
}

var providers = []provider{
	{"openai", "gpt-4o-mini", func(s *llmtest.Server, timeout time.Duration, retries int) agents.Model {
		return NewOpenAI(OpenAIConfig{APIKey: testKey, BaseURL: s.URL, Timeout: timeout, MaxRetries: retries})
	}},
	{"anthropic", "claude-sonnet-4-5", func(s *llmtest.Server, timeout time.Duration, retries int) agents.Model {
		return NewAnthropic(AnthropicConfig{APIKey: testKey, BaseURL: s.AnthropicURL, Timeout: timeout, MaxRetries: retries})
	}},
}

// forEach runs f for each provider, streamed and not.
func forEach(t *testing.T, f func(t *testing.T, p provider, stream bool)) {
	for _, p := range providers {
		for _, stream := range []bool{false, true} {
			name := p.name
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f(t, p, stream)
			})
		}
	}
}

// request is a one-message request for model, streamed into deltas if
// stream is set.
func request(model string, stream bool, deltas *[]agents.Delta) agents.Request {
	req := agents.Request{
		Model:    model,
		Messages: []agents.Message{{Role: "system", Content: "You are Sam."}, {Role: "user", Content: "Hello"}},
	}
	if stream {
		req.Stream = func(d agents.Delta) { *deltas = append(*deltas, d) }
	}
	return req
}

var sendMessage = agents.Tool{
	Name:        "send_message",
	Description: "Sends a message to the human user.",
	// The integer does not survive a float64: the schema must travel raw.
	Parameters: json.RawMessage(`{"type":"object","properties":{"message":{"type":"string","description":"Message contents."},"n":{"type":"integer","maximum":9007199254740993}},"required":["message"],"additionalProperties":false}`),
}

func TestText(t *testing.T) {
	forEach(t, func(t *testing.T, p provider, stream bool) {
		usage := agents.Usage{PromptTokens: 120, CompletionTokens: 7, TotalTokens: 127}
		s := llmtest.NewServer(t, llmtest.Step{Content: "Hi there, Chad! 👋", Usage: usage})
		var deltas []agents.Delta
		resp, err := p.new(s, 0, 0).Complete(context.Background(), request(p.model, stream, &deltas))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Content != "Hi there, Chad! 👋" || resp.FinishReason != "stop" || len(resp.ToolCalls) != 0 {
			t.Errorf("reply = %+v", resp)
		}
		if resp.Usage != usage {
			t.Errorf("usage = %+v, want %+v", resp.Usage, usage)
		}
		if resp.ID == "" {
			t.Error("reply has no ID")
		}
		if stream && len(deltas) < 2 {
			t.Errorf("streamed in %d deltas, want several", len(deltas))
		}
	})
}

func TestToolCall(t *testing.T) {
	forEach(t, func(t *testing.T, p provider, stream bool) {
		args := `{"message":"Hi! \"quoted\" ünïcode","n":9007199254740993}`
		s := llmtest.NewServer(t, llmtest.Step{
			Content:   "User said hello; greet back.",
			ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: args}},
		})
		var deltas []agents.Delta
		req := request(p.model, stream, &deltas)
		req.Tools = []agents.Tool{sendMessage}
		resp, err := p.new(s, 0, 0).Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ToolCalls) != 1 {
			t.Fatalf("tool calls = %+v", resp.ToolCalls)
		}
		c := resp.ToolCalls[0]
		if c.Name != "send_message" || c.Arguments != args || c.ID == "" {
			t.Errorf("tool call = %+v, want send_message(%s) with an ID", c, args)
		}
		if resp.Content != "User said hello; greet back." || resp.FinishReason != "tool_calls" {
			t.Errorf("reply = %+v", resp)
		}
	})
}

// TestRequest checks what reaches the wire: the system prompt's place,
// tools, tool choice, tool call IDs and the one-call-at-a-time switch.
func TestRequest(t *testing.T) {
	temp := 0.3
	req := agents.Request{
		Messages: []agents.Message{
			{Role: "system", Content: "You are Sam."},
			{Role: "user", Content: "What's 2+2?", Name: "chad"},
			{Role: "assistant", ToolCalls: []agents.ToolCall{{ID: "call_abc", Name: "send_message", Arguments: `{"message": "4"}`}}},
			{Role: "tool", ToolCallID: "call_abc", Content: `{"status":"OK"}`},
			{Role: "user", Content: "Thanks"},
		},
		Tools:       []agents.Tool{sendMessage},
		ToolChoice:  "required",
		Temperature: &temp,
		MaxTokens:   512,
	}
	no := false

	t.Run("openai", func(t *testing.T) {
		t.Parallel()
		s := llmtest.NewServer(t, llmtest.Step{Content: "ok"})
		r := req
		r.Model = "gpt-4o-mini"
		if _, err := providers[0].new(s, 0, 0).Complete(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := s.Requests()[0]
		want := []llmtest.Message{
			{Role: "system", Content: "You are Sam."},
			{Role: "user", Content: "What's 2+2?", Name: "chad"},
			{Role: "assistant", ToolCalls: []agents.ToolCall{{ID: "call_abc", Name: "send_message", Arguments: `{"message": "4"}`}}},
			{Role: "tool", Content: `{"status":"OK"}`, ToolCallID: "call_abc"},
			{Role: "user", Content: "Thanks"},
		}
		if diff := cmp.Diff(want, got.Messages); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if got.Model != "gpt-4o-mini" || got.ToolChoice != "required" || !cmp.Equal(got.ParallelToolCalls, &no) ||
			got.MaxTokens != 512 || !cmp.Equal(got.Temperature, &temp) || got.Stream {
			t.Errorf("request = model %q tool_choice %q parallel %v max %d temperature %v stream %v",
				got.Model, got.ToolChoice, got.ParallelToolCalls, got.MaxTokens, got.Temperature, got.Stream)
		}
		if !bytes.Contains(got.Body, []byte(`"content":null`)) {
			t.Errorf("assistant content is not null for a tool call: %s", got.Body)
		}
		if h := got.Header.Get("Authorization"); h != "Bearer "+testKey {
			t.Errorf("Authorization = %q", h)
		}
		checkTools(t, got.Tools)
	})

	t.Run("anthropic", func(t *testing.T) {
		t.Parallel()
		s := llmtest.NewServer(t, llmtest.Step{Content: "ok"})
		r := req
		r.Model = "claude-sonnet-4-5"
		if _, err := providers[1].new(s, 0, 0).Complete(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := s.Requests()[0]
		want := []llmtest.Message{
			{Role: "user", Content: "What's 2+2?"},
			{Role: "assistant", ToolCalls: []agents.ToolCall{{ID: "call_abc", Name: "send_message", Arguments: `{"message":"4"}`}}},
			// The tool result and the next user message are one turn.
			{Role: "user", Content: "Thanks", ToolResults: []llmtest.ToolResult{{ToolCallID: "call_abc", Content: `{"status":"OK"}`}}},
		}
		if diff := cmp.Diff(want, got.Messages); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if got.System != "You are Sam." {
			t.Errorf("system = %q", got.System)
		}
		if got.Model != "claude-sonnet-4-5" || got.ToolChoice != "any" || !cmp.Equal(got.ParallelToolCalls, &no) || got.MaxTokens != 512 {
			t.Errorf("request = model %q tool_choice %q parallel %v max %d",
				got.Model, got.ToolChoice, got.ParallelToolCalls, got.MaxTokens)
		}
		if h := got.Header.Get("Authorization"); h != "Bearer "+testKey {
			t.Errorf("Authorization = %q", h)
		}
		checkTools(t, got.Tools)
	})

	t.Run("anthropic/shapes", func(t *testing.T) {
		t.Parallel()
		s := llmtest.NewServer(t, llmtest.Step{Content: "ok"}, llmtest.Step{Content: "ok"})
		m := providers[1].new(s, 0, 0)
		// A conversation opening with the assistant, two system messages,
		// unparsable arguments, and no MaxTokens.
		_, err := m.Complete(context.Background(), agents.Request{Model: "claude-sonnet-4-5", Messages: []agents.Message{
			{Role: "system", Content: "Persona."},
			{Role: "system", Content: "Memory."},
			{Role: "assistant", Content: "Bootup.", ToolCalls: []agents.ToolCall{{ID: "t1", Name: "send_message", Arguments: `{"message": "cut`}}},
			{Role: "tool", ToolCallID: "t1", Content: "Error: bad arguments"},
			{Role: "user", Content: "Hi"},
			{Role: "user", Content: "Are you there?"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got := s.Requests()[0]
		want := []llmtest.Message{
			{Role: "user", Content: FirstUserMessage},
			{Role: "assistant", Content: "Bootup.", ToolCalls: []agents.ToolCall{{ID: "t1", Name: "send_message", Arguments: `{}`}}},
			{Role: "user", Content: "Hi\nAre you there?", ToolResults: []llmtest.ToolResult{{ToolCallID: "t1", Content: "Error: bad arguments"}}},
		}
		if diff := cmp.Diff(want, got.Messages); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if got.System != "Persona.\nMemory." || got.MaxTokens != DefaultMaxTokens || got.ToolChoice != "" {
			t.Errorf("system %q, max_tokens %d, tool_choice %q", got.System, got.MaxTokens, got.ToolChoice)
		}
		// Only a system prompt: the user still speaks first.
		if _, err := m.Complete(context.Background(), agents.Request{Model: "claude-sonnet-4-5", Messages: []agents.Message{{Role: "system", Content: "Persona."}}}); err != nil {
			t.Fatal(err)
		}
		if got := s.Requests()[1].Messages; len(got) != 1 || got[0].Content != FirstUserMessage {
			t.Errorf("messages = %+v", got)
		}
	})

	for _, p := range providers {
		t.Run(p.name+"/unknown role", func(t *testing.T) {
			t.Parallel()
			s := llmtest.NewServer(t)
			_, err := p.new(s, 0, 0).Complete(context.Background(), agents.Request{Model: p.model, Messages: []agents.Message{{Role: "narrator", Content: "x"}}})
			if !errors.Is(err, agents.ErrProvider) || !strings.Contains(err.Error(), "narrator") {
				t.Errorf("err = %v, want ErrProvider naming the role", err)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// checkTools checks that the one tool offered arrived intact.
func checkTools(t *testing.T, got []agents.Tool) {
	t.Helper()
	if len(got) != 1 || got[0].Name != sendMessage.Name || got[0].Description != sendMessage.Description {
		t.Fatalf("tools = %+v", got)
	}
	if !sameJSON(t, got[0].Parameters, sendMessage.Parameters) {
		t.Errorf("schema = %s\nwant %s", got[0].Parameters, sendMessage.Parameters)
	}
}

// sameJSON reports whether a and b hold the same JSON value, numbers
// compared by their text.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return v
	}
	return cmp.Equal(decode(a), decode(b))
}

// TestErrors covers every way a call fails, streamed and not.
func TestErrors(t *testing.T) {
	cases := []struct {
		name     string
		steps    []llmtest.Step
		retries  int
		timeout  time.Duration
		kind     error
		status   int
		says     string // in the error's message
		requests int
	}{
		{
			name:  "500 retried",
			steps: []llmtest.Step{{Status: 500}, {Status: 500}, {Status: 500}, {Content: "never"}},
			kind:  agents.ErrProvider, status: 500, says: "llmtest: scripted HTTP 500", requests: 3,
		},
		{
			name:    "500 retried as configured",
			steps:   []llmtest.Step{{Status: 502}, {Status: 502}, {Status: 502}, {Status: 502}, {Status: 502}, {Content: "never"}},
			retries: 4, kind: agents.ErrProvider, status: 502, requests: 5,
		},
		{
			name:    "500 not retried",
			steps:   []llmtest.Step{{Status: 500}, {Content: "never"}},
			retries: -1, kind: agents.ErrProvider, status: 500, requests: 1,
		},
		{
			name:    "429",
			steps:   []llmtest.Step{{Status: 429}, {Status: 429}},
			retries: 1, kind: agents.ErrProvider, status: 429, says: "llmtest: scripted HTTP 429", requests: 2,
		},
		{
			name:  "401 not retried, key redacted",
			steps: []llmtest.Step{{Status: 401, ErrorBody: `{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided: ` + testKey + `"}}`}},
			kind:  agents.ErrProvider, status: 401, says: "Incorrect API key provided: [redacted]", requests: 1,
		},
		{
			name:    "429 about tokens is no overflow",
			steps:   []llmtest.Step{{Status: 429, ErrorBody: `{"type":"error","error":{"type":"rate_limit_error","message":"Too many tokens per minute; maximum context length unaffected"}}`}},
			retries: -1, kind: agents.ErrProvider, status: 429, says: "Too many tokens per minute", requests: 1,
		},
		{
			name:  "error reply shaped otherwise",
			steps: []llmtest.Step{{Status: 404, ErrorBody: `{"error":"model 'llama9' not found, try pulling it first"}`}},
			kind:  agents.ErrProvider, status: 404, says: "model 'llama9' not found", requests: 1,
		},
		{
			name:    "timeout",
			steps:   []llmtest.Step{{Delay: 5 * time.Second}},
			retries: -1, timeout: 150 * time.Millisecond, kind: agents.ErrProvider, says: "timed out", requests: 1,
		},
		{
			name:  "malformed",
			steps: []llmtest.Step{{Malformed: true}},
			kind:  agents.ErrProvider, says: "unreadable reply", requests: 1,
		},
		{
			name:  "empty",
			steps: []llmtest.Step{{Empty: true}},
			kind:  agents.ErrProvider, says: "empty reply", requests: 1,
		},
		{
			name:  "overflow",
			steps: []llmtest.Step{{Overflow: true}},
			kind:  agents.ErrContextOverflow, status: 400, requests: 1,
		},
		{
			name:  "finish length",
			steps: []llmtest.Step{{Content: "The answer is", Finish: "length"}},
			kind:  agents.ErrContextOverflow, says: "maximum context length", requests: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEach(t, func(t *testing.T, p provider, stream bool) {
				s := llmtest.NewServer(t, c.steps...)
				var deltas []agents.Delta
				start := time.Now()
				_, err := p.new(s, c.timeout, c.retries).Complete(context.Background(), request(p.model, stream, &deltas))
				if !errors.Is(err, c.kind) {
					t.Fatalf("err = %v, want %v", err, c.kind)
				}
				other := agents.ErrProvider
				if c.kind == other {
					other = agents.ErrContextOverflow
				}
				if errors.Is(err, other) {
					t.Errorf("err = %v is also %v", err, other)
				}
				var e *Error
				if !errors.As(err, &e) || e.Provider != p.name || e.Status != c.status {
					t.Errorf("err = %#v, want a %s error with status %d", err, p.name, c.status)
				}
				if !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), testKey) {
					t.Errorf("err = %q, want it to say %q and not the key", err, c.says)
				}
				if !strings.HasPrefix(err.Error(), p.name+": ") {
					t.Errorf("err = %q does not name the provider", err)
				}
				if n := len(s.Requests()); n != c.requests {
					t.Errorf("%d requests, want %d", n, c.requests)
				}
				if c.timeout > 0 {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
					}
					if d := time.Since(start); d > 2*time.Second {
						t.Errorf("timed out after %v", d)
					}
				}
			})
		})
	}
}

// TestRetryRecovers checks that a retried failure is invisible when a retry
// succeeds.
func TestRetryRecovers(t *testing.T) {
	forEach(t, func(t *testing.T, p provider, stream bool) {
		s := llmtest.NewServer(t, llmtest.Step{Status: 429}, llmtest.Step{Status: 503}, llmtest.Step{Content: "at last"})
		var deltas []agents.Delta
		resp, err := p.new(s, 0, 0).Complete(context.Background(), request(p.model, stream, &deltas))
		if err != nil || resp.Content != "at last" {
			t.Fatalf("Complete = %+v, %v", resp, err)
		}
		if n := len(s.Requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
}

// TestCallerContext checks that a call ends with the caller's context.
func TestCallerContext(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.NewServer(t, llmtest.Step{Delay: 5 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := p.new(s, 0, 0).Complete(ctx, request(p.model, false, nil))
			if !errors.Is(err, agents.ErrProvider) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want ErrProvider and DeadlineExceeded", err)
			}
		})
	}
}

// TestStreaming checks that a streamed reply arrives in deltas that add up
// to it, and equals the same reply not streamed.
func TestStreaming(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			step := llmtest.Step{
				Content:   "Let me think about that — ünïcode included.",
				ToolCalls: []agents.ToolCall{{ID: "call_fixed", Name: "send_message", Arguments: `{"message":"Here is a fairly long reply, to be split into pieces."}`}},
				Usage:     agents.Usage{PromptTokens: 1000, CompletionTokens: 42, TotalTokens: 1042},
			}
			s := llmtest.NewServer(t, step, step)
			m := p.new(s, 0, 0)
			var deltas []agents.Delta
			req := request(p.model, false, nil)
			req.Tools = []agents.Tool{sendMessage}
			whole, err := m.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			req.Stream = func(d agents.Delta) { deltas = append(deltas, d) }
			streamed, err := m.Complete(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if streamed.ID == "" || streamed.ID == whole.ID {
				t.Errorf("IDs %q and %q, want two", whole.ID, streamed.ID)
			}
			streamed.ID = whole.ID
			if diff := cmp.Diff(whole, streamed); diff != "" {
				t.Errorf("streamed reply differs (-whole +streamed):\n%s", diff)
			}
			var content, names, args strings.Builder
			for _, d := range deltas {
				content.WriteString(d.Content)
				names.WriteString(d.ToolName)
				args.WriteString(d.ToolArgs)
			}
			if content.String() != step.Content || names.String() != "send_message" || args.String() != step.ToolCalls[0].Arguments {
				t.Errorf("deltas add up to %q, %q, %q", content.String(), names.String(), args.String())
			}
			if len(deltas) < 10 {
				t.Errorf("%d deltas, want the reply in pieces", len(deltas))
			}
			rec := s.Requests()
			if rec[0].Stream || !rec[1].Stream {
				t.Errorf("stream flags sent: %v, %v", rec[0].Stream, rec[1].Stream)
			}
			if p.name == "openai" && !rec[1].IncludeUsage {
				t.Error("streamed request does not ask for usage")
			}
		})
	}
}

func TestListModels(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Models = []string{"gpt-4o-mini", "gpt-4.1", "llama3.2:3b"}
	got, err := NewOpenAI(OpenAIConfig{BaseURL: s.URL}).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Models, got); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	if h := s.Requests()[0].Header.Get("Authorization"); h != "" {
		t.Errorf("no key configured, but Authorization = %q", h)
	}

	_, err = NewOpenAI(OpenAIConfig{BaseURL: s.URL + "/nowhere", MaxRetries: -1}).ListModels(context.Background())
	var e *Error
	if !errors.Is(err, agents.ErrProvider) || !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("err = %v, want a 404 ErrProvider", err)
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	oa, an := NewOpenAI(OpenAIConfig{}), NewAnthropic(AnthropicConfig{})
	r.Add("openai", oa)
	r.Add("anthropic", an)
	for _, c := range []struct {
		handle string
		model  agents.Model
		name   string
	}{
		{"openai/gpt-4o-mini", oa, "gpt-4o-mini"},
		{"anthropic/claude-sonnet-4-5", an, "claude-sonnet-4-5"},
		{"openai/meta-llama/Llama-3.1-8B-Instruct", oa, "meta-llama/Llama-3.1-8B-Instruct"},
	} {
		m, name, err := r.Lookup(c.handle)
		if err != nil || m != c.model || name != c.name {
			t.Errorf("Lookup(%q) = %v, %q, %v", c.handle, m, name, err)
		}
	}
	for _, h := range []string{"gpt-4o-mini", "google/gemini-2.0", "openai/", "/gpt-4o", ""} {
		if _, _, err := r.Lookup(h); !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Lookup(%q) err = %v, want ErrUnknownModel", h, err)
		}
	}
	if diff := cmp.Diff([]string{"anthropic", "openai"}, r.Providers()); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	for _, c := range []struct {
		name      string
		env       map[string]string
		providers []string
		err       bool
	}{
		{"nothing", nil, []string{}, false},
		{"both", map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}, []string{"anthropic", "openai"}, false},
		{"local server", map[string]string{"OPENAI_BASE_URL": "http://localhost:11434/v1"}, []string{"openai"}, false},
		{"anthropic without key", map[string]string{"ANTHROPIC_BASE_URL": "http://localhost:1"}, []string{}, false},
		{"bad URL", map[string]string{"OPENAI_BASE_URL": "localhost:11434"}, nil, true},
		{"bad anthropic URL", map[string]string{"ANTHROPIC_API_KEY": "b", "ANTHROPIC_BASE_URL": "ftp://x"}, nil, true},
	} {
		r, err := FromEnv(env(c.env))
		if c.err {
			if err == nil {
				t.Errorf("%s: no error", c.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.providers, r.Providers()); diff != "" {
			t.Errorf("%s: providers (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestFromEnvEndToEnd reaches scripted servers through the registry, and
// checks that the SDKs' own environment variables are ignored.
func TestFromEnvEndToEnd(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_ORG_ID", "org-from-environment")
	t.Setenv("ANTHROPIC_AUTH_TOKEN", "token-from-environment")
	oa := llmtest.NewServer(t, llmtest.Step{Content: "from openai"})
	an := llmtest.NewServer(t, llmtest.Step{Content: "from anthropic"})
	r, err := FromEnv(func(k string) string {
		return map[string]string{
			"OPENAI_API_KEY": "key-o", "OPENAI_BASE_URL": oa.URL,
			"ANTHROPIC_API_KEY": "key-a", "ANTHROPIC_BASE_URL": an.AnthropicURL,
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		handle string
		server *llmtest.Server
		want   string
	}{
		{"openai/gpt-4o-mini", oa, "from openai"},
		{"anthropic/claude-haiku-4-5", an, "from anthropic"},
	} {
		m, name, err := r.Lookup(c.handle)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := m.Complete(context.Background(), request(name, false, nil))
		if err != nil || resp.Content != c.want {
			t.Fatalf("%s: %+v, %v", c.handle, resp, err)
		}
		got := c.server.Requests()[0]
		if got.Model != name {
			t.Errorf("%s: model sent %q", c.handle, got.Model)
		}
		for _, h := range []string{"OpenAI-Organization", "Authorization"} {
			if v := got.Header.Get(h); strings.Contains(v, "environment") {
				t.Errorf("%s: %s = %q, read from the environment", c.handle, h, v)
			}
		}
	}
}

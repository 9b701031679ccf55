package llmtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/agents"
)

// post sends body to url, and returns the status, headers and body of the
// reply.
func post(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

const openAIHello = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
const anthropicHello = `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

func TestScript(t *testing.T) {
	s := NewServer(t, Step{Content: "one"}, Step{Content: "two"})
	s.Push(Step{Content: "three"})
	if n := s.Pending(); n != 3 {
		t.Fatalf("pending = %d", n)
	}
	// Steps are consumed in order, whatever the protocol.
	for _, want := range []string{`"content":"one"`, `"text":"two"`, `"content":"three"`} {
		url, body := s.URL+"/chat/completions", openAIHello
		if strings.Contains(want, "text") {
			url, body = s.AnthropicURL+"/v1/messages", anthropicHello
		}
		if code, _, got := post(t, url, body); code != 200 || !strings.Contains(got, want) {
			t.Errorf("reply %d %s, want %s", code, got, want)
		}
	}
	// Exhausted: a loud 500 that clients must not retry.
	code, h, body := post(t, s.URL+"/chat/completions", openAIHello)
	if code != 500 || h.Get("x-should-retry") != "false" || !strings.Contains(body, "script exhausted") {
		t.Errorf("exhausted: %d %v %s", code, h, body)
	}
	s.SetDefault(&Step{Content: "again"})
	for range 2 {
		if _, _, body := post(t, s.URL+"/chat/completions", openAIHello); !strings.Contains(body, `"again"`) {
			t.Errorf("default: %s", body)
		}
	}
	s.SetDefault(nil)
	if code, _, _ := post(t, s.URL+"/chat/completions", openAIHello); code != 500 {
		t.Errorf("default restored: %d", code)
	}
	if n := len(s.Requests()); n != 7 {
		t.Errorf("%d requests recorded, want 7", n)
	}
}

// TestInvalid checks that requests the services would reject get their 400
// and consume no step.
func TestInvalid(t *testing.T) {
	s := NewServer(t, Step{Content: "kept"})
	for _, c := range []struct {
		name, url, body, says string
	}{
		{"not JSON", "/v1/chat/completions", `{"model":`, "could not parse"},
		{"orphan tool result", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"x","content":"r"}]}`, "must be a response"},
		{"unknown role", "/v1/chat/completions", `{"model":"m","messages":[{"role":"narrator","content":"hi"}]}`, "narrator"},
		{"no messages", "/v1/chat/completions", `{"model":"m","messages":[]}`, "too short"},
		{"no max_tokens", "/v1/messages", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"orphan tool_result", "/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"}]}]}`, "corresponding `tool_use`"},
		{"empty text", "/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, "non-empty"},
		{"system role", "/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"hi"}]}`, "'user' or 'assistant'"},
	} {
		code, _, body := post(t, s.AnthropicURL+c.url, c.body)
		if code != 400 || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %s, want 400 saying %q", c.name, code, body, c.says)
		}
	}
	if n := s.Pending(); n != 1 {
		t.Errorf("invalid requests consumed steps: %d pending", n)
	}
}

func TestRecorded(t *testing.T) {
	s := NewServer(t, Step{}, Step{})
	post(t, s.URL+"/chat/completions", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":99,
		"messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{ }"}}]},
		{"role":"tool","tool_call_id":"c1","content":"done"}],
		"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`)
	post(t, s.AnthropicURL+"/v1/messages", `{"model":"claude","max_tokens":7,"system":[{"type":"text","text":"sys"}],
		"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"let me"},{"type":"tool_use","id":"t1","name":"f","input":{ "a" : 1 }}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"ok"}],"is_error":true},{"type":"text","text":"next"}]}],
		"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`)
	no := false
	got := s.Requests()
	for i := range got {
		got[i].Header, got[i].Body = nil, nil
	}
	want := []Recorded{{
		Protocol: "openai", Method: "POST", Path: "/v1/chat/completions", Model: "gpt-4o", Stream: true, IncludeUsage: true, MaxTokens: 99,
		Messages: []Message{
			{Role: "system", Content: "a\nb"},
			{Role: "assistant", ToolCalls: []agents.ToolCall{{ID: "c1", Name: "f", Arguments: "{ }"}}},
			{Role: "tool", Content: "done", ToolCallID: "c1"},
		},
		Tools:      []agents.Tool{{Name: "f", Parameters: json.RawMessage(`{"type":"object"}`)}},
		ToolChoice: `{"type":"function","function":{"name":"f"}}`, ParallelToolCalls: &no,
	}, {
		Protocol: "anthropic", Method: "POST", Path: "/v1/messages", Model: "claude", MaxTokens: 7, System: "sys",
		Messages: []Message{
			{Role: "user", Content: "hi"},
			{Role: "assistant", Content: "let me", ToolCalls: []agents.ToolCall{{ID: "t1", Name: "f", Arguments: `{"a":1}`}}},
			{Role: "user", Content: "next", ToolResults: []ToolResult{{ToolCallID: "t1", Content: "ok", IsError: true}}},
		},
		Tools:      []agents.Tool{{Name: "f", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`)}},
		ToolChoice: "auto", ParallelToolCalls: &no,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
}

// events reads an SSE body into its data lines, and event names if any.
func events(body string) (names, data []string) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, n)
		}
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
		}
	}
	return names, data
}

func TestStreamShapes(t *testing.T) {
	step := Step{Content: "Hello there", ToolCalls: []agents.ToolCall{{Name: "f", Arguments: `{"q":"long enough to split"}`}}}
	s := NewServer(t, step, step)

	_, h, body := post(t, s.URL+"/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if ct := h.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	_, data := events(body)
	if data[len(data)-1] != "[DONE]" || !strings.Contains(data[len(data)-2], `"usage":{"prompt_tokens"`) ||
		!strings.Contains(data[len(data)-2], `"choices":[]`) || !strings.Contains(data[len(data)-3], `"finish_reason":"tool_calls"`) {
		t.Errorf("openai stream ends %q", data[len(data)-3:])
	}

	_, _, body = post(t, s.AnthropicURL+"/v1/messages", `{"model":"m","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	names, _ := events(body)
	var compact []string
	for _, n := range names {
		if len(compact) == 0 || compact[len(compact)-1] != n {
			compact = append(compact, n)
		}
	}
	want := []string{"message_start", "ping",
		"content_block_start", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop"}
	if diff := cmp.Diff(want, compact); diff != "" {
		t.Errorf("anthropic events (-want +got):\n%s", diff)
	}
}

func TestModels(t *testing.T) {
	s := NewServer(t)
	get := func(anthropic bool) string {
		req, _ := http.NewRequest("GET", s.URL+"/models", nil)
		if anthropic {
			req.Header.Set("anthropic-version", "2023-06-01")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := get(false); !strings.Contains(got, `"object":"list"`) || !strings.Contains(got, `{"id":"gpt-4o-mini","object":"model"`) {
		t.Errorf("openai list: %s", got)
	}
	if got := get(true); !strings.Contains(got, `"has_more":false`) || !strings.Contains(got, `"type":"model","id":"gpt-4o-mini"`) {
		t.Errorf("anthropic list: %s", got)
	}
	if code, _, _ := post(t, s.URL+"/no-such-endpoint", `{}`); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

// TestConcurrent checks that concurrent requests consume each step once.
func TestConcurrent(t *testing.T) {
	const n = 40
	s := NewServer(t)
	for i := range n {
		s.Push(Step{Content: fmt.Sprintf("reply-%d.", i)})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			_, _, body := post(t, s.URL+"/chat/completions", openAIHello)
			var r struct {
				Choices []struct{ Message struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Choices) != 1 {
				t.Errorf("reply %s: %v", body, err)
				return
			}
			mu.Lock()
			seen[r.Choices[0].Message.Content] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != n || s.Pending() != 0 {
		t.Errorf("%d distinct replies, %d pending", len(seen), s.Pending())
	}
}

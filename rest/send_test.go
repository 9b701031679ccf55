package rest

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// newModelHarness is newHarness with a scripted model behind
// openai/gpt-4o-mini.
func newModelHarness(t *testing.T) (*harness, *llmtest.Server) {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Service = service.Config{Version: "test", Models: testModels, EmbeddingModels: testEmbeddingModels, Providers: reg}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	x := &harness{t: t, n: n, logs: &syncBuffer{}}
	x.h = newHandler(n.Service, Config{})
	x.srv = httptest.NewServer(x.h)
	t.Cleanup(x.srv.Close)
	x.client = x.srv.Client()
	return x, script
}

func say(text string) llmtest.Step {
	return llmtest.Step{Content: "thinking", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"` + text + `"}`}}}
}

func messageTypesOf(ms []api.LettaMessage) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MessageType)
	}
	return strings.Join(out, ",")
}

// sseData returns the data of each event of an SSE body.
func sseData(body string) []string {
	var out []string
	for _, ev := range strings.Split(body, "\n\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestIncludeReturnMessageTypes(t *testing.T) {
	x, script := newModelHarness(t)
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	base := "/v1/agents/" + a.ID

	script.Push(say("just this"))
	var resp api.LettaResponse
	x.do("POST", base+"/messages", map[string]any{"input": "hi", "include_return_message_types": []string{"assistant_message"}}, 200, &resp)
	if got := messageTypesOf(resp.Messages); got != "assistant_message" || *resp.Messages[0].Content != "just this" {
		t.Errorf("non-streaming send returned %s", got)
	}
	if resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 1 {
		t.Errorf("stop %+v usage %+v", resp.StopReason, resp.Usage)
	}

	script.Push(say("streamed"))
	res, err := x.client.Post(x.srv.URL+base+"/messages", "application/json",
		strings.NewReader(`{"input": "hi", "streaming": true, "include_return_message_types": ["reasoning_message", "assistant_message"]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("streaming send: %d %s", res.StatusCode, body)
	}
	var types []string
	for _, d := range sseData(string(body)) {
		var m struct {
			MessageType string `json:"message_type"`
		}
		if d != "[DONE]" && json.Unmarshal([]byte(d), &m) == nil {
			types = append(types, m.MessageType)
		}
	}
	if got := strings.Join(types, ","); got != "reasoning_message,assistant_message,stop_reason,usage_statistics" {
		t.Errorf("streamed %s", got)
	}

	var history []api.LettaMessage
	x.do("GET", base+"/messages?order=asc&include_return_message_types=user_message&include_return_message_types=assistant_message", nil, 200, &history)
	var said []string
	for _, m := range history {
		if m.MessageType != api.UserMessageType && m.MessageType != api.AssistantMessageType {
			t.Errorf("history holds a %s", m.MessageType)
		}
		if m.MessageType == api.AssistantMessageType {
			said = append(said, *m.Content)
		}
	}
	if got := strings.Join(said, "|"); !strings.HasSuffix(got, "just this|streamed") {
		t.Errorf("assistant messages in history: %s", got)
	}

	code, body := x.call("GET", base+"/messages?include_return_message_types=bogus", nil)
	if code != 422 || !strings.Contains(string(body), "bogus") {
		t.Errorf("unknown type in a listing: %d %s", code, body)
	}
	code, body = x.call("POST", base+"/messages", map[string]any{"input": "hi", "include_return_message_types": []string{"bogus"}})
	if code != 422 || !strings.Contains(string(body), "bogus") {
		t.Errorf("unknown type in a send: %d %s", code, body)
	}
	if n := script.Pending(); n != 0 {
		t.Errorf("%d scripted steps left", n)
	}
}

// A failed send may have stored its input, so without a key that makes a
// retry safe the answer tells the SDKs (which retry a 5xx on their own) not
// to send it again; with one, a retry answers the stored input once.
func TestSendRetryAdvice(t *testing.T) {
	x, script := newModelHarness(t)
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	base := "/v1/agents/" + a.ID

	script.Push(llmtest.Step{Status: 500})
	code, hdr, body := x.callHeader("POST", base+"/messages", map[string]any{"input": "no key"})
	if code < 500 || hdr.Get("X-Should-Retry") != "false" {
		t.Errorf("failed send without a key: %d, X-Should-Retry %q, %s", code, hdr.Get("X-Should-Retry"), body)
	}

	script.Push(llmtest.Step{Status: 500}, say("answered"))
	for _, key := range []string{"Idempotency-Key", "otid"} {
		var hdrs []string
		req := map[string]any{"input": "with a key"}
		if key == "otid" {
			req = map[string]any{"messages": []map[string]any{{"role": "user", "content": "with an otid", "otid": "otid-1"}}}
		} else {
			hdrs = []string{"Idempotency-Key", "key-1"}
		}
		code, hdr, body := x.callHeader("POST", base+"/messages", req, hdrs...)
		if hdr.Get("X-Should-Retry") != "" {
			t.Errorf("send with %s: X-Should-Retry %q (%d %s)", key, hdr.Get("X-Should-Retry"), code, body)
		}
		if key == "Idempotency-Key" {
			if code < 500 {
				t.Fatalf("send with %s: %d %s, want the scripted failure", key, code, body)
			}
			// The retry the SDK makes: the same body and key.
			var resp api.LettaResponse
			x.do("POST", base+"/messages", req, 200, &resp, hdrs...)
			if got := messageTypesOf(resp.Messages); !strings.Contains(got, "assistant_message") {
				t.Errorf("retry answered %s", got)
			}
		}
	}
	var history []api.LettaMessage
	x.do("GET", base+"/messages?order=asc&include_return_message_types=user_message", nil, 200, &history)
	count := map[string]int{}
	for _, m := range history {
		count[*m.Content]++
	}
	if count["with a key"] != 1 {
		t.Errorf("the retried input is stored %d times: %v", count["with a key"], count)
	}
}

// With stream_tokens the thoughts of each step arrive once, as deltas that
// share one id per step.
func TestStreamTokens(t *testing.T) {
	x, script := newModelHarness(t)
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	script.Push(
		llmtest.Step{Content: "First I note that Ada likes tea.", ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		llmtest.Step{Content: "Now I answer her.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"Noted!"}`}}},
	)
	res, err := x.client.Post(x.srv.URL+"/v1/agents/"+a.ID+"/messages", "application/json",
		strings.NewReader(`{"input": "I like tea", "streaming": true, "stream_tokens": true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var ids []string
	thoughts := map[string]string{}
	var types []string
	runs := map[string]int{}
	for _, d := range sseData(string(body)) {
		var m struct {
			ID          string `json:"id"`
			MessageType string `json:"message_type"`
			Reasoning   string `json:"reasoning"`
			RunID       string `json:"run_id"`
		}
		if d == "[DONE]" || json.Unmarshal([]byte(d), &m) != nil {
			continue
		}
		types = append(types, m.MessageType)
		runs[m.RunID]++ // every event, the first token delta too, names the run
		if m.MessageType == api.ReasoningMessageType {
			if _, ok := thoughts[m.ID]; !ok {
				ids = append(ids, m.ID)
			}
			thoughts[m.ID] += m.Reasoning
		}
	}
	var got []string
	for _, id := range ids {
		got = append(got, thoughts[id])
	}
	if want := []string{"First I note that Ada likes tea.", "Now I answer her."}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("thoughts by id = %q, want %q (events %s)", got, want, strings.Join(types, ","))
	}
	if n := len(types); n < 2 || types[n-2] != "stop_reason" || types[n-1] != "usage_statistics" {
		t.Errorf("events %s", strings.Join(types, ","))
	}
	if _, none := runs[""]; none || len(runs) != 1 {
		t.Errorf("run_id of the events: %v; want one run named by all", runs)
	}
}

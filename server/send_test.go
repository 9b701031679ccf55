package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

func startWithModel(t *testing.T, edit ...func(*Config)) (*Server, *llmtest.Server, string) {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "127.0.0.1:0", false
	cfg.Node.Service.Providers = reg
	for _, e := range edit {
		e(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	code, body := do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/", map[string]any{
		"agent_type":    "memgpt_agent", // the scripts speak the MemGPT loop
		"llm_config":    map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}},
	})
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	var a api.AgentState
	json.Unmarshal(body, &a)
	return s, script, a.ID
}

func reply(text string) llmtest.Step {
	return llmtest.Step{Content: "thinking", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"` + text + `"}`}}}
}

func TestSendOverREST(t *testing.T) {
	s, script, id := startWithModel(t)
	script.Push(reply("Hello Ada"))
	code, body := do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/"+id+"/messages", map[string]any{
		"messages": []map[string]any{{"role": "user", "content": "hi"}},
	})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var resp api.LettaResponse
	json.Unmarshal(body, &resp)
	if len(resp.Messages) != 3 || resp.Messages[1].MessageType != "assistant_message" || *resp.Messages[1].Content != "Hello Ada" ||
		resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 1 {
		t.Fatalf("response %s", body)
	}
	// The 0.5 "text" field works too; the history pages through both turns.
	script.Push(reply("Again"))
	if code, body := do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/"+id+"/messages", map[string]any{
		"messages": []map[string]any{{"role": "user", "text": "hello again"}},
	}); code != 200 {
		t.Fatalf("0.5 text: %d %s", code, body)
	}
	_, hist := do(t, http.DefaultClient, "GET", s.URL+"/v1/agents/"+id+"/messages?limit=3", nil)
	var ms []api.LettaMessage
	json.Unmarshal(hist, &ms)
	// Newest first; three stored messages, the assistant's in two parts,
	// send_message's return not shown (as Letta lists them).
	if len(ms) != 3 || ms[0].MessageType != "reasoning_message" || ms[1].Content == nil || *ms[1].Content != "Again" || ms[2].MessageType != "user_message" {
		t.Fatalf("history %s", hist)
	}
}

func TestSendStreamsSSE(t *testing.T) {
	s, script, id := startWithModel(t)
	script.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{Name: "archival_memory_insert", Arguments: `{"content":"likes tea","request_heartbeat":true}`}}}, reply("Stored."))
	req, _ := http.NewRequest("POST", s.URL+"/v1/agents/"+id+"/messages", strings.NewReader(`{"input":"remember tea","streaming":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var kinds []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		if data == "[DONE]" {
			kinds = append(kinds, "[DONE]")
			continue
		}
		var m struct {
			MessageType string `json:"message_type"`
		}
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("data is not JSON: %q", data)
		}
		kinds = append(kinds, m.MessageType)
	}
	want := "tool_call_message,tool_return_message,reasoning_message,assistant_message,tool_return_message,stop_reason,usage_statistics,[DONE]"
	if got := strings.Join(kinds, ","); got != want {
		t.Fatalf("stream:\n got %s\nwant %s", got, want)
	}
}

func TestSendOverNATS(t *testing.T) {
	s, script, id := startWithModel(t)
	script.Push(reply("Hi over NATS"))
	nc, err := nats.Connect(s.Node.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Watch the agent's messages as they are committed.
	watched := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("ev.default.agent.*."+id+".>", watched)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	msg, err := nc.Request(bus.AgentRequestSubject("default", id), []byte(`{"input":"hello"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp api.LettaResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil || len(resp.Messages) == 0 {
		t.Fatalf("reply %s", msg.Data)
	}
	roles := map[string]int{}
	timeout := time.After(5 * time.Second)
	for len(roles) < 3 {
		select {
		case m := <-watched:
			// A step's events arrive as one packed message.
			envs, err := events.DecodeAll(m.Data)
			if err != nil {
				t.Fatalf("watched %s: %v", m.Data, err)
			}
			for _, env := range envs {
				if mm, ok := events.AsMessage(env.Event); ok {
					roles[mm.Role]++
				}
			}
		case <-timeout:
			t.Fatalf("watched %v", roles)
		}
	}
	bad, _ := nc.Request(bus.AgentRequestSubject("default", id), []byte(`{}`), 5*time.Second)
	if !strings.Contains(string(bad.Data), `"detail"`) {
		t.Fatalf("bad request reply %s", bad.Data)
	}
}

func TestSendStreamsTokens(t *testing.T) {
	s, script, id := startWithModel(t)
	script.Push(llmtest.Step{Content: "Let me think about this carefully before answering.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"done"}`}}})
	req, _ := http.NewRequest("POST", s.URL+"/v1/agents/"+id+"/messages", strings.NewReader(`{"input":"hi","streaming":true,"stream_tokens":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var deltas strings.Builder
	chunks := 0
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var m struct {
			MessageType string `json:"message_type"`
			Reasoning   string `json:"reasoning"`
		}
		json.Unmarshal([]byte(data), &m)
		if m.MessageType == "reasoning_message" {
			chunks++
			deltas.WriteString(m.Reasoning)
		}
	}
	if chunks < 3 || !strings.Contains(deltas.String(), "Let me think about this carefully") {
		t.Fatalf("%d reasoning chunks: %q", chunks, deltas.String())
	}
}

package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/engram-dev/engram/llmtest"
)

// lettaCodeAgent is the body Letta Code 0.32.18 sends to create its agent
// (reference/letta-code.md), its long system prompt shortened.
func lettaCodeAgent() map[string]any {
	return map[string]any{
		"name":                     "letta-code-agent",
		"agent_type":               "letta_v1_agent",
		"model":                    "openai/gpt-4o-mini",
		"embedding":                "openai/text-embedding-3-small",
		"tools":                    []string{"web_search", "fetch_webpage"},
		"include_base_tools":       false,
		"include_base_tool_rules":  false,
		"initial_message_sequence": []any{},
		"memory_blocks": []map[string]any{
			{"label": "persona", "value": "I am a coding agent.", "description": "who I am"},
			{"label": "human", "value": "The user codes in Go."},
		},
		"system":               "You are Letta Code, a coding agent. " + strings.Repeat("Be careful. ", 1400),
		"tags":                 []string{"origin:letta-code"},
		"compaction_settings":  map[string]any{"mode": "sliding_window", "sliding_window_percentage": 0.3},
		"context_window_limit": 20000,
		"parallel_tool_calls":  true,
		"model_settings":       map[string]any{"provider_type": "openai", "max_output_tokens": 1000},
	}
}

func TestCreateAgentAsLettaCodeDoes(t *testing.T) {
	x, script := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", lettaCodeAgent(), 200, &a)
	get := func(path ...string) any {
		var v any = a
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		return v
	}
	if get("agent_type") != "letta_v1_agent" {
		t.Errorf("agent_type = %v", get("agent_type"))
	}
	var tools []string
	for _, tl := range get("tools").([]any) {
		tl := tl.(map[string]any)
		tools = append(tools, tl["name"].(string)+"/"+tl["tool_type"].(string))
	}
	if strings.Join(tools, ",") != "web_search/letta_builtin,fetch_webpage/letta_builtin" {
		t.Errorf("tools = %v", tools)
	}
	if ids := get("message_ids").([]any); len(ids) != 1 {
		t.Errorf("message_ids = %v; want the system message alone", ids)
	}
	if w := get("llm_config", "context_window"); w != 20000.0 {
		t.Errorf("llm_config.context_window = %v", w)
	}
	if p := get("llm_config", "parallel_tool_calls"); p != true {
		t.Errorf("llm_config.parallel_tool_calls = %v", p)
	}
	// model_settings as Letta 0.16.8 echoes this body (asked of the real
	// server): its class defaults for what the body left out.
	ms, _ := json.Marshal(get("model_settings"))
	want := `{"max_output_tokens":1000,"parallel_tool_calls":true,"provider_type":"openai","reasoning":{"reasoning_effort":"high"},"response_format":null,"strict":true,"temperature":0.7}`
	if string(ms) != want {
		t.Errorf("model_settings = %s\nwant             %s", ms, want)
	}
	cs, _ := json.Marshal(get("compaction_settings"))
	if string(cs) != `{"mode":"sliding_window","sliding_window_percentage":0.3}` {
		t.Errorf("compaction_settings = %s", cs)
	}
	id := get("id").(string)

	// What Letta Code does next: PATCH the model, then read the agent back.
	x.do("PATCH", "/v1/agents/"+id, map[string]any{"model": "openai/gpt-4o-mini", "model_settings": map[string]any{"provider_type": "openai", "temperature": 0.2},
		"context_window_limit": 16000, "max_tokens": 2000}, 200, &a)
	if get("llm_config", "context_window") != 16000.0 || get("llm_config", "max_tokens") != 2000.0 || get("model_settings", "temperature") != 0.2 {
		t.Errorf("after PATCH: llm_config %v, model_settings %v", get("llm_config"), get("model_settings"))
	}
	x.do("GET", "/v1/agents/"+id+"?include=agent.tools&include=agent.tags", nil, 200, &a)
	if cs, _ := json.Marshal(get("compaction_settings")); string(cs) != `{"mode":"sliding_window","sliding_window_percentage":0.3}` {
		t.Errorf("compaction_settings after GET = %s", cs)
	}

	// And a streamed send is answered by the modern loop: an assistant
	// message, then end_turn.
	script.Push(llmtest.Step{Content: "Hello from v1."})
	req, _ := json.Marshal(map[string]any{
		"messages":  []map[string]any{{"role": "user", "content": []map[string]any{{"type": "text", "text": "hi"}}, "otid": "otid-lc-1"}},
		"streaming": true, "stream_tokens": true,
	})
	res, err := x.client.Post(x.srv.URL+"/v1/agents/"+id+"/messages", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("send: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var said strings.Builder
	var kinds []string
	for _, line := range strings.Split(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		kinds = append(kinds, m["message_type"].(string))
		if m["message_type"] == "assistant_message" {
			said.WriteString(m["content"].(string))
		}
		if m["message_type"] == "stop_reason" && m["stop_reason"] != "end_turn" {
			t.Errorf("stop_reason = %v", m["stop_reason"])
		}
	}
	if said.String() != "Hello from v1." || !strings.Contains(strings.Join(kinds, ","), "assistant_message,stop_reason,usage_statistics") {
		t.Errorf("stream: said %q, events %v", said.String(), kinds)
	}
	if n := len(script.Requests()); n != 1 {
		t.Errorf("%d model calls", n)
	}
}

func TestUnknownToolNamesAre400AsInLetta(t *testing.T) {
	x := newHarness(t, Config{})
	var agentsBefore []any
	x.do("GET", "/v1/agents/", nil, 200, &agentsBefore)
	body := lettaCodeAgent()
	body["tools"] = []string{"web_search", "no_such_tool", "zap"}
	code, data := x.call("POST", "/v1/agents/", body)
	// Letta 0.16.8 answers 400 {"detail": "Tools not found by name: {'no_such_tool', 'zap'}"}
	// (a Python set: its order is the set's; engram keeps the request's).
	if code != 400 || strings.TrimSpace(string(data)) != `{"detail":"Tools not found by name: {'no_such_tool', 'zap'}"}` {
		t.Fatalf("unknown tools: %d %s", code, data)
	}
	var agentsAfter []any
	x.do("GET", "/v1/agents/", nil, 200, &agentsAfter)
	if len(agentsAfter) != len(agentsBefore) {
		t.Fatalf("a refused create made an agent")
	}
	bad := lettaCodeAgent()
	bad["agent_type"] = "bogus_agent"
	x.do("POST", "/v1/agents/", bad, 422, nil)
	bad = lettaCodeAgent()
	bad["initial_message_sequence"] = []map[string]any{{"role": "user", "content": "hi"}}
	x.do("POST", "/v1/agents/", bad, 400, nil)
	bad = lettaCodeAgent()
	bad["model_settings"] = map[string]any{"provider_type": "openai", "reasoning": map[string]any{"reasoning_effort": "extreme"}}
	x.do("POST", "/v1/agents/", bad, 422, nil)
}

func TestLetta05AgentsKeepTheMemGPTLoop(t *testing.T) {
	x := newHarness(t, Config{})
	var a map[string]any
	x.do("POST", "/letta-0.5/v1/agents", map[string]any{"name": "old"}, 200, &a)
	var full map[string]any
	x.do("GET", "/v1/agents/"+a["id"].(string), nil, 200, &full)
	if full["agent_type"] != "memgpt_agent" {
		t.Fatalf("a 0.5 agent runs %v", full["agent_type"])
	}
}

func TestLLMConfigAsLettaShowsIt(t *testing.T) {
	x := newHarness(t, Config{})
	var a map[string]any
	// Letta names a model behind an OpenAI-compatible server
	// openai-proxy/<name>; engram takes it for openai/<name>.
	x.do("POST", "/v1/agents/", map[string]any{"name": "proxied", "model": "openai-proxy/gpt-4o-mini"}, 200, &a)
	cfg := a["llm_config"].(map[string]any)
	if a["model"] != "openai/gpt-4o-mini" || cfg["handle"] != "openai/gpt-4o-mini" {
		t.Errorf("model %v, llm_config.handle %v", a["model"], cfg["handle"])
	}
	for k, want := range map[string]any{
		"provider_name": "openai", "provider_category": "base", "parallel_tool_calls": false, "max_tokens": nil,
		"display_name": nil, "frequency_penalty": nil, "response_format": nil, "return_logprobs": false, "return_token_ids": false,
		"top_logprobs": nil, "tool_call_parser": nil, "verbosity": nil, "tier": nil, "effort": nil, "compatibility_type": nil,
	} {
		got, ok := cfg[k]
		if !ok || got != want {
			t.Errorf("llm_config.%s = %v (present %v); want %v", k, got, ok, want)
		}
	}
	// The config round-trips: what GET shows, PATCH takes.
	x.do("PATCH", "/v1/agents/"+a["id"].(string), map[string]any{"llm_config": cfg, "parallel_tool_calls": true}, 200, &a)
	if p := a["llm_config"].(map[string]any)["parallel_tool_calls"]; p != true {
		t.Errorf("after PATCH parallel_tool_calls = %v", p)
	}
	x.do("POST", "/v1/agents/", map[string]any{"name": "nope", "model": "openai-proxy/no-such-model"}, 404, nil)
	x.do("POST", "/v1/agents/", map[string]any{"name": "nope", "model": "openai-proxy/"}, 404, nil)
}

func TestHistoryHidesSendMessageReturnsAsLetta(t *testing.T) {
	x, script := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", map[string]any{"name": "memgpt", "agent_type": "memgpt_agent", "model": "openai/gpt-4o-mini"}, 200, &a)
	id := a["id"].(string)
	script.Push(say("Hi there."))
	x.do("POST", "/v1/agents/"+id+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello"}}}, 200, nil)
	types := func(ms []map[string]any) string {
		var out []string
		for _, m := range ms {
			out = append(out, m["message_type"].(string))
		}
		return strings.Join(out, ",")
	}
	var ms []map[string]any
	x.do("GET", "/v1/agents/"+id+"/messages?limit=3", nil, 200, &ms)
	// Three stored messages, newest first: send_message's return (not
	// shown), the assistant's thought and answer, the user's message.
	if got := types(ms); got != "reasoning_message,assistant_message,user_message" {
		t.Errorf("limit=3: %s", got)
	}
	x.do("GET", "/v1/agents/"+id+"/messages?limit=3&use_assistant_message=false", nil, 200, &ms)
	if got := types(ms); got != "tool_return_message,reasoning_message,assistant_message,user_message" {
		t.Errorf("use_assistant_message=false: %s", got)
	}
	x.do("GET", "/v1/agents/"+id+"/messages", nil, 200, &ms)
	for _, m := range ms {
		if m["message_type"] == "tool_return_message" {
			t.Errorf("the whole history shows %v", m)
		}
	}
}

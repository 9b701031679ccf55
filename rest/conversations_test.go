package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/engram-dev/engram/llmtest"
)

// sse posts body to path and returns the data events of the stream.
func (x *harness) sse(path string, body any) []map[string]any {
	x.t.Helper()
	req, _ := json.Marshal(body)
	res, err := x.client.Post(x.srv.URL+path, "application/json", bytes.NewReader(req))
	if err != nil {
		x.t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		x.t.Fatalf("POST %s: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), data)
	}
	var out []map[string]any
	for _, line := range strings.Split(string(data), "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(d), &m); err != nil {
			x.t.Fatalf("event %q: %v", d, err)
		}
		out = append(out, m)
	}
	return out
}

func kindsOf(evs []map[string]any) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, e["message_type"].(string))
	}
	return strings.Join(ks, ",")
}

// lettaCodeSend is a send as Letta Code 0.32.18 makes it in a conversation.
func lettaCodeSend(text, otid string) map[string]any {
	return map[string]any{
		"messages":  []map[string]any{{"role": "user", "content": []map[string]any{{"type": "text", "text": text}}, "otid": otid}},
		"streaming": true, "stream_tokens": true, "include_pings": true, "background": true,
		"client_skills":               []map[string]any{{"name": "s", "description": "d", "location": "/x"}},
		"client_tools":                []map[string]any{{"name": "exec_command", "description": "run", "parameters": map[string]any{"type": "object"}}},
		"include_compaction_messages": true,
	}
}

func TestConversationsAsLettaCodeUsesThem(t *testing.T) {
	x, script := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", lettaCodeAgent(), 200, &a)
	agentID := a["id"].(string)

	// Created with an empty body, as Letta Code does.
	var c map[string]any
	x.do("POST", "/v1/conversations/?agent_id="+agentID, map[string]any{}, 200, &c)
	convID, _ := c["id"].(string)
	if !strings.HasPrefix(convID, "conv-") || c["agent_id"] != agentID {
		t.Fatalf("conversation = %v", c)
	}
	for _, k := range []string{"in_context_message_ids", "summary", "isolated_block_ids", "model", "model_settings", "last_message_at", "created_at", "updated_at"} {
		if _, ok := c[k]; !ok {
			t.Errorf("conversation lacks %s: %v", k, c)
		}
	}
	var got map[string]any
	x.do("GET", "/v1/conversations/"+convID, nil, 200, &got)
	if got["id"] != convID {
		t.Fatalf("GET conversation = %v", got)
	}
	// A fresh conversation has no messages; its in-context ids name the
	// agent's system message, which GET /v1/messages/{id} serves.
	var ms []map[string]any
	x.do("GET", "/v1/conversations/"+convID+"/messages?limit=50&order=desc&include_return_message_types=user_message&include_return_message_types=assistant_message", nil, 200, &ms)
	if len(ms) != 0 {
		t.Errorf("fresh conversation lists %v", ms)
	}
	inCtx := got["in_context_message_ids"].([]any)
	if len(inCtx) != 1 {
		t.Fatalf("in_context_message_ids = %v", inCtx)
	}
	var one []map[string]any
	x.do("GET", "/v1/messages/"+inCtx[0].(string), nil, 200, &one)
	if len(one) != 1 || one[0]["message_type"] != "system_message" {
		t.Errorf("GET /v1/messages/{system} = %v", one)
	}

	// The send Letta Code makes: its fields accepted, a stream with pings,
	// every event stamped with seq_id and otid, run_id once known.
	script.Push(llmtest.Step{Content: "Hello in a conversation."})
	evs := x.sse("/v1/conversations/"+convID+"/messages", lettaCodeSend("hi", "otid-conv-1"))
	if k := kindsOf(evs); !strings.HasPrefix(k, "ping,") || !strings.HasSuffix(k, "assistant_message,stop_reason,usage_statistics") {
		t.Errorf("events = %s", k)
	}
	if evs[0]["id"] == nil || evs[0]["date"] == nil {
		t.Errorf("a ping without id or date: %v", evs[0])
	}
	var run string
	for i, e := range evs {
		if e["seq_id"] != float64(i+1) {
			t.Errorf("event %d: seq_id %v", i, e["seq_id"])
		}
		if s, _ := e["otid"].(string); len(s) != 36 {
			t.Errorf("event %d: otid %v", i, e["otid"])
		}
		if e["message_type"] == "stop_reason" {
			run, _ = e["run_id"].(string)
		}
	}
	if !strings.HasPrefix(run, "run-") {
		t.Errorf("stop_reason carries no run_id: %v", evs)
	}
	var r map[string]any
	x.do("GET", "/v1/runs/"+run, nil, 200, &r)
	if r["conversation_id"] != convID {
		t.Errorf("the run's conversation_id = %v", r["conversation_id"])
	}

	// The conversation lists its own messages, newest first, and counts
	// them against the limit.
	x.do("GET", "/v1/conversations/"+convID+"/messages", nil, 200, &ms)
	if kindsOf(ms) != "assistant_message,user_message" {
		t.Errorf("conversation messages = %s", kindsOf(ms))
	}
	x.do("GET", "/v1/conversations/"+convID+"/messages?limit=1", nil, 200, &ms)
	if len(ms) != 1 || ms[0]["message_type"] != "assistant_message" {
		t.Errorf("limit=1: %v", ms)
	}
	x.do("GET", "/v1/conversations/"+convID, nil, 200, &got)
	if got["last_message_at"] == nil || len(got["in_context_message_ids"].([]any)) != 3 {
		t.Errorf("after a send: %v", got)
	}
	x.do("GET", "/v1/agents/"+agentID+"/messages?conversation_id="+convID, nil, 200, &ms)
	if kindsOf(ms) != "assistant_message,user_message" {
		t.Errorf("agent messages of the conversation = %s", kindsOf(ms))
	}

	// "default" is the agent's main conversation: a send there names no
	// conversation, so the other conversation does not list it.
	script.Push(llmtest.Step{Content: "Hello by default."})
	body := lettaCodeSend("hey", "otid-default-1")
	body["agent_id"] = agentID
	evs = x.sse("/v1/conversations/default/messages", body)
	if !strings.HasSuffix(kindsOf(evs), "assistant_message,stop_reason,usage_statistics") {
		t.Errorf("default send: %s", kindsOf(evs))
	}
	x.do("GET", "/v1/conversations/"+convID+"/messages", nil, 200, &ms)
	if len(ms) != 2 {
		t.Errorf("the conversation lists the default send: %v", ms)
	}
	x.do("GET", "/v1/conversations/default/messages?agent_id="+agentID+"&limit=2", nil, 200, &ms)
	if len(ms) != 2 || ms[0]["content"] != "Hello by default." {
		t.Errorf("default conversation messages = %v", ms)
	}

	// Listing, updating, deleting.
	var list []map[string]any
	x.do("POST", "/v1/conversations/?agent_id="+agentID, map[string]any{"summary": "second"}, 200, &c)
	x.do("GET", "/v1/conversations/?agent_id="+agentID, nil, 200, &list)
	if len(list) != 2 || list[0]["id"] != c["id"] {
		t.Errorf("list = %v", list)
	}
	x.do("GET", "/v1/conversations/?summary_search=SECOND", nil, 200, &list)
	if len(list) != 1 {
		t.Errorf("summary_search: %v", list)
	}
	x.do("PATCH", "/v1/conversations/"+convID, map[string]any{"summary": "first"}, 200, &got)
	if got["summary"] != "first" {
		t.Errorf("PATCH: %v", got)
	}
	x.do("DELETE", "/v1/conversations/"+c["id"].(string), nil, 200, nil)
	x.do("GET", "/v1/conversations/"+c["id"].(string), nil, 404, nil)
}

func TestConversationBadInput(t *testing.T) {
	x, _ := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", lettaCodeAgent(), 200, &a)
	agentID := a["id"].(string)
	missing := "conv-01a24aae-b5bb-7237-8c44-8afd37df8013"
	for _, tc := range []struct {
		method, path string
		body         any
		code         int
	}{
		{"POST", "/v1/conversations/", map[string]any{}, 422},                                                           // no agent_id
		{"POST", "/v1/conversations/?agent_id=agent-01a24aae-b4af-736c-9e22-07fa574961dc", map[string]any{}, 404},       // no such agent
		{"POST", "/v1/conversations/?agent_id=" + agentID, map[string]any{"bogus": 1}, 422},                             // unknown field
		{"POST", "/v1/conversations/?agent_id=" + agentID, map[string]any{"model_settings": 3}, 422},                    // not an object
		{"POST", "/v1/conversations/?agent_id=" + agentID, map[string]any{"isolated_block_labels": []string{"x"}}, 404}, // no such block
		{"POST", "/v1/conversations/?agent_id=" + agentID, map[string]any{"isolated_block_labels": []string{"human", "human"}}, 422},
		{"GET", "/v1/conversations/" + missing, nil, 404},
		{"GET", "/v1/conversations/not-an-id", nil, 422},
		{"GET", "/v1/conversations/default/messages", nil, 422}, // default needs agent_id
		{"POST", "/v1/conversations/default/messages", lettaCodeSend("x", "o"), 422},
		{"POST", "/v1/conversations/" + missing + "/messages", lettaCodeSend("x", "o"), 404},
		{"POST", "/v1/conversations/default/messages", map[string]any{"agent_id": agentID, "messages": []any{}}, 422},
		{"GET", "/v1/messages/message-01a24aae-b4af-736c-9e22-07fc3938852d", nil, 404},
		{"GET", "/v1/messages/nope", nil, 422},
		{"GET", "/v1/conversations/?order_by=last_message_at", nil, 422},
	} {
		code, data := x.call(tc.method, tc.path, tc.body)
		var e map[string]any
		if code != tc.code || json.Unmarshal(data, &e) != nil || e["detail"] == nil {
			t.Errorf("%s %s: %d %s; want %d with a detail", tc.method, tc.path, code, data, tc.code)
		}
	}
	var list []any
	x.do("GET", "/v1/conversations/", nil, 200, &list)
	if len(list) != 0 {
		t.Errorf("refused requests made conversations: %v", list)
	}
}

// With include_pings the stream opens with a ping, but only once the run
// has something to send: a send refused before that is a JSON error.
func TestPingsLeaveEarlyErrorsJSON(t *testing.T) {
	x, _ := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", map[string]any{"name": "unrunnable", "llm_config": map[string]any{
		"model": "claude-x", "model_endpoint_type": "anthropic", "context_window": 8000}}, 200, &a)
	body := lettaCodeSend("hi", "otid-unrunnable")
	body["agent_id"] = a["id"]
	code, data := x.call("POST", "/v1/conversations/default/messages", body)
	var e map[string]any
	if code != 400 || json.Unmarshal(data, &e) != nil || e["detail"] == nil {
		t.Errorf("send to an agent whose model cannot run: %d %s", code, data)
	}
}

// TestConversationsAreIsolatedOverREST: two conversations of one agent and
// its default one, sends alternating over HTTP: the model is sent each
// conversation's own messages and the agent's shared memory; each lists
// its own messages; the agent's list holds all, conversation_id=default
// only the default one's; an unknown override_model is 404 and stores
// nothing.
func TestConversationsAreIsolatedOverREST(t *testing.T) {
	x, script := newModelHarness(t)
	var a map[string]any
	x.do("POST", "/v1/agents/", map[string]any{"agent_type": "letta_v1_agent", "model": "openai/gpt-4o-mini",
		"memory_blocks": []map[string]any{{"label": "human", "value": "The user codes in Go."}}}, 200, &a)
	agentID := a["id"].(string)
	var c1, c2 map[string]any
	x.do("POST", "/v1/conversations/?agent_id="+agentID, map[string]any{}, 200, &c1)
	x.do("POST", "/v1/conversations/?agent_id="+agentID, map[string]any{}, 200, &c2)
	send := func(conv, text, answer string) string {
		t.Helper()
		script.Push(llmtest.Step{Content: answer})
		body := map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}, "streaming": false}
		if conv == "default" {
			body["agent_id"] = agentID
		}
		x.do("POST", "/v1/conversations/"+conv+"/messages", body, 200, nil)
		reqs := script.Requests()
		var b strings.Builder
		for _, m := range reqs[len(reqs)-1].Messages[1:] {
			b.WriteString(m.Content + "\n")
		}
		return b.String()
	}
	one, two := c1["id"].(string), c2["id"].(string)
	send(one, "alpha question", "alpha answer")
	if got := send(two, "beta question", "beta answer"); strings.Contains(got, "alpha") {
		t.Errorf("conversation two was sent conversation one's messages:\n%s", got)
	}
	if got := send(one, "alpha again", "alpha answer 2"); !strings.Contains(got, "alpha question") || !strings.Contains(got, "alpha answer") || strings.Contains(got, "beta") {
		t.Errorf("conversation one was sent:\n%s", got)
	}
	if got := send("default", "gamma question", "gamma answer"); strings.Contains(got, "alpha") || strings.Contains(got, "beta") {
		t.Errorf("the default conversation was sent:\n%s", got)
	}

	listed := func(path string) string {
		t.Helper()
		var ms []map[string]any
		x.do("GET", path, nil, 200, &ms)
		var b strings.Builder
		for _, m := range ms {
			if s, ok := m["content"].(string); ok {
				b.WriteString(s + "\n")
			}
		}
		return b.String()
	}
	for _, c := range []struct{ path, want, avoid string }{
		{"/v1/conversations/" + one + "/messages", "alpha again", "beta"},
		{"/v1/conversations/" + two + "/messages", "beta answer", "alpha"},
		{"/v1/conversations/default/messages?agent_id=" + agentID, "gamma answer", "alpha"},
		{"/v1/conversations/default/messages?agent_id=" + agentID, "gamma question", "beta"},
		{"/v1/agents/" + agentID + "/messages?conversation_id=default", "gamma question", "alpha"},
		{"/v1/agents/" + agentID + "/messages?conversation_id=" + two, "beta question", "gamma"},
		{"/v1/agents/" + agentID + "/messages?limit=100", "alpha again", "no such words"},
		{"/v1/agents/" + agentID + "/messages?limit=100", "beta answer", "no such words"},
	} {
		if got := listed(c.path); !strings.Contains(got, c.want) || strings.Contains(got, c.avoid) {
			t.Errorf("GET %s lists:\n%s\nwant %q, not %q", c.path, got, c.want, c.avoid)
		}
	}
	var got map[string]any
	x.do("GET", "/v1/conversations/"+one, nil, 200, &got)
	if ids := got["in_context_message_ids"].([]any); len(ids) != 5 || ids[0] != a["message_ids"].([]any)[0] {
		t.Errorf("conversation one's in_context_message_ids = %v; want the agent's system message and its 4 messages", ids)
	}

	var before []any
	x.do("GET", "/v1/agents/"+agentID+"/messages?limit=100", nil, 200, &before)
	for _, bad := range []struct {
		model string
		code  int
	}{{"openai/no-such-model", 404}, {"no-slash", 400}} {
		body := map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}, "streaming": false, "override_model": bad.model}
		code, data := x.call("POST", "/v1/conversations/"+one+"/messages", body)
		var e map[string]any
		if code != bad.code || json.Unmarshal(data, &e) != nil || e["detail"] == nil {
			t.Errorf("override_model %q: %d %s; want %d with a detail", bad.model, code, data, bad.code)
		}
	}
	var after []any
	x.do("GET", "/v1/agents/"+agentID+"/messages?limit=100", nil, 200, &after)
	if len(after) != len(before) {
		t.Errorf("refused sends stored %d messages", len(after)-len(before))
	}
	// A known override_model is the model the run calls.
	body := map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}, "streaming": false, "override_model": "openai/gpt-4o-mini"}
	script.Push(llmtest.Step{Content: "ok"})
	x.do("POST", "/v1/conversations/"+two+"/messages", body, 200, nil)
	if reqs := script.Requests(); reqs[len(reqs)-1].Model != "gpt-4o-mini" {
		t.Errorf("override_model: the run called %q", reqs[len(reqs)-1].Model)
	}
}

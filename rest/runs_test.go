package rest

import (
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
)

// TestRunRoutes drives Letta's runs API over HTTP: an async send answers a
// run at once, which completes on the agent's worker; its messages, usage
// and listing; a run cancelled between steps stops with stop_reason
// cancelled.
func TestRunRoutes(t *testing.T) {
	x, script := newModelHarness(t)
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	base := "/v1/agents/" + a.ID
	poll := func(id string, done func(api.Run) bool) api.Run {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var run api.Run
			x.do("GET", "/v1/runs/"+id, nil, 200, &run)
			if done(run) {
				return run
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s: %+v", id, run)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	script.Push(say("hello"))
	var run api.Run
	x.do("POST", base+"/messages/async", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, 200, &run)
	if !strings.HasPrefix(run.ID, "run-") || run.AgentID != a.ID || (run.Status != "created" && run.Status != "running") {
		t.Fatalf("async send answered %+v", run)
	}
	run = poll(run.ID, func(r api.Run) bool { return r.Status == "completed" })
	if run.StopReason == nil || *run.StopReason != "end_turn" || run.CompletedAt == nil {
		t.Fatalf("completed run: %+v", run)
	}
	var ms []api.LettaMessage
	x.do("GET", "/v1/runs/"+run.ID+"/messages", nil, 200, &ms)
	if got := messageTypesOf(ms); got != "user_message,reasoning_message,assistant_message,tool_return_message" {
		t.Fatalf("run messages: %s", got)
	}
	for _, m := range ms {
		if m.RunID == nil || *m.RunID != run.ID {
			t.Fatalf("message %s has run_id %v", m.ID, m.RunID)
		}
	}
	x.do("GET", "/v1/runs/"+run.ID+"/messages?order=desc&limit=1", nil, 200, &ms)
	if len(ms) != 1 || ms[0].MessageType != api.ToolReturnMessageType {
		t.Fatalf("last run message: %+v", ms)
	}
	var u api.Usage
	x.do("GET", "/v1/runs/"+run.ID+"/usage", nil, 200, &u)
	if u.StepCount != 1 || u.TotalTokens == 0 || len(u.RunIDs) != 1 || u.RunIDs[0] != run.ID {
		t.Fatalf("usage: %+v", u)
	}
	var steps []api.Step
	x.do("GET", "/v1/runs/"+run.ID+"/steps", nil, 200, &steps)
	if len(steps) != 1 || steps[0].RunID != run.ID || steps[0].AgentID != a.ID || steps[0].TotalTokens != u.TotalTokens ||
		steps[0].StopReason == nil || *steps[0].StopReason != "end_turn" || !strings.HasPrefix(steps[0].ID, "step-") {
		t.Fatalf("steps: %+v", steps)
	}

	// A sync send reports its run in usage.run_ids.
	script.Push(say("again"))
	var resp api.LettaResponse
	x.do("POST", base+"/messages", map[string]any{"input": "once more"}, 200, &resp)
	if len(resp.Usage.RunIDs) != 1 || resp.Usage.RunIDs[0] == run.ID {
		t.Fatalf("sync send usage: %+v", resp.Usage)
	}

	// Cancel between steps: the second step is in flight when the cancel
	// lands, and no third step follows.
	beat := func(delay time.Duration) llmtest.Step {
		return llmtest.Step{Delay: delay, ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"x","request_heartbeat":true}`}}}
	}
	script.Push(beat(0), beat(400*time.Millisecond), beat(0), say("unreached"))
	var long api.Run
	x.do("POST", base+"/messages/async", map[string]any{"input": "a long task"}, 200, &long)
	deadline := time.Now().Add(10 * time.Second)
	for {
		x.do("GET", "/v1/runs/"+long.ID+"/usage", nil, 200, &u)
		if u.StepCount >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var cancelled map[string]string
	x.do("POST", base+"/messages/cancel", map[string]any{"run_ids": []string{long.ID}}, 200, &cancelled)
	if cancelled[long.ID] != "cancelled" {
		t.Fatalf("cancel answered %v", cancelled)
	}
	long = poll(long.ID, func(r api.Run) bool { return r.Status == "cancelled" })
	if long.StopReason == nil || *long.StopReason != "cancelled" {
		t.Fatalf("cancelled run: %+v", long)
	}
	time.Sleep(600 * time.Millisecond)
	if x.do("GET", "/v1/runs/"+long.ID+"/steps", nil, 200, &steps); len(steps) != 2 {
		t.Errorf("the cancelled run lists %d steps, want the 2 it took", len(steps))
	}
	if x.do("GET", "/v1/runs/"+long.ID+"/usage", nil, 200, &u); u.StepCount != 2 {
		t.Fatalf("the cancelled run took %d steps, want 2", u.StepCount)
	}

	var runs []api.Run
	x.do("GET", "/v1/runs/?agent_id="+a.ID, nil, 200, &runs)
	if len(runs) != 3 || runs[0].ID != long.ID || runs[2].ID != run.ID {
		t.Fatalf("runs: %+v", runs)
	}
	x.do("GET", "/v1/runs/?agent_id="+a.ID+"&order=asc&limit=1&statuses=completed", nil, 200, &runs)
	if len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("first completed run: %+v", runs)
	}
	x.do("GET", "/v1/runs/?statuses=cancelled&stop_reason=cancelled", nil, 200, &runs)
	if len(runs) != 1 || runs[0].ID != long.ID {
		t.Fatalf("cancelled runs: %+v", runs)
	}
	x.do("GET", "/v1/runs/?active=true", nil, 200, &runs)
	if len(runs) != 0 {
		t.Fatalf("active runs: %+v", runs)
	}
	cancelled = nil
	x.do("POST", base+"/messages/cancel", nil, 200, &cancelled)
	if len(cancelled) != 0 {
		t.Fatalf("cancelling with nothing active: %v", cancelled)
	}

	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1/runs/run-00000000-0000-4000-8000-000000000000", 404},
		{"GET", "/v1/runs/nonsense", 422},
		{"GET", "/v1/runs/run-00000000-0000-4000-8000-000000000000/messages", 404},
		{"GET", "/v1/runs/?order=sideways", 422},
	} {
		if code, body := x.call(c.method, c.path, nil); code != c.code {
			t.Errorf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}
	if code, body := x.call("POST", base+"/messages/cancel", map[string]any{"run_ids": []string{"run-00000000-0000-4000-8000-000000000000"}}); code != 404 {
		t.Errorf("cancelling an unknown run: %d %s", code, body)
	}
}

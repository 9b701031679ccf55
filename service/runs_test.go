package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// waitRun polls a run until ok holds of it.
func waitRun(t *testing.T, r *rig, runID string, ok func(api.Run, api.Usage) bool) api.Run {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := r.n.Service.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := r.n.Service.RunUsage(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if ok(run, u) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %+v, %+v", runID, run, u)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func heartbeat(content string, delay time.Duration) llmtest.Step {
	return llmtest.Step{Delay: delay, ToolCalls: []agents.ToolCall{call("core_memory_append", map[string]any{"name": "human", "content": content, "request_heartbeat": true})}}
}

// TestRunCancelBetweenSteps cancels a run under way, whose chain has more
// steps scripted, and a run waiting behind it: the first stops after the
// step in flight, the second never begins, and both read the same after a
// restart.
func TestRunCancelBetweenSteps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	r := startRig(t, dir, script)
	a := r.agent(t)
	r.llm.Push(heartbeat("one", 0), heartbeat("two", 400*time.Millisecond), heartbeat("three", 0), say("done"))

	first, err := r.n.Service.SendMessageAsync(ctx, a.ID, []service.Input{{Role: "user", Text: "remember three things"}}, service.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "created" && first.Status != "running" || first.AgentID != a.ID || first.CompletedAt != nil {
		t.Fatalf("async send answered %+v", first)
	}
	second, err := r.n.Service.SendMessageAsync(ctx, a.ID, []service.Input{{Role: "user", Text: "and then?"}}, service.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID {
		t.Fatal("two sends share a run")
	}
	// The first step commits; the second is in flight (its reply is delayed).
	waitRun(t, r, first.ID, func(run api.Run, u api.Usage) bool { return u.StepCount >= 1 })
	got, err := r.n.Service.CancelRuns(ctx, a.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[first.ID] != "cancelled" || got[second.ID] != "cancelled" {
		t.Fatalf("cancel answered %v", got)
	}
	run := waitRun(t, r, first.ID, func(run api.Run, u api.Usage) bool { return u.StepCount >= 2 })
	time.Sleep(300 * time.Millisecond) // a third step would have been asked for by now
	if n := len(r.llm.Requests()); n != 2 {
		t.Fatalf("the model was called %d times; the run should stop after its second step", n)
	}
	if run.Status != "cancelled" || run.StopReason == nil || *run.StopReason != "cancelled" || run.CompletedAt == nil {
		t.Fatalf("cancelled run: %+v", run)
	}
	queued, _ := r.n.Service.GetRun(ctx, second.ID)
	if queued.Status != "cancelled" {
		t.Fatalf("queued run: %+v", queued)
	}
	if u, _ := r.n.Service.RunUsage(ctx, second.ID); u.StepCount != 0 {
		t.Fatalf("a cancelled queued run took %d steps", u.StepCount)
	}
	again, _ := r.n.Service.CancelRuns(ctx, a.ID, []string{first.ID})
	if again[first.ID] != "not_active" {
		t.Fatalf("cancelling an ended run: %v", again)
	}

	// The agent goes on with the next send; the unused steps answer it.
	resp := send(t, r, a.ID, "hello again")
	if len(resp.Usage.RunIDs) != 1 || resp.StopReason.StopReason != "end_turn" {
		t.Fatalf("next send: %+v", resp)
	}
	third := resp.Usage.RunIDs[0]
	ms, err := r.n.Service.RunMessages(ctx, third, api.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].MessageType != api.UserMessageType {
		t.Fatalf("run messages: %+v", ms)
	}
	for _, m := range ms {
		if m.RunID == nil || *m.RunID != third {
			t.Fatalf("message %s of run %s has run_id %v", m.ID, third, m.RunID)
		}
	}
	runs, err := r.n.Service.ListRuns(ctx, api.RunFilter{AgentIDs: []string{a.ID}}, api.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != third || runs[2].ID != first.ID {
		t.Fatalf("runs, newest first: %+v", runs)
	}
	active, _ := r.n.Service.ListRuns(ctx, api.RunFilter{Active: true}, api.Page{})
	if len(active) != 0 {
		t.Fatalf("active runs: %+v", active)
	}

	before := map[string]api.Run{}
	for _, run := range runs {
		before[run.ID] = run
	}
	r.n.Close(ctx)
	r2 := startRig(t, dir, script)
	for id, want := range before {
		got, err := r2.n.Service.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want.Status || *got.StopReason != *want.StopReason || !got.CompletedAt.Equal(*want.CompletedAt) {
			t.Fatalf("after a restart run %s is %+v, was %+v", id, got, want)
		}
	}
	time.Sleep(200 * time.Millisecond) // the cancelled queued send is not run at start
	if n := len(script.Requests()); n != 4 {
		t.Fatalf("after the restart the model was called %d times in all, want 4", n)
	}
}

// A run whose later step fails is failed, with the failure in its metadata;
// one whose first step fails has taken nothing and waits for its retry.
func TestRunFails(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	r.llm.Push(llmtest.Step{Status: 500})
	first, err := r.n.Service.SendMessageAsync(ctx, a.ID, []service.Input{{Role: "user", Text: "hi"}}, service.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.llm.Requests()) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if run, _ := r.n.Service.GetRun(ctx, first.ID); run.Status != "created" {
		t.Fatalf("a run whose first step failed: %+v", run)
	}

	b := r.agent(t) // the first agent's send waits for its own retry
	r.llm.SetDefault(&llmtest.Step{Status: 500})
	r.llm.Push(heartbeat("x", 0))
	resp, err := r.n.Service.SendMessage(ctx, b.ID, []service.Input{{Role: "user", Text: "again"}}, service.SendOptions{})
	if err == nil {
		t.Fatalf("the send whose second step failed succeeded: %+v", resp)
	}
	runs, _ := r.n.Service.ListRuns(ctx, api.RunFilter{AgentIDs: []string{b.ID}}, api.Page{})
	run := waitRun(t, r, runs[0].ID, func(run api.Run, _ api.Usage) bool { return run.Status != "running" })
	if run.Status != "failed" || *run.StopReason != "error" || !strings.Contains(string(run.Metadata), "error") {
		t.Fatalf("a run whose second step failed: %+v", run)
	}
}

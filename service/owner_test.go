package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/service"
)

// newestUser is the text of the newest user message a model call sees.
func newestUser(rec llmtest.Recorded) string {
	for i := len(rec.Messages) - 1; i >= 0; i-- {
		var env struct{ Type, Message string }
		if m := rec.Messages[i]; m.Role == "user" && json.Unmarshal([]byte(m.Content), &env) == nil && env.Type == "user_message" {
			return env.Message
		}
	}
	return ""
}

// TestRetryAndSendWhileBusyRunInOrder: while the agent answers a send, a
// /retry and then another send arrive. Neither runs beside the run going
// on, nor on the node that received it: each is queued in the log and the
// agent's owner runs them after it, in the order they were received — the
// retry answers the first message again, then the second send is answered.
func TestRetryAndSendWhileBusyRunInOrder(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	release := make(chan struct{})
	calls := 0
	script.SetResponder(func(rec llmtest.Recorded) llmtest.Step {
		st := say("re: " + newestUser(rec))
		if calls++; calls == 1 {
			st.Hold = release // the first call waits: the agent is busy
		}
		return st
	})
	r := startRig(t, t.TempDir(), script)
	a := r.agent(t)

	var wg sync.WaitGroup
	var first, retried, second api.LettaResponse
	var errs [3]error
	wg.Add(1)
	go func() {
		defer wg.Done()
		first, errs[0] = r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "one"}}, service.SendOptions{UseAssistantMessage: true})
	}()
	waitFor(t, func() bool { return len(script.Requests()) == 1 })
	wg.Add(1)
	go func() {
		defer wg.Done()
		retried, errs[1] = r.n.Service.RunCommand(ctx, a.ID, "/retry")
	}()
	waitFor(t, func() bool { return pendingTypes(t, r, a.ID)[events.TypeRunRequested] == 1 })
	wg.Add(1)
	go func() {
		defer wg.Done()
		second, errs[2] = r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "two"}}, service.SendOptions{UseAssistantMessage: true})
	}()
	waitFor(t, func() bool { return pendingTypes(t, r, a.ID)[events.TypeMessageReceived] == 1 })
	time.Sleep(100 * time.Millisecond) // nothing else may reach the model meanwhile
	if n := len(script.Requests()); n != 1 {
		t.Fatalf("%d model calls while the agent was busy; want the first alone", n)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	var got []string
	for _, rec := range script.Requests() {
		got = append(got, newestUser(rec))
	}
	if strings.Join(got, ",") != "one,one,two" {
		t.Fatalf("the model answered %v; want one, then one again (the retry), then two", got)
	}
	for name, resp := range map[string]api.LettaResponse{"send one": first, "/retry": retried, "send two": second} {
		want := map[string]string{"send one": "re: one", "/retry": "re: one", "send two": "re: two"}[name]
		if !answered(resp, want) {
			t.Errorf("%s answered %+v; want %q", name, resp.Messages, want)
		}
	}
	// The log shows the order: each run's inputs were taken in turn.
	evs, err := r.n.Service.History(ctx, a.ID, api.EventFilter{Types: []string{string(events.TypeInputTaken)}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d input_taken events; want 3 (one, the retry, two)", len(evs))
	}
	if pending := pendingTypes(t, r, a.ID); len(pending) != 0 {
		t.Errorf("inputs left queued: %v", pending)
	}
}

func answered(resp api.LettaResponse, text string) bool {
	for _, m := range resp.Messages {
		if m.MessageType == api.AssistantMessageType && m.Content != nil && *m.Content == text {
			return true
		}
	}
	return false
}

// pendingTypes counts the types of the agent's queued inputs.
func pendingTypes(t *testing.T, r *rig, agentID string) map[events.Type]int {
	t.Helper()
	out := map[events.Type]int{}
	var refs []projections.Ref
	r.n.Projection.Read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			refs = append(refs, a.Pending...)
		}
	})
	for _, ref := range refs {
		env, err := r.n.Log.Load(context.Background(), ref.Seq, int(ref.Part))
		if err != nil {
			t.Fatal(err)
		}
		out[env.Event.EventType()]++
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
	}
}

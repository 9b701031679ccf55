package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// An updated message keeps its id and place, the model reads the new body,
// and the edit survives a restart (replayed from the log).
func TestUpdateMessageInPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	r := startRig(t, dir, script)
	a := r.agent(t)
	r.llm.Push(say("I like tea."))
	send(t, r, a.ID, "what do you like?")

	window, err := r.n.Service.ContextStoredMessages(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var target api.StoredMessage
	for _, m := range window {
		if m.Role == "assistant" && len(m.ToolCalls) > 0 {
			target = m
		}
	}
	if target.ID == "" {
		t.Fatalf("no assistant message in %+v", window)
	}
	text := "I thought it over."
	got, err := r.n.Service.UpdateMessage(ctx, a.ID, target.ID, api.MessageUpdate{Text: &text})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != target.ID || got.Text != text || len(got.ToolCalls) != 1 || !got.CreatedAt.Equal(target.CreatedAt) {
		t.Fatalf("updated = %+v, want id %s, text %q, the call kept, time %v", got, target.ID, text, target.CreatedAt)
	}
	check := func(label string, want int) {
		t.Helper()
		ms, err := r.n.Service.StoredMessagesByID(ctx, a.ID, []string{target.ID})
		if err != nil || len(ms) != 1 || ms[0].Text != text {
			t.Fatalf("%s: %+v, %v", label, ms, err)
		}
		hist, _ := r.n.Service.ListStoredMessages(ctx, a.ID, api.Page{Limit: 100})
		n := 0
		for _, m := range hist {
			if m.ID == target.ID {
				n++
			}
		}
		if n != 1 || len(hist) != want {
			t.Fatalf("%s: history holds the message %d times and %d messages (want 1 and %d)", label, n, len(hist), want)
		}
	}
	check("after the update", len(window))

	// The model sees the new body in its context (inner thoughts travel in
	// the call's arguments).
	r.llm.Push(say("ok"))
	send(t, r, a.ID, "and now?")
	reqs := r.llm.Requests()
	last := reqs[len(reqs)-1]
	found := false
	for _, m := range last.Messages {
		if strings.Contains(m.Content, text) {
			found = true
		}
		for _, tc := range m.ToolCalls {
			if strings.Contains(tc.Arguments, text) {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("the model's context does not hold the updated text: %+v", last.Messages)
	}

	r.n.Close(ctx)
	r = startRig(t, dir, script)
	check("after a restart", len(window)+3) // the second send's input, reply and return

	role := "robot"
	if _, err := r.n.Service.UpdateMessage(ctx, a.ID, target.ID, api.MessageUpdate{Role: &role}); fault.KindOf(err) != fault.Unprocessable {
		t.Fatalf("bad role: %v, want Unprocessable", err)
	}
	if _, err := r.n.Service.UpdateMessage(ctx, a.ID, "message-00000000-0000-4000-8000-000000000000", api.MessageUpdate{Text: &text}); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("unknown message: %v, want NotFound", err)
	}
}

// A finished job can be deleted; it is then gone, after a restart too.
func TestDeleteJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := startRig(t, dir, nil)
	src := newSource(t, r.n.Service, "docs")
	_, job, err := r.n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "a.txt", MIME: "text/plain", Data: []byte("hello world")}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := waitJob(t, r.n.Service, job.ID)
	if done.Status != api.JobCompleted {
		t.Fatalf("job %+v", done)
	}
	got, err := r.n.Service.DeleteJob(ctx, job.ID)
	if err != nil || got.ID != job.ID {
		t.Fatalf("DeleteJob = %+v, %v", got, err)
	}
	if _, err := r.n.Service.GetJob(ctx, job.ID); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("GetJob after delete: %v", err)
	}
	r.n.Close(ctx)
	r = startRig(t, dir, nil)
	if _, err := r.n.Service.GetJob(ctx, job.ID); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("GetJob after restart: %v", err)
	}
	if _, err := r.n.Service.DeleteJob(ctx, job.ID); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("deleting again: %v", err)
	}
}

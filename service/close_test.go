package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/service"
)

// TestGoToolPastItsTimeoutIsOwned: a Go tool that ignores its context
// outlives its timeout; the run goes on with the timeout as the tool's
// result, the node's runs still own the call, and closing the node waits for
// it, bounded by the context given to Close, which then says what did not
// stop.
func TestGoToolPastItsTimeoutIsOwned(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	r := startRig(t, t.TempDir(), script)
	a := r.agent(t)
	release := make(chan struct{})
	defer close(release)
	returned := make(chan struct{})
	tool, err := r.n.AddGoTool(ctx, service.GoTool{
		Schema:         pytool.Schema{Name: "stubborn", Description: "Never listens."},
		TimeoutSeconds: 0.2,
	}, func(context.Context, json.RawMessage) (string, error) {
		<-release // ignores its context
		close(returned)
		return "late", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.Service.AttachTool(ctx, a.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	script.Push(
		llmtest.Step{Content: "Try it.", ToolCalls: []agents.ToolCall{call("stubborn", map[string]any{"request_heartbeat": true})}},
		say("it timed out"),
	)
	send(t, r, a.ID, "go")
	var sawTimeout bool
	for _, rec := range script.Requests() {
		for _, m := range rec.Messages {
			sawTimeout = sawTimeout || (m.Role == "tool" && strings.Contains(m.Content, "timed out"))
		}
	}
	if !sawTimeout {
		t.Fatal("the model never read that the tool timed out")
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = r.n.Close(cctx)
	if err == nil || !strings.Contains(err.Error(), "Go tool call") {
		t.Fatalf("Close with the tool still running = %v; want it to say a Go tool call did not stop", err)
	}
	select {
	case <-returned:
		t.Fatal("the tool returned before it was released")
	default:
	}
}

package service_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/engram-dev/engram/service"
)

// TestStepContextRemembersWindows: a step's context is what a fresh read of
// every message gives, when the step's window is the last step's and more,
// and after commands that change messages inside it (/rewrite puts an
// edited copy in a message's place, /pop drops the newest); and the window
// read is remembered for the next step.
func TestStepContextRemembersWindows(t *testing.T) {
	r := startRig(t, t.TempDir(), nil)
	a := r.agent(t)
	ctx := context.Background()
	s := r.n.Service
	check := func(when string) service.StepContext {
		t.Helper()
		sc, err := s.StepContext(ctx, a.ID, service.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if held := s.WindowHeld(a.ID, ""); held != len(sc.Window) {
			t.Fatalf("%s: the cache holds %d messages of a window of %d", when, held, len(sc.Window))
		}
		again, err := s.StepContext(ctx, a.ID, service.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		s.ForgetWindows()
		fresh, err := s.StepContext(ctx, a.ID, service.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range []service.StepContext{sc, again} {
			if !reflect.DeepEqual(got.State.Context, fresh.State.Context) || got.Warned != fresh.Warned {
				t.Fatalf("%s: the step read\n%+v\nwhere every message read afresh is\n%+v", when, got.State.Context, fresh.State.Context)
			}
		}
		return sc
	}
	check("a new agent")
	r.llm.Push(say("first answer"))
	send(t, r, a.ID, "question one")
	check("after a send")
	r.llm.Push(say("second answer"))
	send(t, r, a.ID, "question two")
	before := check("after a second send")
	if _, err := s.RunCommand(ctx, a.ID, "/rewrite better answer"); err != nil {
		t.Fatal(err)
	}
	sc := check("after /rewrite")
	if len(sc.State.Context) != len(before.State.Context) {
		t.Fatalf("/rewrite: %d messages in context, were %d", len(sc.State.Context), len(before.State.Context))
	}
	rewritten := false
	for _, m := range sc.State.Context {
		for _, tc := range m.ToolCalls {
			rewritten = rewritten || strings.Contains(tc.Arguments, "better answer")
		}
	}
	if !rewritten {
		t.Fatalf("/rewrite: the step does not read the rewritten answer: %+v", sc.State.Context)
	}
	if _, err := s.RunCommand(ctx, a.ID, "/pop 2"); err != nil {
		t.Fatal(err)
	}
	if sc := check("after /pop 2"); len(sc.State.Context) >= len(before.State.Context) {
		t.Fatalf("/pop 2: %d messages in context, were %d", len(sc.State.Context), len(before.State.Context))
	}
}

package service_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
)

// TestForkKeepsWrappedMessagesAsShown: a fork copies the context window
// later than its messages were stored; a wrapped message (the login, a
// user's envelope) must read the same in the fork, not take the copy's
// time, and a modern agent's answers must come along.
func TestForkKeepsWrappedMessagesAsShown(t *testing.T) {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	)
	tick := func() time.Time { // every command a minute later
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Minute)
		return now
	}
	r := startRig(t, t.TempDir(), nil, func(c *node.Config) { c.Service.Clock = tick })
	for _, a := range []api.AgentState{r.agent(t), r.modernAgent(t)} {
		if a.AgentType == "letta_v1_agent" {
			r.llm.Push(llmtest.Step{Content: "Hello, Ada."})
		} else {
			r.llm.Push(say("Hello, Ada."))
		}
		send(t, r, a.ID, "hi")
		fork, err := r.n.Service.Fork(ctx, a.ID, api.ForkAgent{})
		if err != nil {
			t.Fatal(err)
		}
		shown := func(id string) []string {
			ms, err := r.n.Service.ListContextMessages(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range ms[1:] { // the system message is compiled afresh
				text := ""
				for _, p := range []*string{m.Content, m.Reasoning, m.ToolReturn} {
					if p != nil {
						text += *p
					}
				}
				out = append(out, m.MessageType+":"+text)
			}
			return out
		}
		if got, want := shown(fork.ID), shown(a.ID); !slices.Equal(got, want) {
			t.Fatalf("%s: the fork's context\n%q\nwant\n%q", a.AgentType, got, want)
		}
	}
}

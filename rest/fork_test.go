package rest

import (
	"slices"
	"testing"

	"github.com/engram-dev/engram/api"
)

// contextOf is what a model would be shown of an agent's context window:
// each message's type and text, without ids or times.
func contextOf(ms []api.LettaMessage, window []string) []string {
	var out []string
	for _, m := range ms {
		if !slices.Contains(window, m.ID) {
			continue
		}
		s := m.MessageType + ":"
		for _, p := range []*string{m.Content, m.Reasoning, m.ToolReturn} {
			if p != nil {
				s += *p
			}
		}
		if m.ToolCall != nil {
			s += m.ToolCall.Name + m.ToolCall.Arguments
		}
		out = append(out, s)
	}
	return out
}

func TestFork(t *testing.T) {
	x, script := newModelHarness(t)
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini"), MemoryBlocks: []api.CreateBlock{
		{Label: "persona", Value: "I am Sam."}, {Label: "human", Value: "Name: Ada"},
	}})
	base := "/v1/agents/" + a.ID
	src := x.source("notes")
	x.do("PATCH", base+"/folders/attach/"+src.ID, nil, 200, nil)
	script.Push(say("Hello, Ada."))
	x.do("POST", base+"/messages", map[string]any{"input": "hi"}, 200, nil)
	point := x.lastSeq()
	var then api.AgentState
	x.do("GET", base, nil, 200, &then)
	var thenMsgs []api.LettaMessage
	x.do("GET", base+"/messages?order=asc&limit=1000", nil, 200, &thenMsgs)

	// What the agent learns after the point, the fork does not know.
	script.Push(memoryEdit("human", "Likes tea"), say("Noted."))
	x.do("POST", base+"/messages", map[string]any{"input": "I like tea"}, 200, nil)
	x.do("PATCH", base+"/folders/detach/"+src.ID, nil, 200, nil)

	var fork api.AgentState
	x.do("POST", base+"/fork", map[string]any{"at": point, "name": "sam before tea"}, 200, &fork)
	if fork.ID == a.ID || fork.Name != "sam before tea" {
		t.Fatalf("fork = %s %q", fork.ID, fork.Name)
	}
	values := func(bs []api.Block) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Label+"="+b.Value)
		}
		return out
	}
	if got, want := values(fork.Blocks), values(then.Blocks); !slices.Equal(got, want) {
		t.Errorf("fork's memory = %q, want %q", got, want)
	}
	for _, b := range fork.Blocks {
		if slices.Contains(blockIDs(then.Blocks), b.ID) {
			t.Errorf("the fork shares block %s with its origin", b.ID)
		}
	}
	if got, want := toolIDs(fork.Tools), toolIDs(then.Tools); !slices.Equal(got, want) {
		t.Errorf("fork's tools = %q, want %q", got, want)
	}
	if got := sourceIDs(fork.Sources); !slices.Equal(got, []string{src.ID}) {
		t.Errorf("fork's sources = %q, want the source attached at the point", got)
	}
	var forkMsgs []api.LettaMessage
	x.do("GET", "/v1/agents/"+fork.ID+"/messages?order=asc&limit=1000", nil, 200, &forkMsgs)
	if got, want := contextOf(forkMsgs, fork.MessageIDs), contextOf(thenMsgs, then.MessageIDs); !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("fork's context:\n%q\nwant\n%q", got, want)
	}

	// The fork's history starts with an event that names its origin.
	evs := x.events(fork.ID, nil)
	var created struct {
		ForkedFrom struct {
			AgentID string `json:"agent_id"`
			Seq     uint64 `json:"seq"`
		} `json:"forked_from"`
	}
	decodeInto(t, evs[0].Data, &created)
	if evs[0].Type != "agent_created" || created.ForkedFrom.AgentID != a.ID || created.ForkedFrom.Seq != point {
		t.Errorf("fork's first event = %s %s", evs[0].Type, evs[0].Data)
	}

	// The fork runs on its own.
	script.Push(say("Hello from the fork."))
	var resp api.LettaResponse
	x.do("POST", "/v1/agents/"+fork.ID+"/messages", map[string]any{"input": "who are you?"}, 200, &resp)
	var human api.Block
	x.do("GET", base+"/core-memory/blocks/human", nil, 200, &human)
	if human.Value != "Name: Ada\nLikes tea" {
		t.Errorf("the origin's memory changed: %q", human.Value)
	}

	t.Run("by time and now", func(t *testing.T) {
		var now api.AgentState
		x.do("POST", base+"/fork", map[string]any{"name": "sam now"}, 200, &now)
		if got := values(now.Blocks); !slices.Contains(got, "human=Name: Ada\nLikes tea") {
			t.Errorf("fork of now: %q", got)
		}
		var early api.AgentState
		x.do("POST", base+"/fork", map[string]any{"at": a.CreatedAt.Format("2006-01-02T15:04:05.999999999Z07:00")}, 200, &early)
		if early.Name != a.Name+" fork" || !slices.Contains(values(early.Blocks), "human=Name: Ada") {
			t.Errorf("fork at creation: %q %q", early.Name, values(early.Blocks))
		}
	})
	t.Run("errors", func(t *testing.T) {
		if code, body := x.call("POST", base+"/fork", map[string]any{"at": 1}); code != 404 {
			t.Errorf("fork before the agent existed: %d %s", code, body)
		}
		if code, body := x.call("POST", base+"/fork", map[string]any{"at": "tomorrow"}); code != 422 && code != 400 {
			t.Errorf("fork at a bad point: %d %s", code, body)
		}
	})
}

package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
)

func memoryEdit(label, content string) llmtest.Step {
	return llmtest.Step{Content: "remember it", ToolCalls: []agents.ToolCall{{Name: "core_memory_append",
		Arguments: fmt.Sprintf(`{"name":%q,"content":%q,"request_heartbeat":true}`, label, content)}}}
}

// conversation is a scripted conversation over the API: an agent with two
// blocks learns something from a message, a client edits and detaches a
// block, stores a passage and talks again. after is called after each
// change with the agent's id and the name of the change.
func conversation(t *testing.T, x *harness, script interface{ Push(...llmtest.Step) }, after func(agentID, step string)) api.AgentState {
	t.Helper()
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini"), MemoryBlocks: []api.CreateBlock{
		{Label: "persona", Value: "I am Sam."}, {Label: "human", Value: "Name: Ada"},
	}})
	base := "/v1/agents/" + a.ID
	after(a.ID, "created")
	script.Push(memoryEdit("human", "Likes tea"), say("Noted, Ada!"))
	x.do("POST", base+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "I like tea"}}}, 200, nil)
	after(a.ID, "learnt tea")
	x.do("PATCH", base+"/core-memory/blocks/persona", map[string]any{"value": "I am Sam, a butler."}, 200, nil)
	after(a.ID, "client edit")
	x.do("POST", base+"/archival-memory", map[string]any{"text": "Ada was born in 1815."}, 200, nil)
	after(a.ID, "passage")
	var human api.Block
	x.do("GET", base+"/core-memory/blocks/human", nil, 200, &human)
	x.do("PATCH", base+"/core-memory/blocks/detach/"+human.ID, nil, 200, nil)
	after(a.ID, "detached human")
	script.Push(say("Hello again."))
	x.do("POST", base+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello"}}}, 200, nil)
	after(a.ID, "hello")
	return a
}

func (x *harness) lastSeq() uint64 {
	x.t.Helper()
	seq, err := x.n.Log.LastSeq(context.Background())
	if err != nil {
		x.t.Fatal(err)
	}
	return uint64(seq)
}

func (x *harness) events(agentID string, q url.Values) []api.Event {
	x.t.Helper()
	var out []api.Event
	x.do("GET", "/v1/agents/"+agentID+"/events?"+q.Encode(), nil, 200, &out)
	return out
}

func TestHistory(t *testing.T) {
	x, script := newModelHarness(t)
	other := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	a := conversation(t, x, script, func(string, string) {})
	x.do("PATCH", "/v1/agents/"+other.ID, map[string]any{"description": "noise"}, 200, nil)

	all := x.events(a.ID, url.Values{"limit": {"1000"}})
	var human string
	for i, e := range all {
		if i > 0 && (e.Seq < all[i-1].Seq || e.Seq == all[i-1].Seq && e.Part <= all[i-1].Part) {
			t.Fatalf("events out of log order at %d: %+v after %+v", i, e, all[i-1])
		}
		if e.Aggregate == "agent/"+other.ID {
			t.Fatalf("another agent's event in the history: %+v", e)
		}
		if e.Type == "core_block_detached" {
			human = "block/" + string(e.Data[len(`{"block_id":"`):len(e.Data)-2])
		}
	}
	if human == "" {
		t.Fatal("no core_block_detached in the history")
	}
	// The detached block's events stay in the history, the agent's edit
	// marked as a step answering the input that caused it.
	var input string
	var edits []api.Event
	for _, e := range all {
		if e.Type == "message_received" && input == "" {
			var m struct{ ID string }
			decodeInto(t, e.Data, &m)
			input = m.ID
		}
		if e.Type == "block_updated" {
			edits = append(edits, e)
		}
	}
	if len(edits) != 2 {
		t.Fatalf("%d block updates, want 2: %+v", len(edits), edits)
	}
	if e := edits[0]; e.Aggregate != human || e.IssuedBy != "agent step" || e.InputID != input {
		t.Errorf("the agent's edit = %+v, want on %s by an agent step answering %s", e, human, input)
	}
	if e := edits[1]; e.IssuedBy != "client" || e.InputID != "" {
		t.Errorf("the client's edit = %+v", e)
	}
	if all[0].Type != "block_created" && all[0].Type != "agent_created" {
		t.Errorf("history starts with %s", all[0].Type)
	}

	t.Run("pages", func(t *testing.T) {
		var paged []api.Event
		after := uint64(0)
		for {
			page := x.events(a.ID, url.Values{"after": {fmt.Sprint(after)}, "limit": {"3"}})
			if len(page) == 0 {
				break
			}
			// A page ends with a whole message: more than the limit
			// only to finish a packed one.
			if n := len(page); n > 3 && page[n-1].Seq != page[2].Seq {
				t.Fatalf("page of %d past the limit of 3", n)
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if !slices.EqualFunc(paged, all, func(a, b api.Event) bool { return a.Seq == b.Seq && a.Part == b.Part }) {
			t.Fatalf("paged %d events, want %d", len(paged), len(all))
		}
	})
	t.Run("before", func(t *testing.T) {
		mid := all[len(all)/2].Seq
		got := x.events(a.ID, url.Values{"before": {fmt.Sprint(mid)}, "limit": {"1000"}})
		for _, e := range got {
			if e.Seq >= mid {
				t.Fatalf("event %d at or after before=%d", e.Seq, mid)
			}
		}
		if len(got) == 0 || got[len(got)-1].Seq >= mid {
			t.Fatalf("before=%d gave %d events", mid, len(got))
		}
	})
	t.Run("types", func(t *testing.T) {
		got := x.events(a.ID, url.Values{"types": {"block_updated", "core_block_detached"}})
		var types []string
		for _, e := range got {
			types = append(types, e.Type)
		}
		if !slices.Equal(types, []string{"block_updated", "block_updated", "core_block_detached"}) {
			t.Fatalf("types = %q", types)
		}
		code, _ := x.call("GET", "/v1/agents/"+a.ID+"/events?types=nonsense", nil)
		if code != 422 {
			t.Fatalf("unknown type: %d, want 422", code)
		}
	})
	t.Run("time", func(t *testing.T) {
		since := edits[1].Time
		got := x.events(a.ID, url.Values{"since": {since.Format(time.RFC3339Nano)}, "until": {all[len(all)-1].Time.Format(time.RFC3339Nano)}, "limit": {"1000"}})
		if len(got) == 0 {
			t.Fatal("no events in the window")
		}
		for _, e := range got {
			if e.Time.Before(since) || !e.Time.Before(all[len(all)-1].Time) {
				t.Fatalf("event at %s outside [%s, %s)", e.Time, since, all[len(all)-1].Time)
			}
		}
	})
	t.Run("files", func(t *testing.T) {
		src := x.source("docs")
		x.do("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+src.ID, nil, 200, nil)
		code, body := x.upload("/v1/folders/"+src.ID+"/upload", "notes.md", "text/markdown", []byte("# Notes\n\nThe spare key is under the third flowerpot."))
		if code != 200 {
			t.Fatalf("upload = %d %s", code, body)
		}
		f := decodeAs[api.FileMetadata](t, body)
		for deadline := time.Now().Add(20 * time.Second); f.ProcessingStatus != "completed"; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) || f.ProcessingStatus == "error" {
				t.Fatalf("file stuck: %+v", f)
			}
			x.do("GET", "/v1/folders/"+src.ID+"/files/"+f.ID, nil, 200, &f)
		}
		var kinds []string
		for _, e := range x.events(a.ID, url.Values{"after": {fmt.Sprint(all[len(all)-1].Seq)}}) {
			if strings.HasPrefix(e.Aggregate, "source/") {
				kinds = append(kinds, e.Type)
			}
		}
		// The source's file events, not its passages.
		if len(kinds) < 2 || kinds[0] != "file_created" || slices.ContainsFunc(kinds, func(k string) bool { return !strings.HasPrefix(k, "file_") }) {
			t.Fatalf("source events in the history: %q", kinds)
		}
	})
	t.Run("unknown agent", func(t *testing.T) {
		code, _ := x.call("GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/events", nil)
		if code != 404 {
			t.Fatalf("unknown agent: %d, want 404", code)
		}
	})
}

func decodeInto(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

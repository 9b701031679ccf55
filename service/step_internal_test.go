package service

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// TestRunLLMConfigRemembers: runLLMConfig answers what llmConfig does,
// parses a config's text once, and hands each caller its own copy, so a
// caller that changes its copy (runConfig does) does not change the next.
func TestRunLLMConfigRemembers(t *testing.T) {
	raw := json.RawMessage(`{"model":"gpt-4o-mini-remember","model_endpoint_type":"openai","context_window":128000,"temperature":0.5,"handle":"openai/gpt-4o-mini"}`)
	before := runLLMConfigs.Len()
	first := runLLMConfig(raw)
	if want := llmConfig(raw); !reflect.DeepEqual(first, want) {
		t.Fatalf("runLLMConfig = %+v, want llmConfig's %+v", first, want)
	}
	if runLLMConfigs.Len() != before+1 {
		t.Fatalf("the memo holds %d configs after a new one, want %d: it was not remembered", runLLMConfigs.Len(), before+1)
	}
	// A caller changes its copy as runConfig does: fields set, pointers
	// replaced.
	hot := 1.5
	first.ContextWindow, first.Temperature, first.Model = 8000, &hot, "changed"
	second := runLLMConfig(raw)
	if runLLMConfigs.Len() != before+1 {
		t.Fatalf("a second read of one config added to the memo")
	}
	if second == first || second.ContextWindow != 128000 || second.Model != "gpt-4o-mini-remember" || *second.Temperature != 0.5 {
		t.Fatalf("a caller's change to its copy reached the next: %+v", second)
	}
	for _, bad := range []json.RawMessage{nil, json.RawMessage(`{"model":`), json.RawMessage(`[1]`)} {
		if c := runLLMConfig(bad); c != nil {
			t.Fatalf("runLLMConfig(%s) = %+v, want nil as llmConfig", bad, c)
		}
		if c := runLLMConfig(bad); c != nil {
			t.Fatalf("runLLMConfig(%s) the second time = %+v, want nil", bad, c)
		}
	}
}

// TestRefsOfFindsEveryWindow: refsOf finds what an index of the whole
// history finds, for windows in storage order, out of it (a summary, the
// system message), with ids the history lacks, and with an id twice.
func TestRefsOfFindsEveryWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 40 {
		a := &projections.Agent{}
		for i := range n * 5 {
			a.Messages = append(a.Messages, projections.Ref{ID: fmt.Sprint("message-", i), Seq: events.Seq(i + 1)})
		}
		for range 50 {
			var ids []events.MessageID
			for i := range a.Messages {
				if r.IntN(3) == 0 {
					ids = append(ids, events.MessageID(a.Messages[i].ID))
				}
			}
			switch r.IntN(5) {
			case 0: // a summary: a newer message moved ahead
				if len(ids) > 2 {
					last := ids[len(ids)-1]
					ids = append([]events.MessageID{ids[0], last}, ids[1:len(ids)-1]...)
				}
			case 1: // shuffled
				r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			case 2: // ids the history lacks
				ids = slices.Insert(ids, r.IntN(len(ids)+1), "message-gone")
				ids = append(ids, "message-gone-too")
			case 3: // an id twice
				if len(ids) > 0 {
					ids = slices.Insert(ids, r.IntN(len(ids)+1), ids[r.IntN(len(ids))])
				}
			}
			if got, want := refsOf(a, ids), refsByIndex(a, ids); !reflect.DeepEqual(got, want) {
				t.Fatalf("history of %d, window %v:\nrefsOf     %v\nby index   %v", len(a.Messages), ids, got, want)
			}
		}
	}
}

// TestReadWindowShares: a window read before shares with a new one its
// leading messages, the same refs at the same places, read by the same loop.
func TestReadWindowShares(t *testing.T) {
	ref := func(id string) projections.Ref { return projections.Ref{ID: id, Seq: events.Seq(len(id))} }
	w := &readWindow{loop: "memgpt", entries: []windowEntry{{ref: ref("s")}, {ref: ref("a")}, {ref: ref("bb")}}}
	for _, c := range []struct {
		refs []projections.Ref
		loop string
		want int
	}{
		{[]projections.Ref{ref("s"), ref("a"), ref("bb"), ref("ccc")}, "memgpt", 3},
		{[]projections.Ref{ref("s"), ref("a")}, "memgpt", 2},
		{[]projections.Ref{ref("s"), ref("x"), ref("bb")}, "memgpt", 1},
		{[]projections.Ref{ref("s"), ref("a"), {ID: "bb", Seq: 9}}, "memgpt", 2},
		{[]projections.Ref{ref("s"), ref("a"), ref("bb")}, "letta_v1_agent", 0},
	} {
		if got := w.shared(c.refs, c.loop); got != c.want {
			t.Errorf("shared(%v, %s) = %d, want %d", c.refs, c.loop, got, c.want)
		}
	}
	if got := (*readWindow)(nil).shared([]projections.Ref{ref("s")}, "memgpt"); got != 0 {
		t.Errorf("no window shares %d", got)
	}
}

// TestWindowCacheIsBounded: the cache holds no more messages than its
// bound, replaces a window's old read, and does not hold a window too big to
// be worth it.
func TestWindowCacheIsBounded(t *testing.T) {
	var c windowCache
	window := func(n int) *readWindow { return &readWindow{entries: make([]windowEntry, n)} }
	c.put(windowKey{"a", ""}, window(10))
	c.put(windowKey{"a", ""}, window(12))
	if c.entries != 12 || c.get(windowKey{"a", ""}).len() != 12 {
		t.Fatalf("after a window's second read the cache holds %d messages, want 12", c.entries)
	}
	c.put(windowKey{"big", ""}, window(maxWindowEntries/8+1))
	if c.get(windowKey{"big", ""}) != nil {
		t.Fatal("a window over 1/8 of the bound was held")
	}
	for i := range 1000 {
		c.put(windowKey{fmt.Sprint("agent-", i), ""}, window(100))
		if c.entries > maxWindowEntries {
			t.Fatalf("the cache holds %d messages, over its %d", c.entries, maxWindowEntries)
		}
	}
}

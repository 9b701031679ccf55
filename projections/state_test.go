package projections

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// history generates a random but valid-looking event sequence over a few
// aggregates, including events about deleted or unknown aggregates.
func history(n int, seed uint64) []events.Envelope {
	r := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []events.Envelope
	add := func(kind events.Kind, id string, ev events.Event) {
		seq := events.Seq(len(out) + 1)
		out = append(out, events.Envelope{Seq: seq, Aggregate: events.Aggregate{Kind: kind, ID: id},
			Command: fmt.Sprintf("cmd-%d", r.IntN(n)), Time: t0.Add(time.Duration(seq) * time.Second), Event: ev})
	}
	for len(out) < n {
		a := fmt.Sprintf("agent-%d", r.IntN(5))
		b := fmt.Sprintf("block-%d", r.IntN(5))
		switch r.IntN(12) {
		case 0:
			add(events.KindAgent, a, &events.AgentCreated{ID: events.AgentID(a), Name: a, BlockIDs: []events.BlockID{events.BlockID(b)}})
		case 1:
			name := fmt.Sprint("n", r.IntN(100))
			add(events.KindAgent, a, &events.AgentUpdated{Name: &name})
		case 2:
			add(events.KindAgent, a, &events.AgentDeleted{})
		case 3:
			add(events.KindBlock, b, &events.BlockCreated{ID: events.BlockID(b), Label: "human", Value: "v", Limit: 100})
		case 4:
			v := fmt.Sprint("value ", r.IntN(100))
			add(events.KindBlock, b, &events.BlockUpdated{Value: &v})
		case 5:
			add(events.KindBlock, b, &events.BlockDeleted{})
		case 6:
			add(events.KindAgent, a, &events.CoreBlockAttached{BlockID: events.BlockID(b)})
		case 7:
			add(events.KindAgent, a, &events.CoreBlockDetached{BlockID: events.BlockID(b)})
		case 8:
			p := events.PassageID(fmt.Sprint("passage-", len(out)))
			add(events.KindAgent, a, &events.PassageInserted{ID: p, AgentID: events.AgentID(a), Text: "t"})
		case 9:
			add(events.KindAgent, a, &events.MessageAppended{ID: events.MessageID(fmt.Sprint("message-", len(out))), Role: "user", Text: "hi"})
		case 10:
			tid := fmt.Sprintf("tool-%d", r.IntN(3))
			add(events.KindTool, tid, &events.ToolCreated{ID: events.ToolID(tid), Name: tid})
		case 11:
			add(events.KindAgent, a, &events.AgentToolAttached{ToolID: events.ToolID(fmt.Sprintf("tool-%d", r.IntN(3)))})
		}
	}
	return out
}

func fold(evs []events.Envelope) *State {
	st := NewState()
	for _, e := range evs {
		st.Apply(e)
	}
	return st
}

func TestApplyDeterministic(t *testing.T) {
	evs := history(2000, 7)
	a, b := fold(evs), fold(evs)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two folds of the same events differ")
	}
	if a.Applied != events.Seq(len(evs)) {
		t.Fatalf("applied = %d, want %d", a.Applied, len(evs))
	}
	// Redelivery of old events changes nothing.
	for _, e := range evs[:100] {
		a.Apply(e)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("re-applying old events changed the state")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	evs := history(3000, 11)
	mid := len(evs) / 2
	for _, f := range []struct {
		name   string
		encode func(*State) ([]byte, error)
		decode func([]byte) (*State, error)
	}{
		{"v5", encodeSnapshot, decodeSnapshot},
		{"v4 gob", gobSnapshot, decodeGobSnapshot},
	} {
		t.Run(f.name, func(t *testing.T) {
			data, err := f.encode(fold(evs[:mid]))
			if err != nil {
				t.Fatal(err)
			}
			restored, err := f.decode(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs[mid:] {
				restored.Apply(e)
			}
			want := fold(evs)
			// gob drops empty maps and nil-vs-empty slices; compare what readers see.
			if got, w := fmt.Sprint(summary(restored)), fmt.Sprint(summary(want)); got != w {
				t.Fatalf("snapshot + tail differs from full replay:\n got %s\nwant %s", got, w)
			}
		})
	}
}

// gobSnapshot encodes st as v4 snapshots were: the whole State in one gob.
func gobSnapshot(st *State) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(st)
	return buf.Bytes(), err
}

// summary renders the observable state in a stable order.
func summary(st *State) []string {
	var out []string
	for i := 0; i < 5; i++ {
		if a := st.Agents[events.AgentID(fmt.Sprintf("agent-%d", i))]; a != nil {
			out = append(out, fmt.Sprintf("%s name=%s blocks=%v tools=%v passages=%d messages=%d v=%d", a.ID, a.Name, a.BlockIDs, a.ToolIDs, len(a.Passages), len(a.Messages), a.Version.Seq))
		}
		if b := st.Blocks[events.BlockID(fmt.Sprintf("block-%d", i))]; b != nil {
			out = append(out, fmt.Sprintf("%s value=%s v=%d", b.ID, b.Value, b.Version.Seq))
		}
	}
	out = append(out, fmt.Sprint("applied=", st.Applied, " tools=", len(st.Tools), " passages=", len(st.Passages)))
	return out
}

func TestDeletedBlockLeavesAgents(t *testing.T) {
	t0 := time.Now().UTC()
	st := NewState()
	st.Apply(events.Envelope{Seq: 1, Aggregate: events.Aggregate{Kind: events.KindBlock, ID: "block-1"}, Time: t0, Event: &events.BlockCreated{ID: "block-1", Label: "human", Limit: 10}})
	st.Apply(events.Envelope{Seq: 2, Aggregate: events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}, Time: t0, Event: &events.AgentCreated{ID: "agent-1", BlockIDs: []events.BlockID{"block-1"}}})
	st.Apply(events.Envelope{Seq: 3, Aggregate: events.Aggregate{Kind: events.KindBlock, ID: "block-1"}, Time: t0, Command: "del", Event: &events.BlockDeleted{}})
	if got := st.Agents["agent-1"].BlockIDs; len(got) != 0 {
		t.Fatalf("agent still holds deleted block: %v", got)
	}
	if v := st.VersionOf(events.Aggregate{Kind: events.KindBlock, ID: "block-1"}); v.Seq != 3 {
		t.Fatalf("deleted block version = %d, want 3", v.Seq)
	}
	if _, ok := st.VersionOf(events.Aggregate{Kind: events.KindBlock, ID: "block-1"}).Done("del"); !ok {
		t.Fatal("the deleting command is not remembered")
	}
}

func BenchmarkApply(b *testing.B) {
	evs := history(10000, 3)
	b.ReportAllocs()
	b.ResetTimer()
	st := NewState()
	for i := 0; i < b.N; i++ {
		e := evs[i%len(evs)]
		e.Seq = events.Seq(i + 1)
		st.Apply(e)
	}
}

// The events of a packed message share its sequence and are told apart by
// Part: each is applied once, in order, and refers to its own part.
func TestApplyPacked(t *testing.T) {
	s := NewState()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Apply(events.Envelope{Seq: 1, Aggregate: agg, Command: "c1", Time: now, Event: &events.AgentCreated{ID: "agent-1", Name: "a"}})
	packed := []events.Envelope{
		{Seq: 2, Part: 0, Aggregate: agg, Command: "c2", Time: now, Event: &events.MessageAppended{ID: "message-1", Role: "assistant", Text: "a"}},
		{Seq: 2, Part: 1, Aggregate: agg, Command: "c2", Time: now, Event: &events.MessageAppended{ID: "message-2", Role: "tool", Text: "b"}},
	}
	for round := 0; round < 2; round++ { // the second round is a redelivery
		for _, env := range packed {
			s.Apply(env)
		}
	}
	a := s.Agents["agent-1"]
	if len(a.Messages) != 2 || a.Messages[0].Part != 0 || a.Messages[1].Part != 1 || a.Messages[1].Seq != 2 {
		t.Fatalf("messages %+v", a.Messages)
	}
	if len(a.MessageIDs) != 2 || s.Applied != 2 || s.AppliedPart != 1 {
		t.Fatalf("context %v, applied %d/%d", a.MessageIDs, s.Applied, s.AppliedPart)
	}
	if seq, ok := a.Version.Done("c2"); !ok || seq != 2 {
		t.Fatalf("Done(c2) = %d, %v", seq, ok)
	}
}

// An agent finds a client's input by its send's key or its otid, and lists
// the inputs no run has taken, in order, whichever runs took others; both
// survive a snapshot.
func TestInputsByKeyAndPending(t *testing.T) {
	st := NewState()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	seq := events.Seq(0)
	apply := func(ev events.Event) {
		seq++
		st.Apply(events.Envelope{Seq: seq, Aggregate: agg, Command: fmt.Sprint("cmd-", seq), Event: ev})
	}
	input := func(id, otid, key string) *events.MessageReceived {
		return &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: id, Otid: otid}, Key: key}
	}
	apply(&events.AgentCreated{ID: "agent-1", Name: "a"})
	apply(input("message-1", "o1", "k1"))
	apply(input("message-2", "o2", ""))
	apply(input("message-3", "", ""))
	apply(input("message-4", "o1", "")) // a reused otid names the first input
	apply(&events.InputTaken{IDs: []events.MessageID{"message-2"}})

	check := func(st *State, when string) {
		t.Helper()
		a := st.Agents["agent-1"]
		for key, want := range map[string]string{"k1": "message-1", "o1": "message-1", "o2": "message-2"} {
			if got := a.Keys[key]; got.ID != want || got.Seq == 0 {
				t.Errorf("%s: key %s finds %+v; want %s", when, key, got, want)
			}
		}
		var pending []string
		for _, r := range a.Pending {
			pending = append(pending, r.ID)
		}
		if fmt.Sprint(pending) != "[message-1 message-3 message-4]" {
			t.Errorf("%s: pending %v", when, pending)
		}
	}
	check(st, "applied")
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := gob.NewDecoder(&buf).Decode(restored); err != nil {
		t.Fatal(err)
	}
	check(restored, "restored")
}

// A send's inputs make one run, created when stored, running from its
// first step, completed by the stop reason its last step records; a
// cancelled run that had not begun leaves the queue. All survive a snapshot.
func TestRuns(t *testing.T) {
	st := NewState()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	seq := events.Seq(0)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apply := func(cmd string, ev events.Event) {
		seq++
		st.Apply(events.Envelope{Seq: seq, Aggregate: agg, Command: cmd, Time: at.Add(time.Duration(seq) * time.Second), Event: ev})
	}
	input := func(id string) *events.MessageReceived {
		return &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: id}}
	}
	run1, run2 := events.DerivedID("run", "message-1"), events.DerivedID("run", "message-3")
	apply("c0", &events.AgentCreated{ID: "agent-1", Name: "a"})
	apply("send-1", input("message-1"))
	apply("send-1", input("message-2")) // the same send
	apply("send-2", input("message-3"))
	if r := st.Runs[run1]; r == nil || r.Status != RunCreated || len(r.Inputs) != 2 {
		t.Fatalf("run 1 after its inputs: %+v", r)
	}
	apply("step-1", &events.InputTaken{IDs: []events.MessageID{"message-1", "message-2"}})
	apply("step-1", &events.MessageAppended{ID: "message-5", Role: "assistant", RunID: run1, Usage: &events.Usage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5},
		Then: &events.RunThen{Kind: events.InputHeartbeat, Words: "go on", Calls: []string{"archival_memory_insert"}}})
	if r := st.Runs[run1]; r.Status != RunRunning || r.Steps != 1 || r.Then == nil || r.Then.Kind != events.InputHeartbeat || r.Then.Words != "go on" {
		t.Fatalf("run 1 after a step that goes on: %+v", r)
	}
	apply("cancel", &events.RunCancelled{RunID: run2})
	apply("step-2", &events.MessageAppended{ID: "message-6", Role: "assistant", RunID: run1, StopReason: "end_turn", Usage: &events.Usage{TotalTokens: 5}})

	check := func(st *State, when string) {
		t.Helper()
		r1, r2 := st.Runs[run1], st.Runs[run2]
		if r1.Status != RunCompleted || r1.StopReason != "end_turn" || r1.Steps != 2 || r1.Usage.TotalTokens != 10 || !r1.CompletedAt.Equal(at.Add(8*time.Second)) || r1.Then != nil {
			t.Errorf("%s: run 1 %+v", when, r1)
		}
		if r2.Status != RunCancelled || r2.StopReason != "cancelled" || r2.Steps != 0 {
			t.Errorf("%s: run 2 %+v", when, r2)
		}
		if a := st.Agents["agent-1"]; len(a.Pending) != 0 || fmt.Sprint(a.Runs) != fmt.Sprint([]string{run1, run2}) {
			t.Errorf("%s: pending %v, runs %v", when, a.Pending, a.Runs)
		}
	}
	check(st, "applied")
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := gob.NewDecoder(&buf).Decode(restored); err != nil {
		t.Fatal(err)
	}
	check(restored, "restored")
}

// An agent remembers every block, tool and source it has had, so that its
// history can include the events of those it no longer has.
func TestAgentRelated(t *testing.T) {
	t0 := time.Now().UTC()
	st := NewState()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	tools := []events.ToolID{"tool-2"}
	for i, ev := range []events.Event{
		&events.AgentCreated{ID: "agent-1", BlockIDs: []events.BlockID{"block-1"}, ToolIDs: []events.ToolID{"tool-1"}},
		&events.CoreBlockAttached{BlockID: "block-2"},
		&events.CoreBlockDetached{BlockID: "block-1"},
		&events.AgentUpdated{ToolIDs: &tools},
		&events.AgentSourceAttached{SourceID: "source-1"},
		&events.CoreBlockAttached{BlockID: "block-2"},
	} {
		st.Apply(events.Envelope{Seq: events.Seq(i + 1), Aggregate: agg, Time: t0, Event: ev})
	}
	var got []string
	for _, x := range st.Agents["agent-1"].Related {
		got = append(got, x.String())
	}
	want := []string{"block/block-1", "tool/tool-1", "block/block-2", "tool/tool-2", "source/source-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("related = %q, want %q", got, want)
	}
}

// BenchmarkContextWindow folds one agent's 10,000 messages, never
// summarized, into a fresh state, as state-at does for such an agent: the
// window grows to 10,000 ids.
func BenchmarkContextWindow(b *testing.B) {
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []events.Envelope{{Seq: 1, Aggregate: agg, Time: t0, Event: &events.AgentCreated{ID: "agent-1"}}}
	for i := range 10_000 {
		evs = append(evs, events.Envelope{Seq: events.Seq(i + 2), Aggregate: agg, Time: t0,
			Event: &events.MessageAppended{ID: events.MessageID(fmt.Sprintf("message-%d", i)), Role: "assistant", Text: "x"}})
	}
	b.ReportAllocs()
	for b.Loop() {
		st := NewState()
		for _, e := range evs {
			st.Apply(e)
		}
	}
}

// Two states folding the same decoded events (state-at beside the live
// projection) must not share a context window: the window an
// AgentUpdated sets is the event's, and each state's appends after it are
// its own.
func TestContextWindowNotShared(t *testing.T) {
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	window := make([]events.MessageID, 1, 16) // room to grow in place
	window[0] = "message-0"
	shared := []events.Envelope{
		{Seq: 1, Aggregate: agg, Time: t0, Event: &events.AgentCreated{ID: "agent-1"}},
		{Seq: 2, Aggregate: agg, Time: t0, Event: &events.AgentUpdated{MessageIDs: &window}},
	}
	a, b := NewState(), NewState()
	for _, e := range shared {
		a.Apply(e)
		b.Apply(e)
	}
	a.Apply(events.Envelope{Seq: 3, Aggregate: agg, Time: t0, Event: &events.MessageAppended{ID: "message-a", Role: "user"}})
	b.Apply(events.Envelope{Seq: 3, Aggregate: agg, Time: t0, Event: &events.MessageAppended{ID: "message-b", Role: "user"}})
	held := a.Agents["agent-1"].MessageIDs // a reader's copy of the header
	a.Apply(events.Envelope{Seq: 4, Aggregate: agg, Time: t0, Event: &events.MessageAppended{ID: "message-a2", Role: "user"}})
	if got := fmt.Sprint(a.Agents["agent-1"].MessageIDs); got != "[message-0 message-a message-a2]" {
		t.Errorf("a's window %s", got)
	}
	if got := fmt.Sprint(b.Agents["agent-1"].MessageIDs); got != "[message-0 message-b]" {
		t.Errorf("b's window %s", got)
	}
	if got := fmt.Sprint(held); got != "[message-0 message-a]" {
		t.Errorf("a header taken before an append now reads %s", got)
	}
	if got := fmt.Sprint(window[:cap(window)][:2]); got != "[message-0 ]" {
		t.Errorf("the event's array was written: %s", got)
	}
}

func TestConversations(t *testing.T) {
	st := NewState()
	seq := events.Seq(0)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apply := func(kind events.Kind, id, cmd string, ev events.Event) {
		seq++
		st.Apply(events.Envelope{Seq: seq, Aggregate: events.Aggregate{Kind: kind, ID: id}, Command: cmd, Time: at.Add(time.Duration(seq) * time.Second), Event: ev})
	}
	input := func(id string, conv events.ConversationID) *events.MessageReceived {
		return &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: id,
			RunID: events.DerivedID("run", id)}, ConversationID: conv}
	}
	const conv = "conv-1"
	run1, run2 := events.DerivedID("run", "message-1"), events.DerivedID("run", "message-3")
	apply(events.KindAgent, "agent-1", "c0", &events.AgentCreated{ID: "agent-1", Name: "a"})
	apply(events.KindConversation, conv, "c1", &events.ConversationCreated{ID: conv, AgentID: "agent-1", Summary: "first"})
	apply(events.KindAgent, "agent-1", "send-1", input("message-1", conv))
	apply(events.KindAgent, "agent-1", "step-1", &events.MessageAppended{ID: "message-2", Role: "assistant", RunID: run1, StopReason: "end_turn"})
	apply(events.KindAgent, "agent-1", "send-2", input("message-3", "")) // the agent's default conversation
	apply(events.KindAgent, "agent-1", "step-2", &events.MessageAppended{ID: "message-4", Role: "assistant", RunID: run2, StopReason: "end_turn"})
	summary := "second"
	apply(events.KindConversation, conv, "c2", &events.ConversationUpdated{Summary: &summary})

	check := func(st *State, when string) {
		t.Helper()
		c := st.Conversations[conv]
		if c == nil {
			t.Fatalf("%s: no conversation", when)
		}
		var ids []string
		for _, r := range c.Messages {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != "[message-1 message-2]" || c.Summary != "second" || !c.LastMessageAt.Equal(at.Add(3*time.Second)) ||
			!c.UpdatedAt.Equal(at.Add(7*time.Second)) || c.Version.Seq != 7 {
			t.Errorf("%s: conversation %+v", when, c)
		}
		if st.Runs[run1].ConversationID != conv || st.Runs[run2].ConversationID != "" {
			t.Errorf("%s: runs' conversations %q, %q", when, st.Runs[run1].ConversationID, st.Runs[run2].ConversationID)
		}
	}
	check(st, "applied")
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := gob.NewDecoder(&buf).Decode(restored); err != nil {
		t.Fatal(err)
	}
	check(restored, "restored")

	apply(events.KindConversation, conv, "c3", &events.ConversationDeleted{})
	if st.Conversations[conv] != nil || st.VersionOf(events.Aggregate{Kind: events.KindConversation, ID: conv}).Seq != 8 {
		t.Errorf("after delete: %+v, version %d", st.Conversations[conv], st.VersionOf(events.Aggregate{Kind: events.KindConversation, ID: conv}).Seq)
	}
	// A send that names a deleted conversation is the agent's only.
	apply(events.KindAgent, "agent-1", "send-3", input("message-5", conv))
	if st.Agents["agent-1"] == nil || len(st.Agents["agent-1"].Messages) != 5 {
		t.Errorf("the agent lost a message")
	}
}

// TestConversationWindows: a conversation's context window begins with the
// agent's system message and holds the inputs its runs take and the
// messages they store, which the agent's own window does not; calls wait
// for approval in their conversation; ConversationWindowSet replaces its
// window alone; a snapshot keeps all of it.
func TestConversationWindows(t *testing.T) {
	st := NewState()
	seq := events.Seq(0)
	apply := func(kind events.Kind, id, cmd string, ev events.Event) {
		seq++
		st.Apply(events.Envelope{Seq: seq, Aggregate: events.Aggregate{Kind: kind, ID: id}, Command: cmd, Time: time.Unix(int64(seq), 0).UTC(), Event: ev})
	}
	input := func(id string, conv events.ConversationID) *events.MessageReceived {
		return &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: id,
			RunID: events.DerivedID("run", id)}, ConversationID: conv}
	}
	const conv = "conv-1"
	run1, run2 := events.DerivedID("run", "in-1"), events.DerivedID("run", "in-2")
	apply(events.KindAgent, "agent-1", "c0", &events.AgentCreated{ID: "agent-1", Name: "a"})
	apply(events.KindAgent, "agent-1", "c0", &events.MessageAppended{ID: "sys", Role: "system", Text: "you are"})
	apply(events.KindConversation, conv, "c1", &events.ConversationCreated{ID: conv, AgentID: "agent-1"})
	apply(events.KindAgent, "agent-1", "send-1", input("in-1", conv))
	apply(events.KindAgent, "agent-1", "send-2", input("in-2", "")) // the default conversation
	apply(events.KindAgent, "agent-1", "step-1", &events.InputTaken{IDs: []events.MessageID{"in-1"}})
	apply(events.KindAgent, "agent-1", "step-1", &events.MessageAppended{ID: "out-1", Role: "assistant", RunID: run1, StopReason: "requires_approval"})
	apply(events.KindAgent, "agent-1", "step-2", &events.InputTaken{IDs: []events.MessageID{"in-2"}})
	apply(events.KindAgent, "agent-1", "step-2", &events.MessageAppended{ID: "out-2", Role: "assistant", RunID: run2, StopReason: "end_turn"})

	check := func(st *State, when, convWindow, awaiting string) {
		t.Helper()
		a, c := st.Agents["agent-1"], st.Conversations[conv]
		if got := fmt.Sprint(a.MessageIDs); got != "[sys in-2 out-2]" || a.Awaiting != "" {
			t.Errorf("%s: the agent's window %s, awaiting %q; want [sys in-2 out-2] and none", when, got, a.Awaiting)
		}
		if got := fmt.Sprint(c.MessageIDs); got != convWindow || string(c.Awaiting) != awaiting {
			t.Errorf("%s: the conversation's window %s, awaiting %q; want %s and %q", when, got, c.Awaiting, convWindow, awaiting)
		}
		var conv []string
		for _, r := range a.Messages {
			if r.Conv {
				conv = append(conv, r.ID)
			}
		}
		if !strings.HasPrefix(fmt.Sprint(conv), "[in-1 out-1") || slices.Contains(conv, "in-2") || slices.Contains(conv, "out-2") {
			t.Errorf("%s: the conversation's messages are %v", when, conv)
		}
	}
	check(st, "applied", "[sys in-1 out-1]", "out-1")

	apply(events.KindAgent, "agent-1", "step-3", &events.MessageAppended{ID: "ret-1", Role: "tool", RunID: run1})
	apply(events.KindAgent, "agent-1", "sum-1", &events.MessageAppended{ID: "sum", Role: "user", RunID: run1})
	apply(events.KindAgent, "agent-1", "sum-1", &events.ConversationWindowSet{ConversationID: conv, MessageIDs: []events.MessageID{"sys", "sum", "ret-1"}})
	check(st, "summarized", "[sys sum ret-1]", "")

	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	restored := NewState()
	if err := gob.NewDecoder(&buf).Decode(restored); err != nil {
		t.Fatal(err)
	}
	check(restored, "restored", "[sys sum ret-1]", "")
	d1, _ := st.Digest()
	d2, _ := restored.Digest()
	if d1 != d2 {
		t.Errorf("digest %s after a restore; want %s", d2, d1)
	}
	// A message of a run whose conversation was deleted joins no window.
	apply(events.KindConversation, conv, "c2", &events.ConversationDeleted{})
	apply(events.KindAgent, "agent-1", "step-4", &events.MessageAppended{ID: "late", Role: "assistant", RunID: run1, StopReason: "requires_approval"})
	if a := st.Agents["agent-1"]; fmt.Sprint(a.MessageIDs) != "[sys in-2 out-2]" || a.Awaiting != "" {
		t.Errorf("a deleted conversation's message went to the agent's window %v (awaiting %q)", a.MessageIDs, a.Awaiting)
	}
}

// BenchmarkApplySends folds sends and their one-step runs, to the agent's
// default conversation (the baseline) and to another conversation of it,
// whose window the run's messages join: three events a send.
func BenchmarkApplySends(b *testing.B) {
	for _, to := range []struct {
		name string
		conv events.ConversationID
	}{{"default", ""}, {"conversation", "conv-1"}} {
		b.Run(to.name, func(b *testing.B) {
			st := NewState()
			seq := events.Seq(0)
			apply := func(kind events.Kind, id, cmd string, ev events.Event) {
				seq++
				st.Apply(events.Envelope{Seq: seq, Aggregate: events.Aggregate{Kind: kind, ID: id}, Command: cmd, Time: time.Unix(int64(seq), 0).UTC(), Event: ev})
			}
			apply(events.KindAgent, "agent-1", "c0", &events.AgentCreated{ID: "agent-1", Name: "a"})
			apply(events.KindAgent, "agent-1", "c0", &events.MessageAppended{ID: "sys", Role: "system", Text: "you are"})
			apply(events.KindConversation, "conv-1", "c1", &events.ConversationCreated{ID: "conv-1", AgentID: "agent-1"})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in := events.MessageID(fmt.Sprint("in-", i))
				run := events.DerivedID("run", string(in))
				cmd := fmt.Sprint("send-", i)
				apply(events.KindAgent, "agent-1", cmd, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: in, Role: "user", Text: "hi", RunID: run}, ConversationID: to.conv})
				apply(events.KindAgent, "agent-1", "step-"+cmd, &events.InputTaken{IDs: []events.MessageID{in}})
				apply(events.KindAgent, "agent-1", "step-"+cmd, &events.MessageAppended{ID: events.MessageID("out-" + cmd), Role: "assistant", RunID: run, StopReason: "end_turn"})
			}
		})
	}
}

package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/nats-io/nats.go"
)

func startLog(t testing.TB, sync bool) (*Server, *Log) {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig(t.TempDir())
	cfg.SyncAlways = sync
	s, err := StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	l, err := OpenLog(ctx, s, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

func agentEnv(id string, ev events.Event) events.Envelope {
	return events.Envelope{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: id}, Time: time.Now().UTC(), Event: ev}
}

func blockEnv(id string, ev events.Event) events.Envelope {
	return events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: id}, Time: time.Now().UTC(), Event: ev}
}

func TestAppendExpectations(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-A"}
	create := events.Batch{Command: "c1", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: "agent-A", Name: "a"})}}
	s1, err := l.Append(ctx, create)
	if err != nil || s1 != 1 {
		t.Fatalf("first append = %d, %v", s1, err)
	}
	// The same command again is recognised as already done.
	again, err := l.Append(ctx, create)
	if err != nil || again != s1 {
		t.Fatalf("retried append = %d, %v; want %d, nil", again, err, s1)
	}
	// A different command expecting the aggregate not to exist conflicts.
	other := create
	other.Command = "c2"
	_, err = l.Append(ctx, other)
	var ce *events.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, events.ErrConflict) || ce.Latest != s1 {
		t.Fatalf("stale append err = %v, want conflict at %d", err, s1)
	}
	// The right version succeeds.
	upd := events.Batch{Command: "c3", Expect: []events.Expectation{{Aggregate: a, Version: s1}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentUpdated{})}}
	if s, err := l.Append(ctx, upd); err != nil || s != 2 {
		t.Fatalf("update = %d, %v", s, err)
	}
	if last, _ := l.LastSeq(ctx); last != 2 {
		t.Fatalf("log has %d events, want 2", last)
	}
}

func TestAppendBatchAtomic(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-B"}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-B"}
	batch := events.Batch{Command: "b1",
		Expect: []events.Expectation{{Aggregate: a}, {Aggregate: b}},
		Events: []events.Envelope{
			agentEnv(a.ID, &events.AgentCreated{ID: "agent-B"}),
			blockEnv(b.ID, &events.BlockCreated{ID: "block-B", Label: "human"}),
			agentEnv(a.ID, &events.CoreBlockAttached{BlockID: "block-B"}),
		}}
	seq, err := l.Append(ctx, batch)
	if err != nil || seq != 3 {
		t.Fatalf("batch = %d, %v", seq, err)
	}
	if again, err := l.Append(ctx, batch); err != nil || again != seq {
		t.Fatalf("retried batch = %d, %v; want %d", again, err, seq)
	}
	// A batch whose second expectation is stale stores nothing.
	c := events.Aggregate{Kind: events.KindAgent, ID: "agent-C"}
	bad := events.Batch{Command: "b2",
		Expect: []events.Expectation{{Aggregate: c}, {Aggregate: b, Version: 1}},
		Events: []events.Envelope{
			agentEnv(c.ID, &events.AgentCreated{ID: "agent-C"}),
			blockEnv(b.ID, &events.BlockUpdated{}),
		}}
	if _, err := l.Append(ctx, bad); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("stale second expectation: err = %v, want conflict", err)
	}
	if last, _ := l.LastSeq(ctx); last != 3 {
		t.Fatalf("log has %d events after a rejected batch, want 3", last)
	}
	// Whole-kind expectation.
	tool := events.Aggregate{Kind: events.KindTool, ID: "tool-1"}
	tb := events.Batch{Command: "t1", Expect: []events.Expectation{{Aggregate: tool, WholeKind: true}},
		Events: []events.Envelope{{Aggregate: tool, Time: time.Now(), Event: &events.ToolCreated{ID: "tool-1", Name: "x"}}}}
	if _, err := l.Append(ctx, tb); err != nil {
		t.Fatal(err)
	}
	tool2 := events.Aggregate{Kind: events.KindTool, ID: "tool-2"}
	tb2 := events.Batch{Command: "t2", Expect: []events.Expectation{{Aggregate: tool2, WholeKind: true}},
		Events: []events.Envelope{{Aggregate: tool2, Time: time.Now(), Event: &events.ToolCreated{ID: "tool-2", Name: "y"}}}}
	if _, err := l.Append(ctx, tb2); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("whole-kind expectation at 0 after a tool exists: err = %v, want conflict", err)
	}
}

func TestFollowAndLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, l := startLog(t, false)
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("agent-%d", i)
		if _, err := l.Append(ctx, events.Batch{Command: id, Events: []events.Envelope{agentEnv(id, &events.AgentCreated{ID: events.AgentID(id)})}}); err != nil {
			t.Fatal(err)
		}
	}
	env, err := l.Load(ctx, 3, 0)
	if err != nil || env.Seq != 3 || env.Aggregate.ID != "agent-2" || env.Command != "agent-2" {
		t.Fatalf("Load(3) = %+v, %v", env, err)
	}
	var got []events.Seq
	fctx, fcancel := context.WithCancel(ctx)
	err = l.Follow(fctx, 2, func(seq events.Seq, _ []byte) error {
		got = append(got, seq)
		if len(got) == 4 {
			fcancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || fmt.Sprint(got) != "[2 3 4 5]" {
		t.Fatalf("Follow from 2 = %v, %v", got, err)
	}
}

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	if _, _, err := l.LoadSnapshot(ctx, "p"); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("empty: %v", err)
	}
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i)
	}
	if err := l.SaveSnapshot(ctx, "p", 42, big); err != nil {
		t.Fatal(err)
	}
	seq, data, err := l.LoadSnapshot(ctx, "p")
	if err != nil || seq != 42 || len(data) != len(big) || data[1000] != big[1000] {
		t.Fatalf("LoadSnapshot = %d, %d bytes, %v", seq, len(data), err)
	}
}

func TestStartServerBadStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := StartServer(ctx, DefaultConfig("/proc/nope")); err == nil {
		t.Fatal("started on an unwritable store")
	}
}

func TestFiles(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	if _, err := l.GetFile(ctx, "file-x", ""); !errors.Is(err, ErrNoFile) {
		t.Fatalf("missing file: %v", err)
	}
	data := bytes.Repeat([]byte("engram "), 200_000) // 1.4 MB: several chunks
	digest, err := l.PutFile(ctx, "file-x", data)
	if err != nil || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("PutFile = %q, %v", digest, err)
	}
	got, err := l.GetFile(ctx, "file-x", digest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFile = %d bytes, %v", len(got), err)
	}
	if _, err := l.GetFile(ctx, "file-x", "sha256:00"); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("wrong digest accepted: %v", err)
	}
}

// A command of several events on one aggregate is stored as one packed
// message: one sequence, each event loadable by its part, with the same
// expectation and retry semantics as a batch. Agent inputs are never packed
// (the partition consumers select them by subject).
func TestAppendPacked(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-P"}
	s1, err := l.Append(ctx, events.Batch{Command: "c1", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: "agent-P", Name: "p"})}})
	if err != nil {
		t.Fatal(err)
	}
	step := events.Batch{Command: "c2", Expect: []events.Expectation{{Aggregate: a, Version: s1}}, Events: []events.Envelope{
		agentEnv(a.ID, &events.InputTaken{IDs: []events.MessageID{"message-1"}}),
		agentEnv(a.ID, &events.MessageAppended{ID: "message-2", Role: "assistant", Text: "hi"}),
		agentEnv(a.ID, &events.MessageAppended{ID: "message-3", Role: "tool", Text: "ok"}),
	}}
	s2, err := l.Append(ctx, step)
	if err != nil || s2 != s1+1 {
		t.Fatalf("packed append = %d, %v; want %d (one message)", s2, err, s1+1)
	}
	for i, want := range []string{"", "message-2", "message-3"} {
		env, err := l.Load(ctx, s2, i)
		if err != nil || env.Seq != s2 || env.Part != i || env.Command != "c2" {
			t.Fatalf("Load(%d, %d) = %+v, %v", s2, i, env, err)
		}
		if m, ok := events.AsMessage(env.Event); ok != (want != "") || ok && string(m.ID) != want {
			t.Fatalf("Load(%d, %d) = %+v, want message %q", s2, i, env.Event, want)
		}
	}
	if _, err := l.Load(ctx, s2, 3); err == nil {
		t.Fatal("loaded a part past the end")
	}
	// Retried: the same sequence, nothing new.
	if again, err := l.Append(ctx, step); err != nil || again != s2 {
		t.Fatalf("retried packed append = %d, %v; want %d", again, err, s2)
	}
	// Stale: a conflict, nothing stored.
	stale := step
	stale.Command = "c3"
	var ce *events.ConflictError
	if _, err := l.Append(ctx, stale); !errors.As(err, &ce) || ce.Latest != s2 {
		t.Fatalf("stale packed append err = %v, want conflict at %d", err, s2)
	}
	// Two inputs of one send stay separate messages under their own subjects.
	in := events.Batch{Command: "c4", Events: []events.Envelope{
		agentEnv(a.ID, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: "message-4", Role: "user", Text: "a"}}),
		agentEnv(a.ID, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: "message-5", Role: "user", Text: "b"}}),
	}}
	s4, err := l.Append(ctx, in)
	if err != nil || s4 != s2+2 {
		t.Fatalf("inputs append = %d, %v; want %d (two messages)", s4, err, s2+2)
	}
	var types []string
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
		envs, err := events.DecodeAll(data)
		if err != nil {
			return err
		}
		types = append(types, fmt.Sprint(len(envs)))
		if seq == s4 {
			cancel()
		}
		return nil
	})
	if got := strings.Join(types, ","); got != "1,3,1,1" {
		t.Fatalf("events per message = %s, want 1,3,1,1", got)
	}
}

func TestLoadAll(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-L"}
	seq, err := l.Append(ctx, events.Batch{Command: "c1", Expect: []events.Expectation{{Aggregate: a}}, Events: []events.Envelope{
		agentEnv(a.ID, &events.AgentCreated{ID: "agent-L", Name: "l"}),
		agentEnv(a.ID, &events.PassageInserted{ID: "passage-1", Text: "one"}),
		agentEnv(a.ID, &events.PassageInserted{ID: "passage-2", Text: "two"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := l.LoadAll(ctx, seq)
	if err != nil || len(envs) != 3 {
		t.Fatalf("LoadAll = %d events, %v", len(envs), err)
	}
	for i, env := range envs {
		if env.Seq != seq || env.Part != i {
			t.Errorf("event %d: seq %d part %d", i, env.Seq, env.Part)
		}
		one, err := l.Load(ctx, seq, i)
		if err != nil || one.Type != env.Type {
			t.Errorf("Load part %d = %v, %v; LoadAll says %v", i, one.Type, err, env.Type)
		}
	}
	if p, ok := envs[2].Event.(*events.PassageInserted); !ok || p.Text != "two" {
		t.Fatalf("part 2 = %+v", envs[2].Event)
	}
}

// TestFollowBoundsBytesInFlight watches the pull requests a follower and a
// reader send to the server: each must ask for at most followBytes. With only
// a message count, a follower of large events had hundreds of megabytes in
// flight and the server closed the shared in-process connection as a slow
// consumer, failing appends (engram bench's 100k-passage search workload).
func TestFollowBoundsBytesInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, l := startLog(t, false)
	watch, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Token(s.auth.internal)) // sees the server's API traffic
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	pulls := make(chan *nats.Msg, 64)
	sub, err := watch.ChanSubscribe("$JS.API.CONSUMER.MSG.NEXT.>", pulls)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := fmt.Sprintf("agent-%d", i)
		if _, err := l.Append(ctx, events.Batch{Command: id, Events: []events.Envelope{agentEnv(id, &events.AgentCreated{ID: events.AgentID(id)})}}); err != nil {
			t.Fatal(err)
		}
	}
	fctx, fcancel := context.WithCancel(ctx)
	n := 0
	if err := l.Follow(fctx, 1, func(events.Seq, []byte) error {
		if n++; n == 3 {
			fcancel()
		}
		return nil
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v", err)
	}
	if err := l.Read(ctx, []events.Selector{{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}}}, 1, 3, func(events.Envelope) (bool, error) { return true, nil }); err != nil {
		t.Fatalf("Read = %v", err)
	}
	seen := 0
	for {
		select {
		case m := <-pulls:
			var req struct {
				Batch    int `json:"batch"`
				MaxBytes int `json:"max_bytes"`
			}
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Fatalf("pull request %q: %v", m.Data, err)
			}
			if req.MaxBytes <= 0 || req.MaxBytes > followBytes {
				t.Fatalf("pull request %s asks for %d bytes; want 1..%d", m.Data, req.MaxBytes, followBytes)
			}
			seen++
		case <-time.After(200 * time.Millisecond):
			if seen < 2 {
				t.Fatalf("saw %d pull requests; want one from Follow and one from Read at least", seen)
			}
			return
		}
	}
}

// TestAppendHosted appends a command that creates an agent and a block of
// its own (Fresh) as one hosted message, and checks what stays true of an
// atomic batch: a retry is recognised, a stale host conflicts and stores
// nothing, and the block's own subject, which its creation is not under,
// is what its later expectations check. A block not marked fresh, or
// expected at another version, still takes an atomic batch.
func TestAppendHosted(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-H"}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-H"}
	create := events.Batch{Command: "h1",
		Expect: []events.Expectation{{Aggregate: a}, {Aggregate: b}},
		Fresh:  []events.Aggregate{b},
		Events: []events.Envelope{
			agentEnv(a.ID, &events.AgentCreated{ID: "agent-H", BlockIDs: []events.BlockID{"block-H"}}),
			blockEnv(b.ID, &events.BlockCreated{ID: "block-H", Label: "human"}),
			agentEnv(a.ID, &events.MessageAppended{ID: "message-1", Role: "system", Text: "hi"}),
		}}
	seq, err := l.Append(ctx, create)
	if err != nil || seq != 1 {
		t.Fatalf("hosted append = %d, %v; want 1 (one message)", seq, err)
	}
	envs, err := l.LoadAll(ctx, seq)
	if err != nil || len(envs) != 3 {
		t.Fatalf("LoadAll = %+v, %v", envs, err)
	}
	for i, env := range envs {
		if env.Aggregate != create.Events[i].Aggregate || env.Hosted != (i == 1) {
			t.Errorf("part %d: %s hosted=%v", i, env.Aggregate, env.Hosted)
		}
	}
	if again, err := l.Append(ctx, create); err != nil || again != seq {
		t.Fatalf("retried hosted append = %d, %v; want %d", again, err, seq)
	}
	stale := create
	stale.Command = "h2"
	var ce *events.ConflictError
	if _, err := l.Append(ctx, stale); !errors.As(err, &ce) || ce.Aggregate != a || ce.Latest != seq {
		t.Fatalf("stale hosted append err = %v, want conflict on %s at %d", err, a, seq)
	}
	// The block's subject holds nothing yet: its first own event expects 0.
	upd := func(cmd string, v events.Seq) (events.Seq, error) {
		return l.Append(ctx, events.Batch{Command: cmd, Expect: []events.Expectation{{Aggregate: b, Version: v}},
			Events: []events.Envelope{blockEnv(b.ID, &events.BlockUpdated{})}})
	}
	if _, err := upd("u1", seq); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("block update expecting the hosted message's sequence: err = %v, want conflict", err)
	}
	s2, err := upd("u2", 0)
	if err != nil || s2 != 2 {
		t.Fatalf("block update expecting 0 = %d, %v; want 2", s2, err)
	}
	if _, err := upd("u3", 0); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("second update expecting 0: err = %v, want conflict", err)
	}
	// Not fresh, or fresh but expected at a version: an atomic batch of
	// one message per event.
	for i, batch := range []events.Batch{
		{Expect: []events.Expectation{{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: "agent-J"}}, {Aggregate: events.Aggregate{Kind: events.KindBlock, ID: "block-J"}}}},
		{Expect: []events.Expectation{{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: "agent-K"}}, {Aggregate: b, Version: s2}}, Fresh: []events.Aggregate{b}},
	} {
		last, _ := l.LastSeq(ctx)
		batch.Command = fmt.Sprintf("b%d", i)
		for _, x := range batch.Expect {
			ev := events.Event(&events.AgentCreated{ID: events.AgentID(x.Aggregate.ID)})
			if x.Aggregate.Kind == events.KindBlock {
				ev = &events.BlockUpdated{}
				if x.Version == 0 {
					ev = &events.BlockCreated{ID: events.BlockID(x.Aggregate.ID), Label: "x"}
				}
			}
			batch.Events = append(batch.Events, events.Envelope{Aggregate: x.Aggregate, Time: time.Now().UTC(), Event: ev})
		}
		got, err := l.Append(ctx, batch)
		if err != nil || got != last+2 {
			t.Fatalf("batch %d = %d, %v; want %d (two messages)", i, got, err, last+2)
		}
	}
}

// TestAppendUnderItsOrganization: an aggregate named in Batch.Tenants is
// stored under that token; expectations and reads match it under any
// token, so an aggregate whose first events are under the log's own token
// (written before organizations had tokens) goes on under its
// organization's, and a stale expectation still conflicts.
func TestAppendUnderItsOrganization(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-T"}
	first, err := l.Append(ctx, events.Batch{Command: "t1", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: "agent-T"})}})
	if err != nil {
		t.Fatal(err)
	}
	orgs := map[events.Aggregate]string{a: "org-01a24b00-0000-7000-8000-000000000001"}
	next, err := l.Append(ctx, events.Batch{Command: "t2", Expect: []events.Expectation{{Aggregate: a, Version: first}}, Tenants: orgs,
		Events: []events.Envelope{agentEnv(a.ID, &events.MessageAppended{ID: "message-T", Role: "user", Text: "hi"})}})
	if err != nil {
		t.Fatalf("an append under the organization's token after one under the log's: %v", err)
	}
	m, err := l.stream.GetMsg(ctx, uint64(next)) // by sequence, whatever its subject
	if err != nil {
		t.Fatal(err)
	}
	if es, ok := ParseSubject(m.Subject); !ok || es.Tenant != orgs[a] {
		t.Fatalf("stored under %s; want the organization's token", m.Subject)
	}
	_, err = l.Append(ctx, events.Batch{Command: "t3", Expect: []events.Expectation{{Aggregate: a, Version: first}}, Tenants: orgs,
		Events: []events.Envelope{agentEnv(a.ID, &events.MessageAppended{ID: "message-U", Role: "user", Text: "late"})}})
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("a stale expectation across tokens: %v; want a conflict", err)
	}
	last, ok, err := l.LastRaw(ctx, AggregateFilter(AnyTenant, a))
	if err != nil || !ok || last.Seq != next {
		t.Fatalf("the aggregate's last message under any token: %d %v %v; want %d", last.Seq, ok, err, next)
	}
}

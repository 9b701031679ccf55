package bus

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

func TestReadAggregates(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, false)
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-A"}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-B"}
	other := events.Aggregate{Kind: events.KindAgent, ID: "agent-O"}
	appendOne := func(env events.Envelope) events.Seq {
		t.Helper()
		seq, err := l.Append(ctx, events.Batch{Command: events.NewID("cmd", env.Time), Events: []events.Envelope{env}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	appendOne(agentEnv(a.ID, &events.AgentCreated{ID: "agent-A", Name: "a"}))
	appendOne(agentEnv(other.ID, &events.AgentCreated{ID: "agent-O", Name: "o"}))
	appendOne(blockEnv(b.ID, &events.BlockCreated{ID: "block-B", Label: "human"}))
	// A packed message: two events of A in one message.
	packed := events.Batch{Command: "packed", Events: []events.Envelope{
		agentEnv(a.ID, &events.MessageAppended{ID: "message-1", Role: "user", Text: "hi"}),
		agentEnv(a.ID, &events.MessageAppended{ID: "message-2", Role: "assistant", Text: "hello"}),
	}}
	pseq, err := l.Append(ctx, packed)
	if err != nil {
		t.Fatal(err)
	}
	appendOne(agentEnv(other.ID, &events.AgentUpdated{}))

	read := func(aggs []events.Aggregate, from, to events.Seq, max int) []string {
		t.Helper()
		var out []string
		var sel []events.Selector
		for _, a := range aggs {
			sel = append(sel, events.Selector{Aggregate: a})
		}
		err := l.Read(ctx, sel, from, to, func(env events.Envelope) (bool, error) {
			out = append(out, fmt.Sprintf("%d.%d %s", env.Seq, env.Part, env.Type))
			return len(out) < max, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name     string
		aggs     []events.Aggregate
		from, to events.Seq
		max      int
		want     []string
	}{
		{"agent and block", []events.Aggregate{a, b}, 0, 0, 100, []string{"1.0 agent_created", "3.0 block_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq)}},
		{"from", []events.Aggregate{a, b}, 2, 0, 100, []string{"3.0 block_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq)}},
		{"to", []events.Aggregate{a, b}, 0, 3, 100, []string{"1.0 agent_created", "3.0 block_created"}},
		{"stop early", []events.Aggregate{a, b}, 0, 0, 2, []string{"1.0 agent_created", "3.0 block_created"}},
		{"nothing in range", []events.Aggregate{b}, 4, 0, 100, nil},
		{"no aggregate", nil, 0, 0, 100, nil},
	}
	t.Run("by type", func(t *testing.T) {
		var got []string
		sel := []events.Selector{{Aggregate: a, Types: []events.Type{events.TypeAgentCreated}}, {Aggregate: other, Types: []events.Type{events.TypeAgentUpdated}}}
		if err := l.Read(ctx, sel, 0, 0, func(env events.Envelope) (bool, error) {
			got = append(got, fmt.Sprintf("%d.%d %s", env.Seq, env.Part, env.Type))
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		// A's packed message comes whole: its events' types are not in its subject.
		want := []string{"1.0 agent_created", fmt.Sprintf("%d.0 message_appended", pseq), fmt.Sprintf("%d.1 message_appended", pseq), fmt.Sprintf("%d.0 agent_updated", pseq+1)}
		if !slices.Equal(got, want) {
			t.Fatalf("read = %q, want %q", got, want)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := read(tc.aggs, tc.from, tc.to, tc.max); !slices.Equal(got, tc.want) {
				t.Fatalf("read = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFollowPending reads a log with batched direct gets and then follows
// it: every message once, in order, including large ones that overflow a
// batch's byte bound and ones appended while it reads; pending counts down
// to 0 at the end of what was stored.
func TestFollowPending(t *testing.T) {
	ctx := context.Background()
	s, l := startLog(t, false)
	js := s.JetStream()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	subj := Subject(l.Tenant(), agg, events.TypeMessageAppended)
	big := strings.Repeat("x", 600<<10)
	var want [][]byte
	for i := 0; i < 2500; i++ {
		text := fmt.Sprint("message ", i)
		if i%50 == 7 {
			text += big // twenty in a batch of 1,000 overflow its 8 MiB
		}
		data, err := events.Encode(events.Envelope{Aggregate: agg, Command: fmt.Sprint("c", i), Time: time.Now().UTC(),
			Event: &events.MessageAppended{ID: events.MessageID(fmt.Sprint("message-", i)), Role: "user", Text: text}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, subj, data); err != nil {
			t.Fatal(err)
		}
		want = append(want, data)
	}
	stored := len(want)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got int
	err := l.FollowPending(fctx, 1, func(seq events.Seq, data []byte, pending uint64) error {
		if int(seq) != got+1 || !bytes.Equal(data, want[got]) {
			return fmt.Errorf("message %d delivered as %d (%d bytes)", got+1, seq, len(data))
		}
		got++
		if got <= stored && pending != uint64(stored-got) {
			return fmt.Errorf("message %d: %d pending, want %d", seq, pending, stored-got)
		}
		if got == stored {
			// Appended while following: the ordered consumer delivers it.
			data, _ := events.Encode(events.Envelope{Aggregate: agg, Command: "late", Time: time.Now().UTC(),
				Event: &events.MessageAppended{ID: "message-late", Role: "user", Text: "late"}})
			want = append(want, data)
			if _, err := js.Publish(ctx, subj, data); err != nil {
				return err
			}
		}
		if got == len(want) && got > stored {
			cancel()
		}
		return nil
	})
	if got != stored+1 {
		t.Fatalf("delivered %d of %d: %v", got, stored+1, err)
	}
}

// TestFollowPendingGaps reads a log with deleted messages: batches asked
// for without headers cannot name their sequences, so a batch over a gap
// must be read again with them. Every stored message is delivered once,
// under its own sequence, and no deleted one.
func TestFollowPendingGaps(t *testing.T) {
	defer func(was int) { directBatch = was }(directBatch)
	directBatch = 100
	ctx := context.Background()
	// engram's log denies deletes; a stream made before it by hand, where
	// messages were deleted, is adopted as it is (the denial added).
	cfg := DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	s, err := StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	js := s.JetStream()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: StreamName, Subjects: []string{streamSubjects}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	subj := Subject(DefaultTenant, agg, events.TypeMessageAppended)
	const n = 1000
	for i := 1; i <= n; i++ {
		if _, err := js.PublishAsync(subj, []byte(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	deleted := map[events.Seq]bool{1: true, 150: true, 151: true, 299: true, 300: true, 301: true, 999: true}
	for i := events.Seq(401); i <= 500; i++ { // one whole batch
		deleted[i] = true
	}
	for seq := range deleted {
		if err := st.DeleteMsg(ctx, uint64(seq)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := OpenLog(ctx, s, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var want []events.Seq
	for i := events.Seq(1); i <= n; i++ {
		if !deleted[i] {
			want = append(want, i)
		}
	}
	for _, headers := range []bool{false, true} {
		t.Run(fmt.Sprint("headers=", headers), func(t *testing.T) {
			defer func(was bool) { directHeaders = was }(directHeaders)
			directHeaders = headers
			fctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var got []events.Seq
			err = l.FollowPending(fctx, 1, func(seq events.Seq, data []byte, pending uint64) error {
				if string(data) != fmt.Sprint("m", seq) {
					return fmt.Errorf("message %d delivered with %q", seq, data)
				}
				got = append(got, seq)
				if seq == n {
					cancel()
				}
				return nil
			})
			if !slices.Equal(got, want) {
				t.Fatalf("delivered %d messages (%v), want %d: %v", len(got), err, len(want), firstDiff(got, want))
			}
		})
	}
}

// firstDiff describes where got and want part.
func firstDiff(got, want []events.Seq) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %d, want %d", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}

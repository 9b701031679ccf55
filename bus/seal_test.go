package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/events"
)

func TestSealCoversPlacing(t *testing.T) {
	ctx := context.Background()
	s, _ := startLog(t, false)
	key := make([]byte, SealKeySize)
	sealer, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := OpenLog(ctx, s, LogConfig{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-S"}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-S"}
	seq, err := l.Append(ctx, events.Batch{Command: "c1", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: "agent-S"}), blockEnv(b.ID, &events.BlockCreated{ID: "block-S"})}})
	if err != nil {
		t.Fatal(err)
	}
	for i := events.Seq(1); i <= seq; i++ {
		m, ok, err := l.LastRaw(ctx, AggregateFilter(l.Tenant(), []events.Aggregate{a, b}[i-1]))
		if err != nil || !ok || m.Seq != i {
			t.Fatalf("message %d: %+v %v %v", i, m, ok, err)
		}
		if err := sealer.Check(m.Subject, m.Header, m.Data); err != nil {
			t.Fatalf("message %d as stored: %v", i, err)
		}
		for _, tc := range []struct{ name, value string }{
			{hdrExpectSeq, "7"}, {hdrExpectSubj, ""}, {hdrBatchSeq, "3"}, {hdrBatchCommit, "1"}, {hdrCommand, "c2"},
		} {
			h := nats.Header{}
			for k, v := range m.Header {
				h[k] = append([]string(nil), v...)
			}
			h.Set(tc.name, tc.value)
			if tc.value == "" {
				h.Del(tc.name)
			}
			if err := sealer.Check(m.Subject, h, m.Data); !errors.Is(err, ErrBadSeal) && h.Get(tc.name) != m.Header.Get(tc.name) {
				t.Errorf("message %d with %s %q: %v, want ErrBadSeal", i, tc.name, tc.value, err)
			}
		}
		if err := sealer.Check(m.Subject+"x", m.Header, m.Data); !errors.Is(err, ErrBadSeal) {
			t.Errorf("message %d on another subject: %v", i, err)
		}
	}
}

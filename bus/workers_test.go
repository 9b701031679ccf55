package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// TestInputsOfAnOlderStore: a store whose input consumers were made when
// only message_received was an input (one FilterSubject) gets them updated
// in place, and run_requested events then reach the runner too, in log
// order with the messages.
func TestInputsOfAnOlderStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, l := startLog(t, false)
	agent := "agent-0193a5b2-0000-7000-8000-000000000001"
	p := Partition(agent)
	old := fmt.Sprintf("%s.%s.%s.%s.*.%s", SubjectPrefix, l.tenant, events.KindAgent, partitionToken(p), events.TypeMessageReceived)
	if _, err := l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: fmt.Sprintf(inputConsumerFormat, p), FilterSubject: old, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: InputAckWait, MaxAckPending: 10_000, DeliverPolicy: jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PinnedTTL: pinnedTTL, PriorityGroups: []string{inputGroup},
	}); err != nil {
		t.Fatal(err)
	}
	appendEv := func(ev events.Event) events.Seq {
		seq, err := l.Append(ctx, events.Batch{Command: events.NewID("cmd", time.Now()), Events: []events.Envelope{agentEnv(agent, ev)}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	appendEv(&events.MessageReceived{MessageAppended: events.MessageAppended{ID: "message-1", Role: "user", Text: "hi"}})
	appendEv(&events.RunRequested{ID: "message-2", Kind: events.RunHeartbeat})
	appendEv(&events.MessageAppended{ID: "message-3", Role: "assistant", Text: "not an input"})
	want := appendEv(&events.RunRequested{ID: "message-4", Kind: events.RunRetry})

	got := make(chan events.Seq, 16)
	in, err := l.ConsumeInputs(ctx, func(i Input) {
		if i.AgentID == agent {
			got <- i.Seq
		}
		i.Ack()
	})
	if err != nil {
		t.Fatalf("ConsumeInputs over an older consumer: %v", err)
	}
	defer in.Stop()
	var seqs []events.Seq
	for len(seqs) < 3 {
		select {
		case s := <-got:
			seqs = append(seqs, s)
		case <-ctx.Done():
			t.Fatalf("delivered %v; want the three inputs 1, 2 and %d", seqs, want)
		}
	}
	if fmt.Sprint(seqs) != fmt.Sprint([]events.Seq{1, 2, want}) {
		t.Fatalf("delivered %v; want [1 2 %d]", seqs, want)
	}
}

// TestPreparedInputs: consumers made ahead (PrepareInputs) deliver nothing
// until ConsumeAll, then every input stored before and after; prepared
// ones never consumed stop without hanging.
func TestPreparedInputs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, l := startLog(t, false)
	agent := "agent-0193a5b2-0000-7000-8000-000000000002"
	appendEv := func(id string) events.Seq {
		seq, err := l.Append(ctx, events.Batch{Command: events.NewID("cmd", time.Now()), Events: []events.Envelope{
			agentEnv(agent, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: "hi"}})}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	first := appendEv("message-1")

	idle, err := l.PrepareInputs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		idle.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("Stop of inputs prepared and never consumed did not return")
	}

	in, err := l.PrepareInputs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	second := appendEv("message-2")
	got := make(chan events.Seq, 16)
	if err := in.ConsumeAll(func(i Input) {
		got <- i.Seq
		i.Ack()
	}); err != nil {
		t.Fatal(err)
	}
	third := appendEv("message-3")
	var seqs []events.Seq
	for len(seqs) < 3 {
		select {
		case s := <-got:
			seqs = append(seqs, s)
		case <-ctx.Done():
			t.Fatalf("delivered %v; want %d, %d and %d", seqs, first, second, third)
		}
	}
	if fmt.Sprint(seqs) != fmt.Sprint([]events.Seq{first, second, third}) {
		t.Fatalf("delivered %v; want [%d %d %d]", seqs, first, second, third)
	}
}

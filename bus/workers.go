package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// Agent inputs are consumed by partition. Each partition has one durable
// consumer, "agent-inputs-<pp>", filtered to the partition's inputs
// (message_received and run_requested events); its priority group is pinned, so at any time one
// node (the one holding the pin) receives the partition's inputs, in stream
// order. If that node dies, the pin moves after pinnedTTL and unacknowledged
// inputs are delivered again. Consumer names are public API: renaming them
// makes every input look new to the next run.
const (
	inputConsumerFormat = "agent-inputs-%02x"
	inputGroup          = "workers"
	pinnedTTL           = 5 * time.Second
	// InputAckWait is how long an input may go unacknowledged before it is
	// delivered again; a worker running an agent reports progress more often.
	InputAckWait = 30 * time.Second
)

// Input is one client message for an agent, as delivered to a worker.
type Input struct {
	Seq      events.Seq
	AgentID  string
	Ack      func() // call once the run that answers it has committed, or gave up
	Progress func() // call at least every InputAckWait while the run goes on
}

// Inputs is the set of input consumers this node pulls from.
type Inputs struct {
	ctxs []jetstream.ConsumeContext
}

// ConsumeInputs pulls agent inputs from every partition and hands each to
// fn. fn must not block for long: it should queue the input for the agent's
// own goroutine. Inputs of one agent arrive in stream order.
func (l *Log) ConsumeInputs(ctx context.Context, fn func(Input)) (*Inputs, error) {
	// Creating 64 consumers one by one takes a few hundred milliseconds;
	// create them a few at a time.
	in := &Inputs{ctxs: make([]jetstream.ConsumeContext, Partitions)}
	errs := make([]error, Partitions)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for p := 0; p < Partitions; p++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			in.ctxs[p], errs[p] = l.consumePartition(ctx, p, fn)
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			in.Stop()
			return nil, fmt.Errorf("input consumer %d: %w", p, err)
		}
	}
	return in, nil
}

func (l *Log) consumePartition(ctx context.Context, p int, fn func(Input)) (jetstream.ConsumeContext, error) {
	cons, err := l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        fmt.Sprintf(inputConsumerFormat, p),
		Description:    "client messages and run requests for the agents of one partition, pinned to one node",
		FilterSubjects: partitionInputs(l.tenant, p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        InputAckWait,
		MaxAckPending:  10_000,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      pinnedTTL,
		PriorityGroups: []string{inputGroup},
	})
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		subj, ok := ParseSubject(m.Subject())
		if !ok || subj.Aggregate.Kind != events.KindAgent {
			m.Term()
			return
		}
		var once sync.Once
		fn(Input{Seq: events.Seq(md.Sequence.Stream), AgentID: subj.Aggregate.ID,
			Ack: func() { once.Do(func() { m.Ack() }) }, Progress: func() { m.InProgress() }})
	}, jetstream.PullPriorityGroup(inputGroup))
}

// Stop stops pulling; inputs delivered but not acknowledged come again.
func (in *Inputs) Stop() {
	for _, cc := range in.ctxs {
		if cc != nil {
			cc.Stop()
		}
	}
}

// Run events carry a run's progress from the node that runs an agent to the
// caller waiting for it, over core NATS, on runSubject.

// PublishRun sends one progress event of the run answering inputID.
func (s *Server) PublishRun(tenant, inputID string, data []byte) error {
	return s.conn.Publish(runSubject(tenant, inputID), data)
}

// WatchRun calls fn with every progress event of the run answering inputID
// until cancel is called. It is subscribed when it returns.
func (s *Server) WatchRun(tenant, inputID string, fn func([]byte)) (cancel func(), err error) {
	sub, err := s.conn.Subscribe(runSubject(tenant, inputID), func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, err
	}
	if err := s.conn.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// Whether a run streams its model's tokens is a delivery preference of the
// caller waiting for it, not part of the log: the caller answers requests on
// tokensSubject while it waits, and the node running the agent asks.

// OfferTokens answers, until stop is called, that someone waits for the
// tokens of the run answering inputID. It is subscribed when it returns.
func (s *Server) OfferTokens(tenant, inputID string) (stop func(), err error) {
	sub, err := s.conn.Subscribe(tokensSubject(tenant, inputID), func(m *nats.Msg) { m.Respond(nil) })
	if err != nil {
		return nil, err
	}
	if err := s.conn.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// WantsTokens reports whether someone waits for the tokens of the run
// answering inputID. With nobody listening the server answers "no
// responders" at once, so asking costs one round trip.
func (s *Server) WantsTokens(tenant, inputID string) bool {
	_, err := s.conn.Request(tokensSubject(tenant, inputID), nil, 2*time.Second)
	return err == nil
}

package bus

import (
	"context"
	"errors"
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
//
// A node that stops gracefully hands its partitions over at once (Handover):
// it gives back the inputs it holds and unpins the partitions it owns, so a
// survivor takes them without waiting for pinnedTTL.
const (
	inputConsumerFormat = "agent-inputs-%02x"
	inputGroup          = "workers"
	pinnedTTL           = 5 * time.Second
	// InputAckWait is how long an input may go unacknowledged before it is
	// delivered again; a worker running an agent reports progress more often.
	// It bounds how long an input taken by a node that died waits before a
	// survivor runs it, so it is short: progress reports are cheap.
	InputAckWait = 10 * time.Second
	// pullExpiry bounds each pull request. When a consumer's leader moves
	// (its node stopped or died) the pull requests waiting there are lost,
	// and the client notices only after two missed heartbeats, which are
	// half the expiry: at the default 30 s expiry a partition would stay
	// deaf for 30 s. It must stay under pinnedTTL, since each new pull
	// request renews this node's pin.
	pullExpiry = 3 * time.Second
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
	stream jetstream.Stream
	tenant string
	sync   *durable // nil without group commit
	ctxs   []jetstream.ConsumeContext

	mu   sync.Mutex
	pins [Partitions]string       // the pin id the server gave this node, per partition
	held map[uint64]jetstream.Msg // by stream sequence: inputs delivered and not yet acknowledged
}

// ConsumeInputs pulls agent inputs from every partition and hands each to
// fn. fn must not block for long: it should queue the input for the agent's
// own goroutine. Inputs of one agent arrive in stream order.
func (l *Log) ConsumeInputs(ctx context.Context, fn func(Input)) (*Inputs, error) {
	// Creating 64 consumers one by one takes a few hundred milliseconds;
	// create them a few at a time.
	in := &Inputs{stream: l.stream, tenant: l.tenant, sync: l.sync, ctxs: make([]jetstream.ConsumeContext, Partitions), held: map[uint64]jetstream.Msg{}}
	errs := make([]error, Partitions)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for p := 0; p < Partitions; p++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			in.ctxs[p], errs[p] = in.consumePartition(ctx, p, fn)
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

func (in *Inputs) consumePartition(ctx context.Context, p int, fn func(Input)) (jetstream.ConsumeContext, error) {
	var cons jetstream.Consumer
	// On a replicated stream consumer creation can time out during an
	// election (nats-server#8350); it is idempotent, so try again.
	err := retry(ctx, func(ctx context.Context) (err error) {
		cons, err = in.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        fmt.Sprintf(inputConsumerFormat, p),
			Description:    "client messages and run requests for the agents of one partition, pinned to one node",
			FilterSubjects: partitionInputs(in.tenant, p),
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        InputAckWait,
			MaxAckPending:  10_000,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PinnedTTL:      pinnedTTL,
			PriorityGroups: []string{inputGroup},
		})
		return err
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
		// An agent runs on an input only once it is on disk (durable.go);
		// one not taken here comes again after InputAckWait.
		if err := in.sync.wait(ctx, md.Sequence.Stream); err != nil {
			return
		}
		key := md.Sequence.Stream
		in.mu.Lock()
		if pin := m.Headers().Get(hdrPinID); pin != "" {
			in.pins[p] = pin
		}
		in.held[key] = m
		in.mu.Unlock()
		var once sync.Once
		fn(Input{Seq: events.Seq(md.Sequence.Stream), AgentID: subj.Aggregate.ID,
			Ack: func() {
				once.Do(func() {
					in.mu.Lock()
					delete(in.held, key)
					in.mu.Unlock()
					m.Ack()
				})
			},
			Progress: func() { m.InProgress() }})
	}, jetstream.PullPriorityGroup(inputGroup), jetstream.PullExpiry(pullExpiry))
}

// hdrPinID carries, on each message of a pinned consumer, the id of the pin
// it was delivered under.
const hdrPinID = "Nats-Pin-Id"

// Stop stops pulling; inputs delivered but not acknowledged come again
// (after InputAckWait, or at once after Handover).
func (in *Inputs) Stop() {
	for _, cc := range in.ctxs {
		if cc != nil {
			cc.Stop()
		}
	}
}

// Handover gives this node's partitions to the other nodes without waiting
// for the pin to time out. Call it after Stop, once nothing runs any more:
// every partition still pinned to this node is unpinned, so the next node
// that pulls takes it, and the inputs this node holds unacknowledged are
// given back (a negative acknowledgement delivers them again at once). The
// order matters: given back while still pinned here, an input would go to
// this node's last pull request and wait out InputAckWait. A partition
// never delivered here has no pin of this node's to give up. It returns how
// many partitions were unpinned.
func (in *Inputs) Handover(ctx context.Context) (int, error) {
	in.mu.Lock()
	pins := in.pins
	in.mu.Unlock()
	var errs []error
	unpinned := 0
	for p, pin := range pins {
		if pin == "" {
			continue
		}
		name := fmt.Sprintf(inputConsumerFormat, p)
		cons, err := in.stream.Consumer(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Unpin only what is still this node's: the pin may have moved
		// already, and unpinning another node's would disturb it.
		mine := false
		for _, g := range cons.CachedInfo().PriorityGroups {
			if g.Group == inputGroup && g.PinnedClientID == pin {
				mine = true
			}
		}
		if !mine {
			continue
		}
		if err := in.stream.UnpinConsumer(ctx, name, inputGroup); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", name, err))
			continue
		}
		unpinned++
	}
	in.mu.Lock()
	held := make([]jetstream.Msg, 0, len(in.held))
	for k, m := range in.held {
		held = append(held, m)
		delete(in.held, k)
	}
	in.mu.Unlock()
	for _, m := range held {
		if err := m.Nak(); err != nil {
			errs = append(errs, err)
		}
	}
	return unpinned, errors.Join(errs...)
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

package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
// Alone, a node pulls every partition. In a cluster each member pulls the
// partitions Owner gives it among the live members (ConsumeOwnInputs), so
// they spread over the members, and the pin follows the pulls.
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

// releaseWait bounds how long a member that is to give a partition up (a
// member came back, see Members) keeps pulling it while it still runs one
// of its inputs: after it, the member stops pulling and gives the
// partition up once its runs end.
const releaseWait = 10 * time.Second

// Inputs is the set of input consumers this node pulls from.
type Inputs struct {
	stream  jetstream.Stream
	tenant  string
	fn      func(Input)
	members *Members // nil: every partition is pulled here

	mu      sync.Mutex // guards parts, held, stopped and began
	parts   [Partitions]part
	held    map[uint64]heldInput // by stream sequence: inputs delivered and not yet acknowledged
	stopped bool
	began   bool // ConsumeAll or ConsumeOwn was called; until then Stop closes done

	quit chan struct{} // closed by Stop: the placement loop ends
	done chan struct{} // closed once the placement loop has ended
}

// part is this node's hold on one partition.
type part struct {
	cons      jetstream.Consumer
	cc        jetstream.ConsumeContext // nil: not pulled here
	pin       string                   // the pin id the server gave this node; "" for none
	releasing time.Time                // when this node began to give the partition up
}

type heldInput struct {
	m jetstream.Msg
	p int
}

// ConsumeInputs pulls agent inputs from every partition and hands each to
// fn. fn must not block for long: it should queue the input for the agent's
// own goroutine. Inputs of one agent arrive in stream order.
func (l *Log) ConsumeInputs(ctx context.Context, fn func(Input)) (*Inputs, error) {
	in, err := l.PrepareInputs(ctx)
	if err != nil {
		return nil, err
	}
	if err := in.ConsumeAll(fn); err != nil {
		return nil, err
	}
	return in, nil
}

// ConsumeOwnInputs is ConsumeInputs for a cluster member: it pulls only
// the partitions that Owner gives it among members.Live(), and follows
// the live set as it changes: it pulls the partitions of a member that
// left or died, and gives a member that comes back its own again (once
// the runs going on here for them have ended, or after releaseWait). A
// partition's pin, not this placement, decides who runs its inputs: while
// members disagree, an input waits; it never runs twice at once.
func (l *Log) ConsumeOwnInputs(ctx context.Context, members *Members, fn func(Input)) (*Inputs, error) {
	in, err := l.PrepareInputs(ctx)
	if err != nil {
		return nil, err
	}
	in.ConsumeOwn(members, fn)
	return in, nil
}

// PrepareInputs creates (or finds) the partitions' input consumers and
// pulls none of them yet: a node starting creates them while it restores
// its read models, and pulls once it can run what they deliver. Follow it
// with ConsumeAll or ConsumeOwn, once, or Stop.
func (l *Log) PrepareInputs(ctx context.Context) (*Inputs, error) {
	return l.inputConsumers(ctx)
}

// ConsumeAll pulls every partition, handing each input to fn (see
// ConsumeInputs). On failure it stops what it started.
func (in *Inputs) ConsumeAll(fn func(Input)) error {
	in.fn = fn
	in.mu.Lock()
	in.began = true
	in.mu.Unlock()
	close(in.done) // no placement loop: every partition, always
	for p := range Partitions {
		cc, err := in.consume(p)
		if err != nil {
			in.Stop()
			return fmt.Errorf("input consumer %d: %w", p, err)
		}
		in.mu.Lock()
		in.parts[p].cc = cc
		in.mu.Unlock()
	}
	return nil
}

// ConsumeOwn pulls the partitions Owner gives this node among
// members.Live(), handing each input to fn, and follows the live set (see
// ConsumeOwnInputs).
func (in *Inputs) ConsumeOwn(members *Members, fn func(Input)) {
	in.fn, in.members = fn, members
	in.mu.Lock()
	in.began = true
	in.mu.Unlock()
	in.place()
	go in.follow()
}

// inputConsumers creates (or finds) the partitions' consumers.
func (l *Log) inputConsumers(ctx context.Context) (*Inputs, error) {
	// Creating 64 consumers one by one takes a few hundred milliseconds;
	// create them a few at a time.
	in := &Inputs{stream: l.stream, tenant: l.tenant, held: map[uint64]heldInput{},
		quit: make(chan struct{}), done: make(chan struct{})}
	errs := make([]error, Partitions)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for p := 0; p < Partitions; p++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			in.parts[p].cons, errs[p] = in.createConsumer(ctx, p)
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("input consumer %d: %w", p, err)
		}
	}
	return in, nil
}

func (in *Inputs) createConsumer(ctx context.Context, p int) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	// On a replicated stream consumer creation can time out during an
	// election (nats-server#8350); it is idempotent, so try again.
	err := retry(ctx, func(ctx context.Context) (err error) {
		cons, err = in.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        fmt.Sprintf(inputConsumerFormat, p),
			Description:    "client messages and run requests for the agents of one partition, pinned to one node",
			FilterSubjects: partitionInputs(AnyTenant, p), // every organization's agents
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
	return cons, err
}

// consume starts pulling partition p.
func (in *Inputs) consume(p int) (jetstream.ConsumeContext, error) {
	return in.parts[p].cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		subj, ok := ParseSubject(m.Subject())
		if !ok || subj.Aggregate.Kind != events.KindAgent {
			m.Term()
			return
		}
		// The input may not be on disk yet: its run may start, but answers
		// no one and runs no tool before it is (ahead.go).
		key := md.Sequence.Stream
		in.mu.Lock()
		if pin := m.Headers().Get(hdrPinID); pin != "" {
			in.parts[p].pin = pin
		}
		in.held[key] = heldInput{m, p}
		in.mu.Unlock()
		var once sync.Once
		in.fn(Input{Seq: events.Seq(md.Sequence.Stream), AgentID: subj.Aggregate.ID,
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

// follow places partitions again whenever the live set changes, and
// finishes giving partitions up as their runs end.
func (in *Inputs) follow() {
	defer close(in.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-in.quit:
			return
		case <-in.members.Changed():
		case <-t.C:
		}
		if in.place() {
			in.members.beat() // tell the others now what this node pulls
		}
	}
}

// place pulls the partitions Owner gives this node and gives up the
// others: it stops pulling one once no input of it runs here (or after
// releaseWait), and unpins it once none does. It reports whether it
// started or stopped pulling any.
func (in *Inputs) place() (changed bool) {
	live := in.members.Live()
	self := in.members.Self()
	for p := range Partitions {
		want := Owner(p, live) == self
		in.mu.Lock()
		if in.stopped {
			in.mu.Unlock()
			return changed
		}
		st := &in.parts[p]
		running := 0
		for _, h := range in.held {
			if h.p == p {
				running++
			}
		}
		switch {
		case want && st.cc == nil:
			in.mu.Unlock()
			cc, err := in.consume(p)
			in.mu.Lock()
			if err == nil && in.stopped {
				cc.Stop()
			} else if err == nil {
				st.cc, st.releasing, changed = cc, time.Time{}, true
			}
		case want:
			st.releasing = time.Time{}
		case st.cc != nil:
			if st.releasing.IsZero() {
				st.releasing = time.Now()
			}
			if running == 0 || time.Since(st.releasing) > releaseWait {
				st.cc.Stop()
				st.cc, changed = nil, true
			}
		}
		unpin := !want && st.cc == nil && st.pin != "" && running == 0
		pin := st.pin
		if unpin {
			st.pin = ""
		}
		in.mu.Unlock()
		if unpin {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			in.unpin(ctx, p, pin)
			cancel()
		}
	}
	return changed
}

// Pulled lists the partitions this node pulls.
func (in *Inputs) Pulled() []int {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []int
	for p := range in.parts {
		if in.parts[p].cc != nil {
			out = append(out, p)
		}
	}
	return out
}

// Stop stops pulling; inputs delivered but not acknowledged come again
// (after InputAckWait, or at once after Handover).
func (in *Inputs) Stop() {
	in.mu.Lock()
	first := !in.stopped
	in.stopped = true
	idle := !in.began // prepared, never consumed: no loop to end
	in.began = true
	in.mu.Unlock()
	if first {
		close(in.quit)
	}
	if idle {
		close(in.done)
	}
	<-in.done
	in.mu.Lock()
	defer in.mu.Unlock()
	for p := range in.parts {
		if cc := in.parts[p].cc; cc != nil {
			cc.Stop()
			in.parts[p].cc = nil
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
	var pins [Partitions]string
	for p := range in.parts {
		pins[p], in.parts[p].pin = in.parts[p].pin, ""
	}
	in.mu.Unlock()
	var errs []error
	unpinned := 0
	for p, pin := range pins {
		if pin == "" {
			continue
		}
		ok, err := in.unpin(ctx, p, pin)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			unpinned++
		}
	}
	in.mu.Lock()
	held := make([]jetstream.Msg, 0, len(in.held))
	for k, h := range in.held {
		held = append(held, h.m)
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

// unpin unpins partition p if pin is still its pin: the pin may have
// moved already, and unpinning another node's would disturb it.
func (in *Inputs) unpin(ctx context.Context, p int, pin string) (bool, error) {
	name := fmt.Sprintf(inputConsumerFormat, p)
	cons, err := in.stream.Consumer(ctx, name)
	if err != nil {
		return false, err
	}
	mine := false
	for _, g := range cons.CachedInfo().PriorityGroups {
		if g.Group == inputGroup && g.PinnedClientID == pin {
			mine = true
		}
	}
	if !mine {
		return false, nil
	}
	if err := in.stream.UnpinConsumer(ctx, name, inputGroup); err != nil {
		return false, fmt.Errorf("unpin %s: %w", name, err)
	}
	return true, nil
}

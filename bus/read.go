package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// Read delivers to fn, in log order, the events the selectors pick (see
// events.Selector) stored at sequences from through to (to 0: through the last event at the
// time of the call). A packed message yields each of its events, with its
// Part. Read returns when the range is exhausted, when fn returns false or
// an error (which Read returns), or when ctx ends.
//
// It reads with an ordered consumer filtered to the selected subjects, so
// its cost grows with those events, not with the log.
func (l *Log) Read(ctx context.Context, sel []events.Selector, from, to events.Seq, fn func(events.Envelope) (bool, error)) error {
	if len(sel) == 0 {
		return nil
	}
	if from < 1 {
		from = 1
	}
	if to == 0 {
		last, err := l.LastSeq(ctx)
		if err != nil {
			return err
		}
		to = last
	}
	if from > to {
		return nil
	}
	filters := make([]string, 0, len(sel))
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			filters = append(filters, f)
		}
	}
	for _, x := range sel {
		if x.Types == nil {
			add(AggregateFilter(AnyTenant, x.Aggregate))
			continue
		}
		for _, t := range x.Types {
			add(Subject(AnyTenant, x.Aggregate, t))
		}
		add(Subject(AnyTenant, x.Aggregate, events.SubjectPacked))
	}
	// An ordered consumer with nothing to deliver would wait for new
	// events; find the first matching one so that an empty range returns.
	first := to + 1
	for _, f := range filters {
		m, err := l.getMsg(ctx, msgGetRequest{Seq: uint64(from), NextFor: f})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s from %d: %w", f, from, err)
		}
		first = min(first, events.Seq(m.Sequence))
	}
	if first > to {
		return nil
	}
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       uint64(first),
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("read from %d: %w", first, err)
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(followBytes), jetstream.PullExpiry(pullExpiry)) // as ReadRaw
	if err != nil {
		return fmt.Errorf("read from %d: %w", first, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		seq := events.Seq(md.Sequence.Stream)
		if seq > to {
			return nil
		}
		if err := l.sync.wait(ctx, uint64(seq)); err != nil {
			return fmt.Errorf("read %d: %w", seq, err)
		}
		envs, err := events.DecodeAll(m.Data())
		if err != nil {
			return fmt.Errorf("read %d: %w", seq, err)
		}
		for i := range envs {
			envs[i].Seq = seq
			more, err := fn(envs[i])
			if err != nil || !more {
				return err
			}
		}
		if md.NumPending == 0 || seq == to {
			return nil
		}
	}
}

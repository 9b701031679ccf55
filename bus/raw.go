package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// RawMsg is a stored message as JetStream holds it, undecoded: what
// verifying the log reads. Header and Data must not be kept past the
// callback that receives them.
type RawMsg struct {
	Seq     events.Seq
	Subject string
	Header  nats.Header
	Data    []byte // nil when read headers-only
}

// RawOptions shapes a raw read of the log.
type RawOptions struct {
	// HeadersOnly delivers subjects and headers without payloads.
	HeadersOnly bool
	// Follow keeps delivering new messages until ctx ends; otherwise the
	// read returns once it has delivered the last message stored when it
	// started.
	Follow bool
}

// ReadRaw delivers every stored message from sequence from onwards, in
// order, to fn, with an ordered consumer on the whole stream. It returns
// fn's error, ctx's, or nil when a read that does not follow has reached
// the end of the log. Sequences missing from the stream (deleted
// messages) are skipped: the caller sees the jump.
func (l *Log) ReadRaw(ctx context.Context, from events.Seq, opt RawOptions, fn func(RawMsg) error) error {
	if from < 1 {
		from = 1
	}
	if !opt.Follow {
		last, err := l.LastSeq(ctx)
		if err != nil {
			return err
		}
		if from > last {
			return nil
		}
		// The last sequence may itself be deleted; an ordered consumer with
		// nothing left would wait, so stop when nothing is pending.
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{streamSubjects},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       uint64(from),
		HeadersOnly:       opt.HeadersOnly,
		InactiveThreshold: 30 * time.Second,
	}
	cons, err := l.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read raw from %d: %w", from, err)
	}
	if !opt.Follow {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("read raw from %d: %w", from, err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	// A short expiry (and so a heartbeat every 1.5 s) makes the read
	// notice within seconds that its consumer went with a node that
	// stopped or died; at the default the read stalls for 10 s first.
	it, err := cons.Messages(jetstream.PullMaxBytes(followBytes), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		return fmt.Errorf("read raw from %d: %w", from, err)
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
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("read raw: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read raw: %w", err)
		}
		if err := fn(RawMsg{Seq: events.Seq(md.Sequence.Stream), Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err != nil {
			return err
		}
		if !opt.Follow && md.NumPending == 0 {
			return nil
		}
	}
}

// LastRaw returns the last stored message on subjects matching filter, or
// ok false when there is none.
func (l *Log) LastRaw(ctx context.Context, filter string) (m RawMsg, ok bool, err error) {
	sm, err := l.stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return RawMsg{}, false, nil
	}
	if err != nil {
		return RawMsg{}, false, fmt.Errorf("last of %s: %w", filter, err)
	}
	return RawMsg{Seq: events.Seq(sm.Sequence), Subject: sm.Subject, Header: sm.Header, Data: sm.Data}, true, nil
}

// Bounds returns the first and last sequence JetStream reports for the
// stream, and how many messages it holds: a verifier compares them with
// what it read.
func (l *Log) Bounds(ctx context.Context) (first, last events.Seq, msgs uint64, err error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("log info: %w", err)
	}
	return events.Seq(info.State.FirstSeq), events.Seq(info.State.LastSeq), info.State.Msgs, nil
}

// Sealer is the sealer this log seals appends with, nil when none.
func (l *Log) Sealer() *Sealer { return l.sealer }

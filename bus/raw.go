package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	// Pending is how many more messages the server holds ready to deliver
	// after this one (0: the reader has caught up, for now).
	Pending uint64
}

// RawOptions shapes a raw read of the log.
type RawOptions struct {
	// HeadersOnly delivers subjects and headers without payloads.
	HeadersOnly bool
	// Follow keeps delivering new messages until ctx ends; otherwise the
	// read returns once it has delivered the last message stored when it
	// started.
	Follow bool
	// Ahead hands on a message once it is stored, before it is on disk
	// (see Log.Ahead); otherwise a read waits for the disk.
	Ahead bool
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
		// Nothing derived from the log may show a write not yet on disk.
		if !opt.Ahead {
			if err := l.sync.wait(ctx, md.Sequence.Stream); err != nil {
				return fmt.Errorf("read raw: %w", err)
			}
		}
		if err := fn(RawMsg{Seq: events.Seq(md.Sequence.Stream), Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Pending: md.NumPending}); err != nil {
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

// directBatch is how many messages one batched direct get asks for: larger
// batches read more slowly here (BenchmarkReadMethods), and max_bytes
// (followBytes) bounds a batch of large events.
var directBatch = 1000 // a variable for BenchmarkReadMethods

// directHeaders makes readDirect ask for every batch with headers (for
// BenchmarkReadMethods, which compares).
var directHeaders = false

// readDirect delivers the stored messages from sequence from through to,
// in order, with batched direct gets (STREAM.DIRECT.GET with a batch), one
// request at a time, each starting after the last message the one before
// delivered. It returns the sequence after the last it delivered. Only for
// a single node: in a cluster a replica that lags may answer. It does not
// wait for the disk: its caller does, when it must.
//
// Batches are asked for without headers: the server then formats none for
// each message and the client parses none, which is most of what a direct
// get costs beside the payload (BenchmarkReadMethods). A reply without
// headers does not name its sequence, but the batch's end does name the
// last one sent: when a batch of n messages from next ends at next+n-1,
// there is no gap and the sequences are known. A batch over deleted
// messages does not add up, and is asked for again with headers.
func (l *Log) readDirect(ctx context.Context, from, to events.Seq, fn func(seq events.Seq, data []byte) error) (events.Seq, error) {
	sub, err := l.nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		return from, fmt.Errorf("read from %d: %w", from, err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return from, fmt.Errorf("read from %d: %w", from, err)
	}
	var datas [][]byte
	next := from
	for next <= to {
		req := directGetRequest{Seq: uint64(next), Batch: int(min(uint64(directBatch), uint64(to-next+1))), MaxBytes: followBytes, NoHeaders: !directHeaders}
		datas = datas[:0]
		last := to
		if req.NoHeaders {
			var err error
			last, err = l.directGet(ctx, sub, req, func(m *nats.Msg) error {
				datas = append(datas, m.Data)
				return nil
			})
			if err != nil {
				return next, err
			}
			if last == 0 {
				return next, nil // nothing at or after next
			}
		}
		if !req.NoHeaders || last < next || uint64(len(datas)) != uint64(last-next)+1 || last > to {
			// Deleted messages in the range: read it again with headers,
			// which name each message's sequence.
			clear(datas)
			req.NoHeaders = false
			got := 0
			if _, err := l.directGet(ctx, sub, req, func(m *nats.Msg) error {
				n, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
				if err != nil {
					return fmt.Errorf("read from %d: direct get reply without a sequence", next)
				}
				seq := events.Seq(n)
				if seq < next || seq > to {
					return nil
				}
				if err := fn(seq, m.Data); err != nil {
					return err
				}
				next, got = seq+1, got+1
				return nil
			}); err != nil {
				return next, err
			}
			if got == 0 {
				return next, nil // nothing more below to
			}
			continue
		}
		for i, data := range datas {
			datas[i] = nil
			if err := fn(next, data); err != nil {
				return next, err
			}
			next++
		}
	}
	return next, nil
}

// directGet sends one batched direct get and hands each message of its
// reply to fn. It returns the last sequence the server sent, as the batch's
// end names it, or 0 when it holds nothing at or after req.Seq.
func (l *Log) directGet(ctx context.Context, sub *nats.Subscription, req directGetRequest, fn func(*nats.Msg) error) (events.Seq, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	if err := l.nc.PublishRequest("$JS.API.DIRECT.GET."+StreamName, sub.Subject, body); err != nil {
		return 0, fmt.Errorf("read from %d: %w", req.Seq, err)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return 0, fmt.Errorf("read from %d: %w", req.Seq, err)
		}
		status := m.Header.Get("Status")
		switch status {
		case "":
			if err := fn(m); err != nil {
				return 0, err
			}
			continue
		case "204": // end of the batch
			last, err := strconv.ParseUint(m.Header.Get(nats.JSLastSequence), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read from %d: direct get's end without a last sequence", req.Seq)
			}
			return events.Seq(last), nil
		case "404": // nothing at or after req.Seq
			return 0, nil
		}
		return 0, fmt.Errorf("read from %d: direct get: %s %s", req.Seq, status, m.Header.Get("Description"))
	}
}

// directGetRequest is a batched STREAM.DIRECT.GET request.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes,omitempty"`
	// NoHeaders leaves out each message's headers, those stored with it
	// and those the server adds (its sequence among them).
	NoHeaders bool `json:"no_hdr,omitempty"`
}

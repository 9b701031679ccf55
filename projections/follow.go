package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/events"
)

// Reader is the part of the log a Follower reads.
type Reader interface {
	// Follow delivers events from sequence from onwards, in order, until ctx
	// ends or fn fails. fn must not keep data.
	Follow(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte) error) error
	// LastSeq is the sequence of the newest event in the log.
	LastSeq(ctx context.Context) (events.Seq, error)
}

// Message is one message of the log as a Follower hands it to its sinks,
// decoded once and shared by all of them: its events (several when the
// command was packed), each with Seq set, or why it could not be decoded.
// Sinks read it and must not modify it.
type Message struct {
	Seq    events.Seq
	Events []events.Envelope
	Err    error // the message could not be decoded; Events is empty
	size   int   // its bytes in the log, which bound a queue
}

// A Sink is fed the log by a Follower: the read models, the search index.
type Sink interface {
	// Applied is the sink's checkpoint: the last sequence it holds. It is
	// handed only messages after it.
	Applied() events.Seq
	// Apply applies msgs, which are in log order and after Applied, and
	// moves the checkpoint to the last. It must not keep msgs (the slice;
	// the messages themselves it may keep). After an error the follower
	// hands the sink the log again from its checkpoint.
	Apply(ctx context.Context, msgs []Message) error
}

// FollowerConfig tunes a Follower. Zero values take the defaults shown.
type FollowerConfig struct {
	Logger *slog.Logger  // nil discards
	Retry  time.Duration // pause before reading again after a failure; 0 means 1 s
}

// Follower reads the log once, decodes each message once, and feeds its
// sinks, each from its own checkpoint. A sink is fed inline or queued:
//
//   - Inline sinks (the read models) are applied in the follower's own
//     goroutine, one message after another, so they are never behind what
//     it has read.
//   - A queued sink (the search index, whose writes are much slower than
//     the read models') applies in a goroutine of its own, from a bounded
//     queue of decoded messages, merging what has queued into one Apply. When
//     the queue is full the follower does not wait for it: it drops the
//     sink, which then catches up by a read of the log of its own (decoding
//     that stretch a second time) and rejoins the follower's stream when it
//     reaches the follower's position. So a slow sink never holds the read
//     models back, and the memory it can hold is bounded; the price is a
//     second read only for the stretch it fell behind by.
//
// The follower starts after the lowest checkpoint of its sinks, but a
// queued sink further behind the inline ones than its queue holds starts
// on its own read instead: a read-model snapshot near the end of the log is
// not read again from a far older index checkpoint. Queued sinks begin to
// apply once the follower has reached the end of the log as it was when Run
// began, so at start the read models catch up alone; meanwhile messages
// wait in the queue, up to its bound.
type Follower struct {
	log     Reader
	cfg     FollowerConfig
	inline  []Sink
	queues  []*Queue
	head    atomic.Uint64 // the last sequence handed (or passed over) to every sink
	decoded atomic.Uint64
}

// NewFollower returns a follower of log with no sinks; add them with Feed
// and Queue, then Run it.
func NewFollower(log Reader, cfg FollowerConfig) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	return &Follower{log: log, cfg: cfg}
}

// Feed adds an inline sink. Call it before Run.
func (f *Follower) Feed(s Sink) { f.inline = append(f.inline, s) }

// Queue adds a queued sink and returns its queue. Call it before Run.
func (f *Follower) Queue(s Sink, cfg QueueConfig) *Queue {
	q := &Queue{f: f, sink: s, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1), released: make(chan struct{})}
	f.queues = append(f.queues, q)
	return q
}

// Decoded counts the messages the follower and its queues' catch-up reads
// have decoded.
func (f *Follower) Decoded() uint64 { return f.decoded.Load() }

// Head is the last sequence the follower has read and handed on.
func (f *Follower) Head() events.Seq { return events.Seq(f.head.Load()) }

// Run follows the log until ctx ends, then waits for the queued sinks'
// goroutines, which it owns, and returns ctx.Err(). When reading fails it
// logs the failure and reads again from where it was. Run it once.
func (f *Follower) Run(ctx context.Context) error {
	from, end := f.start(ctx)
	f.head.Store(uint64(from - 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, q := range f.queues {
		q.mu.Lock()
		q.head = from - 1
		q.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.run(ctx)
		}()
	}
	released := end < from
	if released {
		f.release()
	}
	for {
		err := f.follow(ctx, end, &released)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.cfg.Logger.Error("following the log failed; retrying", "head", f.Head(), "err", err)
		if !sleep(ctx, f.cfg.Retry) {
			return ctx.Err()
		}
	}
}

// start returns the first sequence to read and the end of the log now,
// and tells each queue whether it starts on the follower's stream.
func (f *Follower) start(ctx context.Context) (from, end events.Seq) {
	inline := len(f.inline) > 0
	var low events.Seq // the inline sinks' lowest checkpoint
	for i, s := range f.inline {
		if a := s.Applied(); i == 0 || a < low {
			low = a
		}
	}
	lowest, set := low, inline
	for _, q := range f.queues {
		a := q.sink.Applied()
		q.attached = !inline || a >= low || uint64(low-a) <= uint64(q.cfg.MaxMessages)
		if q.attached && (!set || a < lowest) {
			lowest, set = a, true
		}
	}
	end, err := f.log.LastSeq(ctx)
	if err != nil {
		// Without the end the queued sinks cannot wait for the inline ones.
		f.cfg.Logger.Warn("cannot read the end of the log", "err", err)
		end = 0
	}
	return lowest + 1, end
}

// follow reads the log from after the head, handing each message on.
func (f *Follower) follow(ctx context.Context, end events.Seq, released *bool) error {
	from := f.Head() + 1
	var one [1]Message
	return f.log.Follow(ctx, from, func(seq events.Seq, data []byte) error {
		if seq <= f.Head() {
			return nil
		}
		var (
			m    Message
			have bool
		)
		get := func() Message {
			if !have {
				m, have = f.decode(seq, data), true
			}
			return m
		}
		for _, s := range f.inline {
			if seq > s.Applied() {
				one[0] = get()
				err := s.Apply(ctx, one[:])
				one[0] = Message{}
				if err != nil {
					return fmt.Errorf("apply %d: %w", seq, err)
				}
			}
		}
		for _, q := range f.queues {
			q.offer(seq, get)
		}
		f.head.Store(uint64(seq))
		if !*released && seq >= end {
			*released = true
			f.release()
		}
		return nil
	})
}

func (f *Follower) decode(seq events.Seq, data []byte) Message {
	f.decoded.Add(1)
	envs, err := events.DecodeAll(data)
	for i := range envs {
		envs[i].Seq = seq
	}
	return Message{Seq: seq, Events: envs, Err: err, size: len(data)}
}

func (f *Follower) release() {
	for _, q := range f.queues {
		close(q.released)
	}
}

// QueueConfig bounds a queued sink's backlog. Zero values take the defaults
// shown.
type QueueConfig struct {
	Name        string // names the sink in logs
	MaxMessages int    // messages queued at most; 0 means 16,384
	MaxBytes    int    // their bytes in the log at most; 0 means 32 MiB
	MaxApply    int    // messages in one Apply at most; 0 means 2,000
}

func (c QueueConfig) withDefaults() QueueConfig {
	if c.Name == "" {
		c.Name = "queued sink"
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = 16_384
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 32 << 20
	}
	if c.MaxApply <= 0 {
		c.MaxApply = 2000
	}
	return c
}

// Queue is a queued sink's backlog and the state of its goroutine, which
// the Follower's Run owns.
type Queue struct {
	f        *Follower
	sink     Sink
	cfg      QueueConfig
	wake     chan struct{} // a message was queued, or the queue was rewound
	released chan struct{} // closed when the follower reached the end of the log at start

	// applyMu is held while the sink applies, so Rewind can change the
	// sink with no Apply under way.
	applyMu sync.Mutex

	mu       sync.Mutex // guards what follows
	msgs     []Message
	bytes    int
	attached bool       // the follower hands it messages; false while it reads the log itself
	head     events.Seq // the last sequence the follower has handed on or passed over
	gen      uint64     // bumped by Rewind; a catch-up of an older generation stops
	stop     context.CancelFunc
	dropped  uint64 // times the queue overflowed
}

// Dropped counts the times the sink fell further behind than its queue
// holds and read the log on its own.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// offer hands the message at seq to the queue if the sink is on the
// follower's stream and does not hold it yet; get decodes it once for all.
func (q *Queue) offer(seq events.Seq, get func() Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.head = seq
	if !q.attached || seq <= q.sink.Applied() {
		return
	}
	m := get()
	if len(q.msgs) >= q.cfg.MaxMessages || q.bytes+m.size > q.cfg.MaxBytes && len(q.msgs) > 0 {
		// Waiting here would hold the read models back at the sink's pace.
		q.attached = false
		q.dropped++
		q.f.cfg.Logger.Info(q.cfg.Name+" fell behind the log; it reads the log on its own until it catches up", "at", seq, "queued", len(q.msgs))
	} else {
		q.msgs = append(q.msgs, m)
		q.bytes += m.size
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Rewind runs fn while the sink applies nothing, then drops the queue: the
// sink catches up again from its checkpoint, by a read of the log of its
// own. A rebuilt index swapped in under the sink uses it, since its
// checkpoint may be older than the queue.
func (q *Queue) Rewind(fn func()) {
	q.applyMu.Lock()
	fn()
	q.mu.Lock()
	q.msgs, q.bytes, q.attached = nil, 0, false
	q.gen++
	if q.stop != nil {
		q.stop()
	}
	q.mu.Unlock()
	q.applyMu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run applies the queue, or catches up from the log while the sink is off
// the follower's stream, until ctx ends.
func (q *Queue) run(ctx context.Context) {
	select {
	case <-q.released:
	case <-ctx.Done():
		return
	}
	for ctx.Err() == nil {
		q.applyMu.Lock()
		q.mu.Lock()
		n := min(len(q.msgs), q.cfg.MaxApply)
		batch := q.msgs[:n:n]
		q.msgs = q.msgs[n:]
		for _, m := range batch {
			q.bytes -= m.size
		}
		if len(q.msgs) == 0 {
			q.msgs = nil
		}
		attached, gen := q.attached, q.gen
		q.mu.Unlock()
		if n > 0 {
			err := q.apply(ctx, batch)
			q.applyMu.Unlock()
			if err != nil && ctx.Err() == nil {
				q.fail(ctx, err)
			}
			continue
		}
		q.applyMu.Unlock()
		if !attached {
			if err := q.catchUp(ctx, gen); err != nil && ctx.Err() == nil && !errors.Is(err, errRewound) {
				q.fail(ctx, err)
			}
			continue
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
		}
	}
}

// apply hands the sink the messages it does not hold yet.
func (q *Queue) apply(ctx context.Context, msgs []Message) error {
	applied := q.sink.Applied()
	i := 0
	for i < len(msgs) && msgs[i].Seq <= applied {
		i++
	}
	if i == len(msgs) {
		return nil
	}
	return q.sink.Apply(ctx, msgs[i:])
}

// fail logs a failed apply or read and takes the sink off the follower's
// stream, to catch up from its checkpoint after a pause.
func (q *Queue) fail(ctx context.Context, err error) {
	q.f.cfg.Logger.Error(q.cfg.Name+" failed; retrying from its checkpoint", "applied", q.sink.Applied(), "err", err)
	q.mu.Lock()
	q.msgs, q.bytes, q.attached = nil, 0, false
	q.mu.Unlock()
	sleep(ctx, q.f.cfg.Retry)
}

var (
	errRewound = errors.New("rewound")
	errJoined  = errors.New("joined the follower")
)

// catchUp reads the log from after the sink's checkpoint, applying it in
// batches, until it reaches the follower's head; there it puts the sink
// back on the follower's stream.
func (q *Queue) catchUp(ctx context.Context, gen uint64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q.mu.Lock()
	if q.gen != gen {
		q.mu.Unlock()
		return errRewound
	}
	if q.sink.Applied() >= q.head {
		q.attached = true
		q.mu.Unlock()
		return nil
	}
	q.stop = cancel
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.stop = nil
		q.mu.Unlock()
	}()

	var pending []Message
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		q.applyMu.Lock()
		defer q.applyMu.Unlock()
		q.mu.Lock()
		stale := q.gen != gen
		q.mu.Unlock()
		if stale {
			return errRewound
		}
		err := q.apply(ctx, pending)
		pending = nil
		return err
	}
	err := q.f.log.Follow(ctx, q.sink.Applied()+1, func(seq events.Seq, data []byte) error {
		pending = append(pending, q.f.decode(seq, data))
		q.mu.Lock()
		joined, stale := seq >= q.head, q.gen != gen
		if joined && !stale {
			// From here the follower queues what comes after seq; what
			// is pending is applied before the queue.
			q.attached = true
		}
		q.mu.Unlock()
		switch {
		case stale:
			return errRewound
		case joined:
			if err := flush(); err != nil {
				return err
			}
			return errJoined
		case len(pending) >= q.cfg.MaxApply:
			return flush()
		}
		return nil
	})
	switch {
	case errors.Is(err, errJoined):
		return nil
	case err == nil || ctx.Err() != nil && q.isStale(gen):
		return errRewound
	}
	return err
}

func (q *Queue) isStale(gen uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.gen != gen
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

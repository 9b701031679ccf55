package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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

// A PendingReader is a Reader that also tells fn, with each message, how
// many more the server holds ready to deliver after it (0: for now, fn has
// all there is), and lets fn keep data. A Follower reading one decodes a
// backlog in parallel (see Follower).
type PendingReader interface {
	FollowPending(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte, pending uint64) error) error
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
//     queue of decoded messages, merging what has queued into one Apply
//     (after waiting a moment for more, if it lingers: QueueConfig.Linger).
//     When the queue is full the follower does not wait for it: it stops
//     queueing for the sink, and a reader of the sink's own reads the log
//     from where the queue ends (decoding that stretch a second time),
//     queueing as the sink makes room, until it reaches the follower's
//     position; there the follower queues for the sink again. So a slow
//     sink never holds the read models back, its memory is bounded, and it
//     still reads while it applies; the price is a second read and decode
//     of the stretch it fell behind by, no more than two followers cost.
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
	q := &Queue{f: f, sink: s, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1), space: make(chan struct{}, 1), released: make(chan struct{}),
		held: make(chan struct{})}
	if !cfg.Hold {
		close(q.held)
	}
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
	if pr, ok := f.log.(PendingReader); ok && decodeWorkers() > 1 {
		return f.followParallel(ctx, pr, end, released)
	}
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

// decodeChunk is how many messages of a backlog one worker decodes at a
// time, and the most an inline sink is handed in one Apply.
const decodeChunk = 256

// decodeWorkers is how many goroutines decode a backlog: one per CPU.
func decodeWorkers() int { return runtime.GOMAXPROCS(0) }

// chunk is a run of raw messages of a backlog, decoded by one worker.
type chunk struct {
	seqs  []events.Seq
	datas [][]byte
	msgs  []Message
	done  chan struct{} // closed once msgs holds the decoded messages
}

// followParallel is follow for a reader that says what is pending. While
// the server holds a backlog, messages are read in chunks, decoded by
// decodeWorkers goroutines at once and handed on in log order, a chunk at a
// time, by one more; once caught up (nothing pending, nothing in the
// pipeline), each message is decoded and handed on as it comes, in the
// reader's goroutine, as follow does. Decoding is most of a replay's cost,
// and this spreads it over the CPUs.
func (f *Follower) followParallel(ctx context.Context, pr PendingReader, end events.Seq, released *bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := decodeWorkers()
	work := make(chan *chunk, workers*2)
	order := make(chan *chunk, workers*4)
	var (
		wg       sync.WaitGroup
		inflight atomic.Int64 // chunks queued and not yet handed on
		applyErr error        // set by the hand-on goroutine before it cancels
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				// The chunk's envelopes share one array (most messages
				// hold one event): an allocation a chunk, not a message.
				c.msgs = make([]Message, len(c.seqs))
				envs := make([]events.Envelope, 0, len(c.seqs))
				for i, seq := range c.seqs {
					c.msgs[i], envs = decodeTo(envs, seq, c.datas[i])
				}
				f.decoded.Add(uint64(len(c.seqs)))
				c.datas = nil
				close(c.done)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range order {
			select {
			case <-c.done:
			case <-ctx.Done():
				return
			}
			if err := f.handOn(ctx, c.msgs, end, released); err != nil {
				applyErr = err
				cancel()
				return
			}
			inflight.Add(-1)
		}
	}()
	stop := func() {
		close(work)
		close(order)
		wg.Wait()
	}
	var cur *chunk
	send := func() error {
		c := cur
		cur = nil
		inflight.Add(1)
		select {
		case order <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	var one [1]Message
	from := f.Head() + 1
	err := pr.FollowPending(ctx, from, func(seq events.Seq, data []byte, pending uint64) error {
		if seq < from {
			return nil
		}
		if cur == nil && pending == 0 && inflight.Load() == 0 {
			// Caught up and nothing in the pipeline: no hand-off.
			one[0] = f.decode(seq, data)
			err := f.handOn(ctx, one[:], end, released)
			one[0] = Message{}
			return err
		}
		if cur == nil {
			// Sized for what is pending: under concurrent writes a chunk
			// often holds a message or two, not a backlog's worth.
			n := int(min(pending+1, decodeChunk))
			cur = &chunk{seqs: make([]events.Seq, 0, n), datas: make([][]byte, 0, n), done: make(chan struct{})}
		}
		cur.seqs = append(cur.seqs, seq)
		cur.datas = append(cur.datas, data)
		if len(cur.seqs) == decodeChunk || pending == 0 {
			return send()
		}
		return nil
	})
	stop()
	if applyErr != nil {
		return applyErr
	}
	return err
}

// handOn hands decoded messages, in log order, to the inline sinks (in one
// Apply each) and to the queues, and moves the head past them.
func (f *Follower) handOn(ctx context.Context, msgs []Message, end events.Seq, released *bool) error {
	for _, s := range f.inline {
		applied := s.Applied()
		i := 0
		for i < len(msgs) && msgs[i].Seq <= applied {
			i++
		}
		if i < len(msgs) {
			if err := s.Apply(ctx, msgs[i:]); err != nil {
				return fmt.Errorf("apply %d-%d: %w", msgs[i].Seq, msgs[len(msgs)-1].Seq, err)
			}
		}
	}
	for i := range msgs {
		m := msgs[i]
		for _, q := range f.queues {
			q.offer(m.Seq, func() Message { return m })
		}
		f.head.Store(uint64(m.Seq))
		if !*released && m.Seq >= end {
			*released = true
			f.release()
		}
	}
	return nil
}

func (f *Follower) decode(seq events.Seq, data []byte) Message {
	f.decoded.Add(1)
	m, _ := decodeTo(nil, seq, data)
	return m
}

// decodeTo decodes the message at seq, appending its envelopes to envs,
// and returns it (its Events a slice of envs, clipped so that nothing
// appended later shows through) and envs.
func decodeTo(envs []events.Envelope, seq events.Seq, data []byte) (Message, []events.Envelope) {
	n := len(envs)
	envs, err := events.AppendDecoded(envs, data)
	m := Message{Seq: seq, Err: err, size: len(data)}
	if len(envs) > n {
		m.Events = envs[n:len(envs):len(envs)]
		for i := range m.Events {
			m.Events[i].Seq = seq
		}
	}
	return m, envs
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
	// Hold keeps the sink from applying until Queue.Release, besides
	// waiting for the inline sinks at start: a node starts its index where
	// its start-up no longer needs the CPU.
	Hold bool
	// Linger is how long the oldest queued message may wait for others to
	// join it before the sink applies them, unless Queue.Hurry asks for one
	// of them (or MaxApply of them, or half of MaxBytes, are queued): a sink
	// whose every Apply has a fixed cost then pays it once for a burst of
	// small messages, not once for each. Zero applies at once. It applies
	// only while the follower feeds the sink; a sink catching up on its own
	// read never lingers.
	Linger time.Duration
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

// Queue is a queued sink's backlog and the state of the goroutines that
// apply it and, while the sink is off the follower's stream, read the log
// for it; the Follower's Run owns them.
type Queue struct {
	f        *Follower
	sink     Sink
	cfg      QueueConfig
	wake     chan struct{} // something was queued, or the reader ended, or the queue was rewound
	space    chan struct{} // messages were taken off the queue
	released chan struct{} // closed when the follower reached the end of the log at start
	held     chan struct{} // closed by Release (or at once without QueueConfig.Hold)
	release  sync.Once

	// applyMu is held while the sink applies, so Rewind can change the
	// sink with no Apply under way.
	applyMu sync.Mutex

	mu       sync.Mutex // guards what follows
	msgs     []Message  // strictly increasing sequences
	bytes    int
	attached bool       // the follower queues messages; false while the reader does
	head     events.Seq // the last sequence the follower has handed on or passed over
	last     events.Seq // the last sequence queued; 0 after the queue was dropped
	gen      uint64     // bumped when the queue is dropped; a reader of an older one stops
	reading  bool       // a reader of this generation runs
	since    time.Time  // when the oldest message of msgs was queued
	urgent   events.Seq // the highest sequence Hurry asked for
	stopRead context.CancelFunc
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
	if !q.attached || seq <= q.last || seq <= q.sink.Applied() {
		return
	}
	m := get()
	if q.full(m.size) {
		// Waiting here would hold the read models back at the sink's pace.
		q.attached = false
		q.dropped++
		q.f.cfg.Logger.Info(q.cfg.Name+" fell behind the log; it reads the log on its own until it catches up", "at", seq, "queued", len(q.msgs))
		return
	}
	q.push(m)
}

// full reports whether a message of size bytes does not fit; the caller
// holds mu. One message always fits an empty queue.
func (q *Queue) full(size int) bool {
	return len(q.msgs) >= q.cfg.MaxMessages || q.bytes+size > q.cfg.MaxBytes && len(q.msgs) > 0
}

// push queues m; the caller holds mu.
func (q *Queue) push(m Message) {
	if len(q.msgs) == 0 && q.cfg.Linger > 0 {
		q.since = time.Now()
	}
	q.msgs = append(q.msgs, m)
	q.bytes += m.size
	q.last = m.Seq
	signal(q.wake)
}

// drop empties the queue and stops its reader: the sink starts again from
// its checkpoint. The caller holds mu.
func (q *Queue) drop() {
	q.msgs, q.bytes, q.attached, q.last = nil, 0, false, 0
	q.gen++
	q.reading = false
	if q.stopRead != nil {
		q.stopRead()
		q.stopRead = nil
	}
	signal(q.space)
	signal(q.wake)
}

// Rewind runs fn while the sink applies nothing, then drops the queue: the
// sink catches up again from its checkpoint, by a read of the log of its
// own. A rebuilt index swapped in under the sink uses it, since its
// checkpoint may be older than the queue.
func (q *Queue) Rewind(fn func()) {
	q.applyMu.Lock()
	defer q.applyMu.Unlock()
	fn()
	q.mu.Lock()
	q.drop()
	q.mu.Unlock()
}

// Hurry asks the sink to apply the message at seq without lingering
// (QueueConfig.Linger): whoever waits for the sink to hold seq calls it,
// whether seq is queued yet or not. Messages after seq may still linger.
func (q *Queue) Hurry(seq events.Seq) {
	q.mu.Lock()
	hurry := seq > q.urgent
	if hurry {
		q.urgent = seq
	}
	q.mu.Unlock()
	if hurry {
		signal(q.wake)
	}
}

// lingering is how much longer the queued messages wait for others to join
// them (QueueConfig.Linger); zero or less: apply them now. The caller holds
// mu.
func (q *Queue) lingering() time.Duration {
	if q.cfg.Linger <= 0 || len(q.msgs) == 0 || len(q.msgs) >= q.cfg.MaxApply || 2*q.bytes >= q.cfg.MaxBytes ||
		!q.attached || q.urgent >= q.msgs[0].Seq {
		return 0
	}
	return q.cfg.Linger - time.Since(q.since)
}

// Release lets a queue made with QueueConfig.Hold apply. Calling it again
// does nothing.
func (q *Queue) Release() {
	q.release.Do(func() {
		if q.cfg.Hold {
			close(q.held)
		}
	})
}

// run applies the queue until ctx ends, starting a reader of the log
// whenever the sink is off the follower's stream and none runs. It waits
// for its readers before it returns.
func (q *Queue) run(ctx context.Context) {
	for _, ch := range []chan struct{}{q.released, q.held} {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
	var readers sync.WaitGroup
	defer readers.Wait()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for ctx.Err() == nil {
		q.mu.Lock()
		if wait := q.lingering(); wait > 0 {
			q.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(wait)
			} else {
				linger.Reset(wait)
			}
			select {
			case <-linger.C:
			case <-q.wake: // more was queued, or Hurry: look again
			case <-ctx.Done():
			}
			continue
		}
		q.mu.Unlock()
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
		if n > 0 {
			signal(q.space)
		}
		if !q.attached && !q.reading {
			// The reader resumes after what is queued or applied, and runs
			// while this goroutine applies.
			q.reading = true
			rctx, cancel := context.WithCancel(ctx)
			q.stopRead = cancel
			from, gen := max(q.last, q.sink.Applied())+1, q.gen
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer cancel()
				q.read(rctx, gen, from)
			}()
		}
		q.mu.Unlock()
		if n > 0 {
			err := q.apply(ctx, batch)
			q.applyMu.Unlock()
			if err != nil && ctx.Err() == nil {
				q.f.cfg.Logger.Error(q.cfg.Name+" failed; retrying from its checkpoint", "applied", q.sink.Applied(), "err", err)
				q.mu.Lock()
				q.drop()
				q.mu.Unlock()
				sleep(ctx, q.f.cfg.Retry)
			}
			continue
		}
		q.applyMu.Unlock()
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

var errJoined = errors.New("joined the follower")

// read queues the log from sequence from, for a sink off the follower's
// stream, waiting for room as the sink applies; when it has queued the
// follower's head it puts the sink back on the follower's stream and ends.
// It ends too when its generation of the queue is dropped.
func (q *Queue) read(ctx context.Context, gen uint64, from events.Seq) {
	defer func() {
		q.mu.Lock()
		if q.gen == gen {
			q.reading, q.stopRead = false, nil
		}
		q.mu.Unlock()
		signal(q.wake)
	}()
	q.mu.Lock()
	if from > q.head && q.gen == gen {
		q.attached = true // nothing to read: the sink holds all the follower has passed
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	err := q.f.log.Follow(ctx, from, func(seq events.Seq, data []byte) error {
		m := q.f.decode(seq, data)
		for {
			q.mu.Lock()
			if q.gen != gen {
				q.mu.Unlock()
				return context.Canceled
			}
			if q.full(m.size) {
				q.mu.Unlock()
				select {
				case <-q.space:
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if seq > q.last {
				q.push(m)
			}
			joined := seq >= q.head
			if joined {
				// From here the follower queues what comes after seq.
				q.attached = true
			}
			q.mu.Unlock()
			if joined {
				return errJoined
			}
			return nil
		}
	})
	if err != nil && !errors.Is(err, errJoined) && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		q.f.cfg.Logger.Error("reading the log for "+q.cfg.Name+" failed; retrying", "at", q.last, "err", err)
		sleep(ctx, q.f.cfg.Retry)
	}
}

// signal wakes whoever waits on ch, a channel of capacity 1, without
// waiting itself.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
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

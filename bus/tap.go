package bus

import (
	"context"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/events"
)

// The tap. On a single node every append to the log is made by this
// process, so the appender holds each message it stored, as stored, the
// moment JetStream acknowledges it. Waiting for a consumer to deliver it
// back (the node's follower, an input consumer) costs about 100 µs of
// goroutine and socket hops. The tap hands each stored message on, on the
// appender's goroutine: to whoever asks (Log.OnStored: a node dispatches an
// agent's input to its runner) at once, and to the node's follower
// (Ahead.FollowPending), which applies it without that wait. An input
// appended ahead of the disk (events.Batch.Ahead) reaches the follower at
// once, so that its run finds it applied; any other append reaches it after
// its fsync, which the appender starts first (the follower's consumer
// usually brings the message meanwhile, on another core).
//
// The tap only makes things earlier; it is never the only way a message
// arrives. The follower still follows the log with a consumer, which
// delivers every message in order, and takes each sequence from whichever
// brings it first; the input consumers still deliver every input, which
// the runner finds already answered. So a message the tap misses (an
// append whose acknowledgement was lost, a tap that is full) arrives as it
// did before.

// Stored is a message an append of this process stored, as it sent it.
type Stored struct {
	Seq     events.Seq
	Subject string
	Data    []byte // the stored payload; must not be modified
}

// tapFn is one function the tap calls; follower marks a node's follower's.
type tapFn struct {
	fn       func([]Stored)
	follower bool
}

// tapFns are the functions the tap calls, copied on write.
type tapFns struct {
	mu  sync.Mutex // serializes writers; readers load Log.tapsCur
	fns []*tapFn
}

// OnStored calls fn with the messages of each append of this process, once
// JetStream stored them and before they are on disk, on the appender's
// goroutine; fn must not block. It is not called for an append that found
// its command already stored (a retry), nor in a cluster, where other
// nodes append too. stop ends the calls.
func (l *Log) OnStored(fn func([]Stored)) (stop func()) {
	return l.tap(&tapFn{fn: fn})
}

func (l *Log) tap(t *tapFn) (stop func()) {
	if l.clustered {
		return func() {}
	}
	l.taps.mu.Lock()
	l.taps.fns = append(slices.Clone(l.taps.fns), t)
	l.tapsCur.Store(&l.taps.fns)
	l.taps.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.taps.mu.Lock()
			defer l.taps.mu.Unlock()
			l.taps.fns = slices.DeleteFunc(slices.Clone(l.taps.fns), func(x *tapFn) bool { return x == t })
			l.tapsCur.Store(&l.taps.fns)
		})
	}
}

// storedOf is what the tap hands on of an append acknowledged at last (the
// sequence of its last message), or nil when nobody is told.
func (l *Log) storedOf(last uint64, msgs []*nats.Msg) []Stored {
	if fns := l.tapsCur.Load(); fns == nil || len(*fns) == 0 {
		return nil
	}
	// An atomic batch is stored in one piece, its messages one after another.
	first := events.Seq(last) - events.Seq(len(msgs)) + 1
	out := make([]Stored, len(msgs))
	for i, m := range msgs {
		out[i] = Stored{Seq: first + events.Seq(i), Subject: m.Subject, Data: m.Data}
	}
	return out
}

// tell hands stored (storedOf) to the tap's functions: the followers' if
// followers, the others' if not.
func (l *Log) tell(stored []Stored, followers bool) {
	if stored == nil {
		return
	}
	for _, t := range *l.tapsCur.Load() {
		if t.follower == followers {
			t.fn(stored)
		}
	}
}

// tapLimit bounds the bytes the follower holds from the tap and has not
// handed on: past it, the tap's messages are dropped and the follower's
// consumer brings them, as it always does.
const tapLimit = 16 << 20

// merge hands a follower's callback each sequence once, in order, from the
// tap or from the follower's consumer, whichever brings it first. The
// callback runs under mu: on the follower's goroutine, or on an
// appender's, which applies what it stored itself when the follower is not
// busy (no goroutine hop before the read models hold it).
type merge struct {
	fn func(seq events.Seq, data []byte, pending uint64) error

	mu        sync.Mutex // guards what follows, and calls to fn
	next      events.Seq
	held      map[events.Seq][]byte // from the tap, past next
	heldBytes int
	err       error // fn's first error: nothing more is handed on
	closed    bool

	ready chan struct{} // holds a token while queue is not empty or err is set
	qmu   sync.Mutex    // guards queue and qlen
	queue []Stored      // from the tap, while mu was busy
	qlen  int
}

// stored is the tap's function: the appender hands on what it stored
// itself if it can take the lock at once, else leaves it for the follower.
func (g *merge) stored(ms []Stored) {
	if g.mu.TryLock() {
		g.hold(ms)
		g.handOn()
		g.mu.Unlock()
		return
	}
	n := 0
	for _, m := range ms {
		n += len(m.Data)
	}
	g.qmu.Lock()
	if g.qlen+n > tapLimit {
		g.qmu.Unlock()
		return
	}
	g.queue = append(g.queue, ms...)
	g.qlen += n
	g.qmu.Unlock()
	g.signal()
}

func (g *merge) signal() {
	select {
	case g.ready <- struct{}{}:
	default:
	}
}

// hold keeps the messages from next on. Under mu.
func (g *merge) hold(ms []Stored) {
	for _, m := range ms {
		if m.Seq >= g.next && g.heldBytes+len(m.Data) <= tapLimit {
			g.held[m.Seq] = m.Data
			g.heldBytes += len(m.Data)
		}
	}
}

// handOn calls fn with what is held from next on. Under mu.
func (g *merge) handOn() {
	for g.err == nil && !g.closed {
		data, ok := g.held[g.next]
		if !ok {
			return
		}
		delete(g.held, g.next)
		g.heldBytes -= len(data)
		var pending uint64
		if _, more := g.held[g.next+1]; more {
			pending = 1
		}
		if err := g.fn(g.next, data, pending); err != nil {
			g.err = err
			g.signal()
			return
		}
		g.next++
	}
}

// consumed hands on a message the consumer brought. Under mu.
func (g *merge) consumed(seq events.Seq, data []byte, pending uint64) {
	if seq < g.next || g.err != nil || g.closed {
		return // the tap brought it
	}
	// The consumer has every message in order: what the tap holds before
	// it is gone from the log (deleted meanwhile).
	for s, d := range g.held {
		if s < seq {
			delete(g.held, s)
			g.heldBytes -= len(d)
		}
	}
	if err := g.fn(seq, data, pending); err != nil {
		g.err = err
		return
	}
	g.next = seq + 1
	g.handOn()
}

// FollowPending is Log.FollowPending ahead of the disk. On a single node it
// takes each message from the tap or from its consumer, whichever brings it
// first (see above and merge).
func (a *Ahead) FollowPending(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte, pending uint64) error) error {
	l := a.l
	if l.clustered {
		return l.followPending(ctx, from, true, fn)
	}
	g := &merge{fn: fn, held: map[events.Seq][]byte{}, ready: make(chan struct{}, 1)}
	// Until the catch-up below ends, the tap only queues (mu is held).
	g.mu.Lock()
	untap := l.tap(&tapFn{fn: g.stored, follower: true})
	defer untap()
	from, err := l.catchUp(ctx, from, true, fn)
	if err != nil {
		g.mu.Unlock()
		return err
	}
	g.next = from
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	type item struct {
		seq     events.Seq
		data    []byte
		pending uint64
	}
	items := make(chan item, 64)
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- l.ReadRaw(ctx, from, RawOptions{Follow: true, Ahead: true}, func(m RawMsg) error {
			select {
			case items <- item{m.Seq, m.Data, m.Pending}: // fn may keep Data (FollowPending)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	defer wg.Wait()
	defer cancel()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return err
		case it := <-items:
			g.mu.Lock()
			g.consumed(it.seq, it.data, it.pending)
			err := g.err
			g.mu.Unlock()
			if err != nil {
				return err
			}
		case <-g.ready:
			g.qmu.Lock()
			ms := g.queue
			g.queue, g.qlen = nil, 0
			g.qmu.Unlock()
			g.mu.Lock()
			g.hold(ms)
			g.handOn()
			err := g.err
			g.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

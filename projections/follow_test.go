package projections_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// memLog is a log in memory: messages 1..n, and a Follow that waits for
// more, as JetStream's does.
type memLog struct {
	mu    sync.Mutex
	msgs  [][]byte
	grew  chan struct{} // closed and replaced when a message is added
	reads int           // Follow calls
}

func newMemLog() *memLog { return &memLog{grew: make(chan struct{})} }

// add appends n messages of one event each (the first creates the agent),
// and a message no build can decode when bad is set.
func (l *memLog) add(t *testing.T, n int) events.Seq {
	t.Helper()
	now := time.Now().UTC()
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		var ev events.Event = &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: "hello"}
		if len(l.msgs) == 0 {
			ev = &events.AgentCreated{ID: "agent-1", Name: "one"}
		}
		data, err := events.Encode(events.Envelope{Aggregate: agg, Command: "c", Time: now, Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		l.msgs = append(l.msgs, data)
	}
	close(l.grew)
	l.grew = make(chan struct{})
	return events.Seq(len(l.msgs))
}

func (l *memLog) addRaw(data []byte) events.Seq {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, data)
	close(l.grew)
	l.grew = make(chan struct{})
	return events.Seq(len(l.msgs))
}

func (l *memLog) Follow(ctx context.Context, from events.Seq, fn func(events.Seq, []byte) error) error {
	l.mu.Lock()
	l.reads++
	l.mu.Unlock()
	for seq := max(from, 1); ; seq++ {
		var data []byte
		for data == nil {
			l.mu.Lock()
			if int(seq) <= len(l.msgs) {
				data = l.msgs[seq-1]
			}
			grew := l.grew
			l.mu.Unlock()
			if data == nil {
				select {
				case <-grew:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if err := fn(seq, data); err != nil {
			return err
		}
	}
}

// FollowPending is Follow that says how many messages the log holds after
// each one (the projections.PendingReader a follower decodes a backlog of
// in parallel).
func (l *memLog) FollowPending(ctx context.Context, from events.Seq, fn func(events.Seq, []byte, uint64) error) error {
	return l.Follow(ctx, from, func(seq events.Seq, data []byte) error {
		l.mu.Lock()
		pending := uint64(len(l.msgs)) - uint64(seq)
		l.mu.Unlock()
		return fn(seq, data, pending)
	})
}

// plainLog is a memLog that does not say what is pending, so a follower
// decodes each message as it comes.
type plainLog struct{ l *memLog }

func (p plainLog) Follow(ctx context.Context, from events.Seq, fn func(events.Seq, []byte) error) error {
	return p.l.Follow(ctx, from, fn)
}

func (p plainLog) LastSeq(ctx context.Context) (events.Seq, error) { return p.l.LastSeq(ctx) }

func (l *memLog) LastSeq(context.Context) (events.Seq, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return events.Seq(len(l.msgs)), nil
}

func (l *memLog) follows() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// sink records what it is handed. gate, when set, holds each Apply until
// a value arrives on it; fail makes the next Apply fail.
type sink struct {
	mark projections.Mark
	gate chan struct{}
	at   func() events.Seq // read at the first Apply, into first

	mu      sync.Mutex
	seqs    []events.Seq
	skipped int
	first   events.Seq
	fail    bool
	most    int // the most messages in one Apply
}

func (s *sink) Applied() events.Seq { return s.mark.Seq() }

func (s *sink) Apply(ctx context.Context, msgs []projections.Message) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		s.fail = false
		return errors.New("disk full")
	}
	s.most = max(s.most, len(msgs))
	if s.at != nil && len(s.seqs) == 0 {
		s.first = s.at()
	}
	for _, m := range msgs {
		if n := len(s.seqs); n > 0 && m.Seq != s.seqs[n-1]+1 || m.Seq <= s.Applied() {
			return fmt.Errorf("handed %d after %d (applied %d)", m.Seq, s.last(), s.Applied())
		}
		if m.Err != nil {
			s.skipped++
		} else if len(m.Events) != 1 || m.Events[0].Seq != m.Seq {
			return fmt.Errorf("message %d: events %+v", m.Seq, m.Events)
		}
		s.seqs = append(s.seqs, m.Seq)
	}
	s.mark.Set(msgs[len(msgs)-1].Seq)
	return nil
}

func (s *sink) last() events.Seq {
	if len(s.seqs) == 0 {
		return 0
	}
	return s.seqs[len(s.seqs)-1]
}

func (s *sink) handed() []events.Seq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.Seq(nil), s.seqs...)
}

// checkRun checks that s was handed exactly the messages from..to.
func checkRun(t *testing.T, name string, s *sink, from, to events.Seq) {
	t.Helper()
	got := s.handed()
	if len(got) != int(to-from+1) || len(got) > 0 && (got[0] != from || got[len(got)-1] != to) {
		t.Fatalf("%s was handed %d messages (%v…), want %d..%d", name, len(got), got[:min(len(got), 5)], from, to)
	}
}

// run starts f and returns a stop that waits for it.
func run(t *testing.T, f *projections.Follower) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, m *projections.Mark, seq events.Seq, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitFor(ctx, seq, what); err != nil {
		t.Fatal(err)
	}
}

// One read, one decode per message, for every sink, including one that
// cannot be decoded; new messages reach both. A reader that says what is
// pending has its backlog decoded in parallel and handed on in order, in
// runs; one that does not, message by message.
func TestFollowerDecodesOnce(t *testing.T) {
	for _, pending := range []bool{true, false} {
		t.Run(fmt.Sprint("pending=", pending), func(t *testing.T) { testFollowerDecodesOnce(t, pending) })
	}
}

func testFollowerDecodesOnce(t *testing.T, pending bool) {
	l := newMemLog()
	l.add(t, 500)
	l.addRaw([]byte(`{"type":"from_the_future"}`))
	last := l.add(t, 1499)
	var r projections.Reader = l
	if !pending {
		r = plainLog{l}
	}
	f := projections.NewFollower(r, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{MaxMessages: 2000})
	stop := run(t, f)
	waitFor(t, &models.mark, last, "models")
	waitFor(t, &index.mark, last, "index")
	last = l.add(t, 10)
	waitFor(t, &index.mark, last, "index")
	waitFor(t, &models.mark, last, "models")
	stop()
	checkRun(t, "models", models, 1, last)
	checkRun(t, "index", index, 1, last)
	if got := f.Decoded(); got != uint64(last) {
		t.Fatalf("decoded %d messages for a log of %d", got, last)
	}
	if models.skipped != 1 || index.skipped != 1 {
		t.Fatalf("skipped %d and %d, want the one bad message each", models.skipped, index.skipped)
	}
	if q.Dropped() != 0 || l.follows() != 1 {
		t.Fatalf("dropped %d times, %d reads of the log", q.Dropped(), l.follows())
	}
	if runs := models.most > 1; runs != (pending && runtime.GOMAXPROCS(0) > 1) {
		t.Fatalf("pending reader %v: at most %d messages in one Apply", pending, models.most)
	}
}

// The follower starts after the lowest checkpoint, and gives each sink only
// what comes after its own.
func TestFollowerStartsAtLowestCheckpoint(t *testing.T) {
	l := newMemLog()
	last := l.add(t, 300)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	models.mark.Set(250)
	index.mark.Set(200)
	f.Feed(models)
	f.Queue(index, projections.QueueConfig{MaxMessages: 100})
	run(t, f)
	waitFor(t, &index.mark, last, "index")
	waitFor(t, &models.mark, last, "models")
	checkRun(t, "models", models, 251, last)
	checkRun(t, "index", index, 201, last)
	if got := f.Decoded(); got != 100 {
		t.Fatalf("decoded %d messages, want 100 (201..300)", got)
	}

	// An index ahead of the models: read from the models' checkpoint, and
	// the index is handed only what it lacks.
	f = projections.NewFollower(l, projections.FollowerConfig{})
	models, index = &sink{}, &sink{}
	index.mark.Set(290)
	f.Feed(models)
	f.Queue(index, projections.QueueConfig{})
	run(t, f)
	waitFor(t, &models.mark, last, "models")
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "models", models, 1, last)
	checkRun(t, "index", index, 291, last)
	if got := f.Decoded(); got != uint64(last) {
		t.Fatalf("decoded %d messages, want %d", got, last)
	}
}

// An index further behind the models than its queue holds starts on a
// read of its own, so the models (near the end of the log) are not held
// back by a read from the index's checkpoint.
func TestFollowerFarBehindSinkReadsAlone(t *testing.T) {
	l := newMemLog()
	last := l.add(t, 1000)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	models.mark.Set(990)
	index.mark.Set(100)
	f.Feed(models)
	f.Queue(index, projections.QueueConfig{MaxMessages: 50})
	run(t, f)
	waitFor(t, &models.mark, last, "models")
	waitFor(t, &index.mark, last, "index")
	// Back on the follower's stream: new messages come once, through it.
	before := f.Decoded()
	last = l.add(t, 5)
	waitFor(t, &index.mark, last, "index")
	waitFor(t, &models.mark, last, "models")
	checkRun(t, "models", models, 991, last)
	checkRun(t, "index", index, 101, last)
	if got := f.Decoded() - before; got != 5 {
		t.Fatalf("decoded %d of the 5 new messages", got)
	}
}

// A sink slower than the log never holds the models back: its queue
// overflows, it catches up on its own read, and rejoins the follower.
func TestFollowerSlowSinkDoesNotStallModels(t *testing.T) {
	l := newMemLog()
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models := &sink{}
	index := &sink{gate: make(chan struct{})}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{MaxMessages: 8, MaxApply: 4})
	run(t, f)
	last := l.add(t, 200) // the index is stuck in its first Apply meanwhile
	waitFor(t, &models.mark, last, "models")
	if q.Dropped() == 0 {
		t.Fatal("a stuck sink's queue did not overflow")
	}
	close(index.gate)
	waitFor(t, &index.mark, last, "index")
	before := f.Decoded()
	last = l.add(t, 3)
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "index", index, 1, last)
	checkRun(t, "models", models, 1, last)
	if got := f.Decoded() - before; got != 3 {
		t.Fatalf("after catching up the index decoded %d of 3 new messages again", got)
	}
	if got := l.follows(); got < 2 {
		t.Fatalf("%d reads of the log; the catch-up should read on its own", got)
	}
	if index.most > 4 {
		t.Fatalf("an Apply of %d messages; MaxApply is 4", index.most)
	}
}

// At start the queued sinks wait for the inline ones to reach the end of
// the log, so the read models catch up alone.
func TestFollowerQueuedWaitsForInlineAtStart(t *testing.T) {
	l := newMemLog()
	last := l.add(t, 400)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models := &sink{}
	index := &sink{at: models.Applied}
	f.Feed(models)
	f.Queue(index, projections.QueueConfig{MaxMessages: 1000})
	run(t, f)
	waitFor(t, &index.mark, last, "index")
	if index.first < last {
		t.Fatalf("the index applied while the models were at %d of %d", index.first, last)
	}
	if got := f.Decoded(); got != uint64(last) {
		t.Fatalf("decoded %d, want %d", got, last)
	}
}

// A failed Apply is retried from the sink's checkpoint.
func TestFollowerQueuedRetriesAfterFailure(t *testing.T) {
	l := newMemLog()
	l.add(t, 50)
	f := projections.NewFollower(l, projections.FollowerConfig{Retry: 10 * time.Millisecond})
	models, index := &sink{}, &sink{fail: true}
	f.Feed(models)
	f.Queue(index, projections.QueueConfig{})
	run(t, f)
	last := l.add(t, 50)
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "index", index, 1, last)
}

// Rewind swaps the sink's state under it (a rebuilt index) and it catches
// up again from its new checkpoint.
func TestFollowerRewind(t *testing.T) {
	l := newMemLog()
	last := l.add(t, 100)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{})
	run(t, f)
	waitFor(t, &index.mark, last, "index")
	q.Rewind(func() {
		index.mu.Lock()
		index.seqs = index.seqs[:40]
		index.mu.Unlock()
		index.mark.Set(40)
	})
	waitFor(t, &index.mark, last, "index")
	last = l.add(t, 10)
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "index", index, 1, last)
}

// Rewound while it reads the log on its own, a sink starts again from its
// new checkpoint; the reader of the old queue stops.
func TestFollowerRewindWhileReading(t *testing.T) {
	l := newMemLog()
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models := &sink{}
	index := &sink{gate: make(chan struct{})}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{MaxMessages: 8, MaxApply: 4})
	run(t, f)
	last := l.add(t, 300)
	waitFor(t, &models.mark, last, "models")
	if q.Dropped() == 0 {
		t.Fatal("the queue did not overflow")
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		close(index.gate)
	}()
	q.Rewind(func() { // waits for the Apply the gate holds
		index.mu.Lock()
		index.seqs = index.seqs[:min(len(index.seqs), 2)]
		n := len(index.seqs)
		index.mu.Unlock()
		index.mark.Set(events.Seq(n))
	})
	waitFor(t, &index.mark, last, "index")
	last = l.add(t, 20)
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "index", index, 1, last)
}

// A held queue applies nothing until released; the messages it missed
// meanwhile come to it once, from the queue or its own read.
func TestFollowerHoldUntilRelease(t *testing.T) {
	l := newMemLog()
	l.add(t, 30)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{Hold: true, MaxMessages: 50})
	run(t, f)
	last := l.add(t, 100) // more than the queue holds
	waitFor(t, &models.mark, last, "models")
	time.Sleep(20 * time.Millisecond)
	if got := index.handed(); len(got) != 0 {
		t.Fatalf("a held queue applied %d messages", len(got))
	}
	q.Release()
	q.Release()
	waitFor(t, &index.mark, last, "index")
	checkRun(t, "index", index, 1, last)
}

// A lingering queue holds what the follower hands it until MaxApply
// messages are queued or someone hurries one of them, and then hands them
// on together; messages after the hurried one linger again.
func TestFollowerLingerAndHurry(t *testing.T) {
	l := newMemLog()
	l.add(t, 10)
	f := projections.NewFollower(l, projections.FollowerConfig{})
	models, index := &sink{}, &sink{}
	f.Feed(models)
	q := f.Queue(index, projections.QueueConfig{Linger: time.Hour, MaxApply: 50})
	run(t, f)
	q.Hurry(10)
	waitFor(t, &index.mark, 10, "index at start")

	last := l.add(t, 5)
	waitFor(t, &models.mark, last, "models")
	time.Sleep(50 * time.Millisecond)
	if got := index.Applied(); got != 10 {
		t.Fatalf("the index applied through %d while its messages linger (want 10)", got)
	}
	q.Hurry(last - 2)
	waitFor(t, &index.mark, last-2, "the hurried message")
	if got := index.Applied(); got != last {
		t.Fatalf("a hurried queue applied through %d, want all it held (%d)", got, last)
	}

	// Hurrying a message not queued yet: it is applied as soon as it comes.
	q.Hurry(last + 1)
	next := l.add(t, 1)
	waitFor(t, &index.mark, next, "a message hurried before it came")

	// Past the hurried one, messages linger again, until MaxApply of them
	// are queued.
	more := l.add(t, 3)
	waitFor(t, &models.mark, more, "models")
	time.Sleep(50 * time.Millisecond)
	if got := index.Applied(); got != next {
		t.Fatalf("the index applied through %d, want %d (the rest lingers)", got, next)
	}
	full := l.add(t, 47) // 50 queued
	waitFor(t, &index.mark, full, "a full batch")
	checkRun(t, "index", index, 1, full)
}

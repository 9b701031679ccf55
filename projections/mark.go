package projections

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/engram-dev/engram/events"
)

// Mark is the log sequence a consumer of the log has applied, and the one
// way readers wait for it: the read models and the search index each keep
// one. The zero value is a mark at 0.
//
// Moving it costs an atomic store and load when nobody waits, which is
// what a replay of a million events does; a waiter pays for its wake-ups.
type Mark struct {
	seq     atomic.Uint64
	waiters atomic.Int32
	mu      sync.Mutex    // guards ch
	ch      chan struct{} // closed and replaced when seq moves while someone waits
}

// Seq is the sequence applied so far.
func (m *Mark) Seq() events.Seq { return events.Seq(m.seq.Load()) }

// Set moves the mark to seq and wakes the waiters. It may move it back (a
// rebuilt index starts again from its own checkpoint); waiters for a
// sequence above it then wait for it to come again.
func (m *Mark) Set(seq events.Seq) {
	m.seq.Store(uint64(seq))
	// The store comes before this load and a waiter counts itself before
	// it loads seq, so either the waiter sees the new seq or this sees the
	// waiter and closes the channel it holds (or a newer one, after it).
	if m.waiters.Load() == 0 {
		return
	}
	m.mu.Lock()
	if m.ch != nil {
		close(m.ch)
		m.ch = nil
	}
	m.mu.Unlock()
}

// WaitFor blocks until the mark reaches seq or ctx ends; what names the
// consumer in the error.
func (m *Mark) WaitFor(ctx context.Context, seq events.Seq, what string) error {
	if m.Seq() >= seq {
		return nil
	}
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		m.mu.Lock()
		if m.ch == nil {
			m.ch = make(chan struct{})
		}
		ch := m.ch
		m.mu.Unlock()
		if m.Seq() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s at %d, waiting for %d: %w", what, m.Seq(), seq, ctx.Err())
		}
	}
}

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/search"
)

// indexer keeps the search index following the log: a projection like the
// read models, checkpointed by sequence inside the index, so a restart
// resumes where it stopped and a missing index is rebuilt from the log.
type indexer struct {
	log    *bus.Log
	dir    string
	logger *slog.Logger

	mu      sync.RWMutex // guards ix against a swap
	ix      *search.Index
	applied atomic.Uint64

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced after each applied batch

	runMu  sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

// maxIndexBatch caps the events folded into one index write.
const maxIndexBatch = 2000

func openIndexer(dir string, log *bus.Log, logger *slog.Logger) (*indexer, error) {
	ix, err := search.Open(dir, search.Options{})
	if err != nil {
		// The index is derived data: a damaged one is rebuilt from the log.
		logger.Warn("search index unreadable; rebuilding it from the log", "dir", dir, "err", err)
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, fmt.Errorf("search index: %w (and cannot remove it: %v)", err, rerr)
		}
		if ix, err = search.Open(dir, search.Options{}); err != nil {
			return nil, fmt.Errorf("search index: %w", err)
		}
	}
	x := &indexer{log: log, dir: dir, logger: logger, ix: ix, waitCh: make(chan struct{})}
	x.applied.Store(ix.Seq())
	return x, nil
}

// start follows the log in the background until stop.
func (x *indexer) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	x.runMu.Lock()
	x.cancel, x.done = cancel, done
	x.runMu.Unlock()
	go func() {
		defer close(done)
		for {
			err := x.follow(ctx)
			if ctx.Err() != nil {
				return
			}
			x.logger.Error("indexing the log failed; retrying", "indexed", x.applied.Load(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// stop ends following and waits for the last write to the index.
func (x *indexer) stop() {
	x.runMu.Lock()
	cancel, done := x.cancel, x.done
	x.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (x *indexer) close() error {
	x.stop()
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ix.Close()
}

// follow feeds events to the index: a reader decodes them into index
// batches and a writer merges whatever has queued into one write, so the
// index is written once per burst rather than once per event.
func (x *indexer) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := x.applied.Load() + 1
	queue := make(chan search.Batch, 4*maxIndexBatch)
	failed := make(chan error, 1)
	go func() {
		defer close(queue)
		err := x.log.Follow(ctx, events.Seq(from), func(seq events.Seq, data []byte) error {
			b := batchOf(seq, data)
			select {
			case queue <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			failed <- err
		}
	}()
	for {
		b, ok := <-queue
		if !ok {
			select {
			case err := <-failed:
				return err
			default:
				return ctx.Err()
			}
		}
		n := 1
	drain:
		for n < maxIndexBatch {
			select {
			case next, ok := <-queue:
				if !ok {
					break drain
				}
				b.Merge(next)
				n++
			default:
				break drain
			}
		}
		if b.Seq <= x.applied.Load() {
			continue
		}
		x.mu.RLock()
		err := x.ix.Apply(b)
		x.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("index events through %d: %w", b.Seq, err)
		}
		x.applied.Store(b.Seq)
		x.waitMu.Lock()
		close(x.waitCh)
		x.waitCh = make(chan struct{})
		x.waitMu.Unlock()
	}
}

// batchOf turns the message at seq (one event, or a packed message of
// several) into one index batch that brings the index to seq. Events that
// cannot be decoded change nothing, as in the projections.
func batchOf(seq events.Seq, data []byte) search.Batch {
	b := search.Batch{Seq: uint64(seq)}
	envs, err := events.DecodeAll(data)
	if err != nil {
		return b
	}
	for _, env := range envs {
		env.Seq = seq
		if eb, ok := search.FromEvent(env); ok {
			b.Merge(eb)
		}
	}
	b.Seq = uint64(seq)
	return b
}

// Search runs a query on the index.
func (x *indexer) Search(ctx context.Context, q search.Query) (search.Result, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ix.Search(ctx, q)
}

// WaitFor waits until the index has applied seq.
func (x *indexer) WaitFor(ctx context.Context, seq events.Seq) error {
	for x.applied.Load() < uint64(seq) {
		x.waitMu.Lock()
		ch := x.waitCh
		x.waitMu.Unlock()
		if x.applied.Load() >= uint64(seq) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("search index at %d, waiting for %d: %w", x.applied.Load(), seq, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Applied is the last sequence the index holds.
func (x *indexer) Applied() events.Seq { return events.Seq(x.applied.Load()) }

// rebuild builds a fresh index from the whole log beside the live one,
// which keeps serving, then swaps it in.
func (x *indexer) rebuild(ctx context.Context) error {
	fresh, err := search.OpenFresh(x.dir, search.Options{})
	if err != nil {
		return err
	}
	last, err := x.log.LastSeq(ctx)
	if err != nil {
		fresh.Close()
		return err
	}
	if last > 0 {
		fctx, cancel := context.WithCancel(ctx)
		var b search.Batch
		flush := func() error {
			if b.Seq == 0 {
				return nil
			}
			err := fresh.Apply(b)
			b = search.Batch{}
			return err
		}
		n := 0
		err = x.log.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
			b.Merge(batchOf(seq, data))
			if n++; n%maxIndexBatch == 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			if seq >= last {
				if err := flush(); err != nil {
					return err
				}
				cancel()
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			fresh.Close()
			return fmt.Errorf("rebuild index: %w", err)
		}
		if ctx.Err() != nil {
			fresh.Close()
			return ctx.Err()
		}
	}
	x.stop()
	x.mu.Lock()
	err = x.ix.Close()
	if err == nil {
		err = fresh.SwapInto(x.dir)
	}
	if err == nil {
		x.ix = fresh
		x.applied.Store(fresh.Seq())
	} else if ix, oerr := search.Open(x.dir, search.Options{}); oerr == nil {
		x.ix = ix // whichever index the failed swap left in place
		x.applied.Store(ix.Seq())
	}
	x.mu.Unlock()
	x.start()
	if err != nil {
		return fmt.Errorf("rebuild index: swap: %w", err)
	}
	return nil
}

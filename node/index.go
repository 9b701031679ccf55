package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/search"
)

// indexer keeps the search index following the log: a projection like the
// read models, fed by the node's one follower from a queue of its own (see
// projections.Follower) and checkpointed by sequence inside the index, so a
// restart resumes where it stopped and a missing index is rebuilt from the
// log.
type indexer struct {
	log    *bus.Log
	dir    string
	logger *slog.Logger
	queue  *projections.Queue // set once the follower feeds it

	mu      sync.RWMutex // guards ix against a swap
	ix      *search.Index
	applied projections.Mark
}

// maxIndexBatch caps the log messages folded into one index write.
const maxIndexBatch = 2000

// DefaultIndexLinger is how long a message waits in the search index's
// queue for others to join it, unless a search waits for it (WaitFor
// hurries the queue); see Config.IndexLinger. An index write costs much the
// same for one document as for dozens (Bleve builds a segment, persists it
// with fsyncs, later merges it), and those writes, one per command, slowed
// the log's own fsyncs: without lingering, one client's archival inserts
// took twice a block update's time.
const DefaultIndexLinger = 250 * time.Millisecond

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
	x := &indexer{log: log, dir: dir, logger: logger, ix: ix}
	x.applied.Set(events.Seq(ix.Seq()))
	return x, nil
}

// feedFrom makes the follower feed the index, from a queue of its own: the
// index writes far slower than the read models apply, and the follower
// must not wait for it. The index applies nothing until start. linger is
// Config.IndexLinger.
func (x *indexer) feedFrom(f *projections.Follower, linger time.Duration) {
	if linger == 0 {
		linger = DefaultIndexLinger
	}
	x.queue = f.Queue(x, projections.QueueConfig{Name: "search index", MaxApply: maxIndexBatch, Hold: true, Linger: max(linger, 0)})
}

// start lets the index apply what the follower queues for it (and read the
// log on its own if it is far behind). The node calls it once the read
// models hold the log, where the index started before it shared the
// follower.
func (x *indexer) start() { x.queue.Release() }

func (x *indexer) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ix.Close()
}

// Applied is the last sequence the index holds (projections.Sink).
func (x *indexer) Applied() events.Seq { return x.applied.Seq() }

// Apply writes decoded messages to the index as one batch
// (projections.Sink).
func (x *indexer) Apply(ctx context.Context, msgs []projections.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	// The follower reads ahead of the disk; the index holds only what is on
	// it (bus/ahead.go).
	if err := x.log.Durable(ctx, msgs[len(msgs)-1].Seq); err != nil {
		return fmt.Errorf("index events through %d: %w", msgs[len(msgs)-1].Seq, err)
	}
	var w batcher
	for _, m := range msgs {
		w.add(m.Seq, m.Events)
	}
	b := w.b
	x.mu.RLock()
	err := x.ix.Apply(b)
	x.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("index events through %d: %w", b.Seq, err)
	}
	x.applied.Set(events.Seq(b.Seq))
	return nil
}

// batcher folds log messages into one index batch. It gives what
// search.Batch.Merge of each event's batch in turn gives, but keeps the
// puts indexed by id: Merge scans the batch for every event, which on a
// queue of 2,000 messages of 25 passages each is quadratic.
type batcher struct {
	b  search.Batch
	at map[string]int // id of a put → its place in b.Put; nil: build it again
}

// add folds in the events of the message at seq (one, or several of a
// packed message) and brings the batch to seq. A message that could not be
// decoded has no events and changes nothing, as in the read models.
func (w *batcher) add(seq events.Seq, envs []events.Envelope) {
	for _, env := range envs {
		eb, ok := search.FromEvent(env)
		if !ok {
			continue
		}
		if len(eb.Delete) > 0 || len(eb.DeleteOwner) > 0 {
			w.b.Merge(eb) // rare: deletes reorder the puts
			w.at = nil
			continue
		}
		if w.at == nil {
			w.at = make(map[string]int, len(w.b.Put)+len(eb.Put))
			for i, d := range w.b.Put {
				w.at[d.ID] = i
			}
		}
		for _, d := range eb.Put {
			if i, ok := w.at[d.ID]; ok {
				w.b.Put[i] = d
				continue
			}
			w.at[d.ID] = len(w.b.Put)
			w.b.Put = append(w.b.Put, d)
		}
	}
	w.b.Seq = uint64(seq)
}

// Search runs a query on the index.
func (x *indexer) Search(ctx context.Context, q search.Query) (search.Result, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ix.Search(ctx, q)
}

// WaitFor waits until the index has applied seq, which it applies without
// lingering.
func (x *indexer) WaitFor(ctx context.Context, seq events.Seq) error {
	if x.queue != nil && x.applied.Seq() < seq {
		x.queue.Hurry(seq)
	}
	return x.applied.WaitFor(ctx, seq, "search index")
}

// rebuild builds a fresh index from the whole log beside the live one,
// which keeps serving, then swaps it in. It reads the log itself, apart
// from the node's follower: it is an explicit admin operation, and the
// follower's stream is at the live index's position, not at the start.
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
		var w batcher
		flush := func() error {
			if w.b.Seq == 0 {
				return nil
			}
			err := fresh.Apply(w.b)
			w = batcher{}
			return err
		}
		n := 0
		err = x.log.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
			envs, err := events.DecodeAll(data)
			if err != nil {
				envs = nil // skipped, as the follower's sinks skip it
			}
			for i := range envs {
				envs[i].Seq = seq
			}
			w.add(seq, envs)
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
	swap := func() {
		x.mu.Lock()
		defer x.mu.Unlock()
		err = x.ix.Close()
		if err == nil {
			err = fresh.SwapInto(x.dir)
		}
		if err == nil {
			x.ix = fresh
		} else if ix, oerr := search.Open(x.dir, search.Options{}); oerr == nil {
			x.ix = ix // whichever index the failed swap left in place
		}
		// The fresh index may be behind the live one (the log grew during
		// the rebuild): the queue starts again from its checkpoint.
		x.applied.Set(events.Seq(x.ix.Seq()))
	}
	if x.queue != nil {
		x.queue.Rewind(swap)
	} else {
		swap()
	}
	if err != nil {
		return fmt.Errorf("rebuild index: swap: %w", err)
	}
	return nil
}

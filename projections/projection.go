package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/engram-dev/engram/events"
)

// Log is what a Projection reads: the event log and a snapshot store.
type Log interface {
	Reader
	// SaveSnapshot and LoadSnapshot keep one snapshot per name;
	// DeleteSnapshot removes one, and is not an error when there is none.
	SaveSnapshot(ctx context.Context, name string, seq events.Seq, data []byte) error
	LoadSnapshot(ctx context.Context, name string) (events.Seq, []byte, error)
	DeleteSnapshot(ctx context.Context, name string) error
	// SnapshotInfo returns the sequence of the snapshot called name and
	// the digest of its bytes, without reading them.
	SnapshotInfo(ctx context.Context, name string) (events.Seq, string, error)
}

// Config tunes a Projection. Zero values take the defaults shown.
type Config struct {
	SnapshotEvery int          // events between snapshots; 0 means 50,000; <0 disables
	Logger        *slog.Logger // nil discards
	// Durable, when set, returns once the event at seq is on disk: the
	// projection is fed ahead of the disk (bus.Log.Ahead), and Read and
	// Snapshot wait for it. nil: whatever is applied is on disk.
	Durable func(ctx context.Context, seq events.Seq) error
}

// Projection keeps a State current with the log and lets readers wait for
// their own writes. It is a Sink: one Follower applies events to it (Run
// makes one of its own); any number read.
type Projection struct {
	log Log
	cfg Config

	mu sync.RWMutex // guards st
	st *State

	applied    Mark
	sinceSnp   int         // events since the last snapshot; only Apply uses it
	failLogged atomic.Bool // a failed fsync was logged by a read
	oldGone    atomic.Bool // a snapshot of the older format was deleted (or tried)
}

// New returns a Projection over log with an empty state; call Restore,
// then Run it or feed it to a Follower.
func New(log Log, cfg Config) *Projection {
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 50_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Projection{log: log, cfg: cfg, st: NewState()}
}

// A Copy is a snapshot decoded from elsewhere than the log's snapshot store
// (a file a node keeps beside it), with the digest of its bytes in the
// form the store gives (Log.SnapshotInfo). RestoreCopy adopts it only when
// the store's snapshot has the same digest: then its bytes are the
// store's, and so is the state.
type Copy struct {
	digest string
	st     *State
}

// DecodeCopy decodes a snapshot's bytes (as Snapshot saved them) whose
// digest is digest.
func DecodeCopy(data []byte, digest string) (*Copy, error) {
	st, err := decodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	return &Copy{digest: digest, st: st}, nil
}

// RestoreCopy restores c when the store's snapshot has its digest, and
// reports whether it did; otherwise (c nil, another snapshot in the store,
// none) it restores as Restore does. Call it, or Restore, once, before Run.
func (p *Projection) RestoreCopy(ctx context.Context, c *Copy) bool {
	if c != nil && c.st != nil {
		seq, digest, err := p.log.SnapshotInfo(ctx, snapshotName)
		if err == nil && digest == c.digest {
			p.adopt(c.st, seq)
			c.st = nil
			return true
		}
		p.cfg.Logger.Info("the snapshot's copy is not the store's snapshot; reading the store's", "digest", c.digest, "store", digest, "err", err)
	}
	p.Restore(ctx)
	return false
}

// adopt makes st, restored from a snapshot at seq, the state.
func (p *Projection) adopt(st *State, seq events.Seq) {
	st.Applied = seq
	p.mu.Lock()
	p.st = st
	p.mu.Unlock()
	p.applied.Set(seq)
}

// Restore loads the latest snapshot, if any. Call it before Run. A snapshot
// that cannot be read is ignored (the log is replayed instead).
func (p *Projection) Restore(ctx context.Context) {
	name, decode := snapshotName, decodeSnapshot
	seq, data, err := p.log.LoadSnapshot(ctx, name)
	if err != nil {
		// One of the format before, saved by an older engram.
		if oseq, odata, oerr := p.log.LoadSnapshot(ctx, oldSnapshotName); oerr == nil {
			name, decode, seq, data, err = oldSnapshotName, decodeGobSnapshot, oseq, odata, nil
		}
	}
	if err != nil {
		// A missing or unreadable snapshot only costs a longer replay.
		p.cfg.Logger.Info("no snapshot; replaying the log", "reason", err)
		return
	}
	st, err := decode(data)
	if err != nil {
		p.cfg.Logger.Warn("ignoring unreadable snapshot", "name", name, "seq", seq, "err", err)
		return
	}
	p.adopt(st, seq)
}

// Run applies events from the log until ctx ends, snapshotting as it goes,
// with a Follower of its own that feeds nothing else (a node shares one
// follower between the projection and the search index). If following the
// log fails, it logs the failure and follows again from the next unapplied
// event. It returns ctx.Err().
func (p *Projection) Run(ctx context.Context) error {
	f := NewFollower(p.log, FollowerConfig{Logger: p.cfg.Logger})
	f.Feed(p)
	return f.Run(ctx)
}

// Apply folds decoded messages into the state (the Sink interface); a
// message that could not be decoded is skipped the same way on every node.
// It snapshots every Config.SnapshotEvery events, and never fails.
func (p *Projection) Apply(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var skipped []Message
	p.mu.Lock()
	for _, m := range msgs {
		if m.Err != nil {
			if m.Seq > p.st.Applied {
				p.st.Applied, p.st.AppliedPart = m.Seq, 0
				p.st.Skipped++
				skipped = append(skipped, m)
			}
			continue
		}
		for _, env := range m.Events {
			p.st.Apply(env)
		}
	}
	p.mu.Unlock()
	for _, m := range skipped {
		p.cfg.Logger.Warn("skipping event", "seq", m.Seq, "err", m.Err)
	}
	if last := msgs[len(msgs)-1].Seq; last > p.applied.Seq() {
		p.applied.Set(last)
	}
	p.sinceSnp += len(msgs)
	if p.cfg.SnapshotEvery > 0 && p.sinceSnp >= p.cfg.SnapshotEvery {
		p.sinceSnp = 0
		if err := p.Snapshot(ctx); err != nil {
			p.cfg.Logger.Warn("snapshot failed", "err", err)
		}
	}
	return nil
}

// Applied returns the sequence of the last applied event.
func (p *Projection) Applied() events.Seq { return p.applied.Seq() }

// WaitFor blocks until the event at seq has been applied, or ctx ends.
func (p *Projection) WaitFor(ctx context.Context, seq events.Seq) error {
	return p.applied.WaitFor(ctx, seq, "read models")
}

// CatchUp waits until everything in the log when it was called is applied.
func (p *Projection) CatchUp(ctx context.Context) error {
	last, err := p.log.LastSeq(ctx)
	if err != nil {
		return err
	}
	return p.WaitFor(ctx, last)
}

// Read calls fn with the state under a read lock, once every event the
// state holds is on disk (Config.Durable): what a client is shown, a power
// failure cannot take back. fn must not keep references into the state or
// modify it.
//
// It first waits for what is applied when it is called, without the lock;
// if more was applied meanwhile it waits again holding the lock, which
// holds the follower back for at most one fsync. After a failed fsync
// (final: no write is acknowledged until the node restarts) fn still runs,
// on what the node holds, and the failure is logged.
func (p *Projection) Read(fn func(*State)) {
	if p.cfg.Durable != nil {
		p.settle(p.applied.Seq())
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cfg.Durable != nil {
		p.settle(p.st.Applied)
	}
	fn(p.st)
}

// ReadAhead calls fn with the state under a read lock, as it is, events
// not yet on disk included: for a command deciding what to append (its
// own append is acknowledged only once on disk, and so is everything
// stored before it) and for an agent's run (package runner: it tells no
// one anything before its inputs are on disk). What it reads must not
// reach a client unless a write made after the read is acknowledged first
// or Settle has returned.
func (p *Projection) ReadAhead(fn func(*State)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.st)
}

// ReadSettled calls fn with the state under a read lock, as it is (as
// ReadAhead does), for an answer that rests on a few aggregates: fn returns
// the sequence of the newest event what it read rests on (0: none), and
// ReadSettled returns once that event is on disk, or ctx ends (its error
// then). Read waits instead for everything applied, which under concurrent
// writes is other writers' events, not on disk yet: a wait for their fsync
// round, holding the read lock. What fn read must reach no client before
// ReadSettled returns nil.
func (p *Projection) ReadSettled(ctx context.Context, fn func(*State) events.Seq) error {
	p.mu.RLock()
	seq := fn(p.st)
	p.mu.RUnlock()
	return p.Settle(ctx, seq)
}

// Settle returns once the event at seq is on disk (at once without
// Config.Durable), or ctx ends.
func (p *Projection) Settle(ctx context.Context, seq events.Seq) error {
	if p.cfg.Durable == nil || seq == 0 {
		return nil
	}
	return p.cfg.Durable(ctx, seq)
}

// settle is Settle for Read, which cannot fail.
func (p *Projection) settle(seq events.Seq) {
	if err := p.Settle(context.Background(), seq); err != nil && !p.failLogged.Swap(true) {
		p.cfg.Logger.Error("reads show events whose fsync failed", "seq", seq, "err", err)
	}
}

// Snapshot encodes the current state and saves it to the log's snapshot
// store, once every event it holds is on disk.
func (p *Projection) Snapshot(ctx context.Context) error {
	_, err := p.SnapshotBytes(ctx)
	return err
}

// SnapshotBytes is Snapshot that also returns the bytes it saved (nil when
// it saved none: nothing applied yet), for a copy kept elsewhere
// (DecodeCopy).
func (p *Projection) SnapshotBytes(ctx context.Context) ([]byte, error) {
	p.mu.RLock()
	seq := p.st.Applied
	data, err := encodeSnapshot(p.st)
	p.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", seq, err)
	}
	if seq == 0 {
		return nil, nil
	}
	// A snapshot holding an event a power failure took back would outlive it.
	if err := p.Settle(ctx, seq); err != nil {
		return nil, fmt.Errorf("snapshot at %d: %w", seq, err)
	}
	if err := p.log.SaveSnapshot(ctx, snapshotName, seq, data); err != nil {
		return nil, err
	}
	if !p.oldGone.Swap(true) {
		// A snapshot of the format before is of no more use (Restore reads
		// this one first); keeping it would keep its space.
		if err := p.log.DeleteSnapshot(ctx, oldSnapshotName); err != nil {
			p.cfg.Logger.Warn("cannot delete the older snapshot", "name", oldSnapshotName, "err", err)
		}
	}
	return data, nil
}

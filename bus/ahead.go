package bus

import (
	"context"

	"github.com/engram-dev/engram/events"
)

// A node's own follower reads the log ahead of the disk. With group commit
// (durable.go) a message is stored, in the page cache, some hundred
// microseconds before the fsync that covers it ends. Whatever reads the log
// through a Log waits for that fsync; the node's follower, reading through
// Log.Ahead, does not, so its read models and an agent's run start on an
// input while the input's fsync is under way (the run's model call overlaps
// it). Those who read what the follower built wait instead: the read models
// show a client only what is on disk (projections.Config.Durable), the
// search index applies only what is (node's indexer), a snapshot is saved
// only once what it holds is, and a run answers no one and runs no tool
// before its inputs are (runner). A write itself is acknowledged, as ever,
// only once it is on disk, and a command decided from a state that held a
// write not yet on disk appends after it, so its own fsync covers that one.

// Durable returns once the message at seq, which is stored, is on disk;
// at once when everything up to seq is, or when nats-server syncs each
// write itself (a cluster member, or bus.Config.SyncInServer).
func (l *Log) Durable(ctx context.Context, seq events.Seq) error {
	return l.sync.wait(ctx, uint64(seq))
}

// Ahead returns the log as a reader that hands on each message once it is
// stored, before it is on disk, for the node's own follower (see above).
func (l *Log) Ahead() *Ahead { return &Ahead{l: l} }

// Ahead reads a Log ahead of the disk (Log.Ahead).
type Ahead struct{ l *Log }

// Follow is Log.Follow ahead of the disk.
func (a *Ahead) Follow(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte) error) error {
	return a.l.ReadRaw(ctx, from, RawOptions{Follow: true, Ahead: true}, func(m RawMsg) error { return fn(m.Seq, m.Data) })
}

// LastSeq is Log.LastSeq.
func (a *Ahead) LastSeq(ctx context.Context) (events.Seq, error) { return a.l.LastSeq(ctx) }

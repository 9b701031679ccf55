package bus

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Group commit. With SyncAlways, nats-server 2.15 fsyncs every message on
// its own, inside the stream's lock (filestore writeMsgRecord → flush →
// fsync), so sixteen concurrent appends cost sixteen fsyncs one after
// another and concurrency buys no throughput. The only path in JetStream
// that shares one fsync among several messages is an atomic batch's commit,
// and on a single-replica file stream every atomic batch first builds a
// temporary file store (directories, metadata files, removed again), which
// costs several milliseconds of metadata writes; see BenchmarkCommitFloor.
//
// So a single node runs nats-server without per-message fsync and engram
// syncs the event stream's files itself: a write is in the operating
// system's page cache when JetStream acknowledges it (the file store writes
// in place, before the ack, on a single-replica stream), and an append
// returns only once an fsync of the stream's block files that began after
// that acknowledgement has finished. Appends waiting at the same time share
// one fsync (a round): the first to arrive leads it, those arriving while it
// runs lead the next one together. Readers of the log (reads, followers)
// are held at the same line: a message is handed on only once it is on
// disk, so nothing derived from the log shows a write that a power failure
// could take back. The node's own follower and the agents' input consumers
// read ahead of it, and what they feed waits instead (ahead.go): the read
// models show clients, the search index applies and a run reports or acts
// only what is on disk. The file bucket is synced after each file is stored (PutFile),
// since events name its objects. What nats-server no longer fsyncs on its
// own: the snapshot bucket (rebuildable from the log) and consumers' state
// (after a power failure an input consumer may deliver an input again,
// which a run checks is still waiting before it answers it).

// durable tracks how far the files of one stream are on disk and syncs
// them, one round at a time, for every caller waiting on it.
type durable struct {
	dir    string        // the stream's msgs directory (nats-server's file store layout)
	synced atomic.Uint64 // every message up to this sequence is on disk
	rounds atomic.Uint64 // fsync rounds run, for tests and metrics
	before func()        // called before each round (LogConfig.BeforeSync)

	mu      sync.Mutex    // guards what follows
	asked   uint64        // the highest sequence a caller waits for
	running bool          // a round is under way
	done    chan struct{} // closed when the running round ends
	blk     int           // index of the newest block file seen
	// failed is the first fsync failure. It is final: after a failed fsync
	// the kernel may have dropped the dirty pages it could not write and a
	// later fsync can succeed without them, so no write after it is called
	// durable again (every wait returns it until the node restarts and
	// nats-server recovers the stream from what is on disk).
	failed error
}

// streamMsgsDir is where nats-server 2.15 keeps a stream's message blocks
// for engram's in-process connection (global account $G).
func streamMsgsDir(storeDir, stream string) string {
	return filepath.Join(storeDir, "jetstream", "$G", "streams", stream, "msgs")
}

// openDurable syncs every file of the stream as it stands (its metadata and
// directories too: without per-message fsync nats-server does not sync them
// on creation) and returns a tracker whose synced mark is last.
func openDurable(storeDir, stream string, last uint64) (*durable, error) {
	d := &durable{dir: streamMsgsDir(storeDir, stream)}
	streamDir := filepath.Dir(d.dir)
	if _, err := os.Stat(d.dir); err != nil {
		return nil, fmt.Errorf("group commit: cannot find stream %s's files (nats-server's layout changed?): %w", stream, err)
	}
	err := filepath.WalkDir(streamDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file nats-server replaced meanwhile
			}
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(path, ".blk") {
			if n, ok := blockIndex(e.Name()); ok && n > d.blk {
				d.blk = n
			}
		}
		if e.IsDir() || e.Type().IsRegular() {
			return syncPath(path, e.IsDir())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("group commit: sync stream %s: %w", stream, err)
	}
	// The directories above it: the stream's own entry must survive too.
	for dir := filepath.Dir(streamDir); len(dir) >= len(storeDir); dir = filepath.Dir(dir) {
		if err := syncPath(dir, true); err != nil {
			return nil, fmt.Errorf("group commit: sync %s: %w", dir, err)
		}
		if dir == filepath.Dir(dir) {
			break // the root
		}
	}
	d.synced.Store(last)
	return d, nil
}

// blockIndex parses a block file's name, "<index>.blk".
func blockIndex(name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".blk"))
	return n, err == nil && strings.HasSuffix(name, ".blk")
}

// wait returns once the message at seq, which the caller knows is stored
// (acknowledged, or delivered by a consumer), is on disk.
func (d *durable) wait(ctx context.Context, seq uint64) error {
	if d == nil || d.synced.Load() >= seq {
		return nil
	}
	d.mu.Lock()
	for d.synced.Load() < seq {
		if d.failed != nil {
			d.mu.Unlock()
			return d.failed
		}
		d.asked = max(d.asked, seq)
		if d.running {
			// A round under way may have begun before this message was
			// written; wait for it to end, then lead or join the next.
			done := d.done
			d.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
			d.mu.Lock()
			continue
		}
		// Everything asked for so far is stored, so the fsync covers it.
		target, blk := d.start()
		d.mu.Unlock()
		if err := d.run(target, blk); err != nil {
			return err
		}
		d.mu.Lock()
	}
	d.mu.Unlock()
	return nil
}

// start marks a round under way for everything asked so far; mu is held.
func (d *durable) start() (target uint64, blk int) {
	d.running, d.done = true, make(chan struct{})
	return d.asked, d.blk
}

// run is the round start marked: it syncs the blocks and ends the round.
// mu is not held.
func (d *durable) run(target uint64, blk int) error {
	if d.before != nil {
		d.before()
	}
	newest, err := d.syncBlocks(blk)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = false
	close(d.done)
	if err != nil {
		d.failed = fmt.Errorf("the log could not be synced to disk (%w); no write is acknowledged after it until the server restarts", err)
		return d.failed
	}
	d.blk = newest
	d.rounds.Add(1)
	if target > d.synced.Load() {
		d.synced.Store(target)
	}
	return nil
}

// syncBlocks fsyncs block blk and every newer one, and the directory when a
// new block appeared; it returns the newest block's index. A message stored
// before the call is in one of them: nats-server appends to its newest
// block and numbers a new one after the last (blocks start at 1; 0 means
// none seen yet).
func (d *durable) syncBlocks(blk int) (int, error) {
	grew := false
	if blk == 0 {
		n, ok, err := d.newestBlock()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, fmt.Errorf("no block file in %s", d.dir)
		}
		blk, grew = n, true
	}
	for {
		if err := syncPath(d.block(blk), false); err != nil {
			return blk, err
		}
		if _, err := os.Stat(d.block(blk + 1)); err != nil {
			break
		}
		blk, grew = blk+1, true
	}
	if grew {
		if err := syncPath(d.dir, true); err != nil {
			return blk, err
		}
	}
	return blk, nil
}

func (d *durable) block(n int) string { return filepath.Join(d.dir, strconv.Itoa(n)+".blk") }

// newestBlock lists the directory for the highest block index.
func (d *durable) newestBlock() (int, bool, error) {
	es, err := os.ReadDir(d.dir)
	if err != nil {
		return 0, false, err
	}
	best, ok := 0, false
	for _, e := range es {
		if n, isBlk := blockIndex(e.Name()); isBlk && (!ok || n > best) {
			best, ok = n, true
		}
	}
	return best, ok, nil
}

// syncPath syncs a directory (fsync) or a file (its data and size:
// datasync) by name.
func syncPath(path string, dir bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	var serr error
	if dir {
		serr = f.Sync()
	} else {
		serr = datasync(f)
	}
	cerr := f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// flush syncs the stream's files now, whatever was asked: for a stream
// written by other means than appends (an object store bucket).
func (d *durable) flush() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed != nil {
		return d.failed
	}
	newest, err := d.syncBlocks(d.blk)
	if err != nil {
		d.failed = fmt.Errorf("the log could not be synced to disk (%w); no write is acknowledged after it until the server restarts", err)
		return d.failed
	}
	d.blk = newest
	d.rounds.Add(1)
	return nil
}

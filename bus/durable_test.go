package bus

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// TestGroupCommit appends from sixteen writers at once on a node with
// fsync before ack, and checks that every append returned only once the
// log's files were synced past it, that a follower was handed nothing that
// was not, and that the writers shared fsyncs (fewer rounds than appends).
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	_, l := startLog(t, true)
	if l.sync == nil {
		t.Fatal("a single node with SyncAlways does not group commit")
	}
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followErr := make(chan error, 1)
	go func() {
		followErr <- l.Follow(fctx, 1, func(seq events.Seq, _ []byte) error {
			if s := l.sync.synced.Load(); s < uint64(seq) {
				return fmt.Errorf("follower handed %d while the disk holds up to %d", seq, s)
			}
			return nil
		})
	}()
	const writers, each = 16, 20
	before := l.sync.rounds.Load()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agg := events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprint("block-", w)}
			var version events.Seq
			for i := 0; i < each; i++ {
				seq, err := l.Append(ctx, events.Batch{Command: fmt.Sprint("c", w, "-", i),
					Expect: []events.Expectation{{Aggregate: agg, Version: version}},
					Events: []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: benchEvent()}}})
				if err != nil {
					errs <- err
					return
				}
				if s := l.sync.synced.Load(); s < uint64(seq) {
					errs <- fmt.Errorf("append of %d returned with the disk holding up to %d", seq, s)
					return
				}
				version = seq
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rounds := l.sync.rounds.Load() - before
	t.Logf("%d appends, %d fsync rounds", writers*each, rounds)
	if rounds == 0 || rounds >= writers*each {
		t.Fatalf("%d fsync rounds for %d concurrent appends: none shared", rounds, writers*each)
	}
	// A retry of a stored command (a duplicate) returns the original,
	// synced too.
	agg := events.Aggregate{Kind: events.KindBlock, ID: "block-0"}
	seq, err := l.Append(ctx, events.Batch{Command: "c0-0", Events: []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: benchEvent()}}})
	if err != nil || seq == 0 || l.sync.synced.Load() < uint64(seq) {
		t.Fatalf("retried append: %d %v", seq, err)
	}
	stopFollow()
	if err := <-followErr; err != nil && fctx.Err() == nil {
		t.Fatal(err)
	}
}

// TestGroupCommitOff checks the other modes: nats-server syncing each
// write (SyncInServer), and no fsync at all, leave the log's files alone.
func TestGroupCommitOff(t *testing.T) {
	for _, tc := range []struct {
		name           string
		sync, inServer bool
	}{{"in server", true, true}, {"relaxed", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig(t.TempDir())
			cfg.SyncAlways, cfg.SyncInServer = tc.sync, tc.inServer
			s, err := StartServer(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l, err := OpenLog(context.Background(), s, LogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if l.sync != nil || l.fileSync != nil {
				t.Fatal("group commit on")
			}
			if s.ns.JetStreamConfig().SyncAlways != tc.sync {
				t.Fatalf("nats-server SyncAlways %v", s.ns.JetStreamConfig().SyncAlways)
			}
		})
	}
}

// TestGroupCommitFailureIsFinal: once syncing the log fails, no later wait
// calls a write durable, even when a later fsync would succeed (the kernel
// may have dropped the pages the failed one could not write).
func TestGroupCommitFailureIsFinal(t *testing.T) {
	dir := t.TempDir()
	d := &durable{dir: dir} // no block file yet: the first round fails
	if err := d.wait(context.Background(), 1); err == nil {
		t.Fatal("a round with no block file to sync succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, "1.blk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.syncBlocks(1); err != nil {
		t.Fatalf("the block file itself syncs: %v", err)
	}
	if err := d.wait(context.Background(), 2); err == nil {
		t.Fatal("after a failed round a later wait called a write durable")
	}
	if err := d.flush(); err == nil {
		t.Fatal("after a failed round flush succeeded")
	}
}

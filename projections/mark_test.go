package projections_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// Many waiters for many sequences all wake as the mark passes theirs,
// with no wake-up lost between a waiter's check and its wait.
func TestMarkWakesEveryWaiter(t *testing.T) {
	var m projections.Mark
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const top = 20_000
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := events.Seq(w); seq <= top; seq += 997 {
				if err := m.WaitFor(ctx, seq, "test"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for seq := events.Seq(1); seq <= top; seq++ {
		m.Set(seq)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Moved back (a rebuilt index), it makes waiters wait again.
	m.Set(10)
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	if err := m.WaitFor(wctx, 11, "test"); err == nil {
		t.Fatal("waiting for 11 with the mark at 10 returned")
	}
}

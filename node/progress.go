package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/engram-dev/engram/events"
)

// DefaultProgressEvery is how often a long replay or index catch-up logs
// its progress when Config.ProgressEvery is 0.
const DefaultProgressEvery = 5 * time.Second

// reportEvery is how often a replay's progress goes to Config.OnReplay.
const reportEvery = 100 * time.Millisecond

// Progress is how far a replay has come.
type Progress struct {
	Done, Total events.Seq // the last sequence applied, and the one to reach
}

// Percent is Done as a whole percentage of Total (100 when Total is 0).
func (p Progress) Percent() int {
	if p.Total == 0 || p.Done >= p.Total {
		return 100
	}
	return int(uint64(p.Done) * 100 / uint64(p.Total))
}

// watchProgress follows applied() from its value now towards total until
// stop is closed or total is reached: every reportEvery it calls report
// (when not nil), and every logEvery it logs done/total, the rate and the
// time left. Nothing is logged for work that ends within the first
// logEvery, so a quick start stays quiet.
func watchProgress(stop <-chan struct{}, logger *slog.Logger, what string, applied func() events.Seq, total events.Seq, logEvery time.Duration, report func(Progress)) {
	began, from := time.Now(), applied()
	tick := time.NewTicker(min(reportEvery, logEvery))
	defer tick.Stop()
	lastLog := began
	logged := false
	for {
		done := applied()
		if report != nil {
			report(Progress{Done: done, Total: total})
		}
		if done >= total {
			if logged {
				logger.Info(what+" done", "events", uint64(total-from), "took", time.Since(began).Round(time.Millisecond))
			}
			return
		}
		if now := time.Now(); now.Sub(lastLog) >= logEvery {
			lastLog, logged = now, true
			elapsed := now.Sub(began).Seconds()
			rate := float64(done-from) / elapsed
			attrs := []any{"done", uint64(done), "total", uint64(total), "percent", Progress{done, total}.Percent(), "rate", int(rate)}
			if rate > 0 {
				attrs = append(attrs, "eta", (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second))
			}
			logger.Info(what, attrs...)
		}
		select {
		case <-stop:
			// The wait may end between two ticks: say it finished.
			if logged && applied() >= total {
				logger.Info(what+" done", "events", uint64(total-from), "took", time.Since(began).Round(time.Millisecond))
			}
			return
		case <-tick.C:
		}
	}
}

// catchUp waits until the projections hold everything in the log now,
// reporting progress as watchProgress does.
func (n *Node) catchUp(ctx context.Context, cfg Config) error {
	last, err := n.Log.LastSeq(ctx)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchProgress(stop, n.log, "replaying the log", n.Projection.Applied, last, cfg.progressEvery(), cfg.OnReplay)
	}()
	err = n.Projection.WaitFor(ctx, last)
	close(stop)
	<-done
	if err == nil && cfg.OnReplay != nil {
		cfg.OnReplay(Progress{Done: last, Total: last})
	}
	return err
}

// watchIndex logs the search index's catch-up with the log as it was at
// start, when that takes a while (a rebuild, a long absence), until it has
// caught up or life ends.
func (n *Node) watchIndex(ctx, life context.Context, cfg Config) {
	last, err := n.Log.LastSeq(ctx)
	if err != nil || n.index.Applied() >= last {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		watchProgress(life.Done(), n.log, "indexing the log for search", n.index.Applied, last, cfg.progressEvery(), nil)
	}()
}

func (c Config) progressEvery() time.Duration {
	if c.ProgressEvery > 0 {
		return c.ProgressEvery
	}
	return DefaultProgressEvery
}

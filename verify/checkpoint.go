package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// Head is the last checkpoint a server wrote, recorded in a file beside
// the log (HeadFile) so that a log truncated to before it shows.
type Head struct {
	Checkpoint events.Seq `json:"checkpoint"` // the checkpoint's own sequence
	Through    events.Seq `json:"through"`
	Sealed     uint64     `json:"sealed"`
	Digest     string     `json:"digest"`
}

// ReadHead reads the head file at path; nil, nil when there is none.
func ReadHead(path string) (*Head, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil || h.Checkpoint == 0 {
		return nil, fmt.Errorf("read %s: not a log head", path)
	}
	return &h, nil
}

// writeHead replaces the head file at path.
func writeHead(path string, h Head) error {
	b, _ := json.Marshal(h)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Defaults of CheckpointConfig.
const (
	DefaultCheckpointEvery    = 10000
	DefaultCheckpointInterval = time.Minute
)

// CheckpointConfig says how often checkpoints are written. The zero value
// takes the defaults.
type CheckpointConfig struct {
	// Every is how many sealed messages a checkpoint is written after; 0
	// means DefaultCheckpointEvery, negative never by count.
	Every int
	// Interval is the longest a sealed message waits for a checkpoint that
	// covers it; 0 means DefaultCheckpointInterval, negative never by time.
	// With both negative no checkpoints are written.
	Interval time.Duration
	// HeadFile is where the last checkpoint written is recorded; "" for
	// nowhere (then only checkpoints in the log show truncation before them).
	HeadFile string
	Logger   *slog.Logger // nil discards
}

// Off reports whether the configuration writes no checkpoints.
func (c CheckpointConfig) Off() bool { return c.Every < 0 && c.Interval < 0 }

// Checkpointer follows the log (subjects and headers only) folding every
// seal into the running digest, and appends a checkpoint every so many
// sealed messages or so often. It also logs, loudly, any message without a
// seal after sealing began: something published onto an event subject
// around the server. Several nodes may run one: a checkpoint expects the
// last one, so only one of concurrent ones is stored.
type Checkpointer struct {
	log *bus.Log
	cfg CheckpointConfig
	lg  *slog.Logger

	mu      sync.Mutex // guards the fields below
	chain   chain
	sealed  int        // sealed messages folded in, checkpoints not counted
	covered int        // sealed, as of the last checkpoint written
	lastCP  events.Seq // the last checkpoint's sequence
	writing bool
}

// NewCheckpointer returns a checkpointer of l, which must have a sealer.
func NewCheckpointer(l *bus.Log, cfg CheckpointConfig) *Checkpointer {
	if cfg.Every == 0 {
		cfg.Every = DefaultCheckpointEvery
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{log: l, cfg: cfg, lg: lg}
}

// Run follows the log and writes checkpoints until ctx ends; it returns
// ctx's error, or the first I/O failure. It resumes after the last
// checkpoint in the log when its seal holds.
func (c *Checkpointer) Run(ctx context.Context) error {
	sealer := c.log.Sealer()
	if sealer == nil || c.cfg.Off() {
		return nil
	}
	from := events.Seq(1)
	m, ok, err := c.log.LastRaw(ctx, bus.AggregateFilter(c.log.Tenant(), events.Checkpoints))
	if err != nil {
		return err
	}
	if ok {
		c.lastCP = m.Seq
		env, derr := events.Decode(m.Data)
		cp, isCP := env.Event.(*events.LogCheckpointed)
		if serr := sealer.Check(m.Subject, m.Header, m.Data); serr != nil || derr != nil || !isCP {
			c.lg.Error("the last checkpoint in the log does not verify; recomputing from the start (run engram verify)", "seq", m.Seq, "seal", serr, "decode", derr)
		} else if ch, ok := chainAt(cp); ok {
			c.chain, from = ch, cp.Through+1
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.cfg.Interval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(c.cfg.Interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.write(ctx)
				}
			}
		}()
	}
	cpPrefix := bus.AggregateFilter(c.log.Tenant(), events.Checkpoints)
	cpPrefix = cpPrefix[:len(cpPrefix)-1]
	// Ahead of the disk: what it folds in is told to no one but the log,
	// in a checkpoint whose own append is acknowledged once on disk with
	// everything before it. Waiting for each message's fsync instead would
	// lead fsyncs of its own for writes whose writers did not ask for one
	// yet (an input appended ahead, see events.Batch.Ahead).
	return c.log.ReadRaw(ctx, from, bus.RawOptions{HeadersOnly: true, Follow: true, Ahead: true}, func(m bus.RawMsg) error {
		seal := bus.Seal(m.Header)
		isCP := strings.HasPrefix(m.Subject, cpPrefix)
		c.mu.Lock()
		if seal == "" && c.chain.n > 0 {
			c.lg.Error("TAMPERING: a message without a seal was stored after sealing began; engram did not append it (run engram verify)", "seq", m.Seq, "subject", m.Subject)
		}
		c.chain.add(m.Seq, seal)
		if isCP {
			c.lastCP = max(c.lastCP, m.Seq)
		} else if seal != "" {
			c.sealed++
		}
		due := c.cfg.Every > 0 && c.sealed-c.covered >= c.cfg.Every
		c.mu.Unlock()
		if due {
			c.write(ctx)
		}
		return nil
	})
}

// write appends a checkpoint covering what has been folded in, if any
// sealed message is not yet covered and no other write is under way.
func (c *Checkpointer) write(ctx context.Context) {
	c.mu.Lock()
	if c.sealed == c.covered || c.writing {
		c.mu.Unlock()
		return
	}
	c.writing = true
	at, sealed, lastCP := c.chain, c.sealed, c.lastCP
	c.mu.Unlock()
	cp := &events.LogCheckpointed{Through: at.seq, Sealed: at.n, Digest: at.digest()}
	seq, err := c.log.Append(ctx, events.Batch{
		Command: fmt.Sprintf("log-checkpoint-%d-%s", at.seq, cp.Digest[:16]),
		Expect:  []events.Expectation{{Aggregate: events.Checkpoints, Version: lastCP}},
		Events:  []events.Envelope{{Aggregate: events.Checkpoints, Time: time.Now().UTC(), Event: cp}},
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing = false
	var ce *events.ConflictError
	switch {
	case errors.As(err, &ce):
		// Another node checkpointed first; the next trigger tries again.
		c.lastCP = max(c.lastCP, ce.Latest)
		return
	case err != nil:
		if ctx.Err() == nil {
			c.lg.Warn("write log checkpoint", "err", err)
		}
		return
	}
	c.lastCP = max(c.lastCP, seq)
	c.covered = sealed
	if c.cfg.HeadFile != "" {
		if err := writeHead(c.cfg.HeadFile, Head{Checkpoint: seq, Through: at.seq, Sealed: at.n, Digest: cp.Digest}); err != nil {
			c.lg.Warn("record the last log checkpoint", "file", filepath.Base(c.cfg.HeadFile), "err", err)
		}
	}
}

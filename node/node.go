// Package node assembles one engram node: the embedded NATS server, the
// event log, the projections that follow it and the service over them, with
// ordered start-up and shutdown. The server binary and the Local client both
// run a node.
package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/sandbox"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/service"
	"github.com/engram-dev/engram/tokens"
)

// Config configures a node. Start from DefaultConfig.
type Config struct {
	DataDir       string         // everything the node stores lives under it
	NATSAddr      string         // NATS client listener "host:port"; "" for none
	NATSToken     string         // token NATS clients must present; "" for none
	NATSTLS       *tls.Config    // TLS NATS clients must use on NATSAddr; nil for none
	SyncAlways    bool           // fsync every event before acknowledging it
	SnapshotEvery int            // events between projection snapshots; 0 = default, <0 = never
	NoRestore     bool           // ignore saved snapshots and replay the whole log
	Service       service.Config // models, version, clock
	Python        string         // interpreter for tool schemas; "" means python3
	ToolPool      int            // pre-started interpreters for custom tools (see sandbox.Config.Pool)
	Logger        *slog.Logger   // nil discards
	// Metrics, when set, records the service's work and gains a collector of
	// the stream's size, the projections' and index's lag and jobs by
	// state; nil records nothing.
	Metrics *metrics.Metrics
	// OnReplay, when set, is called from Start with the replay's progress
	// while the projections catch up with the log (every 100 ms, and once
	// at the end); it must not block.
	OnReplay func(Progress)
	// ProgressEvery is how often a long replay or search-index catch-up
	// logs its progress; 0 means DefaultProgressEvery.
	ProgressEvery time.Duration
}

// DefaultConfig returns the configuration of a durable single node.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, SyncAlways: true, ToolPool: 2}
}

// Node is a running engram node.
type Node struct {
	Service    *service.Service
	Projection *projections.Projection
	Log        *bus.Log
	NATS       *bus.Server

	log       *slog.Logger
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
	snapshots bool
	responder *bus.Responder
	inputs    *bus.Inputs
	runCtx    context.Context
	dmu       sync.Mutex             // guards busy and closing
	busy      map[string][]bus.Input // agents with a running goroutine, and their queued inputs
	closing   bool
	lock      *os.File
	index     *indexer
	tools     *sandbox.Runner // the node's own tool runner, if it made one
	Ready     time.Duration   // how long Start took

	follower *projections.Follower // feeds Projection and index; runs under wg
}

// RebuildIndex builds the search index afresh from the whole log, beside
// the live one (which keeps serving), and swaps it in.
func (n *Node) RebuildIndex(ctx context.Context) error { return n.index.rebuild(ctx) }

// WithIndex calls fn with the live search index, which no rebuild swaps
// out while fn runs. fn must not keep it. Benchmarks use it to query the
// index directly.
func (n *Node) WithIndex(fn func(*search.Index)) {
	n.index.mu.RLock()
	defer n.index.mu.RUnlock()
	fn(n.index.ix)
}

// IndexedSeq is the last log sequence the search index holds.
func (n *Node) IndexedSeq() events.Seq { return n.index.Applied() }

// Start starts a node and returns once its projections hold everything in
// the log. The caller must Close it.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	began := time.Now()
	if cfg.DataDir == "" {
		return nil, errors.New("start node: no data directory")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ns, err := bus.StartServer(ctx, bus.Config{
		StoreDir: filepath.Join(cfg.DataDir, "nats"), Name: "engram", ClientAddr: cfg.NATSAddr,
		Token: cfg.NATSToken, SyncAlways: cfg.SyncAlways, Logger: logger.With("component", "nats"), TLS: cfg.NATSTLS,
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	l, err := bus.OpenLog(ctx, ns, bus.LogConfig{})
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	proj := projections.New(l, projections.Config{SnapshotEvery: cfg.SnapshotEvery, Logger: logger.With("component", "projections")})
	if !cfg.NoRestore {
		proj.Restore(ctx)
	}
	index, err := openIndexer(filepath.Join(cfg.DataDir, "index"), l, logger.With("component", "index"))
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	// One follower reads and decodes the log once for the read models
	// (applied as it reads) and the search index (from a queue of its own,
	// once the read models have caught up and the index is started).
	follower := projections.NewFollower(l, projections.FollowerConfig{Logger: logger.With("component", "follower")})
	follower.Feed(proj)
	index.feedFrom(follower)
	runCtx, cancel := context.WithCancel(context.Background())
	n := &Node{Projection: proj, Log: l, NATS: ns, log: logger, cancel: cancel, snapshots: cfg.SnapshotEvery >= 0, lock: lock,
		runCtx: runCtx, busy: map[string][]bus.Input{}, index: index, follower: follower}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := follower.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("following the log stopped", "err", err)
		}
	}()
	if err := n.catchUp(ctx, cfg); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: replay: %w", err)
	}
	deriver := pytool.NewDeriver(pytool.Config{Python: cfg.Python})
	if cfg.Service.CountTokens == nil {
		cfg.Service.CountTokens = countTokens
	}
	cfg.Service.Runs = runBus{ns: ns, tenant: l.Tenant()}
	if cfg.Service.Tools == nil {
		sb := sandbox.DefaultConfig()
		if cfg.Python != "" {
			sb.Python = cfg.Python
		}
		sb.HideDirs = []string{cfg.DataDir}
		sb.Pool = cfg.ToolPool
		runner := sandbox.New(sb)
		cfg.Service.Tools = runner
		n.tools = runner
		if runner.Contained() {
			logger.Info("tool sandbox", "isolation", runner.Isolation())
		} else {
			logger.Warn("tool sandbox: this host does not permit containing tools (user, mount, network and PID namespaces); tools run with less isolation", "isolation", runner.Isolation())
		}
	}
	if cfg.Service.Files == nil {
		cfg.Service.Files = l
	}
	if cfg.Service.Ingest == nil {
		cfg.Service.Ingest = ingester{}
	}
	n.index.start()
	n.watchIndex(ctx, cfg)
	cfg.Service.Search = n.index
	if cfg.Service.Logger == nil {
		cfg.Service.Logger = logger.With("component", "service")
	}
	var svcLog service.Log = l
	if cfg.Metrics != nil {
		cfg.Service.Metrics = cfg.Metrics
		svcLog = timedLog{Log: l, m: cfg.Metrics}
	}
	n.Service = service.New(svcLog, proj, deriver, cfg.Service)
	cfg.Metrics.Register(collector{n: n})
	if err := n.Service.EnsureBaseTools(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: base tools: %w", err)
	}
	if n.responder, err = ns.ServeAgentRequests(l.Tenant(), n.answer); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	// Inputs left unanswered by a crash are run now; their consumer
	// deliveries, when they come again, find them answered.
	for agentID, seq := range n.Service.Untaken() {
		n.dispatch(bus.Input{Seq: seq, AgentID: agentID})
	}
	if n.inputs, err = l.ConsumeInputs(ctx, n.dispatch); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	if k := n.Service.ResumeLoads(); k > 0 {
		logger.Info("resuming unfinished file loads", "jobs", k)
	}
	n.Ready = time.Since(began)
	logger.Info("node ready", "events", proj.Applied(), "took", n.Ready)
	return n, nil
}

// answer serves a send that arrived over NATS: the body is the REST body of
// POST /v1/agents/{id}/messages, the reply the LettaResponse or
// {"detail": ..., "kind": ...}.
func (n *Node) answer(ctx context.Context, agentID string, data []byte) []byte {
	fail := func(err error) []byte {
		b, _ := json.Marshal(map[string]string{"detail": fault.Message(err), "kind": fault.KindOf(err).String()})
		return b
	}
	var req api.SendMessage
	if err := json.Unmarshal(data, &req); err != nil {
		return fail(fault.E(fault.Invalid, "malformed JSON: %v", err))
	}
	inputs, err := service.Inputs(req)
	if err != nil {
		return fail(err)
	}
	opts := service.SendOptions{UseAssistantMessage: true}
	if len(inputs) > 0 {
		opts.Key = inputs[0].Otid // a resend with the same otid is the same send
	}
	resp, err := n.Service.SendMessage(ctx, agentID, inputs, opts)
	if err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(resp)
	return b
}

// dispatch queues an input for its agent's goroutine, starting one if the
// agent is idle: each agent answers its inputs one at a time, in order,
// while different agents run in parallel.
func (n *Node) dispatch(in bus.Input) {
	n.dmu.Lock()
	defer n.dmu.Unlock()
	if n.closing {
		return // not acknowledged: delivered again to whoever runs next
	}
	q, running := n.busy[in.AgentID]
	n.busy[in.AgentID] = append(q, in)
	if !running {
		n.wg.Add(1)
		go n.work(in.AgentID)
	}
}

// work answers an agent's queued inputs until none is left.
func (n *Node) work(agentID string) {
	defer n.wg.Done()
	for {
		n.dmu.Lock()
		q := n.busy[agentID]
		if len(q) == 0 || n.closing {
			delete(n.busy, agentID)
			n.dmu.Unlock()
			return
		}
		in := q[0]
		n.busy[agentID] = q[1:]
		n.dmu.Unlock()
		done := make(chan struct{})
		if in.Progress != nil {
			go func() { // keep the input ours while the run goes on
				t := time.NewTicker(bus.InputAckWait / 3)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						in.Progress()
					}
				}
			}()
		}
		_, err := n.Service.Process(n.runCtx, agentID, in.Seq, service.SendOptions{})
		close(done)
		if err != nil {
			if n.runCtx.Err() != nil {
				return // stopping: the input comes again after restart
			}
			n.log.Warn("agent run failed", "agent", agentID, "err", err)
		}
		if in.Ack != nil {
			in.Ack()
		}
	}
}

// runBus carries run reports over the node's NATS connection.
type runBus struct {
	ns     *bus.Server
	tenant string
}

func (r runBus) PublishRun(inputID string, data []byte) error {
	return r.ns.PublishRun(r.tenant, inputID, data)
}

func (r runBus) WatchRun(inputID string, fn func([]byte)) (func(), error) {
	return r.ns.WatchRun(r.tenant, inputID, fn)
}

// Close stops the node in order: stop applying events, write a snapshot,
// close the NATS connection and stop the embedded server. It is safe to call
// more than once.
func (n *Node) Close(ctx context.Context) {
	n.once.Do(func() {
		if n.responder != nil {
			n.responder.Close()
		}
		if n.inputs != nil {
			n.inputs.Stop()
		}
		n.dmu.Lock()
		n.closing = true
		n.dmu.Unlock()
		n.cancel()
		n.wg.Wait()
		if n.Service != nil {
			n.Service.Close()
		}
		if n.index != nil {
			if err := n.index.close(); err != nil {
				n.log.Warn("closing the search index failed", "err", err)
			}
		}
		if n.snapshots {
			if err := n.Projection.Snapshot(ctx); err != nil {
				n.log.Warn("final snapshot failed", "err", err)
			}
		}
		if n.tools != nil {
			n.tools.Close()
		}
		n.NATS.Close()
		n.lock.Close()
	})
}

// countTokens counts with cl100k_base, loading it on first use (loading
// takes ~0.1 s, which most runs never need).
func countTokens(text string) int {
	c, err := cl100k()
	if err != nil {
		return len(text)/4 + 1
	}
	return c.Count(text)
}

var cl100k = sync.OnceValues(func() (*tokens.Counter, error) { return tokens.ForEncoding(tokens.CL100KBase) })

// Package node assembles one engram node: the embedded NATS server, the
// event log, the projections that follow it and the service over them, with
// ordered start-up and shutdown. The server binary and the Local client both
// run a node.
package node

import (
	"context"
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
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/service"
	"github.com/engram-dev/engram/tokens"
)

// Config configures a node. Start from DefaultConfig.
type Config struct {
	DataDir       string         // everything the node stores lives under it
	NATSAddr      string         // NATS client listener "host:port"; "" for none
	NATSToken     string         // token NATS clients must present; "" for none
	SyncAlways    bool           // fsync every event before acknowledging it
	SnapshotEvery int            // events between projection snapshots; 0 = default, <0 = never
	NoRestore     bool           // ignore saved snapshots and replay the whole log
	Service       service.Config // models, version, clock
	Python        string         // interpreter for tool schemas; "" means python3
	Logger        *slog.Logger   // nil discards
}

// DefaultConfig returns the configuration of a durable single node.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, SyncAlways: true}
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
	lock      *os.File
	Ready     time.Duration // how long Start took
}

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
		Token: cfg.NATSToken, SyncAlways: cfg.SyncAlways, Logger: logger.With("component", "nats"),
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
	runCtx, cancel := context.WithCancel(context.Background())
	n := &Node{Projection: proj, Log: l, NATS: ns, log: logger, cancel: cancel, snapshots: cfg.SnapshotEvery >= 0, lock: lock}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := proj.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("projection stopped", "err", err)
		}
	}()
	if err := proj.CatchUp(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: replay: %w", err)
	}
	deriver := pytool.NewDeriver(pytool.Config{Python: cfg.Python})
	if cfg.Service.CountTokens == nil {
		cfg.Service.CountTokens = countTokens
	}
	n.Service = service.New(l, proj, deriver, cfg.Service)
	if err := n.Service.EnsureBaseTools(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: base tools: %w", err)
	}
	if n.responder, err = ns.ServeAgentRequests(l.Tenant(), n.answer); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.resumePending(runCtx)
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
	resp, err := n.Service.SendMessage(ctx, agentID, inputs, service.SendOptions{UseAssistantMessage: true})
	if err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(resp)
	return b
}

// resumePending answers, in the background, messages that were accepted
// before the last stop but never answered (the step did not commit).
func (n *Node) resumePending(ctx context.Context) {
	ids, err := n.Service.Pending(ctx)
	if err != nil || len(ids) == 0 {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for _, id := range ids {
			if _, err := n.Service.Resume(ctx, id); err != nil {
				n.log.Warn("could not answer a pending message", "agent", id, "err", err)
			}
		}
	}()
}

// Close stops the node in order: stop applying events, write a snapshot,
// close the NATS connection and stop the embedded server. It is safe to call
// more than once.
func (n *Node) Close(ctx context.Context) {
	n.once.Do(func() {
		if n.responder != nil {
			n.responder.Close()
		}
		n.cancel()
		n.wg.Wait()
		if n.snapshots {
			if err := n.Projection.Snapshot(ctx); err != nil {
				n.log.Warn("final snapshot failed", "err", err)
			}
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

// Package node assembles one engram node: the embedded NATS server, the
// event log, the projections and the search index that follow it, the
// service over them and the runner that runs the agents whose partitions
// the node owns, with ordered start-up and shutdown. The server binary and
// the Local client both run a node.
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
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/runner"
	"github.com/engram-dev/engram/sandbox"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/secrets"
	"github.com/engram-dev/engram/service"
	"github.com/engram-dev/engram/tokens"
	"github.com/engram-dev/engram/verify"
)

// Config configures a node. Start from DefaultConfig.
type Config struct {
	DataDir       string         // everything the node stores lives under it
	NATSAddr      string         // NATS client listener "host:port"; "" for none
	NATSToken     string         // the admin's NATS token; "" for none (organizations' API keys work either way)
	NATSTLS       *tls.Config    // TLS NATS clients must use on NATSAddr; nil for none
	SyncAlways    bool           // fsync every event before acknowledging it
	SnapshotEvery int            // events between projection snapshots; 0 = default, <0 = never
	NoRestore     bool           // ignore saved snapshots and replay the whole log
	Service       service.Config // models, version, clock
	Run           runner.Config  // how agents run: tools, step limit, token counter (Runs, Metrics, Logger and Clock are set here)
	Python        string         // interpreter for tool schemas; "" means python3
	Tools         ToolsMode      // when custom Python tools run; "" means ToolsContained
	MaxRuns       int            // agents running at once on this node; 0 means runner.DefaultMaxRuns
	ToolPool      int            // pre-started interpreters for custom tools (see sandbox.Config.Pool)
	Logger        *slog.Logger   // nil discards
	// BeforeSync, when set, is called before each fsync round of the log
	// (bus.LogConfig.BeforeSync). It exists for fault-injection tests;
	// leave it nil.
	BeforeSync func()
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
	// IndexLinger is how long a log message may wait in the search index's
	// queue for others to join it before the index writes them together; a
	// search waiting for the message hurries it. 0 means
	// DefaultIndexLinger; < 0 writes each message as it comes.
	IndexLinger time.Duration
	// Checkpoints says how often the log's tamper-evidence checkpoints are
	// written (verify.CheckpointConfig; its HeadFile and Logger are set
	// here). The zero value takes the defaults; Every and Interval both
	// negative write none. Messages are sealed either way.
	Checkpoints verify.CheckpointConfig

	// NodeName names this node to NATS; it must be unique in a cluster and
	// stable across restarts. "" means "engram".
	NodeName string
	// Cluster, when not nil, makes the node a member of a cluster: its
	// embedded NATS server joins the others' and the log is replicated
	// (see bus.Cluster). Nil runs the node alone.
	Cluster *bus.Cluster
	// NATSURL, when set, is an existing NATS (server or cluster, with
	// JetStream) the node uses instead of embedding one; NATSAddr,
	// NATSToken, NATSTLS, SyncAlways and Cluster are then ignored. Nodes
	// sharing it spread the agents' partitions as cluster members do, and
	// must have distinct NodeNames and share LogKeyFile.
	NATSURL string
	// NATSCreds is a credentials file for NATSURL; NATSURLToken a token.
	NATSCreds, NATSURLToken string
	// LogKeyFile is the file of the key that seals the log's messages; ""
	// means <DataDir>/log.key. It is made on first start when missing.
	// The members of a cluster must share one key (each given a copy of
	// the same file), or verify reports the others' messages as sealed
	// with another key.
	LogKeyFile string
	// NATSRateLimit, NATSRateBurst and MaxRunsPerOrg bound what each
	// organization sends over NATS, as the REST server's limits bound its
	// requests: sends a second (0: no limit; a burst of NATSRateBurst, 0
	// meaning the rate rounded up), counted apart from REST's requests, and
	// runs in progress (stored and not ended, on any node; 0: no limit),
	// counted with REST's sends. A send over either is answered
	// {"detail", "kind": "unavailable"} and stores nothing.
	NATSRateLimit float64
	NATSRateBurst int
	MaxRunsPerOrg int
	// KeyWatch is how often the embedded NATS server looks for connections
	// made with an organization's API key that has since been revoked or
	// expired, and closes them; 0 means bus.DefaultKeyWatch.
	KeyWatch time.Duration
	// Replicas is the number of copies JetStream keeps of the log and the
	// object stores. 0 means 3 in a cluster (the cluster's size, if
	// smaller) and 1 alone; more than the cluster's size is refused.
	Replicas int
}

// ToolsMode says when users' Python tools run.
type ToolsMode string

const (
	// ToolsContained runs them only where the host permits containing them
	// (user, mount, network and PID namespaces: an unprivileged identity,
	// no network, a private /tmp, the data directory hidden); elsewhere a
	// call is refused with a message saying why. The default.
	ToolsContained ToolsMode = "contained"
	// ToolsAny runs them with whatever isolation the host permits, down to
	// resource limits alone; the log says what that is.
	ToolsAny ToolsMode = "any"
	// ToolsOff runs none.
	ToolsOff ToolsMode = "off"
)

// ParseToolsMode reads a --tools value.
func ParseToolsMode(s string) (ToolsMode, error) {
	switch m := ToolsMode(s); m {
	case ToolsContained, ToolsAny, ToolsOff:
		return m, nil
	case "":
		return ToolsContained, nil
	}
	return "", fmt.Errorf("tools mode must be contained, any or off, not %q", s)
}

// startTools uses runner for users' tools as cfg.Tools allows on this host.
func startTools(cfg *Config, n *Node, runner *sandbox.Runner, logger *slog.Logger) {
	switch {
	case runner.Contained():
		cfg.Run.Tools, n.tools = runner, runner
		logger.Info("tool sandbox", "isolation", runner.Isolation())
	case cfg.Tools == ToolsAny:
		cfg.Run.Tools, n.tools = runner, runner
		logger.Warn("tool sandbox: this host does not permit containing tools (user, mount, network and PID namespaces); they run with less isolation, as --tools=any allows", "isolation", runner.Isolation())
	default:
		runner.Close()
		cfg.Run.Tools = refusedTools{"custom Python tools are refused on this server: its host does not permit containing them (user, mount, network and PID namespaces); an administrator may start engram with --tools=any to run them with less isolation"}
		logger.Warn("tool sandbox: this host does not permit containing tools (user, mount, network and PID namespaces), so custom Python tools are refused; --tools=any runs them with less isolation", "isolation", runner.Isolation())
	}
}

// refusedTools answers every tool call with why tools do not run here.
type refusedTools struct{ why string }

func (r refusedTools) Run(context.Context, sandbox.Call) (sandbox.Result, error) {
	return sandbox.Result{}, errors.New(r.why)
}

// replicas resolves Config.Replicas, refusing what the cluster cannot hold.
func (c Config) replicas() (int, error) {
	size := 1
	if c.Cluster != nil {
		size = c.Cluster.Size()
	}
	r := c.Replicas
	if c.NATSURL != "" {
		// The NATS there decides what it can hold; its size is unknown here.
		if r < 0 {
			return 0, fmt.Errorf("--replicas %d: want 1 or more", r)
		}
		return max(r, 1), nil
	}
	if r == 0 {
		r = min(3, size)
	}
	if r < 1 || r > size {
		if c.Cluster == nil {
			return 0, fmt.Errorf("--replicas %d: a node alone keeps 1 copy; give --peers (and --cluster-addr) to run a cluster", r)
		}
		return 0, fmt.Errorf("--replicas %d: the cluster has %d members (--peers and this node), so at most %d replicas", r, size, size)
	}
	return r, nil
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
	closeErr  error // what the first Close did not stop cleanly
	snapshots bool
	responder *bus.Responder
	keyWatch  *bus.KeyWatch // closes NATS connections of keys that stop working
	limits    *natsLimits   // on sends over NATS
	inputs    *bus.Inputs
	untap     func()       // stops dispatching inputs as they are stored
	members   *bus.Members // in a cluster: the members' heartbeats; nil alone
	cluster   *bus.Cluster // the membership configured; nil alone
	pulled    atomic.Pointer[bus.Inputs]
	runner    *runner.Runner
	loop      *runner.Loop
	lock      *os.File
	dataDir   string
	index     *indexer
	tools     *sandbox.Runner // the node's own tool runner, if it made one
	Ready     time.Duration   // how long Start took
	// StartPhases is where Start's time went, step by step, in order.
	StartPhases []Phase

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
	phases := startPhases{last: began}
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
	replicas, err := cfg.replicas()
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// Work that waits on something else than NATS runs beside the start of
	// the server and the restore of the read models; Start joins it where
	// it needs it, and on failure before that (aside.cancel).
	var aside startAside
	defer aside.cancel()
	if cfg.Run.Tools == nil && cfg.Tools != ToolsOff {
		// The sandbox probes the host by running the interpreter.
		aside.probeTools(sandbox.New(sandboxConfig(cfg)))
	}
	if !cfg.NoRestore {
		aside.readCopy(cfg.DataDir, logger)
	}
	name := cfg.NodeName
	if name == "" {
		name = "engram"
	}
	ns, err := bus.StartServer(ctx, bus.Config{
		StoreDir: filepath.Join(cfg.DataDir, "nats"), Name: name, ClientAddr: cfg.NATSAddr,
		Token: cfg.NATSToken, SyncAlways: cfg.SyncAlways, Logger: logger.With("component", "nats"), TLS: cfg.NATSTLS,
		Cluster: cfg.Cluster, URL: cfg.NATSURL, Creds: cfg.NATSCreds, URLToken: cfg.NATSURLToken,
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	phases.mark("nats")
	sealer, err := openSealer(keyFile(cfg.DataDir, cfg.LogKeyFile), logger)
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	if cfg.Service.Secrets == nil {
		// Agents' tool secrets are sealed under a key of the data
		// directory, which the sandbox hides from tools.
		box, err := secrets.Load(cfg.DataDir)
		if err != nil {
			ns.Close()
			lock.Close()
			return nil, fmt.Errorf("start node: %w", err)
		}
		cfg.Service.Secrets = box
	}
	l, err := bus.OpenLog(ctx, ns, bus.LogConfig{Sealer: sealer, Replicas: replicas, BeforeSync: cfg.BeforeSync})
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	phases.mark("log")
	// The input consumers are made (a request to the server each) while
	// the read models are restored; the node pulls from them once it can
	// run what they deliver.
	aside.prepareInputs(ctx, l)
	// The follower reads ahead of the disk; the read models show clients
	// only what is on disk (bus/ahead.go).
	proj := projections.New(l, projections.Config{SnapshotEvery: cfg.SnapshotEvery, Logger: logger.With("component", "projections"), Durable: l.Durable})
	if !cfg.NoRestore && proj.RestoreCopy(ctx, aside.snapshotCopy()) {
		logger.Info("restored the read models from the snapshot's copy", "seq", proj.Applied())
	}
	phases.mark("restore")
	index, err := openIndexer(filepath.Join(cfg.DataDir, "index"), l, logger.With("component", "index"))
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	phases.mark("index")
	// One follower reads and decodes the log once for the read models
	// (applied as it reads) and the search index (from a queue of its own,
	// once the read models have caught up and the index is started).
	follower := projections.NewFollower(l.Ahead(), projections.FollowerConfig{Logger: logger.With("component", "follower")})
	// The message bodies first: what the read models hold, the cache holds
	// too, so a step reads the messages just stored without a log round
	// trip. The backlog of the start is not cached (see service.Bodies).
	end, err := l.LastSeq(ctx)
	if err != nil {
		ns.Close()
		lock.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	if cfg.Service.Bodies == nil {
		cfg.Service.Bodies = service.NewBodies(end)
	}
	follower.Feed(cfg.Service.Bodies)
	follower.Feed(proj)
	index.feedFrom(follower, cfg.IndexLinger)
	// life is the context of the node's own goroutines (under wg): Close
	// cancels it.
	life, cancel := context.WithCancel(context.Background())
	n := &Node{Projection: proj, Log: l, NATS: ns, log: logger, cancel: cancel, snapshots: cfg.SnapshotEvery >= 0, lock: lock, dataDir: cfg.DataDir,
		index: index, follower: follower}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := follower.Run(life); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("following the log stopped", "err", err)
		}
	}()
	n.checkpoint(life, cfg)
	if err := n.catchUp(ctx, cfg); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: replay: %w", err)
	}
	phases.mark("catch-up")
	deriver := pytool.NewDeriver(pytool.Config{Python: cfg.Python})
	if cfg.Run.CountTokens == nil {
		cfg.Run.CountTokens = countTokens
	}
	cfg.Service.Runs = newRunBus(ns, l.Tenant())
	if cfg.Run.Tools == nil {
		if cfg.Tools == ToolsOff {
			cfg.Run.Tools = refusedTools{"custom Python tools are off on this server (it was started with --tools=off)"}
			logger.Info("tool sandbox: custom Python tools are off")
		} else {
			startTools(&cfg, n, aside.tools(), logger)
		}
	}
	if cfg.Service.Files == nil {
		cfg.Service.Files = l
	}
	if cfg.Service.Ingest == nil {
		cfg.Service.Ingest = ingester{}
	}
	phases.mark("tools")
	n.watchIndex(ctx, life, cfg)
	cfg.Service.Search = n.index
	if cfg.Service.Logger == nil {
		cfg.Service.Logger = logger.With("component", "service")
	}
	cfg.Service.Verifier = logVerifier{log: l, head: filepath.Join(cfg.DataDir, verify.HeadFile)}
	var svcLog service.Log = l
	if cfg.Metrics != nil {
		cfg.Run.Metrics = cfg.Metrics
		svcLog = timedLog{Log: l, m: cfg.Metrics}
	}
	n.Service = service.New(svcLog, proj, deriver, cfg.Service)
	cfg.Metrics.Register(collector{n: n})
	if err := n.Service.EnsureBaseTools(ctx); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: base tools: %w", err)
	}
	phases.mark("base-tools")
	n.limits = newNATSLimits(cfg.NATSRateLimit, cfg.NATSRateBurst, cfg.MaxRunsPerOrg)
	if n.responder, err = ns.ServeAgentRequests(n.answer); err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	if cfg.NATSURL == "" {
		// Organizations' API keys authenticate NATS clients too.
		keys := newOrgKeys(n.Service, logger.With("component", "nats"))
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			keys.record(life)
		}()
		if n.keyWatch, err = ns.AuthorizeKeys(l.Tenant(), keys, cfg.KeyWatch); err != nil {
			n.Close(context.Background())
			return nil, fmt.Errorf("start node: %w", err)
		}
	}
	phases.mark("responders")
	cfg.Run.Runs, cfg.Run.Logger = cfg.Service.Runs, logger.With("component", "runner")
	if cfg.Run.Clock == nil {
		cfg.Run.Clock = cfg.Service.Clock
	}
	// A run reads the read models ahead of the disk (service.Ahead).
	n.loop = runner.NewLoop(n.Service.Ahead(), cfg.Run)
	n.runner = runner.New(n.loop, cfg.MaxRuns, cfg.Run.Logger)
	// Inputs left unanswered by a crash are run now; their consumer
	// deliveries, when they come again, find them answered. Not in a
	// cluster: there most agents are owned by other nodes, which run them
	// (their consumers deliver again whatever a dead node held).
	if cfg.Cluster == nil && cfg.NATSURL == "" {
		for agentID, seq := range n.Service.Untaken() {
			n.runner.Dispatch(bus.Input{Seq: seq, AgentID: agentID})
		}
	}
	prepared, err := aside.inputs()
	if err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	if cfg.Cluster == nil && cfg.NATSURL == "" {
		n.inputs, err = prepared, prepared.ConsumeAll(n.runner.Dispatch)
		// Alone, this node runs every agent: an input goes to the runner as
		// its append is stored (bus.Log.OnStored), not a consumer's hop
		// later; the consumer's delivery, when it comes, finds it answered
		// (or being answered) and is acknowledged after it.
		n.untap = l.OnStored(func(ms []bus.Stored) {
			for _, m := range ms {
				if agentID, ok := bus.InputOf(m.Subject); ok {
					n.runner.Dispatch(bus.Input{Seq: m.Seq, AgentID: agentID})
				}
			}
		})
	} else {
		n.inputs, err = n.consumeOwnInputs(ctx, cfg.Cluster, prepared)
	}
	if err != nil {
		n.Close(context.Background())
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.pulled.Store(n.inputs)
	phases.mark("inputs")
	if k := n.Service.ResumeLoads(); k > 0 {
		logger.Info("resuming unfinished file loads", "jobs", k)
	}
	// The search index catches up from here on, not sharing the CPUs with
	// the start (searches wait for it, as they do for any write).
	n.index.start()
	phases.mark("resume")
	n.Ready = time.Since(began)
	n.StartPhases = phases.done
	logger.Info("node ready", "events", proj.Applied(), "took", n.Ready, "phases", phases.String())
	return n, nil
}

// membersWait bounds how long a cluster member waits at start to hear the
// other members before it pulls partitions: the members it has not heard
// yet get theirs back from it later (see bus.ConsumeOwnInputs).
const membersWait = 2 * time.Second

// consumeOwnInputs joins the members' heartbeats and pulls the partitions
// this member owns among them. c is nil on an external NATS.
func (n *Node) consumeOwnInputs(ctx context.Context, c *bus.Cluster, in *bus.Inputs) (*bus.Inputs, error) {
	m, err := n.NATS.StartMembers(n.Log.Tenant(), n.status)
	if err != nil {
		in.Stop()
		return nil, err
	}
	n.members, n.cluster = m, c
	wait, size := membersWait, 1<<20
	if c != nil {
		size = c.Size()
	} else {
		// On an external NATS the number of nodes is unknown: listen for
		// a little over one heartbeat.
		wait = time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	m.WaitFor(wctx, size)
	cancel()
	in.ConsumeOwn(m, n.runner.Dispatch)
	return in, nil
}

// status fills in this node's heartbeat.
func (n *Node) status(m *bus.Member) {
	if in := n.pulled.Load(); in != nil {
		m.Partitions = in.Pulled()
	}
	m.Applied = uint64(n.Projection.Applied())
	m.MetaLeader, m.StreamLeader = n.NATS.Leader()
	m.Quorum = n.quorum()
}

// Members is the cluster's membership as this node hears it, nil alone.
func (n *Node) Members() *bus.Members { return n.members }

// Self is what this node would say about itself in a heartbeat.
func (n *Node) Self() bus.Member {
	m := bus.Member{Name: n.NATS.Name()}
	n.status(&m)
	return m
}

// answer serves a send that arrived over NATS on tenant's request subject:
// the body is the REST body of POST /v1/agents/{id}/messages, the reply the
// LettaResponse or {"detail": ..., "kind": ...}. The organization is the
// subject's tenant — the log's own token for the default organization, an
// organization's id for another — which the NATS permissions tie to the
// client's key (bus.AuthorizeKeys); an agent of another organization is
// 404, as over REST.
func (n *Node) answer(ctx context.Context, tenant, agentID string, data []byte) []byte {
	fail := func(err error) []byte {
		b, _ := json.Marshal(fault.ToWire(err))
		return b
	}
	switch {
	case tenant == n.Log.Tenant():
		ctx = service.WithOrganization(ctx, "")
	case events.ValidID(events.PrefixOrg, tenant):
		ctx = service.WithOrganization(ctx, tenant)
	default:
		return fail(fault.E(fault.NotFound, "Agent with id %s not found (no organization %q)", agentID, tenant))
	}
	if err := n.limits.check(ctx, tenant, n.Service); err != nil {
		return fail(err)
	}
	if err := n.Service.Visible(ctx, events.KindAgent, agentID); err != nil {
		return fail(err)
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

// Close stops the node in order: stop taking inputs and let the runs going
// on stop, stop applying events, write a snapshot, close the NATS connection
// and stop the embedded server. ctx bounds the waits for runs and background
// work; the node is shut down either way, and the error says what did not
// stop cleanly. It is safe to call more than once; later calls return the
// first's error.
func (n *Node) Close(ctx context.Context) error {
	n.once.Do(func() {
		var errs []error
		if n.keyWatch != nil {
			n.keyWatch.Close()
		}
		if n.responder != nil {
			n.responder.Close()
		}
		if n.members != nil && n.inputs != nil {
			// The other members pull this one's partitions from now on;
			// they get them once Handover below unpins them. Their pulls
			// must be waiting by then: an input given back with nobody
			// pulling waits out InputAckWait if the partition's consumer
			// leader (maybe this node) goes meanwhile.
			n.members.Leave()
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if !n.members.Cover(wctx, n.inputs.Pulled()) && len(n.members.Live()) > 0 {
				n.log.Warn("the other members did not take this node's partitions within 3 s; handing them over anyway")
			}
			cancel()
		}
		if n.untap != nil {
			n.untap()
		}
		if n.inputs != nil {
			n.inputs.Stop()
		}
		if n.runner != nil {
			if err := n.runner.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("agent runs did not stop: %w", err))
			}
		}
		if n.loop != nil {
			if err := n.loop.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if n.inputs != nil {
			// Nothing runs here any more: give the partitions to the other
			// nodes now rather than after the pin's timeout.
			if k, err := n.inputs.Handover(ctx); err != nil {
				n.log.Warn("handing partitions over failed; they move when their pins time out", "err", err)
			} else if k > 0 {
				n.log.Info("partitions handed over", "partitions", k)
			}
		}
		if n.members != nil {
			n.members.Close()
		}
		n.cancel()
		n.wg.Wait()
		if n.Service != nil {
			if err := n.Service.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if n.index != nil {
			if err := n.index.close(); err != nil {
				errs = append(errs, fmt.Errorf("close the search index: %w", err))
			}
		}
		if n.snapshots {
			data, err := n.Projection.SnapshotBytes(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("final snapshot: %w", err))
			} else if data != nil {
				// The next start decodes it while its server starts.
				if err := writeCopy(n.dataDir, data); err != nil {
					n.log.Warn("cannot leave a copy of the snapshot", "err", err)
				}
			}
		}
		if n.tools != nil {
			n.tools.Close()
		}
		n.NATS.Close()
		n.lock.Close()
		n.closeErr = errors.Join(errs...)
		if n.closeErr != nil {
			n.log.Warn("node stopped uncleanly", "err", n.closeErr)
		}
	})
	return n.closeErr
}

// countTokens counts with cl100k_base, loading it on first use (loading
// takes ~0.1 s, which most runs never need). Long texts are counted by
// their parts, remembered: a step's system prompt differs from the last
// one's only in its memory section.
func countTokens(text string) int {
	c, err := cl100k()
	if err != nil {
		return len(text)/4 + 1
	}
	return c.Count(text)
}

var cl100k = sync.OnceValues(func() (*tokens.Memo, error) {
	c, err := tokens.ForEncoding(tokens.CL100KBase)
	if err != nil {
		return nil, err
	}
	return c.Memo(4096), nil
})

// AddGoTool stores a tool whose function is fn, Go code run in this process
// (service.AddGoTool), and registers fn with the node's runs. After a
// restart, call it again: the tool is stored, its function is not.
func (n *Node) AddGoTool(ctx context.Context, t service.GoTool, fn runner.GoFunc) (api.Tool, error) {
	if fn == nil {
		return api.Tool{}, fault.E(fault.Invalid, "a Go tool needs a function")
	}
	tool, err := n.Service.AddGoTool(ctx, t)
	if err != nil {
		return tool, err
	}
	n.loop.RegisterGoTool(events.ToolID(tool.ID), fn)
	return tool, nil
}

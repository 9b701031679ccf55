package bus

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures the embedded NATS server. The zero value is not valid;
// start from DefaultConfig.
type Config struct {
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Name is the server's identity; it must be unique and stable per node.
	Name string
	// ClientAddr is "host:port" for a NATS client listener, or "" for none
	// (in-process connections only). Port 0 picks a free port.
	ClientAddr string
	// Token, when set, is required of every NATS client but engram's own
	// in-process connection. Whatever their credentials, clients other than
	// engram may not write the log (see clientAuth).
	Token string
	// SyncAlways makes every event appended to the log reach the disk
	// (fsync) before the append returns, so an acknowledged event survives
	// power loss on a single node. Default true. A single node does it by
	// group commit (see durable.go): appends waiting together share one
	// fsync; a cluster member has nats-server fsync each write.
	SyncAlways bool
	// SyncInServer, with SyncAlways, has nats-server fsync every write on
	// its own, one after another, as engram did before group commit; it is
	// there to measure group commit against.
	SyncInServer bool
	// MaxMemory caps JetStream memory stores. Zero means 256 MiB.
	MaxMemory int64
	// Logger receives the server's log lines. Nil discards them.
	Logger *slog.Logger
	// TLS, when not nil, is required of every client on the client
	// listener. The in-process connection does not use it.
	TLS *tls.Config
	// Cluster, when not nil, makes this server a member of a NATS cluster
	// running clustered JetStream; nil runs it alone.
	Cluster *Cluster
	// URL, when set, names an existing NATS server or cluster with
	// JetStream (nats://host:port, several comma-separated) to use instead
	// of embedding one: StoreDir, ClientAddr, Token, SyncAlways, MaxMemory,
	// TLS and Cluster are then ignored. Other engram nodes may share it:
	// they are told apart by Name.
	URL string
	// Creds is a NATS credentials file (.creds) for URL; "" for none.
	Creds string
	// URLToken is a token for URL; "" for none.
	URLToken string
}

// Cluster is this server's membership of a NATS cluster. Every member
// runs JetStream; streams are replicated by JetStream's own RAFT groups.
type Cluster struct {
	// Name is the cluster's name, the same on every member.
	Name string
	// Addr is "host:port" of this member's route listener, where the other
	// members connect.
	Addr string
	// Advertise is "host:port" the other members reach Addr by, when that
	// differs (NAT, containers); "" means Addr.
	Advertise string
	// Peers are the route URLs of the members, nats://host:port; this
	// member's own may be among them. Each member should list every member:
	// JetStream sizes its first quorum from the routes it is given.
	Peers []string
	// Token authenticates routes: members present it to each other and
	// refuse routes without it. "" accepts any route (loopback only; the
	// caller enforces that).
	Token string
	// Wait bounds how long StartServer waits for the JetStream meta
	// leader; zero means DefaultClusterWait (or the context's deadline,
	// when sooner).
	Wait time.Duration
}

// DefaultClusterWait is how long a cluster member waits at start for a
// JetStream meta leader: raft elections take 4-9 s, and members started by
// hand come up seconds apart.
const DefaultClusterWait = 60 * time.Second

// routeUser is the user name routes authenticate with; the token is its
// password.
const routeUser = "engram-route"

// Size is the number of members: the distinct peers, counting this member
// even when it does not list itself.
func (c *Cluster) Size() int {
	return len(c.routes())
}

// routes returns the peers' route URLs with this member's own added when
// missing, deduplicated by host:port.
func (c *Cluster) routes() []string {
	seen := map[string]bool{}
	var out []string
	add := func(hostport string) {
		if hostport != "" && !seen[hostport] {
			seen[hostport] = true
			out = append(out, hostport)
		}
	}
	for _, p := range c.Peers {
		add(strings.TrimPrefix(strings.TrimSpace(p), "nats://"))
	}
	self := c.Advertise
	if self == "" {
		self = c.Addr
	}
	add(self)
	return out
}

// check validates the membership before the server starts.
func (c *Cluster) check() error {
	if c.Name == "" {
		return errors.New("cluster: no cluster name")
	}
	if c.Addr == "" {
		return errors.New("cluster: no route address (--cluster-addr HOST:PORT)")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("cluster: route address %q: %w", c.Addr, err)
	}
	for _, p := range c.Peers {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.Scheme != "nats" || u.Port() == "" || u.Path != "" {
			return fmt.Errorf("cluster: peer %q: want nats://host:port", p)
		}
		if u.User != nil {
			return fmt.Errorf("cluster: peer %q: give the route credentials as the cluster token, not in the URL", p)
		}
	}
	return nil
}

// DefaultConfig returns a single-node configuration with durable writes.
func DefaultConfig(storeDir string) Config {
	return Config{StoreDir: storeDir, Name: "engram", SyncAlways: true}
}

// Server is a running embedded NATS server with JetStream, plus the
// process's own in-process connection to it.
type Server struct {
	auth *clientAuth
	ns   *server.Server
	conn *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger

	clustered bool
	internal  bool   // the client listener is not for clients (see StartServer)
	name      string // this node's name (Config.Name)
	external  bool   // connected to Config.URL; ns is nil
	// groupCommit: nats-server does not fsync; the log syncs its own files
	// (durable.go) in storeDir.
	groupCommit bool
	storeDir    string

	offers localOffers // token offers within the process, alone (runs.go)
}

// StartServer starts the embedded server, waits until JetStream is ready and
// opens the in-process connection. The caller must Close it.
func StartServer(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.URL != "" {
		return connectExternal(ctx, cfg)
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("start nats: no store directory")
	}
	if cfg.Name == "" {
		cfg.Name = "engram"
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = 256 << 20
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName:             cfg.Name,
		JetStream:              true,
		StoreDir:               filepath.Join(cfg.StoreDir),
		JetStreamMaxMemory:     cfg.MaxMemory,
		NoSigs:                 true,
		DontListen:             cfg.ClientAddr == "",
		SyncAlways:             cfg.SyncAlways,
		DisableJetStreamBanner: true,
	}
	// Group commit: engram syncs the log's files itself (durable.go).
	groupCommit := cfg.SyncAlways && !cfg.SyncInServer && cfg.Cluster == nil
	if groupCommit {
		opts.SyncAlways = false
	}
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, cfg.TLS, 2
	}
	internal := false // the client listener exists only for routing's sake
	if cfg.Cluster != nil {
		if err := cfg.Cluster.check(); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
		if err := clusterOptions(opts, cfg.Cluster); err != nil {
			return nil, fmt.Errorf("start nats: %w", err)
		}
		if cfg.ClientAddr == "" {
			// nats-server 2.15.2 starts routing only once its client
			// listener is up, which DontListen never opens (Start never
			// closes clientListenReady), so a member needs one. It gets a
			// random loopback port and, unless clients have a token, a
			// random one that only this process knows.
			cfg.ClientAddr, internal = "127.0.0.1:0", true
			opts.DontListen = false
			if cfg.Token == "" {
				cfg.Token = randomToken()
			}
		}
	}
	auth, err := newClientAuth(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	opts.CustomClientAuthentication = auth
	if cfg.ClientAddr != "" {
		host, port, err := net.SplitHostPort(cfg.ClientAddr)
		if err != nil {
			return nil, fmt.Errorf("start nats: client address %q: %w", cfg.ClientAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("start nats: client port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(&natsLogger{log: logger, fatal: fatal}, false, false, false)
	go ns.Start()
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !ns.ReadyForConnections(deadline) || !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		select {
		case msg := <-fatal:
			return nil, fmt.Errorf("start nats: %s", msg)
		default:
		}
		return nil, fmt.Errorf("start nats: JetStream not ready after %s (is %s writable and the client address free?)", deadline, cfg.StoreDir)
	}
	if cfg.Cluster != nil {
		if err := waitForMeta(ctx, ns, cfg.Cluster); err != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, fmt.Errorf("start nats: %w", err)
		}
	}
	copts := []nats.Option{nats.InProcessServer(ns), nats.Name("engram-internal"), nats.MaxReconnects(-1), nats.Token(auth.internal)}
	conn, err := nats.Connect("", copts...)
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats: in-process connection: %w", err)
	}
	js, err := jetstream.New(conn, jetstream.WithDefaultTimeout(10*time.Second))
	if err != nil {
		conn.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats: %w", err)
	}
	return &Server{auth: auth, ns: ns, conn: conn, js: js, log: logger, clustered: cfg.Cluster != nil, internal: internal, name: cfg.Name,
		storeDir: cfg.StoreDir, groupCommit: groupCommit}, nil
}

// connectExternal connects to the NATS of cfg.URL and waits until its
// JetStream answers. The server there is the operator's: engram does not
// control who else may publish onto its subjects (see clientAuth for what
// the embedded server enforces), so its permissions should give engram's
// user alone the right to publish on ev.> and engram.*.run.>,
// engram.*.node.> and engram.*.tokens.>.
func connectExternal(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Name == "" {
		cfg.Name = "engram"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{nats.Name("engram-" + cfg.Name), nats.MaxReconnects(-1)}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.URLToken != "" {
		opts = append(opts, nats.Token(cfg.URLToken))
	}
	conn, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(cfg.URL), err)
	}
	js, err := jetstream.New(conn, jetstream.WithDefaultTimeout(10*time.Second))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(cfg.URL), err)
	}
	err = retry(ctx, func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("NATS at %s: JetStream does not answer (is it enabled for this user?): %w", redact(cfg.URL), err)
	}
	return &Server{conn: conn, js: js, log: logger, clustered: true, name: cfg.Name, external: true}, nil
}

// redact drops credentials from a URL list for messages.
func redact(urls string) string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err == nil && p.User != nil {
			p.User = url.User("***")
			u = p.String()
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// External reports whether this node uses a NATS it did not start.
func (s *Server) External() bool { return s.external }

// clusterOptions sets the route listener, routes and their authentication.
func clusterOptions(opts *server.Options, c *Cluster) error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("cluster: route address %q: %w", c.Addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 {
		// A random route port would be unknown to the other members.
		return fmt.Errorf("cluster: route address %q: want a fixed port", c.Addr)
	}
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: p, Advertise: c.Advertise,
		// A member that is down is retried for as long as it takes.
		ConnectRetries: -1}
	if c.Token != "" {
		opts.Cluster.Username, opts.Cluster.Password = routeUser, c.Token
		opts.Cluster.AuthTimeout = 2
	}
	for _, hp := range c.routes() {
		u := &url.URL{Scheme: "nats", Host: hp}
		if c.Token != "" {
			u.User = url.UserPassword(routeUser, c.Token)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// waitForMeta waits until this member knows a JetStream meta leader and
// has caught up with it: before that every JetStream API call times out or
// answers "JetStream system temporarily unavailable".
func waitForMeta(ctx context.Context, ns *server.Server, c *Cluster) error {
	wait := c.Wait
	if wait <= 0 {
		wait = DefaultClusterWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if ns.JetStreamIsCurrent() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %q: no JetStream meta leader after %s (connected to %d of the %d other members): "+
				"a quorum (%d of %d) must be running and reachable; check --peers, --cluster-addr and that every member has the same cluster name and token",
				c.Name, wait.Round(time.Second), ns.NumRemotes(), c.Size()-1, c.Size()/2+1, c.Size())
		case <-t.C:
		}
	}
}

// randomToken returns 32 random hex digits.
func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// Clustered reports whether this server is a member of a cluster.
func (s *Server) Clustered() bool { return s.clustered }

// Name is the server's name (the node name).
func (s *Server) Name() string { return s.name }

// Conn is the in-process connection.
func (s *Server) Conn() *nats.Conn { return s.conn }

// JetStream is the JetStream context over the in-process connection.
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// ClientURL is the URL of the client listener, or "" when there is none.
func (s *Server) ClientURL() string {
	if s.external || s.ns.Addr() == nil || s.internal {
		return ""
	}
	return s.ns.ClientURL()
}

// Close drains the in-process connection and shuts the server down,
// waiting for it to finish. It is safe to call more than once.
func (s *Server) Close() {
	if !s.conn.IsClosed() {
		_ = s.conn.Drain()
		for i := 0; i < 100 && !s.conn.IsClosed(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		s.conn.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// natsLogger routes the server's log lines to slog and turns Fatalf into an
// error for StartServer instead of exiting the process.
type natsLogger struct {
	log   *slog.Logger
	fatal chan string
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}
func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}

// Leader says which JetStream leaderships this node holds: the meta leader
// (stream and consumer placement) and the event stream's leader (appends).
func (s *Server) Leader() (meta, stream bool) {
	if !s.clustered {
		return true, true
	}
	if s.external {
		return false, false // the NATS servers lead, not engram's nodes
	}
	return s.ns.JetStreamIsLeader(), s.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, StreamName)
}

// ClusterView is what JetStream says of the cluster, as one node sees it.
type ClusterView struct {
	MetaLeader   string    // the node leading the meta layer; "" while none
	StreamLeader string    // the node leading the event stream; "" while none or unknown
	Replicas     []Replica // the event stream's copies, leader first; none when unknown
}

// Replica is one copy of the event stream, as its leader reports it.
type Replica struct {
	Name    string
	Leader  bool
	Current bool
	Offline bool
	Lag     uint64
	Active  time.Duration // since the leader last heard from it
}

// View asks JetStream about the cluster: the meta leader from this node's
// own state, the stream's copies from its leader (which fails without a
// quorum: the view then holds the meta leader alone, and err says why).
// A node alone leads everything and holds the one copy.
func (s *Server) View(ctx context.Context) (ClusterView, error) {
	if !s.clustered {
		return ClusterView{MetaLeader: s.Name(), StreamLeader: s.Name(), Replicas: []Replica{{Name: s.Name(), Leader: true, Current: true}}}, nil
	}
	var v ClusterView
	if s.external {
		// Names there are the NATS servers'; the meta leader is not asked.
	} else if jsz, err := s.ns.Jsz(&server.JSzOptions{}); err == nil && jsz.Meta != nil {
		v.MetaLeader = jsz.Meta.Leader
	}
	st, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		return v, fmt.Errorf("event stream: %w", err)
	}
	c := st.CachedInfo().Cluster
	if c == nil {
		return v, nil
	}
	v.StreamLeader = c.Leader
	if c.Leader != "" {
		v.Replicas = append(v.Replicas, Replica{Name: c.Leader, Leader: true, Current: true})
	}
	for _, p := range c.Replicas {
		if p != nil {
			v.Replicas = append(v.Replicas, Replica{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active})
		}
	}
	return v, nil
}

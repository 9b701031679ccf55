// Package server runs a complete engram server: a node and the REST API on
// an HTTP listener, with the listen-address safety rule and an ordered,
// bounded shutdown.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
)

// Config configures a server. Start from DefaultConfig.
type Config struct {
	Node     node.Config
	HTTPAddr string // "host:port" of the REST API; port 0 picks a free port
	Token    string // required of REST and NATS clients when set
	// MetricsAddr, when set, is a second listener serving only GET /metrics
	// (under the same token rule); /metrics is on HTTPAddr either way.
	MetricsAddr string
	Logger      *slog.Logger
	// LocalModels lists the OpenAI-compatible servers probed once at start
	// when no model provider is configured (Node.Service.Providers is nil
	// or an empty *llm.Registry): those that answer become providers named
	// as listed, and their models the ones clients may pick. Nil probes
	// nothing; the engram binary probes llm.LocalEndpoints.
	LocalModels []llm.LocalEndpoint
	// ProbeTimeout bounds each probe; 0 means llm.DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// OnListen, when set, is called with the REST API's base URL as soon as
	// it listens, before the node has started (tests watch the start-up
	// through it).
	OnListen func(url string)

	// HTTP timeouts. Request headers must arrive within 10 s. A request
	// body must arrive within BodyTimeout (zero: rest.DefaultBodyTimeout,
	// 30 s), or UploadTimeout for a file upload (zero:
	// rest.DefaultUploadTimeout, 10 minutes); the answer is then 408. A
	// keep-alive connection left idle is closed after IdleTimeout (zero:
	// DefaultIdleTimeout). Nothing bounds how long a response takes: an
	// agent's step, or its SSE stream, runs as long as it needs.
	BodyTimeout   time.Duration
	UploadTimeout time.Duration
	IdleTimeout   time.Duration
	// AllowedHosts and CORSOrigins go to the REST handler (see
	// rest.Config): names the Host header may carry besides localhost and
	// IP literals, and origins browsers may call the API from.
	AllowedHosts []string
	CORSOrigins  []string
	// RateLimit (requests per second), RateBurst and MaxRunsPerOrg (runs
	// in progress) limit each organization, as rest.Config says, and its
	// sends over NATS (node.Config); zero means no limit.
	RateLimit     float64
	RateBurst     int
	MaxRunsPerOrg int
	// TLSCert and TLSKey are PEM files of a certificate (with its chain)
	// and its key. When set, the REST API serves HTTPS only, and NATS
	// clients on Node.NATSAddr must use TLS. Both or neither.
	TLSCert, TLSKey string
	// TLSClientCA is a PEM file of the certificate authorities whose
	// client certificates the REST API and NATS clients must present
	// (mutual TLS): a client without one signed by them is refused at the
	// handshake, before any token is looked at. It needs TLSCert; empty
	// means clients present none.
	TLSClientCA string
}

// DefaultIdleTimeout is how long an idle keep-alive connection is kept
// when Config.IdleTimeout is zero.
const DefaultIdleTimeout = 90 * time.Second

// DefaultConfig is Letta's port on loopback, NATS clients on 4222 on
// loopback, and durable writes.
func DefaultConfig(dataDir string) Config {
	n := node.DefaultConfig(dataDir)
	n.NATSAddr = "127.0.0.1:4222"
	return Config{Node: n, HTTPAddr: "127.0.0.1:8283"}
}

// Validate checks the configuration. Listening beyond loopback without a
// token is refused: anyone who can reach the port could read and change
// every agent.
func (c Config) Validate() error {
	if c.Node.DataDir == "" {
		return errors.New("no data directory")
	}
	if c.HTTPAddr == "" {
		return errors.New("no HTTP address")
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.MaxRunsPerOrg < 0 {
		return errors.New("--rate-limit, --rate-burst and --max-runs-per-org must not be negative")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	for _, a := range []struct{ what, addr string }{{"--http-addr", c.HTTPAddr}, {"--nats-addr", c.Node.NATSAddr}, {"--metrics-addr", c.MetricsAddr}} {
		if a.addr == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %v", a.what, a.addr, err)
		}
		if !Loopback(host) && c.Token == "" {
			return fmt.Errorf("%s %s listens beyond this machine; set a token with --token-file (or $ENGRAM_TOKEN) so that only clients that know it get in", a.what, a.addr)
		}
	}
	return c.validateCluster()
}

// validateCluster checks a cluster member's settings. Routes carry every
// event; beyond loopback they must authenticate, or anyone who reaches the
// route port could join the cluster and read or write the log.
func (c Config) validateCluster() error {
	cl := c.Node.Cluster
	if cl == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(cl.Addr)
	if err != nil {
		return fmt.Errorf("--cluster-addr %q: %v", cl.Addr, err)
	}
	if cl.Size() < 2 {
		return errors.New("--peers: list the route URLs of the cluster's members (nats://host:port,...), this node's included; a cluster needs at least 2 and should have 3")
	}
	local := Loopback(host)
	for _, p := range cl.Peers {
		u, err := url.Parse(p)
		if err != nil || u.Hostname() == "" {
			return fmt.Errorf("--peers: %q: want nats://host:port", p)
		}
		local = local && Loopback(u.Hostname())
	}
	if cl.Token == "" && !local {
		return errors.New("cluster routes reach beyond this machine; set a cluster token with --cluster-token-file (the same on every member) so that only members that know it can join")
	}
	return nil
}

// Loopback reports whether a listen host reaches only this machine.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running engram server.
type Server struct {
	Node *node.Node
	URL  string // base URL of the REST API, e.g. http://127.0.0.1:8283
	// MetricsURL is the base URL of the metrics listener; "" without one.
	MetricsURL string
	Metrics    *metrics.Metrics // the server's registry and series

	http  *http.Server
	done  chan error
	mhttp *http.Server // the metrics listener's server, or nil
	mdone chan error
	log   *slog.Logger
}

// Start validates cfg, begins serving HTTP, starts the node and returns
// once the API serves. While the node replays the log, GET /v1/health/
// answers 503 {"status": "replaying 40%"} and other routes 503 with
// Retry-After.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Node.NATSToken = cfg.Token
	cfg.Node.NATSRateLimit, cfg.Node.NATSRateBurst, cfg.Node.MaxRunsPerOrg = cfg.RateLimit, cfg.RateBurst, cfg.MaxRunsPerOrg
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = logger
	}
	probeLocal(ctx, &cfg, logger)
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert and --tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLSClientCA != "" {
			pem, err := os.ReadFile(cfg.TLSClientCA)
			if err != nil {
				return nil, fmt.Errorf("load --tls-client-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("load --tls-client-ca %s: no PEM certificate in it", cfg.TLSClientCA)
			}
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		cfg.Node.NATSTLS = tlsConfig.Clone()
	}
	for _, a := range []struct{ what, addr string }{{"--http-addr", cfg.HTTPAddr}, {"--nats-addr", cfg.Node.NATSAddr}} {
		if host, _, err := net.SplitHostPort(a.addr); err == nil && !Loopback(host) && tlsConfig == nil {
			logger.Warn(a.what+" listens beyond this machine without TLS: the token and all data cross the network in clear text; set --tls-cert and --tls-key", "addr", a.addr)
		}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another server running? choose another port with --http-addr)", cfg.HTTPAddr, err)
	}
	scheme := "http://"
	if tlsConfig != nil {
		ln, scheme = tls.NewListener(ln, tlsConfig), "https://"
	}
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen on %s: %w (choose another port with --metrics-addr)", cfg.MetricsAddr, err)
		}
	}
	// Serve at once: while the node replays the log, the health check
	// says how far it has come and other routes answer 503.
	g := &gate{version: cfg.Node.Service.Version}
	if g.version == "" {
		g.version = "dev"
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	s := &Server{
		URL: scheme + ln.Addr().String(), done: make(chan error, 1), log: logger,
		// No ReadTimeout: the REST handler gives each body a deadline of its
		// own, longer for uploads (see rest's body.go). No WriteTimeout: a
		// step, or its SSE stream, takes as long as it takes.
		http: &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle, ErrorLog: errLog},
	}
	go func() { s.done <- s.http.Serve(ln) }()
	if cfg.OnListen != nil {
		cfg.OnListen(s.URL)
	}
	m := metrics.New()
	cfg.Node.Metrics = m
	onReplay := cfg.Node.OnReplay
	cfg.Node.OnReplay = func(p node.Progress) {
		g.progress(p)
		if onReplay != nil {
			onReplay(p)
		}
	}
	n, err := node.Start(ctx, cfg.Node)
	if err != nil {
		s.http.Close()
		<-s.done
		if mln != nil {
			mln.Close()
		}
		return nil, err
	}
	s.Node, s.Metrics = n, m
	rc := rest.Config{
		Token: cfg.Token, Version: cfg.Node.Service.Version, Logger: logger, Metrics: m,
		BodyTimeout: cfg.BodyTimeout, UploadTimeout: cfg.UploadTimeout,
		AllowedHosts: cfg.AllowedHosts, CORSOrigins: cfg.CORSOrigins,
		Cluster:   n,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst, MaxRunsPerOrg: cfg.MaxRunsPerOrg,
	}
	var api http.Handler = rest.NewHandler(n.Service, rc)
	g.api.Store(&api)
	if mln != nil {
		s.MetricsURL = "http://" + mln.Addr().String()
		s.mhttp = &http.Server{Handler: rest.NewMetricsHandler(rc), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		s.mdone = make(chan error, 1)
		go func() { s.mdone <- s.mhttp.Serve(mln) }()
	}
	return s, nil
}

// Close shuts down in order: stop accepting requests and finish those in
// flight (bounded by ctx), then close the node (projections, snapshot,
// NATS connection, embedded server).
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.http.Close()
	}
	<-s.done
	if s.mhttp != nil {
		s.mhttp.Close()
		<-s.mdone
	}
	s.Node.Close(ctx)
	return err
}

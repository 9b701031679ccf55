// Package server runs a complete engram server: a node and the REST API on
// an HTTP listener, with the listen-address safety rule and an ordered,
// bounded shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
)

// Config configures a server. Start from DefaultConfig.
type Config struct {
	Node     node.Config
	HTTPAddr string // "host:port" of the REST API; port 0 picks a free port
	Token    string // required of REST and NATS clients when set
	Logger   *slog.Logger
	// AllowedHosts and CORSOrigins go to the REST handler (see
	// rest.Config): names the Host header may carry besides localhost and
	// IP literals, and origins browsers may call the API from.
	AllowedHosts []string
	CORSOrigins  []string
	// TLSCert and TLSKey are PEM files of a certificate (with its chain)
	// and its key. When set, the REST API serves HTTPS only, and NATS
	// clients on Node.NATSAddr must use TLS. Both or neither.
	TLSCert, TLSKey string
}

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
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	for _, a := range []struct{ what, addr string }{{"--http-addr", c.HTTPAddr}, {"--nats-addr", c.Node.NATSAddr}} {
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

	http *http.Server
	done chan error
	log  *slog.Logger
}

// Start validates cfg, starts the node and begins serving HTTP.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Node.NATSToken = cfg.Token
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = logger
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert and --tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
	n, err := node.Start(ctx, cfg.Node)
	if err != nil {
		ln.Close()
		return nil, err
	}
	h := rest.NewHandler(n.Service, rest.Config{
		Token: cfg.Token, Version: cfg.Node.Service.Version, Logger: logger,
		AllowedHosts: cfg.AllowedHosts, CORSOrigins: cfg.CORSOrigins,
	})
	s := &Server{
		Node: n, URL: scheme + ln.Addr().String(), done: make(chan error, 1), log: logger,
		http: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
	}
	go func() { s.done <- s.http.Serve(ln) }()
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
	s.Node.Close(ctx)
	return err
}

package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
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
	// SyncAlways makes JetStream fsync each write before acknowledging it, so
	// an acknowledged event survives power loss on a single node. Default true.
	SyncAlways bool
	// MaxMemory caps JetStream memory stores. Zero means 256 MiB.
	MaxMemory int64
	// Logger receives the server's log lines. Nil discards them.
	Logger *slog.Logger
	// TLS, when not nil, is required of every client on the client
	// listener. The in-process connection does not use it.
	TLS *tls.Config
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
}

// StartServer starts the embedded server, waits until JetStream is ready and
// opens the in-process connection. The caller must Close it.
func StartServer(ctx context.Context, cfg Config) (*Server, error) {
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
	auth, err := newClientAuth(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	opts.CustomClientAuthentication = auth
	if cfg.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, cfg.TLS, 2
	}
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
	return &Server{auth: auth, ns: ns, conn: conn, js: js, log: logger}, nil
}

// Conn is the in-process connection.
func (s *Server) Conn() *nats.Conn { return s.conn }

// JetStream is the JetStream context over the in-process connection.
func (s *Server) JetStream() jetstream.JetStream { return s.js }

// ClientURL is the URL of the client listener, or "" when there is none.
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
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
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
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

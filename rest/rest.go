// Package rest serves engram's service over Letta's /v1 HTTP API.
//
// The routes are those of Letta's modern REST API (what the official SDKs
// call), plus the Letta 0.5 paths that do not clash with them; routes.go
// lists them all. Routing follows three rules:
//
//   - A trailing slash is optional on every route, and neither form
//     redirects to the other.
//   - Routing is done on the escaped path, and each path parameter is then
//     unescaped on its own, so a block label "a/b" sent as "a%2Fb" is one
//     segment.
//   - Paths with empty, "." or ".." segments are not found; nothing
//     redirects.
//
// Requests from browsers are held to stricter rules than clients': see guard
// in browser.go (Host, Origin, CORS and Content-Type).
//
// Every response of the API is JSON. Errors are {"detail": "<message>"}, with the status
// taken from the error's fault kind (see fail); internal errors and panics
// answer 500 "internal error" and are logged, never shown.
//
// When Config.Token is set, every route except GET /v1/health/ and the
// console's files requires "Authorization: Bearer <token>" or
// "X-BARE-PASSWORD: password <token>".
// An Idempotency-Key header makes a write safe to retry: the service runs the
// command under that key once (service.WithIdempotencyKey).
//
// Beside the API, GET / and GET /console/NAME serve the web console
// (package console): HTML, CSS and JavaScript, without the token. GET
// /openapi.json answers an OpenAPI 3.1 document generated from the
// registered routes (openapi.go), and, when
// Config.Metrics is set, GET /metrics answers Prometheus's text format;
// every request is counted under its route pattern, never its raw path.
package rest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/console"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/limits"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/service"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 4 << 20

// Default body timeouts: 4 MiB in 30 s is 140 KB/s; a 51 MiB upload in 10
// minutes is 90 KB/s.
const (
	DefaultBodyTimeout   = 30 * time.Second
	DefaultUploadTimeout = 10 * time.Minute
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted, in bytes.
const MaxIdempotencyKeyLen = 255

// idempotencyHeader carries a client-chosen command id.
const idempotencyHeader = "Idempotency-Key"

// Config configures the handler. The zero value serves without
// authentication, with a 4 MiB body limit, and logs nothing.
type Config struct {
	// Token, when not empty, is the password every request except
	// GET /v1/health/ must present.
	Token string
	// Version is what GET /v1/health/ reports; "" reports the service's.
	Version string
	// MaxBodyBytes caps the size of a request body; a larger one is refused
	// with 413. Zero or negative means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxUploadBytes limits the body of a file upload (POST .../upload).
	// Zero or negative means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// BodyTimeout is how long a client may take to send a request body,
	// counted from when the handler starts reading it; a body that has not
	// arrived by then is answered 408 and the connection closed. Zero or
	// negative means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// UploadTimeout is BodyTimeout for file uploads. Zero or negative means
	// DefaultUploadTimeout.
	UploadTimeout time.Duration
	// Logger receives internal errors and recovered panics; nil discards.
	Logger *slog.Logger
	// Metrics, when set, records every request by route pattern and status
	// and is served at GET /metrics (under the same token rule); nil
	// records nothing and serves no /metrics.
	Metrics *metrics.Metrics
	// AllowedHosts are the names, besides localhost and IP literals, that
	// a request's Host header may carry ("engram.example" or
	// "engram.example:8283"); any other is refused with 421 (see guard).
	AllowedHosts []string
	// Cluster, when set, says how this node stands in its cluster: GET
	// /v1/health/ reports its role and quorum, GET /v1/cluster its view
	// of the cluster, and without a quorum writes are refused at once with
	// 503 (reads go on, with an Engram-No-Quorum header saying how stale).
	// Nil: a node alone.
	Cluster Cluster
	// CORSOrigins are the origins ("https://app.example", or "*" for any)
	// that browsers may call the API from; they get CORS headers and
	// preflight answers. Empty means none: CORS is off, and a request
	// from any other origin than the server's own is refused with 403.
	CORSOrigins []string
	// RateLimit is the requests per second each organization may make
	// (the default one included; admin routes and the health check are
	// not counted); beyond it the answer is 429 with Retry-After. Zero
	// means no limit. RateBurst is how many may come at once; zero means
	// RateLimit rounded up.
	RateLimit float64
	RateBurst int
	// MaxRunsPerOrg is how many runs an organization may have in progress
	// (stored and not ended, on any node); a send beyond it is answered 429
	// with Retry-After. Zero means no limit.
	MaxRunsPerOrg int
}

// Cluster is a node's standing in its cluster.
type Cluster interface {
	// Health fills in the cluster fields of a health answer.
	Health(h *api.Health)
	// Status is the node's view of the cluster.
	Status(ctx context.Context) (api.ClusterStatus, error)
	// Writable is nil when the node can decide writes, or a
	// fault.Unavailable error saying why not. It must be cheap: every
	// write asks.
	Writable() error
}

// withStatus is an answer with another status than 200.
type withStatus struct {
	code int
	v    any
}

// NewHandler returns the /v1 API over svc. It is safe for concurrent use.
func NewHandler(svc *service.Service, cfg Config) http.Handler {
	return newHandler(svc, cfg)
}

// handler is the http.Handler NewHandler returns. Tests reach its mux to add
// routes (a panicking one, for instance).
type handler struct {
	svc   *service.Service
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	token [sha256.Size]byte // hash of cfg.Token, compared in constant time
	// denied records refused requests (tenancy.go); rates holds each
	// organization's request budget, nil without a limit.
	denied *denials
	rates  *limits.Rates

	// patterns lists every registered pattern in registration order, and
	// series holds each one's HTTP series; both are written only while
	// newHandler registers routes.
	patterns  []string
	series    map[string]*metrics.Route
	unmatched *metrics.Route

	docOnce sync.Once // guards doc and docErr: the OpenAPI document, made on first request
	doc     []byte
	docErr  error
}

var _ http.Handler = (*handler)(nil)

// NewMetricsHandler serves only GET /metrics from cfg.Metrics, under the
// same token rule as the API: the handler of a separate metrics listener.
func NewMetricsHandler(cfg Config) http.Handler {
	return newHandler(nil, cfg)
}

// newHandler registers the API's routes over svc, or only /metrics when svc
// is nil.
func newHandler(svc *service.Service, cfg Config) *handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	h := &handler{svc: svc, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), token: sha256.Sum256([]byte(cfg.Token)),
		series: map[string]*metrics.Route{}, unmatched: cfg.Metrics.Route(metrics.Unmatched),
		denied: newDenials(), rates: limits.New(cfg.RateLimit, cfg.RateBurst)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if svc != nil {
		h.routes()
		h.adminRoutes()
		h.routes05()
		h.handleFunc("GET /openapi.json", h.serveOpenAPI)
		// The web console: static files, served without the token (the
		// page asks for it when the API refuses), and left out of the
		// OpenAPI document, which describes the API.
		c := console.Handler()
		for _, p := range []string{"GET /{$}", "GET " + console.Prefix + "{file}"} {
			h.mux.Handle(p, c)
			h.series[p] = h.cfg.Metrics.Route(p)
		}
	}
	if cfg.Metrics != nil {
		h.handleFunc("GET /metrics", cfg.Metrics.Handler().ServeHTTP)
	}
	return h
}

// handleFunc registers a route that writes its own response, and records
// its pattern (for the route table and its series).
// Every id the route's path names is checked against the caller's
// organization first (scope).
func (h *handler) handleFunc(pattern string, f http.HandlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if h.svc != nil {
			if err := h.scope(r); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		f(w, r)
	})
	h.patterns = append(h.patterns, pattern)
	h.series[pattern] = h.cfg.Metrics.Route(pattern)
}

// endpoint serves one route: it returns the value to send with 200, or an
// error for fail to map. A nil value is sent as JSON null.
type endpoint func(r *http.Request) (any, error)

// handle registers an endpoint under a ServeMux pattern without a trailing
// slash (ServeHTTP strips the client's).
func (h *handler) handle(pattern string, e endpoint) {
	h.handleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, err := e(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if _, ok := v.(noContent); ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ws, ok := v.(withStatus); ok {
			h.reply(w, r, ws.code, ws.v)
			return
		}
		h.reply(w, r, http.StatusOK, v)
	})
}

// ServeHTTP normalises the path, authenticates, and dispatches to the route.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	pattern := ""
	if h.cfg.Metrics != nil {
		defer h.observe(&pattern, tw, time.Now())
	}
	defer h.recoverPanic(tw, r)

	r = r.WithContext(r.Context()) // a shallow copy, so the URL and body below are ours to replace
	u := *r.URL
	r.URL = &u
	if !normalise(r.URL) {
		h.fail(tw, r, errNotFound)
		return
	}
	if !h.guard(tw, r) { // Host, Origin, CORS and Content-Type (browser.go)
		return
	}
	_, pattern = h.mux.Handler(r)
	var ok bool
	if r, ok = h.authenticate(tw, r); !ok { // tenancy.go
		return
	}
	if pattern != "" && !h.limit(tw, r, pattern) {
		return
	}
	if h.cfg.Cluster != nil {
		if err := h.cfg.Cluster.Writable(); err != nil {
			switch r.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				tw.Header().Set("Engram-No-Quorum", fault.Message(err))
			default:
				h.fail(tw, r, err)
				return
			}
		}
	}
	if key := r.Header.Get(idempotencyHeader); key != "" {
		if len(key) > MaxIdempotencyKeyLen {
			h.fail(tw, r, invalid("%s is %d bytes long; the limit is %d", idempotencyHeader, len(key), MaxIdempotencyKeyLen))
			return
		}
		r = r.WithContext(service.WithIdempotencyKey(r.Context(), key))
	}
	if r.Body != nil && r.Body != http.NoBody {
		limit, timeout := h.cfg.MaxBodyBytes, h.cfg.BodyTimeout
		if r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/upload") || strings.TrimSuffix(r.URL.Path, "/") == "/v1/agents/import") {
			limit, timeout = h.cfg.MaxUploadBytes, h.cfg.UploadTimeout
		}
		if r.ContentLength > limit {
			refuseBody(tw, r, limit)
			h.fail(tw, r, errTooLarge(limit))
			return
		}
		r.Body = limitBody(tw, r.Body, limit, timeout)
	}
	if r.Header.Get(idempotencyHeader) != "" {
		r = withRequestDigest(r)
	}
	if pattern == "" {
		if allow := h.allowed(r); len(allow) > 0 {
			tw.Header().Set("Allow", strings.Join(allow, ", "))
			h.fail(tw, r, errMethodNotAllowed)
			return
		}
		h.fail(tw, r, errNotFound)
		return
	}
	h.mux.ServeHTTP(tw, r)
}

// observe records an answered request under its route pattern (*pattern,
// "" for none).
func (h *handler) observe(pattern *string, tw *trackingWriter, began time.Time) {
	series := h.unmatched
	if s, ok := h.series[*pattern]; ok {
		series = s
	}
	series.Observe(tw.status(), time.Since(began))
}

// normalise strips one trailing slash from u's path, so that every route
// answers with and without it. It reports false for a path the mux would
// redirect: one with empty, "." or ".." segments.
func normalise(u *url.URL) bool {
	p := u.EscapedPath()
	// Letta 0.5's client joins its base URL and "/v1/admin" with a slash
	// between them, so its admin routes arrive as "/letta-0.5//v1/admin/…".
	if rest, ok := strings.CutPrefix(p, Prefix05+"//"); ok {
		p = Prefix05 + "/" + rest
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	if p == "" || p != path.Clean(p) {
		return false
	}
	unescaped, err := url.PathUnescape(p)
	if err != nil {
		return false
	}
	u.Path, u.RawPath = unescaped, p
	return true
}

// allowed lists the methods that have a route for r's path.
func (h *handler) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := h.mux.Handler(&probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// isConsole reports whether r asks for a file of the web console.
func isConsole(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, console.Prefix)
}

func (h *handler) tokenIs(s string) bool {
	sum := sha256.Sum256([]byte(strings.TrimSpace(s)))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// recoverPanic turns a panic in a route into a logged 500, so the server
// keeps serving. http.ErrAbortHandler keeps its meaning.
func (h *handler) recoverPanic(w *trackingWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	err := fmt.Errorf("panic: %v\n%s", v, debug.Stack())
	if w.wrote {
		h.log.Error("panic after the response started", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	h.fail(w, r, err)
}

// trackingWriter records whether the response has started, and its status.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
	code  int // the status written; 0 until WriteHeader
}

func (w *trackingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code = code
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code = http.StatusOK
	}
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// status is the response's status code: 200 for a handler that wrote
// nothing at all, as net/http sends.
func (w *trackingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection (to flush).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestDigest fingerprints a keyed request (method, path, query and
// body) for the service, which refuses a key reused with another request.
// The body is hashed as the handler reads it; the fingerprint, taken when
// the command starts, reads whatever the handler left, so it always covers
// the whole body however the decoder consumed it.
func withRequestDigest(r *http.Request) *http.Request {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	var body *hashingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &hashingBody{r: r.Body, h: h}
		r.Body = body
	}
	digest := func() string {
		if body != nil {
			io.Copy(io.Discard, body)
		}
		return hex.EncodeToString(h.Sum(nil)[:12])
	}
	return r.WithContext(service.WithRequestDigest(r.Context(), digest))
}

// hashingBody hashes what is read through it.
type hashingBody struct {
	r io.ReadCloser
	h hash.Hash
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	return n, err
}

func (b *hashingBody) Close() error { return b.r.Close() }

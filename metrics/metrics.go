// Package metrics declares engram's Prometheus series and records them, in a
// registry each Metrics owns (never the client library's global one).
//
// A nil *Metrics records nothing: every method is safe to call on it, so a
// library user who does not scrape pays one nil check per observation.
//
// Label values are bounded: HTTP routes are ServeMux patterns (never a raw
// path, so never an id), models are the handles the server was configured
// with, and tool outcomes are "ok" or "error".
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series engram defines.
const Namespace = "engram"

// Unmatched is the route label of a request that matched no route (404,
// 405, or refused before routing).
const Unmatched = "unmatched"

// Metrics holds engram's series and the registry they are registered in.
// It is safe for concurrent use.
type Metrics struct {
	// Registry holds the series below, the Go runtime's and the process's;
	// Register adds more (the node's stream and lag collector).
	Registry *prometheus.Registry

	httpRequests *prometheus.CounterVec   // route, code
	httpDuration *prometheus.HistogramVec // route

	steps         *prometheus.CounterVec   // model
	modelDuration *prometheus.HistogramVec // model
	modelErrors   *prometheus.CounterVec   // model
	tokens        *prometheus.CounterVec   // model, kind

	toolCalls    *prometheus.CounterVec   // outcome
	toolDuration *prometheus.HistogramVec // outcome

	appendDuration prometheus.Histogram
	activeRuns     prometheus.Gauge

	routesMu sync.Mutex // guards routes
	routes   map[string]*Route
}

// New returns Metrics in a fresh registry that also holds the Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern (streamed answers: until the stream ends).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "agent", Name: "steps_total",
			Help: "Agent steps committed, by model handle.",
		}, []string{"model"}),
		modelDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "model", Name: "call_duration_seconds",
			Help:    "Time a model call took to answer, by model handle.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40, 80, 160},
		}, []string{"model"}),
		modelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "model", Name: "errors_total",
			Help: "Model calls that failed (the provider's error, a timeout, an empty reply), by model handle.",
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "model", Name: "tokens_total",
			Help: "Tokens the provider reported, by model handle and kind (prompt or completion).",
		}, []string{"model", "kind"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "tool", Name: "calls_total",
			Help: "Tool calls an agent made, by outcome (ok or error).",
		}, []string{"outcome"}),
		toolDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "tool", Name: "call_duration_seconds",
			Help:    "Time a tool call took, by outcome.",
			Buckets: []float64{.0001, .001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"outcome"}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "log", Name: "append_duration_seconds",
			Help:    "Time to append one command's events to the log (acknowledged, fsync included when on).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		activeRuns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "agent", Name: "active_runs",
			Help: "Agent runs in progress on this node.",
		}),
		routes: map[string]*Route{},
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.steps, m.modelDuration, m.modelErrors, m.tokens,
		m.toolCalls, m.toolDuration, m.appendDuration, m.activeRuns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds a collector to the registry. It panics on a duplicate, as
// registering the same series twice is a programming error.
func (m *Metrics) Register(c prometheus.Collector) {
	if m != nil {
		m.Registry.MustRegister(c)
	}
}

// Handler serves the registry in Prometheus's text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Route is the HTTP series of one route pattern, looked up once when the
// route is registered so that a request costs no label hashing for its
// latency and a read-locked map lookup for its status.
type Route struct {
	pattern  string
	requests *prometheus.CounterVec
	duration prometheus.Observer

	mu    sync.RWMutex // guards codes
	codes map[int]prometheus.Counter
}

// Route returns the series of a route pattern ("GET /v1/agents/{agent_id}",
// or Unmatched), the same one each time it is asked for the same pattern.
// A nil Metrics returns a nil Route, which records nothing.
func (m *Metrics) Route(pattern string) *Route {
	if m == nil {
		return nil
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	if r, ok := m.routes[pattern]; ok {
		return r
	}
	r := &Route{pattern: pattern, requests: m.httpRequests, duration: m.httpDuration.WithLabelValues(pattern), codes: map[int]prometheus.Counter{}}
	m.routes[pattern] = r
	return r
}

// Observe records one answered request.
func (r *Route) Observe(code int, took time.Duration) {
	if r == nil {
		return
	}
	r.duration.Observe(took.Seconds())
	r.mu.RLock()
	c, ok := r.codes[code]
	r.mu.RUnlock()
	if !ok {
		r.mu.Lock()
		if c, ok = r.codes[code]; !ok {
			c = r.requests.WithLabelValues(r.pattern, strconv.Itoa(code))
			r.codes[code] = c
		}
		r.mu.Unlock()
	}
	c.Inc()
}

// ModelCall records one model call that answered: its latency and the
// tokens the provider reported.
func (m *Metrics) ModelCall(model string, took time.Duration, promptTokens, completionTokens int) {
	if m == nil {
		return
	}
	m.modelDuration.WithLabelValues(model).Observe(took.Seconds())
	if promptTokens > 0 {
		m.tokens.WithLabelValues(model, "prompt").Add(float64(promptTokens))
	}
	if completionTokens > 0 {
		m.tokens.WithLabelValues(model, "completion").Add(float64(completionTokens))
	}
}

// Step records one committed agent step.
func (m *Metrics) Step(model string) {
	if m != nil {
		m.steps.WithLabelValues(model).Inc()
	}
}

// ModelError records a model call that failed.
func (m *Metrics) ModelError(model string) {
	if m != nil {
		m.modelErrors.WithLabelValues(model).Inc()
	}
}

// Tool records one tool call; failed is the tool's own failure (an
// exception, a limit, a bad argument).
func (m *Metrics) Tool(failed bool, took time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.toolCalls.WithLabelValues(outcome).Inc()
	m.toolDuration.WithLabelValues(outcome).Observe(took.Seconds())
}

// Append records the latency of one append to the log.
func (m *Metrics) Append(took time.Duration) {
	if m != nil {
		m.appendDuration.Observe(took.Seconds())
	}
}

// RunStarted counts a run in progress until the function it returns is
// called.
func (m *Metrics) RunStarted() (done func()) {
	if m == nil {
		return func() {}
	}
	m.activeRuns.Inc()
	return m.activeRuns.Dec
}

package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/engram-dev/engram/metrics"
)

// TestNil: a nil Metrics records nothing and never panics, so callers need
// no check of their own.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.Route("GET /x").Observe(200, time.Millisecond)
	m.ModelCall("m", time.Second, 1, 1)
	m.Step("m")
	m.ModelError("m")
	m.Tool(true, time.Second)
	m.Append(time.Millisecond)
	m.RunStarted()()
	m.Register(nil)
}

// TestRoute: a pattern's series are made once and count by status code.
func TestRoute(t *testing.T) {
	m := metrics.New()
	r := m.Route("GET /v1/agents/{agent_id}")
	if m.Route("GET /v1/agents/{agent_id}") != r {
		t.Fatal("a pattern's series are made twice")
	}
	r.Observe(200, time.Millisecond)
	r.Observe(200, time.Millisecond)
	r.Observe(404, time.Millisecond)
	done := m.RunStarted()
	if n, err := testutil.GatherAndCount(m.Registry, "engram_http_requests_total", "engram_agent_active_runs"); err != nil || n != 3 {
		t.Fatalf("series: %d %v", n, err)
	}
	done()
	if allocs := testing.AllocsPerRun(100, func() { r.Observe(200, time.Millisecond) }); allocs != 0 {
		t.Errorf("recording a request allocates %v times", allocs)
	}
}

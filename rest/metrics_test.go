package rest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

const metricsToken = "metrics-secret"

// newMetricsHarness is a node with metrics and a scripted model, served
// with a token.
func newMetricsHarness(t *testing.T) (*harness, *llmtest.Server) {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	m := metrics.New()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Metrics = m
	cfg.Service = service.Config{Version: "test", Models: testModels, EmbeddingModels: testEmbeddingModels, Providers: reg}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	x := &harness{t: t, n: n, logs: &syncBuffer{}}
	x.h = newHandler(n.Service, Config{Token: metricsToken, Metrics: m})
	x.srv = httptest.NewServer(x.h)
	t.Cleanup(x.srv.Close)
	x.client = x.srv.Client()
	return x, script
}

// scrape reads /metrics as Prometheus does and parses the text format.
func (x *harness) scrape(token string) (int, map[string]*dto.MetricFamily) {
	x.t.Helper()
	req, _ := http.NewRequest("GET", x.srv.URL+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		x.t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		x.t.Fatal(err)
	}
	return resp.StatusCode, fams
}

// value sums the series of a family whose labels include want (a counter's
// or gauge's value, a histogram's count); found reports whether any did.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

func TestMetrics(t *testing.T) {
	x, script := newMetricsHarness(t)
	if code, _ := x.scrape(""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token = %d, want 401", code)
	}
	auth := []string{"Authorization", "Bearer " + metricsToken}
	_, before := x.scrape(metricsToken)

	// Real work: an agent, a message answered by the scripted model (one
	// step, one send_message tool call), a file loaded into a source, a miss.
	var a api.AgentState
	x.do("POST", "/v1/agents/", map[string]any{
		"agent_type":    "memgpt_agent", // the script speaks the MemGPT loop
		"llm_config":    map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}},
	}, 200, &a, auth...)
	x.do("GET", "/v1/agents/"+a.ID, nil, 200, nil, auth...)
	script.Push(say("Hello Ada"))
	x.do("POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, 200, nil, auth...)
	var src api.Source
	x.do("POST", "/v1/folders/", api.CreateSource{Name: "docs"}, 200, &src, auth...)
	req, _ := http.NewRequest("POST", x.srv.URL+"/v1/folders/"+src.ID+"/upload", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nThe spare key is under the third flowerpot.\r\n--b--\r\n"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := x.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload = %d", resp.StatusCode)
	}
	x.do("GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000", nil, 404, nil, auth...)
	x.do("GET", "/v1/no-such-route", nil, 404, nil, auth...)

	// The load job finishes in the background.
	var after map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, after = x.scrape(metricsToken)
		if n, _ := value(after, "engram_jobs", map[string]string{"state": "completed"}); n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the load job never shows as completed in engram_jobs")
		}
		time.Sleep(50 * time.Millisecond)
	}

	moved := []struct {
		name   string
		labels map[string]string
	}{
		{"engram_http_requests_total", map[string]string{"route": "POST /v1/agents", "code": "200"}},
		{"engram_http_requests_total", map[string]string{"route": "GET /v1/agents/{agent_id}", "code": "200"}},
		{"engram_http_requests_total", map[string]string{"route": "GET /v1/agents/{agent_id}", "code": "404"}},
		{"engram_http_requests_total", map[string]string{"route": "POST /v1/folders/{source_id}/upload", "code": "200"}},
		{"engram_http_requests_total", map[string]string{"route": metrics.Unmatched, "code": "404"}},
		{"engram_http_request_duration_seconds", map[string]string{"route": "POST /v1/agents/{agent_id}/messages"}},
		{"engram_agent_steps_total", map[string]string{"model": "gpt-4o-mini"}},
		{"engram_model_call_duration_seconds", map[string]string{"model": "gpt-4o-mini"}},
		{"engram_model_tokens_total", map[string]string{"model": "gpt-4o-mini", "kind": "prompt"}},
		{"engram_model_tokens_total", map[string]string{"model": "gpt-4o-mini", "kind": "completion"}},
		{"engram_tool_calls_total", map[string]string{"outcome": "ok"}},
		{"engram_tool_call_duration_seconds", map[string]string{"outcome": "ok"}},
		{"engram_log_append_duration_seconds", nil},
		{"engram_jetstream_stream_messages", nil},
		{"engram_jetstream_stream_bytes", nil},
		{"engram_log_last_sequence", nil},
	}
	for _, m := range moved {
		was, _ := value(before, m.name, m.labels)
		now, found := value(after, m.name, m.labels)
		if !found || now <= was {
			t.Errorf("%s%v: %v before, %v after (found %v); want it to grow", m.name, m.labels, was, now, found)
		}
	}
	for _, name := range []string{"engram_projection_lag_events", "engram_search_index_lag_events", "engram_log_decoded_messages_total", "engram_search_index_fell_behind_total", "engram_agent_active_runs", "engram_log_append_conflicts_total", "go_goroutines"} {
		if _, found := value(after, name, nil); !found {
			t.Errorf("%s is not served", name)
		}
	}
	if n, _ := value(after, "engram_http_requests_total", map[string]string{"route": "GET /metrics", "code": "401"}); n != 1 {
		t.Errorf("the refused scrape counts %v times, want 1", n)
	}
	// Lag settles to zero once the node is idle.
	for {
		_, now := x.scrape(metricsToken)
		p, _ := value(now, "engram_projection_lag_events", nil)
		i, _ := value(now, "engram_search_index_lag_events", nil)
		if p == 0 && i == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag stays at %v (projections) and %v (index)", p, i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// No label carries an id: routes are patterns.
	for _, m := range after["engram_http_requests_total"].Metric {
		for _, l := range m.Label {
			if strings.Contains(l.GetValue(), a.ID) || strings.Contains(l.GetValue(), "agent-0000") {
				t.Errorf("a label carries an id: %s=%q", l.GetName(), l.GetValue())
			}
		}
	}
}

// TestMetricsOff: a handler without Metrics serves no /metrics.
func TestMetricsOff(t *testing.T) {
	x := newHarness(t, Config{})
	if code, _ := x.scrape(""); code != http.StatusNotFound {
		t.Fatalf("/metrics without Metrics = %d, want 404", code)
	}
}

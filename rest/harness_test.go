package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

func strp(s string) *string { return &s }

var (
	testModels = []api.Model{{
		LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 128000, Handle: strp("openai/gpt-4o-mini")},
		Name:      "gpt-4o-mini", DisplayName: "GPT-4o mini", ProviderType: "openai", MaxContextWindow: 128000, ModelType: "llm",
	}}
	testEmbeddingModels = []api.EmbeddingModel{{
		EmbeddingConfig: api.EmbeddingConfig{EmbeddingEndpointType: "openai", EmbeddingModel: "text-embedding-3-small", EmbeddingDim: 1536, Handle: strp("openai/text-embedding-3-small")},
		Name:            "text-embedding-3-small", ProviderName: "openai", ProviderType: "openai", ModelType: "embedding",
	}}
)

// startNode runs a node on a temporary directory until the test ends.
func startNode(tb testing.TB) *node.Node {
	tb.Helper()
	cfg := node.DefaultConfig(tb.TempDir())
	cfg.SyncAlways = false
	cfg.Service = service.Config{Version: "test", Models: testModels, EmbeddingModels: testEmbeddingModels}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// harness is a node served over real HTTP on loopback.
type harness struct {
	t      *testing.T
	n      *node.Node
	h      *handler
	srv    *httptest.Server
	client *http.Client
	logs   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	x := &harness{t: t, n: startNode(t), logs: &syncBuffer{}}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(x.logs, nil))
	}
	x.h = newHandler(x.n.Service, cfg)
	x.srv = httptest.NewServer(x.h)
	t.Cleanup(x.srv.Close)
	x.client = x.srv.Client()
	x.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return x
}

// call sends a request and returns the status and body. body is sent as is
// when it is a string, and as JSON otherwise; hdr holds header name, value
// pairs. Every response must be JSON.
func (x *harness) call(method, path string, body any, hdr ...string) (int, []byte) {
	x.t.Helper()
	code, _, data := x.callHeader(method, path, body, hdr...)
	return code, data
}

func (x *harness) callHeader(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	x.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			x.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, x.srv.URL+path, rd)
	if err != nil {
		x.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := x.client.Do(req)
	if err != nil {
		x.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		x.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		x.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, resp.Header, data
}

// do sends a request, requires status want, and decodes the body into out
// unless out is nil.
func (x *harness) do(method, path string, body any, want int, out any, hdr ...string) {
	x.t.Helper()
	code, data := x.call(method, path, body, hdr...)
	if code != want {
		x.t.Fatalf("%s %s = %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			x.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

func (x *harness) agent(req api.CreateAgent) api.AgentState {
	x.t.Helper()
	var a api.AgentState
	x.do("POST", "/v1/agents/", req, 200, &a)
	return a
}

func (x *harness) block(req api.CreateBlock) api.Block {
	x.t.Helper()
	var b api.Block
	x.do("POST", "/v1/blocks/", req, 200, &b)
	return b
}

func (x *harness) source(name string) api.Source {
	x.t.Helper()
	var s api.Source
	x.do("POST", "/v1/folders/", api.CreateSource{Name: name}, 200, &s)
	return s
}

// toolBody is a tool that needs no Python to define: its schema is given.
func toolBody(name string) map[string]any {
	return map[string]any{
		"source_code": fmt.Sprintf("def %s(sides: int) -> str:\n    \"\"\"Roll a die.\n\n    Args:\n        sides (int): How many sides the die has.\n\n    Returns:\n        str: The result.\n    \"\"\"\n    return \"4\"\n", name),
		"json_schema": map[string]any{
			"name": name, "description": "Roll a die.",
			"parameters": map[string]any{
				"type":       "object",
				"properties": map[string]any{"sides": map[string]any{"type": "integer", "description": "How many sides the die has."}},
				"required":   []string{"sides"},
			},
		},
	}
}

func (x *harness) tool(name string) api.Tool {
	x.t.Helper()
	var t api.Tool
	x.do("POST", "/v1/tools/", toolBody(name), 200, &t)
	return t
}

// appendEvents stores events the service has no command for yet (messages,
// jobs) and waits until they are visible.
func (x *harness) appendEvents(agg events.Aggregate, evs ...events.Event) {
	x.t.Helper()
	ctx := context.Background()
	b := events.Batch{Command: events.NewID("cmd", time.Now())}
	for _, e := range evs {
		b.Events = append(b.Events, events.Envelope{Aggregate: agg, Command: b.Command, Time: time.Now().UTC(), Event: e})
	}
	seq, err := x.n.Log.Append(ctx, b)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := x.n.Projection.WaitFor(ctx, seq); err != nil {
		x.t.Fatal(err)
	}
}

// step is one request of a route table: a method, a path, a body, the
// status wanted (0 means 200) and a check of the decoded response.
type step struct {
	name   string
	method string
	path   string
	body   any
	want   int
	check  func(t *testing.T, body []byte)
}

// run runs the steps in order, each as a subtest.
func (x *harness) run(steps []step) {
	x.t.Helper()
	for _, s := range steps {
		x.t.Run(s.name, func(t *testing.T) {
			want := s.want
			if want == 0 {
				want = 200
			}
			code, data := x.call(s.method, s.path, s.body)
			if code != want {
				t.Fatalf("%s %s = %d %s, want %d", s.method, s.path, code, data, want)
			}
			if s.check != nil {
				s.check(t, data)
			}
		})
	}
}

// decodeAs decodes a response body.
func decodeAs[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// isNull checks a body that must be JSON null.
func isNull(t *testing.T, data []byte) {
	t.Helper()
	if s := strings.TrimSpace(string(data)); s != "null" {
		t.Errorf("body = %s, want null", s)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func agentIDs(xs []api.AgentState) []string {
	return ids(xs, func(a api.AgentState) string { return a.ID })
}
func blockIDs(xs []api.Block) []string   { return ids(xs, func(b api.Block) string { return b.ID }) }
func toolIDs(xs []api.Tool) []string     { return ids(xs, func(t api.Tool) string { return t.ID }) }
func sourceIDs(xs []api.Source) []string { return ids(xs, func(s api.Source) string { return s.ID }) }
func jobIDs(xs []api.Job) []string       { return ids(xs, func(j api.Job) string { return j.ID }) }

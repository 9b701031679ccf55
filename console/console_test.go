package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
	"github.com/engram-dev/engram/service"
)

func strp(s string) *string { return &s }

// engram is a real node with a scripted model behind openai/gpt-4o-mini,
// served by the REST handler over HTTP on loopback.
type engram struct {
	t      *testing.T
	n      *node.Node
	srv    *httptest.Server
	script *llmtest.Server
	token  string
}

func startEngram(t *testing.T, token string) *engram {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 10 * time.Second}))
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Service = service.Config{
		Version: "test", Providers: reg,
		Models: []api.Model{{
			LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 128000, Handle: strp("openai/gpt-4o-mini")},
			Name:      "gpt-4o-mini", DisplayName: "GPT-4o mini", ProviderType: "openai", MaxContextWindow: 128000, ModelType: "llm",
		}},
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	srv := httptest.NewServer(rest.NewHandler(n.Service, rest.Config{Token: token}))
	t.Cleanup(srv.Close)
	return &engram{t: t, n: n, srv: srv, script: script, token: token}
}

// call makes a REST call with the token and decodes a JSON answer into out
// (when not nil); it returns the status and the raw body.
func (e *engram) call(method, path string, body any, out any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode, data
}

// TestServed: the page and its assets are served from the binary at / and
// /console/NAME, without the token even when the API needs one, with a
// policy that lets the page reach only its own origin; the API still needs
// the token, and anything else under /console/ is a JSON 404.
func TestServed(t *testing.T) {
	e := startEngram(t, "s3cret")
	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `<script type="module" src="/console/app.js">`},
		{"/console/app.js", "javascript", "Authorization"},
		{"/console/style.css", "text/css", ":root"},
		{"/console/index.html", "text/html", "engram console"},
	} {
		resp, body := get(c.path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: %d %s, body has %q: %v", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.contains, strings.Contains(body, c.contains))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
	// Nothing the page loads comes from another origin.
	_, page := get("/")
	for _, bad := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page refers to %q", bad)
		}
	}
	for _, p := range []string{"/console/nope.js", "/console/static/app.js", "/console/..%2Fconsole.go"} {
		resp, body := get(p)
		if resp.StatusCode != 404 || !strings.Contains(body, `"detail"`) {
			t.Errorf("GET %s: %d %s, want a JSON 404", p, resp.StatusCode, body)
		}
	}
	// The OpenAPI document describes the API, not the page.
	req, _ := http.NewRequest("GET", e.srv.URL+"/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Paths map[string]any }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if len(doc.Paths) == 0 || doc.Paths["/"] != nil || doc.Paths["/console/{file}"] != nil {
		t.Errorf("openapi.json has %d paths; / %v, /console/{file} %v", len(doc.Paths), doc.Paths["/"], doc.Paths["/console/{file}"])
	}
	// Outside the console's files, the token rule stands.
	for _, p := range []string{"/v1/agents", "/console", "/index.html"} {
		if resp, _ := get(p); resp.StatusCode != 401 {
			t.Errorf("GET %s without the token: %d, want 401", p, resp.StatusCode)
		}
	}
	// The console's paths keep the API's browser rules: a foreign Host is
	// refused, and so is a write.
	req, _ = http.NewRequest("GET", e.srv.URL+"/", nil)
	req.Host = "evil.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET / with Host evil.example: %v %v, want 421", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", e.srv.URL+"/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 && resp.StatusCode != 405 {
		t.Errorf("POST /: %v %v, want 401 or 405", resp.StatusCode, err)
	}
}

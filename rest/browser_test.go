package rest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// browserRequest is a request as a page in a browser could send it.
type browserRequest struct {
	name, method, path string
	body, ctype        string
	host, origin       string // "" keeps the client's Host, sends no Origin
	preflight          string // Access-Control-Request-Method
	want               int
	cors               bool // Access-Control-Allow-Origin expected
}

func (x *harness) browser(t *testing.T, br browserRequest) {
	t.Helper()
	var body io.Reader
	if br.body != "" {
		body = strings.NewReader(br.body)
	}
	req, err := http.NewRequest(br.method, x.srv.URL+br.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if br.ctype != "" {
		req.Header.Set("Content-Type", br.ctype)
	}
	if br.host != "" {
		req.Host = br.host
	}
	if br.origin != "" {
		req.Header.Set("Origin", br.origin)
	}
	if br.preflight != "" {
		req.Header.Set("Access-Control-Request-Method", br.preflight)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
	}
	resp, err := x.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != br.want {
		t.Errorf("%s: %s %s = %d %s, want %d", br.name, br.method, br.path, resp.StatusCode, data, br.want)
	}
	if br.want >= 400 {
		var e detail
		if json.Unmarshal(data, &e) != nil || e.Detail == "" {
			t.Errorf("%s: body %q, want {\"detail\"}", br.name, data)
		}
	}
	var acao []string
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			acao = append(acao, k)
		}
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); br.cors && got != br.origin || !br.cors && len(acao) > 0 {
		t.Errorf("%s: CORS headers %v (Allow-Origin %q), want them: %v", br.name, acao, got, br.cors)
	}
}

// TestBrowsersCannotDriveTheServer sends what a hostile page could make a
// browser send to a server on loopback without a token: simple cross-origin
// posts, a rebound Host name, preflights. None reaches a route or stores
// anything; SDK-shaped requests still work.
func TestBrowsersCannotDriveTheServer(t *testing.T) {
	x := newHarness(t, Config{AllowedHosts: []string{"engram.internal"}})
	host := strings.TrimPrefix(x.srv.URL, "http://")
	_, port, _ := strings.Cut(host, ":")
	agent := `{"name": "pwned"}`
	before, _ := x.n.Log.LastSeq(t.Context())
	evil := "http://evil.example"
	for _, br := range []browserRequest{
		{name: "text/plain post", method: "POST", path: "/v1/agents/", body: agent, ctype: "text/plain", want: 415},
		{name: "text/plain post from a page", method: "POST", path: "/v1/agents/", body: agent, ctype: "text/plain", origin: evil, want: 403},
		{name: "form post", method: "POST", path: "/v1/tools/", body: "source_code=def+x()", ctype: "application/x-www-form-urlencoded", want: 415},
		{name: "multipart post to a JSON route", method: "POST", path: "/v1/agents/", body: "--b\r\n\r\n--b--\r\n", ctype: "multipart/form-data; boundary=b", want: 415},
		{name: "body without a type", method: "POST", path: "/v1/agents/", body: agent, want: 415},
		{name: "bodiless post from a page", method: "POST", path: "/letta-0.5/v1/tools/add-base-tools", origin: evil, want: 403},
		{name: "get from a page", method: "GET", path: "/v1/agents/", origin: evil, want: 403},
		{name: "preflight, CORS off", method: "OPTIONS", path: "/v1/agents/", origin: evil, preflight: "POST", want: 403},
		{name: "rebound host", method: "POST", path: "/v1/agents/", body: agent, ctype: "application/json", host: "evil.example:" + port, want: 421},
		{name: "rebound host, health", method: "GET", path: "/v1/health/", host: "evil.example:" + port, want: 421},
		{name: "rebound host without a port", method: "GET", path: "/v1/agents/", host: "evil.example", want: 421},
	} {
		x.browser(t, br)
	}
	if after, _ := x.n.Log.LastSeq(t.Context()); after != before {
		t.Errorf("refused requests appended %d events", after-before)
	}
	for _, br := range []browserRequest{
		{name: "SDK post", method: "POST", path: "/v1/agents/", body: `{"name": "a"}`, ctype: "application/json", want: 200},
		{name: "JSON with a charset", method: "POST", path: "/v1/blocks/", body: `{"label": "l", "value": "v"}`, ctype: "application/json; charset=utf-8", want: 200},
		{name: "bodiless post", method: "POST", path: "/letta-0.5/v1/tools/add-base-tools", want: 200},
		{name: "localhost", method: "GET", path: "/v1/agents/", host: "localhost:" + port, want: 200},
		{name: "ipv6 loopback", method: "GET", path: "/v1/health/", host: "[::1]:" + port, want: 200},
		{name: "configured name", method: "GET", path: "/v1/agents/", host: "engram.internal:" + port, want: 200},
		{name: "same origin", method: "POST", path: "/v1/agents/", body: `{"name": "b"}`, ctype: "application/json", origin: "http://" + host, want: 200},
	} {
		x.browser(t, br)
	}
}

// TestCORSOrigins: only the configured origins get CORS headers and
// preflight answers.
func TestCORSOrigins(t *testing.T) {
	app := "https://app.example"
	x := newHarness(t, Config{CORSOrigins: []string{app}})
	for _, br := range []browserRequest{
		{name: "preflight", method: "OPTIONS", path: "/v1/agents/", origin: app, preflight: "POST", want: 204, cors: true},
		{name: "get", method: "GET", path: "/v1/agents/", origin: app, want: 200, cors: true},
		{name: "post", method: "POST", path: "/v1/agents/", body: `{"name": "c"}`, ctype: "application/json", origin: app, want: 200, cors: true},
		{name: "text/plain post", method: "POST", path: "/v1/agents/", body: `{"name": "d"}`, ctype: "text/plain", origin: app, want: 415, cors: true},
		{name: "other origin", method: "GET", path: "/v1/agents/", origin: "https://other.example", want: 403},
		{name: "other origin's preflight", method: "OPTIONS", path: "/v1/agents/", origin: "https://other.example", preflight: "POST", want: 403},
	} {
		x.browser(t, br)
	}
}

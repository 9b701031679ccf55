package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsListener: --metrics-addr serves /metrics alone, under the
// API's token rule, and the API's listener serves it too.
func TestMetricsListener(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.MetricsAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "", "127.0.0.1:0", false
	cfg.Token = "tok"
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s.MetricsURL == "" || s.MetricsURL == s.URL {
		t.Fatalf("metrics URL %q beside %q", s.MetricsURL, s.URL)
	}
	for _, base := range []string{s.MetricsURL, s.URL} {
		if code, _ := get(base+"/metrics", ""); code != 401 {
			t.Errorf("%s/metrics without the token = %d, want 401", base, code)
		}
		code, body := get(base+"/metrics", "tok")
		if code != 200 || !strings.Contains(body, "engram_jetstream_stream_messages{stream=") {
			t.Errorf("%s/metrics = %d\n%.300s", base, code, body)
		}
	}
	if code, _ := get(s.MetricsURL+"/v1/agents/", "tok"); code != 404 {
		t.Errorf("the metrics listener serves the API: %d", code)
	}
	bad := DefaultConfig(t.TempDir())
	bad.MetricsAddr = "0.0.0.0:0"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("a metrics listener beyond loopback without a token: %v", err)
	}
}

package rest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/metrics"
)

// BenchmarkServeHTTP measures one GET /v1/agents/{id} through the handler
// (no network), with and without metrics, to show what instrumenting a
// request costs.
func BenchmarkServeHTTP(b *testing.B) {
	n := startNode(b)
	for _, bc := range []struct {
		name string
		m    *metrics.Metrics
	}{{"metrics=off", nil}, {"metrics=on", metrics.New()}} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(n.Service, Config{Metrics: bc.m})
			a, err := n.Service.CreateAgent(b.Context(), api.CreateAgent{Name: strp("bench " + bc.name[len("metrics="):])})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/v1/agents/"+a.ID, nil) // a Host the browser rules accept
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

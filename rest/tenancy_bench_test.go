package rest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

// BenchmarkServeHTTPKeys measures GET /v1/agents/{id} through the handler
// with the admin token and with an organization's API key (the key's hash
// looked up, the agent's organization checked), beside no token at all.
func BenchmarkServeHTTPKeys(b *testing.B) {
	n := startNode(b)
	org, err := n.Service.CreateOrg(b.Context(), api.OrganizationCreate{Name: strp("bench")})
	if err != nil {
		b.Fatal(err)
	}
	key, err := n.Service.CreateAPIKey(b.Context(), api.APIKeyCreate{OrganizationID: org.ID})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, token, bearer, org string }{
		{"no-token", "", "", ""},
		{"admin-token", "s3cret", "s3cret", ""},
		{"org-key", "s3cret", key.Key, org.ID},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(n.Service, Config{Token: bc.token})
			a, err := n.Service.CreateAgent(service.WithOrganization(b.Context(), bc.org), api.CreateAgent{Name: strp("bench " + bc.name)})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/v1/agents/"+a.ID, nil)
			if bc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bc.bearer)
			}
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

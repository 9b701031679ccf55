package rest

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
)

func TestAuth(t *testing.T) {
	x := newHarness(t, Config{Token: "s3cret"})
	tests := []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"health needs no token", "/v1/health/", nil, 200},
		{"health without slash", "/v1/health", nil, 200},
		{"no token", "/v1/agents/", nil, 401},
		{"unknown route without token", "/v1/nothing", nil, 401},
		{"wrong bearer", "/v1/agents/", []string{"Authorization", "Bearer s3cre"}, 401},
		{"empty bearer", "/v1/agents/", []string{"Authorization", "Bearer "}, 401},
		{"token without scheme", "/v1/agents/", []string{"Authorization", "s3cret"}, 401},
		{"basic scheme", "/v1/agents/", []string{"Authorization", "Basic s3cret"}, 401},
		{"bearer", "/v1/agents/", []string{"Authorization", "Bearer s3cret"}, 200},
		{"bearer, any case", "/v1/models", []string{"Authorization", "bearer s3cret"}, 200},
		{"bare password", "/v1/agents/", []string{"X-BARE-PASSWORD", "password s3cret"}, 200},
		{"bare password without prefix", "/v1/agents/", []string{"X-BARE-PASSWORD", "s3cret"}, 401},
		{"wrong bare password", "/v1/agents/", []string{"X-BARE-PASSWORD", "password nope"}, 401},
		{"unknown route with token", "/v1/nothing", []string{"Authorization", "Bearer s3cret"}, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, data := x.call("GET", tc.path, nil, tc.hdr...)
			if code != tc.want {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, code, data, tc.want)
			}
			if code == 401 && strings.TrimSpace(string(data)) != `{"detail":"Unauthorized"}` {
				t.Errorf("body %s", data)
			}
		})
	}
	before := x.n.Projection.Applied()
	if code, _ := x.call("POST", "/v1/blocks/", api.CreateBlock{Label: "l", Value: "v"}); code != 401 {
		t.Errorf("unauthorised write = %d", code)
	}
	// The refusal itself is recorded (one access_denied event), and
	// nothing else.
	if after := x.n.Projection.Applied(); after != before+1 {
		t.Errorf("an unauthorised write appended %d events, want its refusal's record alone", after-before)
	}
	var blocks []api.Block
	x.do("GET", "/v1/blocks/", nil, 200, &blocks, "Authorization", "Bearer s3cret")
	if len(blocks) != 0 {
		t.Errorf("an unauthorised write made blocks: %+v", blocks)
	}
}

func TestIdempotency(t *testing.T) {
	x := newHarness(t, Config{})
	body := api.CreateBlock{Label: "notes", Value: "once"}
	before := x.n.Projection.Applied()
	var first, again, other api.Block
	x.do("POST", "/v1/blocks/", body, 200, &first, "Idempotency-Key", "k-1")
	mid := x.n.Projection.Applied()
	if mid != before+1 {
		t.Fatalf("first create appended %d events, want 1", mid-before)
	}
	x.do("POST", "/v1/blocks/", body, 200, &again, "Idempotency-Key", "k-1")
	if again.ID != first.ID {
		t.Errorf("retried create made %s, want %s", again.ID, first.ID)
	}
	if after := x.n.Projection.Applied(); after != mid {
		t.Errorf("retried create appended %d events", after-mid)
	}
	x.do("POST", "/v1/blocks/", body, 200, &other, "Idempotency-Key", "k-2")
	if other.ID == first.ID {
		t.Errorf("another key made the same block %s", other.ID)
	}
	var list []api.Block
	x.do("GET", "/v1/blocks/", nil, 200, &list)
	if len(list) != 2 {
		t.Errorf("%d blocks, want 2", len(list))
	}

	// The 0.5 memory update runs one command per label; one key covers all.
	a := x.agent(api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "h"}, {Label: "persona", Value: "p"}}})
	update := map[string]string{"human": "h2", "persona": "p2"}
	var mem oldMemory
	x.do("PATCH", "/v1/agents/"+a.ID+"/memory", update, 200, &mem, "Idempotency-Key", "k-3")
	if mem.Memory["human"].Value != "h2" || mem.Memory["persona"].Value != "p2" {
		t.Errorf("memory %+v", mem.Memory)
	}
	mid = x.n.Projection.Applied()
	x.do("PATCH", "/v1/agents/"+a.ID+"/memory", update, 200, &mem, "Idempotency-Key", "k-3")
	if after := x.n.Projection.Applied(); after != mid {
		t.Errorf("retried memory update appended %d events", after-mid)
	}

	// A key used again for another request is refused, not answered with the
	// first request's result, and changes nothing.
	mid = x.n.Projection.Applied()
	var refused struct{ Detail string }
	x.do("POST", "/v1/blocks/", api.CreateBlock{Label: "notes", Value: "twice"}, 422, &refused, "Idempotency-Key", "k-1")
	if !strings.Contains(refused.Detail, `"k-1"`) || !strings.Contains(refused.Detail, "another request") {
		t.Errorf("reused key: %q", refused.Detail)
	}
	x.do("PATCH", "/v1/agents/"+a.ID+"/memory", map[string]string{"human": "h3"}, 422, &refused, "Idempotency-Key", "k-3")
	if after := x.n.Projection.Applied(); after != mid {
		t.Errorf("refused requests appended %d events", after-mid)
	}
	x.do("GET", "/v1/blocks/", nil, 200, &list)
	if len(list) != 4 { // notes k-1, notes k-2, the agent's human and persona
		t.Errorf("%d blocks after the refused create, want 4", len(list))
	}
	// The same request again is still answered as the first.
	x.do("POST", "/v1/blocks/", body, 200, &again, "Idempotency-Key", "k-1")
	if again.ID != first.ID {
		t.Errorf("retried create after a refusal made %s, want %s", again.ID, first.ID)
	}
}

func TestPanicRecovery(t *testing.T) {
	x := newHarness(t, Config{})
	x.h.mux.HandleFunc("GET /v1/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom: secret detail") })
	x.h.handle("GET /v1/leak", func(*http.Request) (any, error) { return nil, errors.New("dial tcp: password hunter2 rejected") })
	x.h.handle("GET /v1/unencodable", func(*http.Request) (any, error) { return make(chan int), nil })
	for _, p := range []string{"/v1/boom/", "/v1/leak", "/v1/unencodable"} {
		code, data := x.call("GET", p, nil)
		if code != 500 || strings.TrimSpace(string(data)) != `{"detail":"internal error"}` {
			t.Errorf("GET %s = %d %s, want 500 internal error", p, code, data)
		}
	}
	logs := x.logs.String()
	for _, want := range []string{"kaboom: secret detail", "password hunter2", "encode chan int response"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if code, data := x.call("GET", "/v1/health/", nil); code != 200 {
		t.Errorf("after the panic, health = %d %s", code, data)
	}
}

// FuzzCreateAgentBody posts arbitrary bodies to POST /v1/agents/: whatever
// the client sends, the answer is never a server error.
func FuzzCreateAgentBody(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"name":"a"}`, `{"name":""}`, `{"name":7}`, `{"nmae":1}`, `{} {}`, `{"name":`,
		`{"name":"a","memory_blocks":[{"label":"human","value":"v","limit":1}]}`,
		`{"memory_blocks":[{"label":"h","value":"v"},{"label":"h","value":"w"}]}`,
		`{"memory":{"memory":{"human":{"value":"x"}}}}`,
		`{"model":"openai/gpt-4o-mini","embedding":"nope/nope"}`, `{"model":"nohandle"}`,
		`{"llm_config":{"model":"m","model_endpoint_type":"openai","context_window":-1}}`,
		`{"llm_config":[],"embedding_config":"x","metadata":7,"tool_rules":{}}`,
		`{"block_ids":["block-1"],"tool_ids":["x"],"source_ids":[""],"tools":["nope"]}`,
		`{"tags":["",""],"metadata_":{"a":1},"system":"\u0000"}`,
		`{"name":"\ud800","description":"` + strings.Repeat("d", 10_001) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	n := startNode(f)
	h := newHandler(n.Service, Config{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/agents/", bytes.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("POST /v1/agents/ %q = %d %s", body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

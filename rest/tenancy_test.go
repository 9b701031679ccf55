package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

const adminToken = "admin-s3cret"

// newTenancyHarness is a node with a scripted model served under cfg, with
// the admin token adminToken.
func newTenancyHarness(t *testing.T, cfg Config) (*harness, *llmtest.Server) {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	ncfg := node.DefaultConfig(t.TempDir())
	ncfg.SyncAlways = false
	ncfg.Service = service.Config{Version: "test", Models: testModels, EmbeddingModels: testEmbeddingModels, Providers: reg}
	n, err := node.Start(context.Background(), ncfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	cfg.Token = adminToken
	x := &harness{t: t, n: n, logs: &syncBuffer{}}
	x.h = newHandler(n.Service, cfg)
	x.srv = httptest.NewServer(x.h)
	t.Cleanup(x.srv.Close)
	x.client = x.srv.Client()
	return x, script
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// org makes an organization and a key for it with the admin token.
func (x *harness) org(name string) (api.Organization, api.APIKey) {
	x.t.Helper()
	var o api.Organization
	x.do("POST", "/v1/admin/orgs", map[string]any{"name": name}, 200, &o, bearer(adminToken)...)
	var k api.APIKey
	x.do("POST", "/v1/admin/keys", api.APIKeyCreate{OrganizationID: o.ID, Name: name + " key"}, 200, &k, bearer(adminToken)...)
	if k.Key == "" || k.OrganizationID != o.ID {
		x.t.Fatalf("key answer %+v", k)
	}
	return o, k
}

// uploadAs posts a multipart file with a key.
func (x *harness) uploadAs(key, path, name string, data []byte) (int, []byte) {
	x.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		x.t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, x.srv.URL+path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := x.client.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// tenantObjects are one organization's objects, one of every kind a route
// family names.
type tenantObjects struct {
	key                                   string
	agent, block, tool, source, file, job string
	passage, run, sourceName              string
}

// populate makes, with key, an agent that has talked once (a run), a
// block, a tool, a source with a loaded file (a job) and a passage.
func (x *harness) populate(script *llmtest.Server, key, tag string) tenantObjects {
	x.t.Helper()
	o := tenantObjects{key: key, sourceName: "docs-" + tag}
	h := bearer(key)
	var a api.AgentState
	x.do("POST", "/v1/agents/", api.CreateAgent{Name: strp("agent-" + tag), AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini"),
		MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "secret of " + tag}}}, 200, &a, h...)
	o.agent = a.ID
	var b api.Block
	x.do("POST", "/v1/blocks/", api.CreateBlock{Label: "notes", Value: "notes of " + tag}, 200, &b, h...)
	o.block = b.ID
	var tl api.Tool
	x.do("POST", "/v1/tools/", toolBody("roll_"+tag), 200, &tl, h...)
	o.tool = tl.ID
	var src api.Source
	x.do("POST", "/v1/folders/", api.CreateSource{Name: o.sourceName}, 200, &src, h...)
	o.source = src.ID
	code, body := x.uploadAs(key, "/v1/folders/"+src.ID+"/upload", "a.txt", []byte("the pump needs oil of "+tag))
	if code != 200 {
		x.t.Fatalf("upload = %d %s", code, body)
	}
	var f api.FileMetadata
	if err := json.Unmarshal(body, &f); err != nil {
		x.t.Fatal(err)
	}
	o.file = f.ID
	for i := 0; ; i++ {
		var jobs []api.Job
		x.do("GET", "/v1/jobs/", nil, 200, &jobs, h...)
		if len(jobs) == 1 && jobs[0].Status == api.JobCompleted {
			o.job = jobs[0].ID
			break
		}
		if i > 200 {
			x.t.Fatalf("the load did not complete: %+v", jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ps []api.Passage
	x.do("POST", "/v1/agents/"+a.ID+"/archival-memory", map[string]any{"text": "passage of " + tag}, 200, &ps, h...)
	o.passage = ps[0].ID
	script.Push(say("hello " + tag))
	var resp api.LettaResponse
	x.do("POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, 200, &resp, h...)
	var runs []api.Run
	x.do("GET", "/v1/runs/?agent_id="+a.ID, nil, 200, &runs, h...)
	if len(runs) != 1 {
		x.t.Fatalf("runs %+v", runs)
	}
	o.run = runs[0].ID
	return o
}

// attacks are requests by one organization's key (own: its objects) on
// another's objects (v), each answered 404, or 403 where stated.
func attacks(own, v tenantObjects) []step {
	a, s := "/v1/agents/"+v.agent, "/v1/folders/"+v.source
	msg := map[string]any{"messages": []map[string]any{{"role": "user", "content": "leak"}}}
	return []step{
		// agents
		{"get agent", "GET", a, nil, 404, nil},
		{"update agent", "PATCH", a, map[string]any{"name": "stolen"}, 404, nil},
		{"delete agent", "DELETE", a, nil, 404, nil},
		{"agent history", "GET", a + "/events", nil, 404, nil},
		{"agent at a point", "GET", a + "?at=1", nil, 404, nil},
		{"fork agent", "POST", a + "/fork", map[string]any{}, 404, nil},
		{"export agent", "GET", a + "/export", nil, 404, nil},
		{"agent by name", "GET", "/v1/agents/?name=" + url.QueryEscape("agent-"+strings.TrimPrefix(v.sourceName, "docs-")), nil, 200, noneOf(v.agent)},
		{"0.5 get agent", "GET", Prefix05 + "/v1/agents/" + v.agent, nil, 404, nil},
		// blocks and core memory
		{"core memory", "GET", a + "/core-memory", nil, 404, nil},
		{"core memory blocks", "GET", a + "/core-memory/blocks", nil, 404, nil},
		{"edit core memory", "PATCH", a + "/core-memory/blocks/human", map[string]any{"value": "stolen"}, 404, nil},
		{"get block", "GET", "/v1/blocks/" + v.block, nil, 404, nil},
		{"update block", "PATCH", "/v1/blocks/" + v.block, map[string]any{"value": "stolen"}, 404, nil},
		{"delete block", "DELETE", "/v1/blocks/" + v.block, nil, 404, nil},
		{"block's agents", "GET", "/v1/blocks/" + v.block + "/agents", nil, 404, nil},
		{"attach block", "PATCH", "/v1/agents/" + own.agent + "/core-memory/blocks/attach/" + v.block, nil, 404, nil},
		{"attach block to their agent", "PATCH", a + "/core-memory/blocks/attach/" + own.block, nil, 404, nil},
		{"create agent with their block", "POST", "/v1/agents/", map[string]any{"block_ids": []string{v.block}}, 404, nil},
		{"set their block", "PATCH", "/v1/agents/" + own.agent, map[string]any{"block_ids": []string{v.block}}, 404, nil},
		// tools
		{"get tool", "GET", "/v1/tools/" + v.tool, nil, 404, nil},
		{"update tool", "PATCH", "/v1/tools/" + v.tool, map[string]any{"description": "stolen"}, 404, nil},
		{"delete tool", "DELETE", "/v1/tools/" + v.tool, nil, 404, nil},
		{"attach tool", "PATCH", "/v1/agents/" + own.agent + "/tools/attach/" + v.tool, nil, 404, nil},
		{"agent's tools", "GET", a + "/tools", nil, 404, nil},
		{"create agent with their tool", "POST", "/v1/agents/", map[string]any{"tool_ids": []string{v.tool}}, 404, nil},
		{"set their tool", "PATCH", "/v1/agents/" + own.agent, map[string]any{"tool_ids": []string{v.tool}}, 404, nil},
		// sources
		{"get source", "GET", s, nil, 404, nil},
		{"0.5 get source", "GET", "/v1/sources/" + v.source, nil, 404, nil},
		{"update source", "PATCH", s, map[string]any{"description": "stolen"}, 404, nil},
		{"delete source", "DELETE", s, nil, 404, nil},
		{"source by name", "GET", "/v1/folders/name/" + v.sourceName, nil, 404, nil},
		{"source's agents", "GET", s + "/agents", nil, 404, nil},
		{"attach source", "PATCH", "/v1/agents/" + own.agent + "/folders/attach/" + v.source, nil, 404, nil},
		{"0.5 attach source", "POST", "/v1/sources/" + v.source + "/attach?agent_id=" + own.agent, nil, 404, nil},
		{"0.5 attach own source to their agent", "POST", "/v1/sources/" + own.source + "/attach?agent_id=" + v.agent, nil, 404, nil},
		{"create agent with their source", "POST", "/v1/agents/", map[string]any{"source_ids": []string{v.source}}, 404, nil},
		{"agent's sources", "GET", a + "/folders", nil, 404, nil},
		// files
		{"list files", "GET", s + "/files", nil, 404, nil},
		{"get file", "GET", s + "/files/" + v.file, nil, 404, nil},
		{"delete file", "DELETE", s + "/" + v.file, nil, 404, nil},
		{"agent's files", "GET", a + "/files", nil, 404, nil},
		// messages
		{"list messages", "GET", a + "/messages", nil, 404, nil},
		{"send", "POST", a + "/messages", msg, 404, nil},
		{"send streaming", "POST", a + "/messages/stream", msg, 404, nil},
		{"send async", "POST", a + "/messages/async", msg, 404, nil},
		{"cancel", "POST", a + "/messages/cancel", map[string]any{}, 404, nil},
		{"command", "POST", a + "/command", map[string]any{"command": "/pop 1"}, 404, nil},
		{"context messages", "GET", a + "/memory/messages", nil, 404, nil},
		// search and archival memory
		{"archival search", "GET", a + "/archival-memory/search?query=passage", nil, 404, nil},
		{"list archival", "GET", a + "/archival-memory", nil, 404, nil},
		{"insert archival", "POST", a + "/archival-memory", map[string]any{"text": "planted"}, 404, nil},
		{"delete passage", "DELETE", a + "/archival-memory/" + v.passage, nil, 404, nil},
		{"source passages", "GET", s + "/passages", nil, 404, nil},
		// jobs and runs
		{"get job", "GET", "/v1/jobs/" + v.job, nil, 404, nil},
		{"0.5 delete job", "DELETE", Prefix05 + "/v1/jobs/" + v.job, nil, 404, nil},
		{"get run", "GET", "/v1/runs/" + v.run, nil, 404, nil},
		{"run messages", "GET", "/v1/runs/" + v.run + "/messages", nil, 404, nil},
		{"run steps", "GET", "/v1/runs/" + v.run + "/steps", nil, 404, nil},
		{"runs of their agent", "GET", "/v1/runs/?agent_id=" + v.agent, nil, 200, noneOf(v.run)},
		// lists show none of theirs
		{"list agents", "GET", "/v1/agents/", nil, 200, noneOf(v.agent)},
		{"list blocks", "GET", "/v1/blocks/", nil, 200, noneOf(v.block)},
		{"list tools", "GET", "/v1/tools/", nil, 200, noneOf(v.tool)},
		{"list sources", "GET", "/v1/folders/", nil, 200, noneOf(v.source)},
		{"list jobs", "GET", "/v1/jobs/", nil, 200, noneOf(v.job)},
		{"list runs", "GET", "/v1/runs/", nil, 200, noneOf(v.run)},
		// admin routes are the admin's
		{"list orgs", "GET", "/v1/admin/orgs", nil, 403, nil},
		{"make a key", "POST", "/v1/admin/keys", map[string]any{"organization_id": service.DefaultOrgID}, 403, nil},
		{"audit", "GET", "/v1/admin/audit", nil, 403, nil},
		{"verify", "GET", "/v1/admin/log/verify", nil, 403, nil},
	}
}

// noneOf checks that a body does not mention any of ids.
func noneOf(ids ...string) func(t *testing.T, body []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		for _, id := range ids {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("the answer names %s: %.300s", id, body)
			}
		}
	}
}

// TestTenancyMatrix: two organizations, each key tried on every route
// family against the other's objects (and the admin's against both):
// 404 (403 for admin routes), the answers name nothing of the other's,
// and nothing is appended to the log; each still sees its own.
func TestTenancyMatrix(t *testing.T) {
	x, script := newTenancyHarness(t, Config{})
	_, ka := x.org("acme")
	_, kb := x.org("globex")
	a := x.populate(script, ka.Key, "a")
	b := x.populate(script, kb.Key, "b")
	admin := x.populate(script, adminToken, "default")

	for _, pair := range []struct {
		name     string
		attacker tenantObjects
		victim   tenantObjects
	}{{"a on b", a, b}, {"b on a", b, a}, {"a on default", a, admin}, {"admin on a", admin, a}} {
		t.Run(pair.name, func(t *testing.T) {
			before := x.lastSeq()
			for _, s := range attacks(pair.attacker, pair.victim) {
				if pair.attacker.key == adminToken && (s.want == 403) {
					continue // the admin may use admin routes
				}
				t.Run(s.name, func(t *testing.T) {
					code, data := x.call(s.method, s.path, s.body, bearer(pair.attacker.key)...)
					if code != s.want {
						t.Fatalf("%s %s = %d %.300s, want %d", s.method, s.path, code, data, s.want)
					}
					if s.check != nil {
						s.check(t, data)
					}
					if code == 404 && (bytes.Contains(data, []byte("stolen")) || bytes.Contains(data, []byte("secret of"))) {
						t.Errorf("a 404 carries the other's data: %s", data)
					}
				})
			}
			if after := x.lastSeq(); after != before {
				t.Errorf("the refused requests appended %d messages to the log", after-before)
			}
		})
	}

	// Each still sees and changes its own.
	for _, o := range []tenantObjects{a, b, admin} {
		h := bearer(o.key)
		var got api.AgentState
		x.do("GET", "/v1/agents/"+o.agent, nil, 200, &got, h...)
		var agents []api.AgentState
		x.do("GET", "/v1/agents/", nil, 200, &agents, h...)
		if ids := agentIDs(agents); len(ids) != 1 || ids[0] != o.agent {
			t.Errorf("key of %s lists agents %v, want [%s]", o.sourceName, ids, o.agent)
		}
		var blocks []api.Block
		x.do("GET", "/v1/agents/"+o.agent+"/core-memory/blocks", nil, 200, &blocks, h...)
		if len(blocks) != 1 || !strings.HasPrefix(blocks[0].Value, "secret of") {
			t.Errorf("blocks %+v", blocks)
		}
		var search api.ArchivalSearch
		x.do("GET", "/v1/agents/"+o.agent+"/archival-memory/search?query=passage", nil, 200, &search, h...)
		raw, _ := json.Marshal(search)
		for _, other := range []tenantObjects{a, b, admin} {
			if other.passage != o.passage && bytes.Contains(raw, []byte(other.passage)) {
				t.Errorf("%s's search found %s's passage: %s", o.sourceName, other.sourceName, raw)
			}
		}
		x.do("PATCH", "/v1/agents/"+o.agent+"/folders/attach/"+o.source, nil, 200, nil, h...)
		var tools []api.Tool
		x.do("GET", "/v1/tools/?name=send_message", nil, 200, &tools, h...)
		if len(tools) != 1 {
			t.Errorf("base tool send_message: %d visible, want the shared one", len(tools))
		}
	}

	// A base tool is shared, and only the default organization changes it.
	var tools []api.Tool
	x.do("GET", "/v1/tools/?name=send_message", nil, 200, &tools, bearer(a.key)...)
	x.do("GET", "/v1/tools/"+tools[0].ID, nil, 200, nil, bearer(a.key)...)
	x.do("PATCH", "/v1/tools/"+tools[0].ID, map[string]any{"description": "hijacked"}, 403, nil, bearer(a.key)...)
	x.do("DELETE", "/v1/tools/"+tools[0].ID, nil, 403, nil, bearer(b.key)...)
	x.do("POST", "/v1/tools/", toolBody("send_message"), 400, nil, bearer(a.key)...)
	// Names are the organization's own: b may have a source named as a's.
	x.do("POST", "/v1/folders/", api.CreateSource{Name: a.sourceName}, 200, nil, bearer(b.key)...)
}

// TestRevokedAndExpiredKeys: a revoked key, an expired one and one whose
// organization was deleted are 401, and each refusal is in the access
// record with the key it named; the admin's actions are there too.
func TestRevokedAndExpiredKeys(t *testing.T) {
	x, _ := newTenancyHarness(t, Config{})
	org, k := x.org("acme")
	x.do("GET", "/v1/agents/", nil, 200, nil, bearer(k.Key)...)

	// An expiring key works until it expires.
	var short api.APIKey
	exp := time.Now().Add(1500 * time.Millisecond).UTC()
	x.do("POST", "/v1/admin/keys", api.APIKeyCreate{OrganizationID: org.ID, ExpiresAt: &exp}, 200, &short, bearer(adminToken)...)
	x.do("GET", "/v1/agents/", nil, 200, nil, bearer(short.Key)...)

	var revoked api.APIKey
	x.do("DELETE", "/v1/admin/keys/"+k.ID, nil, 200, &revoked, bearer(adminToken)...)
	if revoked.RevokedAt == nil {
		t.Errorf("revoked key %+v", revoked)
	}
	before := x.lastSeq()
	code, body := x.call("GET", "/v1/agents/", nil, bearer(k.Key)...)
	if code != 401 {
		t.Fatalf("revoked key = %d %s", code, body)
	}
	code, _ = x.call("POST", "/v1/blocks/", api.CreateBlock{Label: "l", Value: "v"}, bearer(k.Key)...)
	if code != 401 {
		t.Fatalf("revoked key's write = %d", code)
	}
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	if code, body := x.call("GET", "/v1/agents/", nil, bearer(short.Key)...); code != 401 {
		t.Fatalf("expired key = %d %s", code, body)
	}
	// A forged secret for a real key id, and a key of a deleted organization.
	forged := k.ID + ".AAAA" + strings.Repeat("x", 39)
	if code, _ := x.call("GET", "/v1/agents/", nil, bearer(forged)...); code != 401 {
		t.Fatalf("forged key = %d", code)
	}
	other, k2 := x.org("globex")
	x.do("GET", "/v1/agents/", nil, 200, nil, bearer(k2.Key)...)
	x.do("DELETE", "/v1/admin/orgs?org_id="+other.ID, nil, 200, nil, bearer(adminToken)...)
	if code, _ := x.call("GET", "/v1/agents/", nil, bearer(k2.Key)...); code != 401 {
		t.Fatalf("key of a deleted organization = %d", code)
	}
	x.do("GET", "/v1/admin/orgs?org_id="+other.ID, nil, 200, nil, bearer(adminToken)...)
	var blocks []api.Block
	x.do("GET", "/v1/blocks/", nil, 200, &blocks, bearer(adminToken)...)
	if len(blocks) != 0 {
		t.Errorf("a refused write made blocks: %+v", blocks)
	}

	var audit []api.Event
	x.do("GET", "/v1/admin/audit?limit=1000", nil, 200, &audit, bearer(adminToken)...)
	var reasons, admins []string
	for _, e := range audit {
		var d struct {
			Reason string `json:"reason"`
			KeyID  string `json:"key_id"`
			Hash   string `json:"hash"`
		}
		json.Unmarshal(e.Data, &d)
		switch e.Type {
		case "access_denied":
			if e.Seq > before {
				reasons = append(reasons, d.Reason+" "+d.KeyID)
			}
		default:
			if e.IssuedBy != "admin" {
				t.Errorf("%s issued by %q, want admin", e.Type, e.IssuedBy)
			}
			admins = append(admins, e.Type)
		}
		if bytes.Contains(e.Data, []byte(strings.SplitN(k.Key, ".", 2)[1])) {
			t.Errorf("the access record holds a key's secret: %s", e.Data)
		}
	}
	want := []string{"revoked " + k.ID, "revoked " + k.ID, "expired " + short.ID, "unknown " + k.ID, "revoked " + k2.ID}
	if !slices.Equal(reasons, want) {
		t.Errorf("refusals recorded %q, want %q", reasons, want)
	}
	wantAdmin := []string{"organization_created", "api_key_created", "api_key_created", "api_key_revoked",
		"organization_created", "api_key_created", "organization_deleted"}
	if !slices.Equal(admins, wantAdmin) {
		t.Errorf("admin actions recorded %q, want %q", admins, wantAdmin)
	}
	// The list of keys shows no secret.
	var keys []api.APIKey
	x.do("GET", "/v1/admin/keys", nil, 200, &keys, bearer(adminToken)...)
	for _, kk := range keys {
		if kk.Key != "" {
			t.Errorf("key list shows a secret: %+v", kk)
		}
	}
	if len(keys) != 3 {
		t.Errorf("%d keys listed, want 3", len(keys))
	}
	// The access record is part of the sealed log.
	var rep api.LogVerification
	x.do("GET", "/v1/admin/log/verify", nil, 200, &rep, bearer(adminToken)...)
	if !rep.Verified {
		t.Errorf("the log with the access record does not verify: %+v", rep)
	}
}

// TestNoKeysBehavesAsBefore: without a token, requests without a key act
// as before organizations (the default one), and one presenting a revoked
// key is refused, not let in as the default organization.
func TestNoKeysBehavesAsBefore(t *testing.T) {
	x := newHarness(t, Config{})
	x.do("GET", "/v1/agents/", nil, 200, nil)
	x.do("GET", "/v1/agents/", nil, 200, nil, "Authorization", "Bearer anything")
	var o api.Organization
	x.do("POST", "/v1/admin/orgs", map[string]any{"name": "acme"}, 200, &o)
	var k api.APIKey
	x.do("POST", "/v1/admin/keys", api.APIKeyCreate{OrganizationID: o.ID}, 200, &k)
	mine := x.agent(api.CreateAgent{})
	var got []api.AgentState
	x.do("GET", "/v1/agents/", nil, 200, &got, bearer(k.Key)...)
	if len(got) != 0 {
		t.Errorf("the organization's key sees the default's agents: %v", agentIDs(got))
	}
	x.do("GET", "/v1/agents/"+mine.ID, nil, 404, nil, bearer(k.Key)...)
	x.do("GET", "/v1/admin/orgs", nil, 403, nil, bearer(k.Key)...)
	x.do("DELETE", "/v1/admin/keys/"+k.ID, nil, 200, nil)
	x.do("GET", "/v1/agents/", nil, 401, nil, bearer(k.Key)...)
}

// TestRateLimitPerOrg: an organization over its request rate is answered
// 429 with Retry-After, changing nothing, while another organization and
// the admin routes are served; after Retry-After it is served again.
func TestRateLimitPerOrg(t *testing.T) {
	x, _ := newTenancyHarness(t, Config{RateLimit: 2, RateBurst: 3})
	_, ka := x.org("acme")
	_, kb := x.org("globex")
	for i := 0; i < 3; i++ {
		x.do("GET", "/v1/agents/", nil, 200, nil, bearer(ka.Key)...)
	}
	before := x.lastSeq()
	code, hdr, body := x.callHeader("POST", "/v1/blocks/", api.CreateBlock{Label: "l", Value: "v"}, bearer(ka.Key)...)
	if code != 429 {
		t.Fatalf("4th request at once = %d %s, want 429", code, body)
	}
	secs, err := strconv.Atoi(hdr.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	if !strings.Contains(string(body), `"detail"`) {
		t.Errorf("body %s", body)
	}
	if x.lastSeq() != before {
		t.Error("a refused write appended events")
	}
	x.do("GET", "/v1/agents/", nil, 200, nil, bearer(kb.Key)...) // another organization is served
	x.do("GET", "/v1/admin/orgs", nil, 200, nil, bearer(adminToken)...)
	time.Sleep(time.Duration(secs) * time.Second)
	x.do("GET", "/v1/agents/", nil, 200, nil, bearer(ka.Key)...)
}

// TestRunLimitPerOrg: with one run in progress, an organization's next send
// is 429 with Retry-After and stores nothing, another organization's is
// served, and once the run ends the organization may send again.
func TestRunLimitPerOrg(t *testing.T) {
	x, script := newTenancyHarness(t, Config{MaxRunsPerOrg: 1})
	_, ka := x.org("acme")
	_, kb := x.org("globex")
	newAgent := func(key string) string {
		var a api.AgentState
		x.do("POST", "/v1/agents/", api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")}, 200, &a, bearer(key)...)
		return a.ID
	}
	a1, a2, b1 := newAgent(ka.Key), newAgent(ka.Key), newAgent(kb.Key)
	hold := make(chan struct{})
	script.Push(llmtest.Step{Content: "thinking", Hold: hold, ToolCalls: say("first").ToolCalls})
	msg := map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}
	var run api.Run
	x.do("POST", "/v1/agents/"+a1+"/messages/async", msg, 200, &run, bearer(ka.Key)...)
	before := x.lastSeq()
	code, hdr, body := x.callHeader("POST", "/v1/agents/"+a2+"/messages", msg, bearer(ka.Key)...)
	if code != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("a second run = %d (Retry-After %q) %s, want 429", code, hdr.Get("Retry-After"), body)
	}
	if x.lastSeq() != before {
		t.Error("a refused send appended events")
	}
	for i := 0; script.Pending() > 0; i++ { // the held step is being answered
		if i > 500 {
			t.Fatal("the run never called the model")
		}
		time.Sleep(10 * time.Millisecond)
	}
	script.Push(say("other org"))
	x.do("POST", "/v1/agents/"+b1+"/messages", msg, 200, nil, bearer(kb.Key)...)
	close(hold)
	for i := 0; ; i++ {
		var r api.Run
		x.do("GET", "/v1/runs/"+run.ID, nil, 200, &r, bearer(ka.Key)...)
		if r.Status == "completed" {
			break
		}
		if i > 500 {
			t.Fatalf("the held run did not end: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	script.Push(say("second"))
	x.do("POST", "/v1/agents/"+a2+"/messages", msg, 200, nil, bearer(ka.Key)...)
}

// TestIdempotencyKeysAreTheOrgs: the same Idempotency-Key sent by two
// organizations names two commands: the second is not answered with the
// first's result.
func TestIdempotencyKeysAreTheOrgs(t *testing.T) {
	x, _ := newTenancyHarness(t, Config{})
	_, ka := x.org("acme")
	_, kb := x.org("globex")
	body := api.CreateBlock{Label: "notes", Value: "mine"}
	var first, again, theirs api.Block
	x.do("POST", "/v1/blocks/", body, 200, &first, append(bearer(ka.Key), "Idempotency-Key", "k-1")...)
	x.do("POST", "/v1/blocks/", body, 200, &again, append(bearer(ka.Key), "Idempotency-Key", "k-1")...)
	if again.ID != first.ID {
		t.Errorf("a's retry made %s, want %s", again.ID, first.ID)
	}
	x.do("POST", "/v1/blocks/", body, 200, &theirs, append(bearer(kb.Key), "Idempotency-Key", "k-1")...)
	if theirs.ID == first.ID {
		t.Fatalf("b's request with a's key was answered with a's block %s", first.ID)
	}
	var list []api.Block
	x.do("GET", "/v1/blocks/", nil, 200, &list, bearer(kb.Key)...)
	if ids := blockIDs(list); len(ids) != 1 || ids[0] != theirs.ID {
		t.Errorf("b lists %v, want [%s]", ids, theirs.ID)
	}
}

// TestDeletedObjectsStayTheirOrgs: the history of a deleted agent (which
// the log keeps) is its organization's alone, the default one's included.
func TestDeletedObjectsStayTheirOrgs(t *testing.T) {
	x, _ := newTenancyHarness(t, Config{})
	_, ka := x.org("acme")
	for _, owner := range []string{adminToken, ka.Key} {
		var a api.AgentState
		x.do("POST", "/v1/agents/", api.CreateAgent{Name: strp("doomed")}, 200, &a, bearer(owner)...)
		x.do("DELETE", "/v1/agents/"+a.ID, nil, 200, nil, bearer(owner)...)
		x.do("GET", "/v1/agents/"+a.ID+"/events", nil, 200, nil, bearer(owner)...)
		other := ka.Key
		if owner == ka.Key {
			other = adminToken
		}
		x.do("GET", "/v1/agents/"+a.ID+"/events", nil, 404, nil, bearer(other)...)
	}
}

// TestConversationsAreTheirAgentsOrgs: a conversation is its agent's, so
// another organization neither reads, lists, nor sends to it, nor to the
// agent's default conversation, nor reads the agent's messages by id; and
// nothing it tries is stored.
func TestConversationsAreTheirAgentsOrgs(t *testing.T) {
	x, script := newTenancyHarness(t, Config{})
	_, ka := x.org("acme")
	_, kb := x.org("globex")
	va := x.populate(script, ka.Key, "a")
	var conv api.Conversation
	x.do("POST", "/v1/conversations/?agent_id="+va.agent, map[string]any{}, 200, &conv, bearer(ka.Key)...)
	var msgs []api.LettaMessage
	x.do("GET", "/v1/agents/"+va.agent+"/messages", nil, 200, &msgs, bearer(ka.Key)...)
	if len(msgs) == 0 {
		t.Fatal("the victim's agent has no messages")
	}
	x.do("GET", "/v1/messages/"+msgs[0].ID, nil, 200, nil, bearer(ka.Key)...)
	before := x.lastSeq()
	send := map[string]any{"messages": []map[string]any{{"role": "user", "content": "leak?"}}, "streaming": false}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/conversations/" + conv.ID, nil},
		{"GET", "/v1/conversations/" + conv.ID + "/messages", nil},
		{"PATCH", "/v1/conversations/" + conv.ID, map[string]any{"summary": "mine now"}},
		{"DELETE", "/v1/conversations/" + conv.ID, nil},
		{"POST", "/v1/conversations/" + conv.ID + "/messages", send},
		{"POST", "/v1/conversations/default/messages", map[string]any{"agent_id": va.agent, "messages": send["messages"], "streaming": false}},
		{"GET", "/v1/conversations/default/messages?agent_id=" + va.agent, nil},
		{"POST", "/v1/conversations/?agent_id=" + va.agent, map[string]any{}},
		{"GET", "/v1/conversations/?agent_id=" + va.agent, nil},
		{"GET", "/v1/messages/" + msgs[0].ID, nil},
	} {
		if code, body := x.call(c.method, c.path, c.body, bearer(kb.Key)...); code != 404 {
			t.Errorf("%s %s by another organization = %d %s; want 404", c.method, c.path, code, body)
		}
	}
	var list []api.Conversation
	x.do("GET", "/v1/conversations/", nil, 200, &list, bearer(kb.Key)...)
	if len(list) != 0 {
		t.Errorf("another organization lists %d conversations: %+v", len(list), list)
	}
	if after := x.lastSeq(); after != before {
		t.Errorf("the log grew from %d to %d under another organization's requests", before, after)
	}
}

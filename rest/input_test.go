package rest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
)

// checkDetail requires an error body of exactly {"detail": <string>} whose
// text contains want.
func checkDetail(t *testing.T, data []byte, want string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("error body %s: %v", data, err)
	}
	d, ok := body["detail"].(string)
	if !ok || len(body) != 1 {
		t.Fatalf("error body %s, want {\"detail\": string}", data)
	}
	if !strings.Contains(d, want) {
		t.Errorf("detail %q does not contain %q", d, want)
	}
}

// TestBadInput sends requests that must fail, and checks the status, the
// message, and that no event was appended.
func TestBadInput(t *testing.T) {
	const maxBody = 64 << 10
	x := newHarness(t, Config{MaxBodyBytes: maxBody})
	a := x.agent(api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Name: Ada", Limit: intp(50)}}})
	b := x.block(api.CreateBlock{Label: "notes", Value: "short", Limit: intp(10)})
	src := x.source("docs")
	tool := x.tool("tool_for_input_tests")
	now := time.Now()
	var (
		noAgent   = events.NewID(events.PrefixAgent, now)
		noBlock   = events.NewID(events.PrefixBlock, now)
		noTool    = events.NewID(events.PrefixTool, now)
		noSource  = events.NewID(events.PrefixSource, now)
		noJob     = events.NewID(events.PrefixJob, now)
		noPassage = events.NewID(events.PrefixPassage, now)
		agent     = "/v1/agents/" + a.ID
		long      = strings.Repeat("x", 101)
	)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		hdr    []string
		want   int
		detail string
	}{
		// Bodies.
		{"malformed JSON", "POST", "/v1/agents/", `{"name":`, nil, 400, "malformed JSON: unexpected end of input"},
		{"malformed JSON syntax", "POST", "/v1/blocks/", `{label: "x"}`, nil, 400, "malformed JSON: invalid character"},
		{"second object", "POST", "/v1/blocks/", `{"label":"a","value":"b"} {"label":"c"}`, nil, 400, "unexpected data after the object"},
		{"trailing garbage", "POST", "/v1/blocks/", `{"label":"a","value":"b"}x`, nil, 400, "unexpected data after the object"},
		{"unknown field", "POST", "/v1/agents/", `{"nmae":"x"}`, nil, 422, `unknown field "nmae"`},
		{"unknown nested field", "POST", "/v1/agents/", `{"memory_blocks":[{"label":"h","value":"v","colour":1}]}`, nil, 422, `unknown field "colour"`},
		{"wrong type", "POST", "/v1/agents/", `{"name":7}`, nil, 422, `field "name" must be a string, not number`},
		{"wrong nested type", "POST", "/v1/agents/", `{"memory_blocks":[{"label":7}]}`, nil, 422, `"memory_blocks.label"`},
		{"wrong integer type", "POST", "/v1/blocks/", `{"label":"a","value":"b","limit":"ten"}`, nil, 422, `field "limit" must be an integer`},
		{"wrong list type", "PATCH", agent, `{"tags":"a"}`, nil, 422, `field "tags" must be an array`},
		{"not an object", "POST", "/v1/agents/", `[]`, nil, 422, "must be a JSON object"},
		{"empty body", "POST", "/v1/blocks/", "", nil, 422, "body is required"},
		{"null body", "PATCH", "/v1/blocks/" + b.ID, "null", nil, 422, "body is required"},
		{"body too large", "POST", "/v1/blocks/", api.CreateBlock{Label: "big", Value: strings.Repeat("v", maxBody)}, nil, 413, "larger than 65536 bytes"},

		// Validation in the service.
		{"empty source name", "POST", "/v1/folders/", api.CreateSource{}, nil, 400, "must not be empty"},
		{"empty agent name", "POST", "/v1/agents/", map[string]any{"name": ""}, nil, 400, "must not be empty"},
		{"oversized agent name", "POST", "/v1/agents/", map[string]any{"name": long}, nil, 400, "the limit is 100"},
		{"oversized source name", "PATCH", "/v1/sources/" + src.ID, map[string]any{"name": long}, nil, 400, "the limit is 100"},
		{"oversized label", "POST", "/v1/blocks/", api.CreateBlock{Label: long, Value: "v"}, nil, 400, "the limit is 100"},
		{"core block over its limit", "PATCH", agent + "/core-memory/blocks/human", map[string]any{"value": strings.Repeat("y", 51)}, nil, 400, "Exceeds 50 character limit"},
		{"block over its limit", "PATCH", "/v1/blocks/" + b.ID, map[string]any{"value": "eleven char"}, nil, 400, "Exceeds 10 character limit"},
		{"0.5 memory over its limit", "PATCH", agent + "/memory", map[string]any{"human": strings.Repeat("y", 51)}, nil, 400, "Exceeds 50 character limit"},
		{"0.5 memory not a string", "PATCH", agent + "/memory", `{"human": 5}`, nil, 422, `value of "human" must be a string`},
		{"0.5 memory unknown label", "PATCH", agent + "/memory", `{"human": "ok", "nope": "x"}`, nil, 404, "No block with label 'nope'"},
		{"empty tool source", "POST", "/v1/tools/", map[string]any{"source_code": ""}, nil, 400, "source_code must not be empty"},
		{"tool parameter without annotation", "POST", "/v1/tools/", map[string]any{"source_code": "def f(a: int, b):\n    \"\"\"Do.\n\n    Args:\n        a: A.\n        b: B.\n    \"\"\"\n"}, nil, 400, "Parameter 'b' in function 'f' lacks a type annotation"},
		{"tool without docstring", "POST", "/v1/tools/", map[string]any{"source_code": "def f(a: int):\n    return a\n"}, nil, 400, "Parameter 'a' in function 'f' lacks a description in the docstring"},
		{"tool timeout zero", "POST", "/v1/tools/", map[string]any{"source_code": "def f():\n    \"\"\"Do.\"\"\"\n", "timeout_seconds": 0}, nil, 400, "timeout_seconds must be more than 0 and at most 3600"},
		{"tool timeout too long", "PATCH", "/v1/tools/" + tool.ID, map[string]any{"timeout_seconds": 3601}, nil, 400, "timeout_seconds must be more than 0"},
		{"empty passage", "POST", agent + "/archival-memory", map[string]any{"text": " "}, nil, 400, "text must not be empty"},

		// Unknown ids.
		{"unknown agent", "GET", "/v1/agents/" + noAgent, nil, nil, 404, "Agent with ID " + noAgent + " not found"},
		{"update unknown agent", "PATCH", "/v1/agents/" + noAgent, map[string]any{"name": "x"}, nil, 404, "not found"},
		{"delete unknown agent", "DELETE", "/v1/agents/" + noAgent, nil, nil, 404, "not found"},
		{"unknown block", "GET", "/v1/blocks/" + noBlock, nil, nil, 404, "not found"},
		{"attach unknown block", "PATCH", agent + "/core-memory/blocks/attach/" + noBlock, nil, nil, 404, "not found"},
		{"unknown label", "GET", agent + "/core-memory/blocks/persona", nil, nil, 404, "No block with label 'persona' found for agent '" + a.ID + "'"},
		{"delete unknown tool", "DELETE", "/v1/tools/" + noTool, nil, nil, 404, "not found"},
		{"attach unknown tool", "PATCH", agent + "/tools/attach/" + noTool, nil, nil, 404, "not found"},
		{"unknown tool name", "GET", "/v1/tools/name/nosuch", nil, nil, 404, "not found"},
		{"unknown source", "GET", "/v1/folders/" + noSource, nil, nil, 404, "not found"},
		{"unknown source name", "GET", "/v1/sources/name/nosuch", nil, nil, 404, "not found"},
		{"agents of unknown source", "GET", "/v1/folders/" + noSource + "/agents", nil, nil, 404, "not found"},
		{"0.5 attach to unknown agent", "POST", "/v1/sources/" + src.ID + "/attach?agent_id=" + noAgent, nil, nil, 404, "not found"},
		{"unknown job", "GET", "/v1/jobs/" + noJob, nil, nil, 404, "not found"},
		{"delete unknown passage", "DELETE", agent + "/archival-memory/" + noPassage, nil, nil, 404, "not found"},
		{"insert into unknown agent", "POST", "/v1/agents/" + noAgent + "/archival-memory", map[string]any{"text": "x"}, nil, 404, "not found"},
		{"unknown cursor", "GET", "/v1/agents/?after=" + noAgent, nil, nil, 404, "No Agent found with id"},
		{"send to unknown agent", "POST", "/v1/agents/" + noAgent + "/messages", map[string]any{"input": "hi"}, nil, 404, "not found"},

		// Well-formed ids in another uuid version (a Letta export's) that name nothing.
		{"unknown uuid4 agent", "GET", "/v1/agents/agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown uuid4 block", "GET", "/v1/blocks/block-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown uuid4 tool", "PATCH", agent + "/tools/attach/tool-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown uuid4 source", "GET", "/v1/folders/source-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown uuid4 job", "GET", "/v1/jobs/job-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown uuid4 passage", "DELETE", agent + "/archival-memory/passage-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 404, "not found"},
		{"unknown legacy ULID agent", "GET", "/v1/agents/agent-01JD000000000000000000000A", nil, nil, 404, "not found"},

		// Malformed ids.
		{"upper-case uuid agent id", "GET", "/v1/agents/agent-8F5C3B1E-2D4A-4C6B-9E7F-0A1B2C3D4E5F", nil, nil, 422, "agent-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
		{"uuid with the wrong prefix", "GET", "/v1/agents/block-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", nil, nil, 422, "not a valid agent id"},
		{"malformed agent id", "GET", "/v1/agents/agent-123", nil, nil, 422, "not a valid agent id"},
		{"malformed block id", "DELETE", "/v1/blocks/xyz", nil, nil, 422, "not a valid block id"},
		{"malformed tool id", "PATCH", agent + "/tools/attach/tool-1", nil, nil, 422, "not a valid tool id"},
		{"malformed source id", "DELETE", "/v1/folders/nope", nil, nil, 422, "not a valid source id"},
		{"malformed source id, agents", "GET", "/v1/folders/nope/agents", nil, nil, 422, "not a valid source id"},
		{"malformed job id", "GET", "/v1/jobs/job-1", nil, nil, 422, "not a valid job id"},
		{"malformed passage id", "DELETE", agent + "/archival/7", nil, nil, 422, "not a valid passage id"},

		// Query parameters.
		{"limit not a number", "GET", "/v1/agents/?limit=ten", nil, nil, 422, `limit must be a non-negative integer, not "ten"`},
		{"negative limit", "GET", "/v1/blocks/?limit=-1", nil, nil, 422, "non-negative integer"},
		{"bad order", "GET", "/v1/tools/?order=up", nil, nil, 422, `order must be asc or desc, not "up"`},
		{"bad order on messages", "GET", agent + "/messages?order=sideways", nil, nil, 422, "order must be asc or desc"},
		{"bad boolean", "GET", "/v1/agents/?match_all_tags=yes", nil, nil, 422, `match_all_tags must be true or false, not "yes"`},
		{"bad ascending", "GET", agent + "/archival-memory?ascending=yes", nil, nil, 422, "ascending must be true or false"},
		{"bad templates_only", "GET", "/v1/blocks/?templates_only=maybe", nil, nil, 422, "templates_only must be true or false"},
		{"malformed query", "GET", "/v1/agents/?limit=%zz", nil, nil, 400, "malformed query string"},
		{"0.5 attach without agent", "POST", "/v1/sources/" + src.ID + "/attach", nil, nil, 422, "agent_id is required"},

		// Transport.
		{"idempotency key too long", "POST", "/v1/blocks/", api.CreateBlock{Label: "k", Value: "v"}, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "Idempotency-Key is 256 bytes long"},
		{"send message without a provider", "POST", agent + "/messages", map[string]any{"input": "hi"}, nil, 400, "no model provider is configured"},
		{"send both input and messages", "POST", agent + "/messages", map[string]any{"input": "hi", "messages": []map[string]any{{"role": "user", "content": "x"}}}, nil, 422, "Cannot specify both"},
		{"send no messages", "POST", agent + "/messages", map[string]any{"messages": []map[string]any{}}, nil, 422, "must not be empty"},
		{"send neither", "POST", agent + "/messages", map[string]any{}, nil, 422, "Either messages or input"},
		{"send bad role", "POST", agent + "/messages", map[string]any{"messages": []map[string]any{{"role": "tool", "content": "x"}}}, nil, 422, "role must be user or system"},
		{"send empty text", "POST", agent + "/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": " "}}}, nil, 422, "has no text"},
		{"send image part", "POST", agent + "/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image", "source": map[string]any{}}}}}}, nil, 422, "not supported"},
		{"stream_tokens without streaming", "POST", agent + "/messages", map[string]any{"input": "hi", "stream_tokens": true}, nil, 422, "need streaming"},
		{"max_steps zero", "POST", agent + "/messages", map[string]any{"input": "hi", "max_steps": 0}, nil, 422, "max_steps"},
		{"unknown route", "GET", "/v1/nothing/here", nil, nil, 404, "Not Found"},
		{"wrong method", "PUT", "/v1/agents/", map[string]any{}, nil, 405, "Method Not Allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := x.n.Projection.Applied()
			code, data := x.call(tc.method, tc.path, tc.body, tc.hdr...)
			t.Logf("%d %s", code, data)
			if code != tc.want {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, code, data, tc.want)
			}
			checkDetail(t, data, tc.detail)
			if after := x.n.Projection.Applied(); after != before {
				t.Errorf("%d events appended, want none", after-before)
			}
		})
	}

	// The refused values left the blocks as they were.
	var human, notes api.Block
	x.do("GET", agent+"/core-memory/blocks/human", nil, 200, &human)
	x.do("GET", "/v1/blocks/"+b.ID, nil, 200, &notes)
	if human.Value != "Name: Ada" || notes.Value != "short" {
		t.Errorf("values after refused updates: %q, %q", human.Value, notes.Value)
	}
}

// TestRouting checks the routing rules: an optional trailing slash on every
// route, no redirects, %2F inside a path parameter, and JSON 404 and 405.
func TestRouting(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{MemoryBlocks: []api.CreateBlock{
		{Label: "human", Value: "h"}, {Label: "team/notes", Value: "n"}, {Label: "a/", Value: "slash"},
		{Label: "attach", Value: "literal"}, {Label: "attach/x", Value: "two segments"},
	}})
	blk := x.block(api.CreateBlock{Label: "spare", Value: "s"})
	tool := x.tool("roll_dice")
	src := x.source("docs")
	agent := "/v1/agents/" + a.ID

	t.Run("trailing slash is optional", func(t *testing.T) {
		paths := []string{
			"/v1/health", "/v1/models", "/v1/models/embedding",
			"/v1/agents", agent, agent + "/core-memory", agent + "/core-memory/blocks", agent + "/core-memory/blocks/human",
			agent + "/memory", agent + "/tools", agent + "/folders", agent + "/sources",
			agent + "/archival-memory", agent + "/archival", agent + "/memory/archival", agent + "/memory/recall",
			agent + "/context", agent + "/messages",
			"/v1/blocks", "/v1/blocks/" + blk.ID, "/v1/tools", "/v1/tools/" + tool.ID, "/v1/tools/name/roll_dice",
			"/v1/folders", "/v1/folders/" + src.ID, "/v1/folders/name/docs", "/v1/folders/" + src.ID + "/agents",
			"/v1/sources", "/v1/sources/" + src.ID, "/v1/sources/name/docs",
			"/v1/jobs", "/v1/jobs/active",
		}
		for _, p := range paths {
			for _, form := range []string{p, p + "/"} {
				if code, data := x.call("GET", form, nil); code != 200 {
					t.Errorf("GET %s = %d %s", form, code, data)
				}
			}
		}
		writes := []struct{ method, path string }{
			{"PATCH", agent + "/core-memory/blocks/human"},
			{"PATCH", agent + "/core-memory/blocks/human/"},
			{"PATCH", agent},
			{"PATCH", agent + "/"},
			{"PATCH", agent + "/tools/attach/" + tool.ID + "/"},
			{"PATCH", agent + "/tools/detach/" + tool.ID},
			{"PATCH", agent + "/folders/attach/" + src.ID},
			{"PATCH", agent + "/folders/detach/" + src.ID + "/"},
			{"POST", "/v1/blocks"},
			{"POST", "/v1/blocks/"},
		}
		for _, w := range writes {
			body := map[string]any{}
			if w.method == "POST" {
				body = map[string]any{"label": "l", "value": "v"}
			}
			if code, data := x.call(w.method, w.path, body); code != 200 {
				t.Errorf("%s %s = %d %s", w.method, w.path, code, data)
			}
		}
		// Attach and detach take no body; one sent anyway is ignored.
		if code, data := x.call("PATCH", agent+"/tools/attach/"+tool.ID, "not JSON at all"); code != 200 {
			t.Errorf("attach with a body = %d %s", code, data)
		}
		for _, p := range []string{"/v1/blocks/" + blk.ID + "/", "/v1/tools/" + tool.ID} {
			if code, data := x.call("DELETE", p, nil); code != 200 {
				t.Errorf("DELETE %s = %d %s", p, code, data)
			}
		}
	})

	t.Run("escaped slash stays in one segment", func(t *testing.T) {
		tests := []struct {
			method, path string
			body         any
			label, value string
		}{
			{"GET", agent + "/core-memory/blocks/team%2Fnotes", nil, "team/notes", "n"},
			{"GET", agent + "/core-memory/blocks/team%2fnotes/", nil, "team/notes", "n"},
			{"PATCH", agent + "/core-memory/blocks/team%2Fnotes", map[string]any{"value": "n2"}, "team/notes", "n2"},
			{"GET", agent + "/core-memory/blocks/a%2F", nil, "a/", "slash"},
			{"GET", agent + "/core-memory/blocks/a%2F/", nil, "a/", "slash"},
			{"PATCH", agent + "/core-memory/blocks/attach", map[string]any{"value": "still literal"}, "attach", "still literal"},
			{"PATCH", agent + "/core-memory/blocks/attach%2Fx", map[string]any{"value": "still two"}, "attach/x", "still two"},
		}
		for _, tc := range tests {
			var got api.Block
			x.do(tc.method, tc.path, tc.body, 200, &got)
			if got.Label != tc.label || got.Value != tc.value {
				t.Errorf("%s %s = %q: %q, want %q: %q", tc.method, tc.path, got.Label, got.Value, tc.label, tc.value)
			}
		}
		var mem oldMemory
		x.do("PATCH", agent+"/memory", map[string]any{"team/notes": "n3"}, 200, &mem)
		if mem.Memory["team/notes"].Value != "n3" {
			t.Errorf("0.5 memory: %+v", mem.Memory["team/notes"])
		}
	})

	t.Run("no redirects", func(t *testing.T) {
		for _, p := range []string{"/v1//agents", "/v1/agents//", "/v1/agents/./" + a.ID, "/v1/blocks/../agents"} {
			code, data := x.call("GET", p, nil)
			if code != 404 {
				t.Errorf("GET %s = %d %s, want 404", p, code, data)
				continue
			}
			checkDetail(t, data, "Not Found")
		}
	})

	t.Run("not found and method not allowed", func(t *testing.T) {
		code, _, data := x.callHeader("GET", "/v2/agents", nil)
		if code != 404 || strings.TrimSpace(string(data)) != `{"detail":"Not Found"}` {
			t.Errorf("unknown route = %d %s", code, data)
		}
		code, hdr, data := x.callHeader("DELETE", "/v1/agents/", nil)
		if code != 405 || strings.TrimSpace(string(data)) != `{"detail":"Method Not Allowed"}` || hdr.Get("Allow") != "GET, POST" {
			t.Errorf("wrong method = %d %s, Allow %q", code, data, hdr.Get("Allow"))
		}
		code, _, data = x.callHeader("GET", agent+"/core-memory/blocks/attach/"+blk.ID, nil)
		if code != 405 {
			t.Errorf("GET on attach = %d %s, want 405", code, data)
		}
	})
}

// TestSearchDateBounds checks archival search's date filters with dates
// outside what the index holds (1677..2262): such a bound excludes nothing or
// everything, and is never a 5xx; a range that ends before it starts is the
// client's error.
func TestSearchDateBounds(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{})
	x.do("POST", "/v1/agents/"+a.ID+"/archival-memory", map[string]any{"text": "the spare key is under the mat"}, 200, nil)
	search := "/v1/agents/" + a.ID + "/archival-memory/search?query=key"
	for _, c := range []struct {
		name  string
		query string
		found int
	}{
		{"end in year 9999", "&end_datetime=9999-12-31T23:59:59Z", 1},
		{"start in year 1", "&start_datetime=0001-01-02T00:00:00Z", 1},
		{"start in year 1000, end in 9999", "&start_datetime=1000-01-01&end_datetime=9999-12-31", 1},
		{"start in year 9999", "&start_datetime=9999-01-01T00:00:00Z", 0},
		{"end in year 1000", "&end_datetime=1000-01-01T00:00:00Z", 0},
		{"start and end in year 9999", "&start_datetime=9999-01-01&end_datetime=9999-12-31", 0},
		{"start equal to end", "&start_datetime=2025-01-01&end_datetime=2025-01-01", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var res api.ArchivalSearch
			x.do("GET", search+c.query, nil, 200, &res)
			if res.Count != c.found || len(res.Results) != c.found {
				t.Errorf("found %d (%d results), want %d", res.Count, len(res.Results), c.found)
			}
		})
	}
	for _, q := range []string{
		"&start_datetime=2025-01-02&end_datetime=2025-01-01",
		"&start_datetime=9999-12-31&end_datetime=9999-01-01",
	} {
		code, body := x.call("GET", search+q, nil)
		if code != 422 {
			t.Errorf("%s: %d %s, want 422", q, code, body)
		}
		checkDetail(t, body, "start_datetime must be before end_datetime")
	}
}

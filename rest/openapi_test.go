package rest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI    string                           `json:"openapi"`
	Paths      map[string]map[string]openAPIOp  `json:"paths"`
	Components struct{ Schemas map[string]any } `json:"components"`
	Tags       []struct{ Name string }          `json:"tags"`
	Info       struct{ Title, Version string }  `json:"info"`
}

type openAPIOp struct {
	OperationID string         `json:"operationId"`
	Tags        []string       `json:"tags"`
	Parameters  []openAPIParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct{ Schema map[string]any } `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct{ Schema map[string]any } `json:"content"`
	} `json:"responses"`
}

type openAPIParam struct {
	Name, In, Description string
	Required              bool
	Schema                map[string]any
}

var refRE = regexp.MustCompile(`"\$ref":"([^"]*)"`)

func TestOpenAPI(t *testing.T) {
	x := newHarness(t, Config{Token: "tok"})
	if code, _ := x.call("GET", "/openapi.json", nil); code != http.StatusUnauthorized {
		t.Fatalf("/openapi.json without the token = %d, want 401", code)
	}
	code, body := x.call("GET", "/openapi.json/", nil, "Authorization", "Bearer tok")
	if code != 200 {
		t.Fatalf("/openapi.json = %d %s", code, body)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "engram" || doc.Info.Version != "test" {
		t.Fatalf("header: %s %+v", doc.OpenAPI, doc.Info)
	}

	// Every served route is documented, with a schema for what it answers,
	// and operation ids are unique.
	ids := map[string]string{}
	for _, pattern := range x.h.patterns {
		method, path, _ := strings.Cut(pattern, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("served but not documented: %s", pattern)
			continue
		}
		if _, _, found := ioFor(pattern); !found {
			t.Errorf("%s has no entry in modernIO or oldIO: its schemas are unknown", pattern)
		}
		if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("operationId %s is both %s and %s", op.OperationID, prev, pattern)
		}
		ids[op.OperationID] = pattern
		ok200, ok204 := op.Responses["200"], false
		_, ok204 = op.Responses["204"]
		if len(ok200.Content) == 0 && !ok204 {
			t.Errorf("%s documents no answer", pattern)
		}
		if _, ok := op.Responses["default"]; !ok {
			t.Errorf("%s documents no error answer", pattern)
		}
		checkParams(t, pattern, op.Parameters)
	}

	// Every documented route is served: a request for it reaches the
	// pattern that documents it.
	params := regexp.MustCompile(`\{[a-z_]+\}`)
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			url := params.ReplaceAllStringFunc(path, func(p string) string { return "p-" + strings.Trim(p, "{}") })
			req, _ := http.NewRequest(strings.ToUpper(method), url, nil)
			if _, got := x.h.mux.Handler(req); got != pattern {
				t.Errorf("documented %s (%s): a request for %s reaches %q", pattern, op.OperationID, url, got)
			}
		}
	}

	// Every reference resolves.
	for _, m := range refRE.FindAllStringSubmatch(string(body), -1) {
		name, ok := strings.CutPrefix(m[1], "#/components/schemas/")
		if !ok || doc.Components.Schemas[name] == nil {
			t.Errorf("unresolved $ref %s", m[1])
		}
	}

	// Schemas come from the Go types: the modern and 0.5 agents differ.
	create := doc.Paths["/v1/agents"]["post"]
	if ref := create.RequestBody.Content["application/json"].Schema["$ref"]; ref != "#/components/schemas/CreateAgent" {
		t.Errorf("POST /v1/agents reads %v", ref)
	}
	props := func(name string) map[string]any {
		s, _ := doc.Components.Schemas[name].(map[string]any)
		p, _ := s["properties"].(map[string]any)
		return p
	}
	if props("CreateAgent")["memory_blocks"] == nil || props("AgentState")["memory"] == nil {
		t.Errorf("CreateAgent %v\nAgentState %v", props("CreateAgent"), props("AgentState"))
	}
	if ref := doc.Paths["/letta-0.5/v1/agents"]["post"].Responses["200"].Content["application/json"].Schema["$ref"]; ref != "#/components/schemas/Letta05AgentState" {
		t.Errorf("0.5's POST /agents answers %v", ref)
	}
	for _, p := range []string{"/v1/agents/{agent_id}/core-memory/blocks/{block_label}", "/letta-0.5/v1/agents/{agent_id}", "/letta-0.5.1/v1/agents/{agent_id}/memory"} {
		if op := doc.Paths[p]["patch"]; op.RequestBody == nil || op.RequestBody.Content["application/json"].Schema == nil {
			t.Errorf("PATCH %s documents no request body", p)
		}
	}
	if op := doc.Paths["/v1/folders/{source_id}/upload"]["post"]; op.RequestBody == nil || op.RequestBody.Content["multipart/form-data"].Schema == nil {
		t.Error("upload documents no multipart body")
	}
	if _, ok := doc.Paths["/v1/agents/{agent_id}/messages"]["post"].Responses["200"].Content["text/event-stream"]; !ok {
		t.Error("sending a message documents no stream")
	}

	// Query parameters are typed by the getter that reads them.
	for _, c := range []struct{ path, name, typ, item string }{
		{"/v1/agents", "limit", "integer", ""},
		{"/v1/agents", "after", "string", ""},
		{"/v1/agents", "tags", "array", "string"},
		{"/v1/agents", "match_all_tags", "boolean", ""},
		{"/v1/runs", "statuses", "array", "string"},
		{"/v1/blocks", "connected_to_agents_count_eq", "array", "integer"},
		{"/v1/agents/{agent_id}/events", "after", "integer", ""},
		{"/v1/agents/{agent_id}/events", "since", "string", ""},
		{"/letta-0.5/v1/agents/{agent_id}/messages", "use_assistant_message", "boolean", ""},
	} {
		p, ok := findQueryParam(doc.Paths[c.path]["get"], c.name)
		if !ok {
			t.Errorf("GET %s lists no query parameter %s", c.path, c.name)
			continue
		}
		items, _ := p.Schema["items"].(map[string]any)
		if p.Schema["type"] != c.typ || c.item != "" && items["type"] != c.item {
			t.Errorf("GET %s: %s's schema is %v", c.path, c.name, p.Schema)
		}
	}
	if p, _ := findQueryParam(doc.Paths["/v1/agents/{agent_id}/events"]["get"], "since"); p.Schema["format"] != "date-time" {
		t.Errorf("events' since is %v, not a date-time", p.Schema)
	}
	if p, _ := findQueryParam(doc.Paths["/v1/runs"]["get"], "statuses"); !strings.Contains(p.Description, "commas") {
		t.Errorf("runs' statuses does not say it takes commas: %q", p.Description)
	}

	// Engram's additions and the 0.5 surfaces are tagged.
	for path, tag := range map[string]string{
		"/v1/agents/{agent_id}/command": "engram", "/openapi.json": "engram",
		"/letta-0.5/v1/agents": "letta-0.5", "/letta-0.5.1/v1/agents": "letta-0.5.1", "/v1/agents": "agents",
	} {
		for _, op := range doc.Paths[path] {
			if len(op.Tags) != 1 || op.Tags[0] != tag {
				t.Errorf("%s is tagged %v, want %s", path, op.Tags, tag)
			}
		}
	}
}

// checkParams checks an operation's parameters: each named, in the path or
// the query, with a schema; the path's as its pattern has them, required;
// the query's as modernIO or oldIO declares them, once each.
func checkParams(t *testing.T, pattern string, params []openAPIParam) {
	t.Helper()
	_, path, _ := strings.Cut(pattern, " ")
	var inPath, inQuery []string
	seen := map[string]bool{}
	for _, p := range params {
		if p.Name == "" || p.Schema["type"] == nil {
			t.Errorf("%s documents a parameter without a name or a schema type: %+v", pattern, p)
		}
		if p.Schema["type"] == "array" && p.Schema["items"] == nil {
			t.Errorf("%s: parameter %s is an array of nothing", pattern, p.Name)
		}
		if seen[p.In+" "+p.Name] {
			t.Errorf("%s documents %s parameter %s twice", pattern, p.In, p.Name)
		}
		seen[p.In+" "+p.Name] = true
		switch p.In {
		case "path":
			inPath = append(inPath, p.Name)
			if !p.Required {
				t.Errorf("%s: path parameter %s is not required", pattern, p.Name)
			}
		case "query":
			inQuery = append(inQuery, p.Name)
		default:
			t.Errorf("%s documents parameter %s in %q", pattern, p.Name, p.In)
		}
	}
	var wantPath, wantQuery []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		wantPath = append(wantPath, m[1])
	}
	rio, _, _ := ioFor(pattern)
	for _, p := range rio.params {
		wantQuery = append(wantQuery, p.name)
	}
	if !slices.Equal(inPath, wantPath) || !slices.Equal(inQuery, wantQuery) {
		t.Errorf("%s documents path parameters %v and query parameters %v, want %v and %v", pattern, inPath, inQuery, wantPath, wantQuery)
	}
}

func findQueryParam(op openAPIOp, name string) (openAPIParam, bool) {
	for _, p := range op.Parameters {
		if p.In == "query" && p.Name == name {
			return p, true
		}
	}
	return openAPIParam{}, false
}

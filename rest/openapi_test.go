package rest

import (
	"encoding/json"
	"net/http"
	"regexp"
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
	OperationID string                      `json:"operationId"`
	Tags        []string                    `json:"tags"`
	Parameters  []struct{ Name, In string } `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct{ Schema map[string]any } `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct{ Schema map[string]any } `json:"content"`
	} `json:"responses"`
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
		if n := strings.Count(path, "{"); len(op.Parameters) != n {
			t.Errorf("%s documents %d path parameters, has %d", pattern, len(op.Parameters), n)
		}
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

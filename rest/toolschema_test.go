package rest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGenerateToolSchema: POST /v1/tools/generate-schema answers the schema
// a tool created from the source would have, and stores nothing; bad source
// is a 400 that names the problem.
func TestGenerateToolSchema(t *testing.T) {
	x := newHarness(t, Config{})
	src := "def roll(sides: int) -> str:\n    \"\"\"Roll a die.\n\n    Args:\n        sides (int): How many sides the die has.\n    \"\"\"\n    return \"4\"\n"
	var schema struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Parameters  struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"parameters"`
	}
	x.do("POST", "/v1/tools/generate-schema", map[string]any{"code": src}, 200, &schema)
	if schema.Name != "roll" || schema.Description != "Roll a die." || schema.Parameters.Properties["sides"] == nil || len(schema.Parameters.Required) == 0 || schema.Parameters.Required[0] != "sides" {
		t.Errorf("schema %+v", schema)
	}
	var tools []map[string]any
	x.do("GET", "/v1/tools?name=roll", nil, 200, &tools)
	if len(tools) != 0 {
		t.Errorf("generate-schema stored a tool: %v", tools)
	}
	// The schema shown is the one a create stores.
	var raw json.RawMessage
	x.do("POST", "/v1/tools/generate-schema", map[string]any{"code": src}, 200, &raw)
	var tool struct {
		JSONSchema json.RawMessage `json:"json_schema"`
	}
	x.do("POST", "/v1/tools", map[string]any{"source_code": src}, 200, &tool)
	if string(raw) != string(tool.JSONSchema) {
		t.Errorf("generate-schema answered\n%s\ncreate stored\n%s", raw, tool.JSONSchema)
	}
	for _, c := range []struct {
		body any
		want int
		text string
	}{
		{map[string]any{"code": "def f(a: int):\n    return a\n"}, 400, "lacks a description"},
		{map[string]any{"code": ""}, 400, "must not be empty"},
		{map[string]any{"code": src, "source_type": "typescript"}, 400, "Python source only"},
		{`{"code": 3}`, 422, "code"},
	} {
		code, body := x.call("POST", "/v1/tools/generate-schema", c.body)
		if code != c.want || !strings.Contains(string(body), c.text) {
			t.Errorf("%v: %d %s, want %d with %q", c.body, code, body, c.want, c.text)
		}
	}
}

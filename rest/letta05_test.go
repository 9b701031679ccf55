package rest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, data []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s string) []string {
	out := strings.Fields(s)
	slices.Sort(out)
	return out
}

// Each 0.5 surface answers its version's objects with exactly its fields:
// the 0.5 clients' pydantic models refuse any other.
func TestLetta05ShapesAreExact(t *testing.T) {
	x := newHarness(t, Config{})
	body := map[string]any{
		"name":   "ada",
		"memory": map[string]any{"memory": map[string]any{"human": map[string]any{"value": "First name: Ada", "limit": 2000, "label": "human", "id": "block-123e4567-e89b-12d3-a456-426614174000", "organization_id": nil, "created_by_id": nil, "last_updated_by_id": nil, "template_name": nil, "is_template": false, "description": nil, "metadata_": map[string]any{}}}, "prompt_template": "x"},
		"tools":  []string{"send_message"}, "message_ids": nil, "user_id": nil, "metadata_": map[string]any{"k": "v"},
		"agent_type": "memgpt_agent", "initial_message_sequence": nil, "tool_rules": nil, "tags": []string{"t"},
	}
	var a map[string]any
	x.do("POST", "/letta-0.5/v1/agents", body, 200, &a)
	id := a["id"].(string)

	agent55 := sorted("id name description metadata_ user_id created_at message_ids memory tools tool_rules tags system agent_type llm_config embedding_config")
	agent51 := sorted("id name description metadata_ user_id created_at message_ids memory tools system agent_type llm_config embedding_config")
	block55 := sorted("id value limit name is_template label description metadata_ organization_id created_by_id last_updated_by_id")
	block51 := sorted("id value limit name template label description metadata_ user_id")
	for _, c := range []struct {
		prefix      string
		agent, blok []string
	}{{"/letta-0.5", agent55, block55}, {"/letta-0.5.1", agent51, block51}} {
		_, data := x.call("GET", c.prefix+"/v1/agents/"+id, nil)
		if got := keysOf(t, data); !slices.Equal(got, c.agent) {
			t.Errorf("%s agent keys = %v, want %v", c.prefix, got, c.agent)
		}
		var full struct {
			Memory struct {
				Memory map[string]json.RawMessage `json:"memory"`
			} `json:"memory"`
			Tools []string `json:"tools"`
		}
		json.Unmarshal(data, &full)
		if got := keysOf(t, full.Memory.Memory["human"]); !slices.Equal(got, c.blok) {
			t.Errorf("%s block keys = %v, want %v", c.prefix, got, c.blok)
		}
		if !slices.Equal(full.Tools, []string{"send_message"}) {
			t.Errorf("%s tools = %v, want the names the client listed", c.prefix, full.Tools)
		}
	}
	// The same agent through the modern surface.
	var modern map[string]any
	x.do("GET", "/v1/agents/"+id, nil, 200, &modern)
	if modern["name"] != "ada" || modern["metadata"].(map[string]any)["k"] != "v" {
		t.Errorf("modern view of the 0.5 agent: %v", modern)
	}
}

// Bad input on the 0.5 surface is a 4xx with a detail and stores nothing.
func TestLetta05BadInput(t *testing.T) {
	x := newHarness(t, Config{})
	seq := func() uint64 {
		n, err := x.n.Log.LastSeq(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return uint64(n)
	}
	before := seq()
	cases := []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/letta-0.5/v1/agents", map[string]any{"name": "no way!"}, 422},
		{"POST", "/letta-0.5/v1/agents", map[string]any{"unknown": 1}, 422},
		{"POST", "/letta-0.5/v1/agents", map[string]any{"agent_type": "react"}, 422},
		{"POST", "/letta-0.5/v1/agents", "{", 400},
		{"POST", "/letta-0.5/v1/blocks", map[string]any{"value": "x"}, 422},
		{"POST", "/letta-0.5.1/v1/blocks", map[string]any{"label": "x"}, 422},
		{"GET", "/letta-0.5/v1/agents/agent-00000000-0000-4000-8000-000000000000", nil, 404},
		{"DELETE", "/letta-0.5/v1/jobs/job-00000000-0000-4000-8000-000000000000", nil, 404},
		{"PATCH", "/letta-0.5/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages/message-00000000-0000-4000-8000-000000000000", map[string]any{"text": "x"}, 404},
		{"POST", "/letta-0.5/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages", map[string]any{"messages": []any{}}, 422},
		{"POST", "/letta-0.5/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages", map[string]any{"messages": []any{map[string]any{"role": "tool", "text": "x"}}}, 422},
		{"POST", "/letta-0.5/v1/admin/orgs", map[string]any{"name": "other"}, 400},
		{"DELETE", "/letta-0.5/v1/admin/orgs?org_id=org-00000000-0000-4000-8000-000000000001", nil, 404},
	}
	for _, c := range cases {
		code, data := x.call(c.method, c.path, c.body)
		if code != c.want {
			t.Errorf("%s %s = %d %s, want %d", c.method, c.path, code, data, c.want)
			continue
		}
		var d detail
		if err := json.Unmarshal(data, &d); err != nil || d.Detail == "" {
			t.Errorf("%s %s: body %s is not {\"detail\": \"…\"}", c.method, c.path, data)
		}
	}
	if after := seq(); after != before {
		t.Errorf("bad input changed the log: sequence %d → %d", before, after)
	}
}

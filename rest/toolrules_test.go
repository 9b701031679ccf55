package rest

import (
	"encoding/json"
	"strings"
	"testing"
)

// allRules is one rule of every kind, in Letta 0.16.8's shapes.
const allRules = `[
	{"tool_name":"conversation_search","type":"run_first","args":{"query":"x"}},
	{"tool_name":"memory_insert","type":"exit_loop"},
	{"tool_name":"memory_replace","type":"continue_loop"},
	{"tool_name":"conversation_search","type":"conditional","child_output_mapping":{"found":"memory_insert"},"default_child":"memory_replace"},
	{"tool_name":"memory_replace","type":"constrain_child_tools","children":["memory_insert"]},
	{"tool_name":"web_search","type":"max_count_per_step","max_count_limit":2},
	{"tool_name":"fetch_webpage","type":"parent_last_tool","children":["web_search"]},
	{"tool_name":"memory_insert","type":"required_before_exit"},
	{"tool_name":"web_search","type":"requires_approval"}
]`

func TestToolRulesStoredWithTheAgent(t *testing.T) {
	x := newHarness(t, Config{})
	var rules []any
	json.Unmarshal([]byte(allRules), &rules)
	var a map[string]any
	x.do("POST", "/v1/agents/", map[string]any{"name": "ruled", "agent_type": "letta_v1_agent", "tool_rules": rules}, 200, &a)
	id := a["id"].(string)
	got, _ := json.Marshal(a["tool_rules"])
	want, _ := json.Marshal(rules)
	if string(got) != string(want) {
		t.Errorf("created with tool_rules\n%s\nwant\n%s", got, want)
	}
	x.do("GET", "/v1/agents/"+id, nil, 200, &a)
	if got, _ := json.Marshal(a["tool_rules"]); string(got) != string(want) {
		t.Errorf("retrieved tool_rules %s", got)
	}

	// Letta 0.5's names are stored as the modern ones; PATCH replaces the list.
	x.do("PATCH", "/v1/agents/"+id, map[string]any{"tool_rules": []map[string]any{{"tool_name": "send_message", "type": "TerminalToolRule"}}}, 200, &a)
	if got, _ := json.Marshal(a["tool_rules"]); string(got) != `[{"tool_name":"send_message","type":"exit_loop"}]` {
		t.Errorf("after PATCH: %s", got)
	}

	// Bad rules: 400 with what is wrong, nothing changed.
	for _, tc := range []struct {
		rules any
		want  string
	}{
		{[]map[string]any{{"tool_name": "a", "type": "sometimes"}}, "tool_rules[0] (sometimes on \"a\"): unknown type"},
		{[]map[string]any{{"type": "exit_loop"}}, "tool_name is required"},
		{[]map[string]any{{"tool_name": "a", "type": "constrain_child_tools"}}, "children is required"},
		{[]map[string]any{{"tool_name": "a", "type": "conditional", "child_output_mapping": map[string]any{}}}, "child_output_mapping must map at least one output"},
		{[]map[string]any{{"tool_name": "a", "type": "max_count_per_step"}}, "max_count_limit is required"},
		{[]map[string]any{{"tool_name": "a", "type": "exit_loop", "extra": 1}}, `unknown field "extra"`},
		{map[string]any{"tool_name": "a"}, "must be a list"},
	} {
		for _, method := range []string{"POST", "PATCH"} {
			path, body := "/v1/agents/", map[string]any{"name": "bad", "tool_rules": tc.rules}
			if method == "PATCH" {
				path, body = "/v1/agents/"+id, map[string]any{"tool_rules": tc.rules}
			}
			code, data := x.call(method, path, body)
			var e struct{ Detail string }
			json.Unmarshal(data, &e)
			if code != 400 || !strings.Contains(e.Detail, tc.want) {
				t.Errorf("%s %v: %d %s; want 400 containing %q", method, tc.rules, code, data, tc.want)
			}
		}
	}
	x.do("GET", "/v1/agents/"+id, nil, 200, &a)
	if got, _ := json.Marshal(a["tool_rules"]); string(got) != `[{"tool_name":"send_message","type":"exit_loop"}]` {
		t.Errorf("a refused PATCH changed the rules: %s", got)
	}
	var all []map[string]any
	x.do("GET", "/v1/agents/?name=bad", nil, 200, &all)
	if len(all) != 0 {
		t.Errorf("a refused create made an agent")
	}
}

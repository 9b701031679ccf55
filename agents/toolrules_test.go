package agents

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustRules(t *testing.T, raw string) ToolRules {
	t.Helper()
	rs, err := ParseToolRules(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("ParseToolRules(%s): %v", raw, err)
	}
	return rs
}

func TestParseToolRules(t *testing.T) {
	for _, raw := range []string{``, `null`, `[]`} {
		if rs, err := ParseToolRules(json.RawMessage(raw)); err != nil || len(rs) != 0 {
			t.Errorf("%q: %v, %v", raw, rs, err)
		}
	}
	// Every kind, in Letta's shapes, and 0.5's names.
	rs := mustRules(t, `[
		{"tool_name":"a","type":"run_first","args":{"x":1}},
		{"tool_name":"b","type":"exit_loop","prompt_template":"ignored"},
		{"tool_name":"c","type":"continue_loop"},
		{"tool_name":"d","type":"conditional","child_output_mapping":{"yes":"a"},"default_child":"b","require_output_mapping":false},
		{"tool_name":"e","type":"constrain_child_tools","children":["a","b"],"child_arg_nodes":[{"name":"a","args":{"y":2}}]},
		{"tool_name":"f","type":"max_count_per_step","max_count_limit":2},
		{"tool_name":"g","type":"parent_last_tool","children":["h"]},
		{"tool_name":"h","type":"required_before_exit"},
		{"tool_name":"i","type":"requires_approval"},
		{"tool_name":"j","type":"InitToolRule"},
		{"tool_name":"k","type":"TerminalToolRule"},
		{"tool_name":"l","type":"ToolRule","children":[]}
	]`)
	var types []string
	for _, r := range rs {
		types = append(types, r.Type)
	}
	want := "run_first,exit_loop,continue_loop,conditional,constrain_child_tools,max_count_per_step,parent_last_tool,required_before_exit,requires_approval,run_first,exit_loop,constrain_child_tools"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("types = %s\nwant    %s", got, want)
	}

	for _, tc := range []struct{ raw, want string }{
		{`{}`, "must be a list"},
		{`[3]`, "tool_rules[0]: a rule must be an object"},
		{`[{"type":"exit_loop"}]`, "tool_name is required"},
		{`[{"tool_name":"a"}]`, "type is required"},
		{`[{"tool_name":"a","type":"sometimes"}]`, "unknown type"},
		{`[{"tool_name":"a","type":"exit_loop","colour":"red"}]`, `unknown field "colour"`},
		{`[{"tool_name":"a","type":"constrain_child_tools"}]`, "children is required"},
		{`[{"tool_name":"a","type":"parent_last_tool"}]`, "children is required"},
		{`[{"tool_name":"a","type":"constrain_child_tools","children":["b"],"child_arg_nodes":[{"name":"c"}]}]`, `child_arg_nodes names "c", which is not in children ['b']`},
		{`[{"tool_name":"a","type":"conditional","child_output_mapping":{}}]`, "child_output_mapping must map at least one"},
		{`[{"tool_name":"a","type":"max_count_per_step"}]`, "max_count_limit is required"},
		{`[{"tool_name":"a","type":"max_count_per_step","max_count_limit":-1}]`, "must not be negative"},
		{`[{"tool_name":"a","type":"max_count_per_step","max_count_limit":"two"}]`, `field "max_count_limit" has the wrong type`},
		{`[{"tool_name":"a","type":"exit_loop"},{"tool_name":"","type":"exit_loop"}]`, "tool_rules[1]"},
	} {
		_, err := ParseToolRules(json.RawMessage(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want one containing %q", tc.raw, err, tc.want)
		}
	}
}

func TestAllowed(t *testing.T) {
	tools := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		name, rules string
		history     []string
		output      string
		want        string
	}{
		{"no rules", `[]`, nil, "", "a,b,c,d,e"},
		{"init first", `[{"tool_name":"c","type":"run_first"},{"tool_name":"a","type":"run_first"}]`, nil, "", "c,a"},
		{"init only first", `[{"tool_name":"c","type":"run_first"}]`, []string{"c"}, "", "a,b,c,d,e"},
		{"child after parent", `[{"tool_name":"a","type":"constrain_child_tools","children":["d","b"]}]`, []string{"a"}, "", "b,d"},
		{"child elsewhere", `[{"tool_name":"a","type":"constrain_child_tools","children":["d"]}]`, []string{"b"}, "", "a,b,c,d,e"},
		{"parent: children right after it", `[{"tool_name":"a","type":"parent_last_tool","children":["b","c"]}]`, []string{"a"}, "", "b,c"},
		{"parent: children not otherwise", `[{"tool_name":"a","type":"parent_last_tool","children":["b","c"]}]`, nil, "", "a,d,e"},
		{"max count reached", `[{"tool_name":"b","type":"max_count_per_step","max_count_limit":2}]`, []string{"b", "a", "b"}, "", "a,c,d,e"},
		{"max count not reached", `[{"tool_name":"b","type":"max_count_per_step","max_count_limit":2}]`, []string{"b", "a"}, "", "a,b,c,d,e"},
		{"max count zero", `[{"tool_name":"b","type":"max_count_per_step","max_count_limit":0}]`, nil, "", "a,c,d,e"},
		{"conditional match", `[{"tool_name":"a","type":"conditional","child_output_mapping":{"yes":"b","no":"c"}}]`, []string{"a"}, "no", "c"},
		{"conditional bool", `[{"tool_name":"a","type":"conditional","child_output_mapping":{"true":"d"}}]`, []string{"a"}, "True", "d"},
		{"conditional default", `[{"tool_name":"a","type":"conditional","child_output_mapping":{"yes":"b"},"default_child":"e"}]`, []string{"a"}, "maybe", "e"},
		{"conditional free", `[{"tool_name":"a","type":"conditional","child_output_mapping":{"yes":"b"}}]`, []string{"a"}, "maybe", "a,b,c,d,e"},
		// Strict with no match allows none, and letta_v1_agent then
		// falls back to every tool.
		{"conditional strict", `[{"tool_name":"a","type":"conditional","child_output_mapping":{"yes":"b"},"require_output_mapping":true}]`, []string{"a"}, "maybe", "a,b,c,d,e"},
		{"intersection", `[{"tool_name":"a","type":"constrain_child_tools","children":["b","c","d"]},{"tool_name":"c","type":"parent_last_tool","children":["d"]}]`, []string{"a"}, "", "b,c"},
		{"empty intersection falls back", `[{"tool_name":"a","type":"constrain_child_tools","children":["zz"]}]`, []string{"a"}, "", "a,b,c,d,e"},
		{"terminal and others do not restrict", `[{"tool_name":"a","type":"exit_loop"},{"tool_name":"b","type":"continue_loop"},{"tool_name":"c","type":"required_before_exit"},{"tool_name":"d","type":"requires_approval"}]`, []string{"a"}, "", "a,b,c,d,e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRules(t, tc.rules).Allowed(tools, tc.history, tc.output)
			if strings.Join(got, ",") != tc.want {
				t.Errorf("Allowed = %v; want %s", got, tc.want)
			}
		})
	}
}

func TestForceToolCallAndApproval(t *testing.T) {
	rs := mustRules(t, `[{"tool_name":"a","type":"run_first"},{"tool_name":"b","type":"constrain_child_tools","children":["c"]},
		{"tool_name":"c","type":"conditional","child_output_mapping":{"x":"a"}},{"tool_name":"d","type":"parent_last_tool","children":["a"]},
		{"tool_name":"e","type":"requires_approval"},{"tool_name":"f","type":"exit_loop"}]`)
	for _, tc := range []struct {
		history []string
		want    bool
	}{{nil, true}, {[]string{"a"}, false}, {[]string{"a", "b"}, true}, {[]string{"c"}, true}, {[]string{"d"}, true}, {[]string{"f"}, false}} {
		if got := rs.ForceToolCall(tc.history); got != tc.want {
			t.Errorf("ForceToolCall(%v) = %v", tc.history, got)
		}
	}
	if ToolRules(nil).ForceToolCall(nil) {
		t.Error("no rules force a call")
	}
	if !rs.RequiresApproval("e") || rs.RequiresApproval("a") {
		t.Error("RequiresApproval")
	}
}

func TestDecide(t *testing.T) {
	tools := []string{"a", "b", "c", "d", "e"}
	rs := mustRules(t, `[{"tool_name":"a","type":"exit_loop"},{"tool_name":"b","type":"continue_loop"},
		{"tool_name":"c","type":"constrain_child_tools","children":["a"]},{"tool_name":"d","type":"required_before_exit"},
		{"tool_name":"zz","type":"required_before_exit"}]`)
	for _, tc := range []struct {
		name     string
		tool     string
		violated bool
		history  []string
		final    bool
		want     Continuation
	}{
		{"answer with d uncalled", "", false, nil, false, Continuation{Continue: true, Reason: NonUserPrefix + "ToolRuleViolated: You must call d at least once to exit the loop."}},
		{"answer on the final step", "", false, nil, true, Continuation{StopReason: StopEndTurn}},
		{"answer after d", "", false, []string{"d"}, false, Continuation{StopReason: StopEndTurn}},
		{"violation", "e", true, []string{"d"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: tool rule violation."}},
		{"terminal", "a", false, []string{"d", "a"}, false, Continuation{StopReason: StopToolRule}},
		{"terminal with d uncalled", "a", false, []string{"a"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing, user expects these tools: [d] to be called still."}},
		{"continue rule", "b", false, []string{"d", "b"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: continue tool rule."}},
		{"child rule", "c", false, []string{"d", "c"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: child tool rule."}},
		{"plain call", "e", false, []string{"d", "e"}, false, Continuation{Continue: true}},
		{"final step", "e", false, []string{"d", "e"}, true, Continuation{StopReason: StopMaxSteps}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rs.Decide(tc.tool, tc.violated, tools, tc.history, tc.final); got != tc.want {
				t.Errorf("Decide = %+v\nwant     %+v", got, tc.want)
			}
		})
	}
	// No rules: Letta's v1 loop ends on an answer and goes on after a call.
	if got := ToolRules(nil).Decide("", false, tools, nil, false); got != (Continuation{StopReason: StopEndTurn}) {
		t.Errorf("no rules, answer: %+v", got)
	}
	if got := ToolRules(nil).Decide("a", false, tools, []string{"a"}, false); got != (Continuation{Continue: true}) {
		t.Errorf("no rules, call: %+v", got)
	}
}

func TestViolationAndPrompt(t *testing.T) {
	rs := mustRules(t, `[{"tool_name":"a","type":"constrain_child_tools","children":["b","c"]},{"tool_name":"x","type":"exit_loop"},
		{"tool_name":"d","type":"requires_approval"},{"tool_name":"b","type":"max_count_per_step","max_count_limit":1}]`)
	got := rs.Violation("x", []string{"b", "c"}, []string{"a"})
	want := "[ToolConstraintError] Cannot call x, valid tools include: ['b', 'c'].\n** Hint: Possible rules that were violated:\n" +
		"\t- <tool_rule>\nAfter using a, you must use one of these tools: b, c\n</tool_rule>\n" +
		"\t- <tool_rule>\nx ends your response (yields control) when called\n</tool_rule>"
	if got != want {
		t.Errorf("Violation =\n%s\nwant\n%s", got, want)
	}
	if got := ToolRules(nil).Violation("q", []string{"a"}, nil); got != "[ToolConstraintError] Cannot call q, valid tools include: ['a']." {
		t.Errorf("no hints: %s", got)
	}
	wantPrompt := "<tool_rule>\nAfter using a, you must use one of these tools: b, c\n</tool_rule>\n" +
		"<tool_rule>\nb: at most 1 use(s) per response\n</tool_rule>\n" +
		"<tool_rule>\nx ends your response (yields control) when called\n</tool_rule>"
	if got := rs.Prompt(); got != wantPrompt {
		t.Errorf("Prompt =\n%s\nwant\n%s", got, wantPrompt)
	}
	if ToolRules(nil).Prompt() != "" {
		t.Error("no rules render a prompt")
	}
}

func TestPrefill(t *testing.T) {
	rs := mustRules(t, `[{"tool_name":"a","type":"run_first","args":{"n":1}},
		{"tool_name":"a","type":"constrain_child_tools","children":["b","c"],"child_arg_nodes":[{"name":"b","args":{"q":"x"}}]}]`)
	if got, _ := json.Marshal(rs.Prefill("a", nil)); string(got) != `{"n":1}` {
		t.Errorf("init prefill = %s", got)
	}
	if got := rs.Prefill("a", []string{"a"}); got != nil {
		t.Errorf("init prefill after the first call = %v", got)
	}
	if got, _ := json.Marshal(rs.Prefill("b", []string{"a"})); string(got) != `{"q":"x"}` {
		t.Errorf("child prefill = %s", got)
	}
	if got := rs.Prefill("c", []string{"a"}); got != nil {
		t.Errorf("child without args = %v", got)
	}
}

func TestDecideHeartbeat(t *testing.T) {
	tools := []string{"a", "b", "c", "d", "e"}
	rs := mustRules(t, `[{"tool_name":"a","type":"exit_loop"},{"tool_name":"b","type":"continue_loop"},
		{"tool_name":"c","type":"constrain_child_tools","children":["a"]},{"tool_name":"d","type":"required_before_exit"}]`)
	for _, tc := range []struct {
		name                string
		tool                string
		heartbeat, violated bool
		history             []string
		final               bool
		want                Continuation
	}{
		{"heartbeat asked", "e", true, false, []string{"d", "e"}, false, Continuation{Continue: true}},
		{"no heartbeat", "e", false, false, []string{"d", "e"}, false, Continuation{StopReason: StopEndTurn}},
		{"no heartbeat, d uncalled", "e", false, false, []string{"e"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing, user expects these tools: [d] to be called still."}},
		{"terminal with heartbeat", "a", true, false, []string{"d", "a"}, false, Continuation{StopReason: StopToolRule}},
		{"terminal without heartbeat", "a", false, false, []string{"d", "a"}, false, Continuation{StopReason: StopEndTurn}},
		{"continue rule", "b", false, false, []string{"d", "b"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: continue tool rule."}},
		{"child rule", "c", false, false, []string{"d", "c"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: child tool rule."}},
		{"violation", "e", false, true, []string{"d"}, false, Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: tool rule violation."}},
		{"final", "b", true, false, []string{"d", "b"}, true, Continuation{StopReason: StopMaxSteps}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rs.DecideHeartbeat(tc.tool, tc.heartbeat, tc.violated, tools, tc.history, tc.final); got != tc.want {
				t.Errorf("DecideHeartbeat = %+v\nwant              %+v", got, tc.want)
			}
		})
	}
}

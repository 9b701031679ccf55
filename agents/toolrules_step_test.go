package agents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// echoEnv runs every custom tool by answering what it was called with; it
// searches nothing.
type echoEnv struct{ ran []string }

func (e *echoEnv) SearchArchival(context.Context, string, int) ([]string, int, error) {
	return nil, 0, nil
}
func (e *echoEnv) SearchConversation(context.Context, string, int) ([]string, int, error) {
	return nil, 0, nil
}
func (e *echoEnv) SearchConversationDate(context.Context, time.Time, time.Time, int) ([]string, int, error) {
	return nil, 0, nil
}
func (e *echoEnv) RunTool(_ context.Context, name string, args map[string]any) (agents.ToolOutput, error) {
	e.ran = append(e.ran, name)
	b, _ := json.Marshal(args)
	if name == "check" {
		return agents.ToolOutput{Return: "yes"}, nil
	}
	return agents.ToolOutput{Return: fmt.Sprintf("ran %s %s", name, b)}, nil
}
func (e *echoEnv) Now() time.Time { return time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC) }

// sent is what the model was offered in one request.
type sent struct {
	Tools []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice any `json:"tool_choice"`
}

func (s sent) names() string {
	var out []string
	for _, t := range s.Tools {
		out = append(out, t.Function.Name)
	}
	return strings.Join(out, ",")
}

// ruleStep runs one LoopV1 step against a scripted model and returns its
// output, what the model was offered, and the tools that ran.
func ruleStep(t *testing.T, rules string, turn []string, last string, reply llmtest.Step) (agents.Output, sent, []string) {
	return loopStep(t, agents.LoopV1, rules, turn, last, reply)
}

func loopStep(t *testing.T, loop, rules string, turn []string, last string, reply llmtest.Step) (agents.Output, sent, []string) {
	t.Helper()
	script := llmtest.NewServer(t, reply)
	m := llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second})
	rs, err := agents.ParseToolRules(json.RawMessage(rules))
	if err != nil {
		t.Fatal(err)
	}
	var tools []agents.Tool
	for _, n := range []string{"a", "b", "c", "check"} {
		tools = append(tools, agents.Tool{Name: n, Description: "tool " + n, Parameters: json.RawMessage(`{"type":"object","properties":{"x":{"type":"integer"}},"required":[]}`)})
	}
	env := &echoEnv{}
	st := agents.State{
		System: "sys", Context: []agents.Message{{Role: "user", Content: "go"}}, Tools: tools, Model: "gpt-4o-mini",
		Loop: loop, ToolRules: rs, TurnCalls: turn, LastOutput: last,
	}
	out, err := agents.Step(context.Background(), m, st, env)
	if err != nil {
		t.Fatal(err)
	}
	reqs := script.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests", len(reqs))
	}
	var s sent
	if err := json.Unmarshal(reqs[0].Body, &s); err != nil {
		t.Fatal(err)
	}
	return out, s, env.ran
}

func call(name, args string) llmtest.Step {
	return llmtest.Step{ToolCalls: []agents.ToolCall{{Name: name, Arguments: args}}}
}

func TestV1StepFollowsToolRules(t *testing.T) {
	t.Run("init rule: offered alone, forced, another tool refused", func(t *testing.T) {
		out, s, ran := ruleStep(t, `[{"tool_name":"b","type":"run_first"}]`, nil, "", call("a", `{}`))
		if s.names() != "b" || s.ToolChoice != "required" {
			t.Errorf("offered %s, tool_choice %v", s.names(), s.ToolChoice)
		}
		if len(ran) != 0 || len(out.Returns) != 1 || !strings.Contains(out.Returns[0].Content, `[ToolConstraintError] Cannot call a, valid tools include: ['b'].`) {
			t.Errorf("ran %v, returns %+v", ran, out.Returns)
		}
		if !out.Continue || out.ContinueReason != agents.NonUserPrefix+"Continuing: tool rule violation." || len(out.Calls) != 0 {
			t.Errorf("continue %v %q, calls %v", out.Continue, out.ContinueReason, out.Calls)
		}
	})
	t.Run("init rule args prefill the call", func(t *testing.T) {
		out, _, ran := ruleStep(t, `[{"tool_name":"b","type":"run_first","args":{"x":7}}]`, nil, "", call("b", `{"x":1}`))
		if len(ran) != 1 || out.Assistant.ToolCalls[0].Arguments != `{"x":7}` || !strings.Contains(out.Returns[0].Content, `ran b {\"x\":7}`) {
			t.Errorf("ran %v, call %+v, returns %+v", ran, out.Assistant.ToolCalls, out.Returns)
		}
	})
	t.Run("terminal rule ends the turn", func(t *testing.T) {
		out, s, ran := ruleStep(t, `[{"tool_name":"c","type":"exit_loop"}]`, nil, "", call("c", `{}`))
		if s.names() != "a,b,c,check" || s.ToolChoice != "auto" {
			t.Errorf("offered %s, tool_choice %v", s.names(), s.ToolChoice)
		}
		if out.Continue || out.StopReason != agents.StopToolRule || !slices.Equal(out.Calls, []string{"c"}) || len(ran) != 1 {
			t.Errorf("continue %v, stop %q, calls %v, ran %v", out.Continue, out.StopReason, out.Calls, ran)
		}
	})
	t.Run("required before exit keeps an answer going", func(t *testing.T) {
		out, _, _ := ruleStep(t, `[{"tool_name":"a","type":"required_before_exit"}]`, nil, "", llmtest.Step{Content: "done"})
		if !out.Continue || out.ContinueReason != agents.NonUserPrefix+"ToolRuleViolated: You must call a at least once to exit the loop." || out.Reply != "done" {
			t.Errorf("continue %v %q, reply %q", out.Continue, out.ContinueReason, out.Reply)
		}
		out, _, _ = ruleStep(t, `[{"tool_name":"a","type":"required_before_exit"}]`, []string{"a"}, "", llmtest.Step{Content: "done"})
		if out.Continue || out.ContinueReason != "" {
			t.Errorf("after a: continue %v %q", out.Continue, out.ContinueReason)
		}
	})
	t.Run("child rule after its parent, with child args", func(t *testing.T) {
		rules := `[{"tool_name":"a","type":"constrain_child_tools","children":["c"],"child_arg_nodes":[{"name":"c","args":{"x":3}}]}]`
		out, s, _ := ruleStep(t, rules, []string{"a"}, "", call("c", `{}`))
		if s.names() != "c" || s.ToolChoice != "required" || out.Assistant.ToolCalls[0].Arguments != `{"x":3}` {
			t.Errorf("offered %s, tool_choice %v, call %+v", s.names(), s.ToolChoice, out.Assistant.ToolCalls)
		}
		if !out.Continue || out.ContinueReason != "" {
			t.Errorf("continue %v %q", out.Continue, out.ContinueReason)
		}
	})
	t.Run("max count per step", func(t *testing.T) {
		_, s, _ := ruleStep(t, `[{"tool_name":"b","type":"max_count_per_step","max_count_limit":2}]`, []string{"b", "b"}, "", llmtest.Step{Content: "ok"})
		if s.names() != "a,c,check" {
			t.Errorf("offered %s", s.names())
		}
	})
	t.Run("conditional on the last output", func(t *testing.T) {
		rules := `[{"tool_name":"check","type":"conditional","child_output_mapping":{"yes":"a","no":"b"}}]`
		out, s, _ := ruleStep(t, rules, []string{"check"}, "no", call("a", `{}`))
		if s.names() != "b" || !strings.Contains(out.Returns[0].Content, "Cannot call a, valid tools include: ['b'].") ||
			!strings.Contains(out.Returns[0].Content, "check will determine which tool to use next based on its output") {
			t.Errorf("offered %s, returns %+v", s.names(), out.Returns)
		}
		// The output of a call this step is what the caller passes on.
		out, _, _ = ruleStep(t, rules, nil, "", call("check", `{}`))
		if out.LastOutput != "yes" || !slices.Equal(out.Calls, []string{"check"}) {
			t.Errorf("last output %q, calls %v", out.LastOutput, out.Calls)
		}
	})
	t.Run("no rules: a call goes on, an answer ends", func(t *testing.T) {
		out, s, _ := ruleStep(t, `[]`, nil, "", call("a", `{}`))
		if s.names() != "a,b,c,check" || s.ToolChoice != "auto" || !out.Continue || out.StopReason != "" || out.ContinueReason != "" {
			t.Errorf("offered %s %v, %+v", s.names(), s.ToolChoice, out)
		}
		out, _, _ = ruleStep(t, `[]`, nil, "", llmtest.Step{Content: "hi"})
		if out.Continue {
			t.Errorf("an answer goes on")
		}
	})
}

func TestMemGPTStepFollowsToolRules(t *testing.T) {
	const memgpt = "" // LoopMemGPT
	t.Run("child rule: children alone offered, another refused", func(t *testing.T) {
		rules := `[{"tool_name":"a","type":"constrain_child_tools","children":["c"]}]`
		out, s, ran := loopStep(t, memgpt, rules, []string{"a"}, "", call("b", `{"request_heartbeat":false}`))
		if s.names() != "c" || s.ToolChoice != "required" {
			t.Errorf("offered %s, tool_choice %v", s.names(), s.ToolChoice)
		}
		if len(ran) != 0 || out.Tool == nil || !strings.Contains(out.Tool.Content, "Cannot call b, valid tools include: ['c'].") {
			t.Errorf("ran %v, tool %+v", ran, out.Tool)
		}
		if !out.Continue || out.ContinueReason != agents.NonUserPrefix+"Continuing: tool rule violation." || len(out.Calls) != 0 {
			t.Errorf("%+v", out)
		}
	})
	t.Run("terminal rule ends a turn that asked for a heartbeat", func(t *testing.T) {
		out, _, ran := loopStep(t, memgpt, `[{"tool_name":"b","type":"exit_loop"}]`, nil, "", call("b", `{"request_heartbeat":true}`))
		if len(ran) != 1 || out.Continue || out.StopReason != agents.StopToolRule || !out.Heartbeat {
			t.Errorf("ran %v, %+v", ran, out)
		}
	})
	t.Run("init rule args prefill, the stored call keeps request_heartbeat", func(t *testing.T) {
		out, _, _ := loopStep(t, memgpt, `[{"tool_name":"b","type":"run_first","args":{"x":9}}]`, nil, "", call("b", `{"x":1,"request_heartbeat":true}`))
		if got := out.Assistant.ToolCalls[0].Arguments; got != `{"request_heartbeat":true,"x":9}` {
			t.Errorf("stored call %s", got)
		}
		if !strings.Contains(out.Tool.Content, `ran b {\"x\":9}`) || !out.Continue || !slices.Equal(out.Calls, []string{"b"}) {
			t.Errorf("tool %+v, %+v", out.Tool, out)
		}
	})
	t.Run("no rules: what Letta 0.5 does", func(t *testing.T) {
		out, s, _ := loopStep(t, memgpt, `[]`, nil, "", call("a", `{"request_heartbeat":false}`))
		if s.names() != "a,b,c,check" || s.ToolChoice != "auto" || out.Continue || out.StopReason != agents.StopEndTurn || out.Heartbeat {
			t.Errorf("offered %s %v, %+v", s.names(), s.ToolChoice, out)
		}
	})
}

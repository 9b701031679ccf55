package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/client/local"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llmtest"
)

func openLocal(t *testing.T, dir string) *local.Client {
	t.Helper()
	c, err := local.New(t.Context(), dir, local.WithNodeConfig(testNodeConfig))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type point struct {
	X float64 `json:"x" description:"Across."`
	Y float64 `json:"y" description:"Down."`
}

type shapeArgs struct {
	Name    string            `json:"name" description:"Who asks."`
	Count   int               `json:"count" jsonschema:"description=How many; at least 1,minimum=1"`
	Verbose bool              `json:"verbose,omitempty" jsonschema_description:"Explain the answer."`
	Tags    []string          `json:"tags,omitempty" description:"Labels to attach."`
	Where   point             `json:"where" description:"A point."`
	Path    []point           `json:"path,omitempty" description:"Points on the way."`
	Extra   map[string]int    `json:"extra,omitempty" description:"Named numbers."`
	Ratio   *float64          `json:"ratio,omitempty" description:"A fraction."`
	Notes   map[string]string `json:"-"`
	hidden  int
}

func TestAddToolSchema(t *testing.T) {
	c := openLocal(t, t.TempDir())
	fn := func(ctx context.Context, a shapeArgs) (string, error) { return a.Name, nil }
	tool := must(c.AddTool(t.Context(), "shapes", "Show every shape.", fn, local.AddToolOptions{Tags: []string{"go"}}))(t)
	if tool.Name != "shapes" || tool.SourceType == nil || *tool.SourceType != "go" || tool.ToolType != "custom" {
		t.Errorf("tool = %+v", tool)
	}
	want := `{
  "name": "shapes",
  "description": "Show every shape.",
  "parameters": {
    "type": "object",
    "properties": {
      "name": {"type": "string", "description": "Who asks."},
      "count": {"type": "integer", "minimum": 1, "description": "How many; at least 1"},
      "verbose": {"type": "boolean", "description": "Explain the answer."},
      "tags": {"items": {"type": "string"}, "type": "array", "description": "Labels to attach."},
      "where": {
        "properties": {
          "x": {"type": "number", "description": "Across."},
          "y": {"type": "number", "description": "Down."}
        },
        "type": "object", "required": ["x", "y"], "description": "A point."
      },
      "path": {
        "items": {
          "properties": {
            "x": {"type": "number", "description": "Across."},
            "y": {"type": "number", "description": "Down."}
          },
          "type": "object", "required": ["x", "y"]
        },
        "type": "array", "description": "Points on the way."
      },
      "extra": {"additionalProperties": {"type": "integer"}, "type": "object", "description": "Named numbers."},
      "ratio": {"type": "number", "description": "A fraction."},
      "request_heartbeat": {"type": "boolean", "description": "Request an immediate heartbeat after function execution. Set to ` + "`True`" + ` if you want to send a follow-up message or run a follow-up function."}
    },
    "required": ["name", "count", "where", "request_heartbeat"]
  }
}`
	var got, exp any
	if err := json.Unmarshal(tool.JSONSchema, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Errorf("schema:\n%s\nwant:\n%s", tool.JSONSchema, want)
	}
	// Property order is the struct's.
	var order struct {
		Parameters struct {
			Properties json.RawMessage `json:"properties"`
		} `json:"parameters"`
	}
	json.Unmarshal(tool.JSONSchema, &order)
	last := -1
	for _, name := range []string{`"name"`, `"count"`, `"verbose"`, `"tags"`, `"where"`, `"path"`, `"extra"`, `"ratio"`, `"request_heartbeat"`} {
		i := strings.Index(string(order.Parameters.Properties), name+":")
		if i < last {
			t.Errorf("property %s out of order in %s", name, order.Parameters.Properties)
		}
		last = i
	}
}

type listNode struct {
	Next *listNode `json:"next"`
}

func TestAddToolErrors(t *testing.T) {
	c := openLocal(t, t.TempDir())
	ctx := t.Context()
	ok := func(ctx context.Context, a struct{}) (string, error) { return "", nil }
	cases := []struct {
		name, desc string
		fn         any
		want       string
	}{
		{"nil", "d", nil, "not a function"},
		{"not_func", "d", 5, "not a function"},
		{"no_ctx", "d", func(a struct{}) (string, error) { return "", nil }, "want func(context.Context, Args) (Result, error)"},
		{"no_error", "d", func(ctx context.Context, a struct{}) string { return "" }, "want func(context.Context, Args) (Result, error)"},
		{"not_struct", "d", func(ctx context.Context, a int) (string, error) { return "", nil }, "want a struct"},
		{"recursive", "d", func(ctx context.Context, a listNode) (string, error) { return "", nil }, "recursive"},
		{"no_description", "", ok, "needs a description"},
		{"bad name!", "d", ok, "must match"},
	}
	for _, tc := range cases {
		_, err := c.AddTool(ctx, tc.name, tc.desc, tc.fn, local.AddToolOptions{})
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("AddTool(%s) = %v; want Invalid with %q", tc.name, err, tc.want)
		}
	}
	must(c.AddTool(ctx, "once", "Once.", ok, local.AddToolOptions{}))(t)
	_, err := c.AddTool(ctx, "once", "Once.", ok, local.AddToolOptions{Update: ptr(false)})
	wantKind(t, "AddTool of a taken name with Update false", err, fault.Invalid)
	_, err = c.AddTool(ctx, "send_message", "Mine.", ok, local.AddToolOptions{})
	wantKind(t, "AddTool over a base tool", err, fault.Invalid)
}

type addArgs struct {
	A int `json:"a" description:"First."`
	B int `json:"b" description:"Second."`
}

// TestAgentCallsGoTool: the scripted model calls Go tools that work, fail,
// panic, overrun their time and get bad arguments; each outcome reaches the
// model and the agent goes on. After a restart the tool is known but not
// registered until AddTool runs again.
func TestAgentCallsGoTool(t *testing.T) {
	dir := t.TempDir()
	c := openLocal(t, dir)
	ctx := t.Context()
	var calls atomic.Int32
	add := func(ctx context.Context, a addArgs) (map[string]int, error) {
		calls.Add(1)
		if a.A < 0 {
			return nil, errors.New("ValueError: a must not be negative")
		}
		if a.A == 13 {
			panic("unlucky")
		}
		if a.A == 99 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return map[string]int{"sum": a.A + a.B}, nil
	}
	tool := must(c.AddTool(ctx, "add", "Add two numbers.", add, local.AddToolOptions{TimeoutSeconds: 1}))(t)
	s, cfg := script(t)
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{LLMConfig: cfg, Tools: []string{"add"}}))(t)
	if !strings.Contains(fmt.Sprint(toolNames(a.Tools)), "add") {
		t.Fatalf("agent tools %v", toolNames(a.Tools))
	}
	callAdd := func(args string) string {
		t.Helper()
		s.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{Name: "add", Arguments: args}}}, reply("ok"))
		resp := must(c.UserMessage(ctx, a.ID, "add"))(t)
		for _, m := range resp.Messages { // the first return is add's
			if m.MessageType == api.ToolReturnMessageType {
				return *m.ToolReturn
			}
		}
		t.Fatalf("no tool return in %+v", resp.Messages)
		return ""
	}
	cases := []struct{ args, want string }{
		{`{"a":2,"b":3,"request_heartbeat":true}`, `"status": "OK"`},
		{`{"a":2,"b":3,"request_heartbeat":true}`, `\"sum\": 5`},
		{`{"a":-1,"b":3,"request_heartbeat":true}`, "ValueError: a must not be negative"},
		{`{"a":13,"b":3,"request_heartbeat":true}`, "panic: unlucky"},
		{`{"a":1,"request_heartbeat":true}`, "missing required argument 'b'"},
		{`{"a":1,"b":2,"c":3,"request_heartbeat":true}`, `unknown field \"c\"`},
		{`{"a":"one","b":2,"request_heartbeat":true}`, "TypeError"},
	}
	for _, tc := range cases {
		if got := callAdd(tc.args); !strings.Contains(got, tc.want) {
			t.Errorf("add(%s) returned %s; want %q in it", tc.args, got, tc.want)
		}
	}
	began := time.Now()
	if got := callAdd(`{"a":99,"b":0,"request_heartbeat":true}`); !strings.Contains(got, "TimeoutError: tool add timed out after 1s") {
		t.Errorf("slow add returned %s", got)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the timed-out call took %s", took)
	}
	if calls := calls.Load(); calls != 5 { // the three with bad arguments never reach the function
		t.Errorf("the function ran %d times; want 5", calls)
	}
	s.Push(reply("still here"))
	must(c.UserMessage(ctx, a.ID, "hello?"))(t)

	// After a restart the tool exists but has no function until AddTool.
	c.Close()
	c = openLocal(t, dir)
	if id := must(c.GetToolID(ctx, "add"))(t); id != tool.ID {
		t.Fatalf("GetToolID(add) after restart = %q", id)
	}
	if got := callAdd(`{"a":1,"b":1,"request_heartbeat":true}`); !strings.Contains(got, "has not registered") {
		t.Errorf("after restart: %s", got)
	}
	again := must(c.AddTool(ctx, "add", "Add two numbers.", add, local.AddToolOptions{}))(t)
	if again.ID != tool.ID {
		t.Errorf("AddTool after restart made a new tool %s (was %s)", again.ID, tool.ID)
	}
	if got := callAdd(`{"a":20,"b":22,"request_heartbeat":true}`); !strings.Contains(got, `\"sum\": 42`) {
		t.Errorf("after AddTool again: %s", got)
	}
}

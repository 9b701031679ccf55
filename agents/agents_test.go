package agents

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2024, 10, 23, 19, 29, 24, 0, time.UTC)

func TestTextsTheModelSees(t *testing.T) {
	cases := map[string]struct{ got, want string }{
		"local time": {LocalTime(at), "2024-10-23 07:29:24 PM UTC+0000"},
		"function ok": {FunctionResponse(true, "None", at),
			"{\n  \"status\": \"OK\",\n  \"message\": \"None\",\n  \"time\": \"2024-10-23 07:29:24 PM UTC+0000\"\n}"},
		"function failed": {FunctionResponse(false, "Error calling function f: boom <&>", at),
			"{\n  \"status\": \"Failed\",\n  \"message\": \"Error calling function f: boom <&>\",\n  \"time\": \"2024-10-23 07:29:24 PM UTC+0000\"\n}"},
		"heartbeat": {Heartbeat(HeartbeatRequested, at),
			"{\n  \"type\": \"heartbeat\",\n  \"reason\": \"[This is an automated system message hidden from the user] Function called using request_heartbeat=true, returning control\",\n  \"time\": \"2024-10-23 07:29:24 PM UTC+0000\"\n}"},
		"user message": {UserMessage("héllo 👋", at),
			"{\n  \"type\": \"user_message\",\n  \"message\": \"héllo 👋\",\n  \"time\": \"2024-10-23 07:29:24 PM UTC+0000\"\n}"},
		"truncate":    {Truncate(strings.Repeat("é", 12), 10), strings.Repeat("é", 10) + "... [NOTE: function output was truncated since it exceeded the character limit (12 > 10)]"},
		"no truncate": {Truncate("short", 10), "short"},
	}
	for name, c := range cases {
		if c.got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", name, c.got, c.want)
		}
	}
	if s := SummaryMessage("We talked.", 5, 7, 12, at); !strings.Contains(s, "prior messages (7 of 12 total messages) have been hidden") ||
		!strings.Contains(s, "summary of the previous 5 messages:\\n We talked.") {
		t.Errorf("summary message: %s", s)
	}
}

func TestCompileSystem(t *testing.T) {
	blocks := []Block{{Label: "persona", Value: "I am Sam.", Limit: 2000}, {Label: "human", Value: "First name: Chad", Limit: 2000}}
	got := CompileSystem("You are an agent.", blocks, 4, 0, at)
	want := "You are an agent.\n### Memory [last modified: 2024-10-23 07:29:24 PM UTC+0000]\n" +
		"4 previous messages between you and the user are stored in recall memory (use functions to access them)\n" +
		"0 total memories you created are stored in archival memory (use functions to access them)\n" +
		"\nCore memory shown below (limited in size, additional information stored in archival / recall memory):\n" +
		"<persona characters=\"9/2000\">\nI am Sam.\n</persona>\n<human characters=\"16/2000\">\nFirst name: Chad\n</human>"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := CompileSystem("A {CORE_MEMORY} B", nil, 0, 0, at); !strings.HasPrefix(got, "A ### Memory") || !strings.HasSuffix(got, "memory):\n B") {
		t.Errorf("placeholder: %q", got)
	}
	if got := RenderMemory([]Block{{Label: "x", Value: "ñ", Limit: 5}}); got != "<x characters=\"1/5\">\nñ\n</x>" {
		t.Errorf("characters count code points: %q", got)
	}
}

func TestInnerThoughtsRoundTrip(t *testing.T) {
	params := json.RawMessage(`{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}`)
	got := addInnerThoughts(params)
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(got, &schema); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), `{"type":"object","properties":{"inner_thoughts"`) || len(schema.Required) != 2 || schema.Required[0] != "inner_thoughts" {
		t.Fatalf("inner_thoughts not first: %s", got)
	}
	m := withInnerThoughts(Message{Role: "assistant", Content: "thinking", ToolCalls: []ToolCall{{ID: "1", Name: "send_message", Arguments: `{"message":"hi"}`}}})
	if m.Content != "" || !strings.Contains(m.ToolCalls[0].Arguments, `"inner_thoughts":"thinking"`) {
		t.Fatalf("history replay: %+v", m)
	}
	if empty := addInnerThoughts(json.RawMessage(`{"type":"object","properties":{}}`)); !strings.Contains(string(empty), `"inner_thoughts"`) {
		t.Fatalf("no parameters: %s", empty)
	}
}

func TestBaseToolSchemasAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, bt := range BaseTools() {
		var s struct {
			Name       string `json:"name"`
			Parameters struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"parameters"`
		}
		if err := json.Unmarshal(bt.Schema, &s); err != nil || s.Name != bt.Name {
			t.Fatalf("%s: %v %s", bt.Name, err, bt.Schema)
		}
		for _, r := range s.Parameters.Required {
			if _, ok := s.Parameters.Properties[r]; !ok {
				t.Errorf("%s requires %s, which it does not define", bt.Name, r)
			}
		}
		_, hb := s.Parameters.Properties["request_heartbeat"]
		if chains := bt.Name != ToolSendMessage && bt.Name != ToolPauseHeartbeats; hb != chains {
			t.Errorf("%s: request_heartbeat present = %v", bt.Name, hb)
		}
		seen[bt.Name] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d base tools", len(seen))
	}
}

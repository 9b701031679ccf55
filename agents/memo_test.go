package agents

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRenderRemembersByZone: the envelope shows the time in its own zone,
// so one instant in two zones renders twice, each as render does.
func TestRenderRemembersByZone(t *testing.T) {
	at := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	east := at.In(time.FixedZone("EST", -5*3600))
	// A zone's name and offset must not run together in the key.
	x3 := at.In(time.FixedZone("X3", 600))
	x := at.In(time.FixedZone("X", 3600))
	for _, tm := range []time.Time{at, east, x3, x, at, east, x3, x} {
		if got, want := Render(KindUser, "hello", tm), render(KindUser, "hello", tm); got != want {
			t.Fatalf("Render at %v = %q, want %q", tm, got, want)
		}
	}
	if Render(KindUser, "hello", at) == Render(KindUser, "hello", east) {
		t.Fatal("one instant in two zones rendered alike")
	}
}

// TestToolOfReadsTheSchema: a tool's description and parameters come from
// its schema, an empty object schema stands in for none, and the answer
// for a schema is the same the second time, under the name asked for.
func TestToolOfReadsTheSchema(t *testing.T) {
	schema := json.RawMessage(`{"name":"ring","description":"Ring the bell.","parameters":{"type":"object","properties":{"times":{"type":"integer"}},"required":["times"]}}`)
	for _, name := range []string{"ring", "ring_again"} {
		got := ToolOf(name, schema)
		if got.Name != name || got.Description != "Ring the bell." || string(got.Parameters) != `{"type":"object","properties":{"times":{"type":"integer"}},"required":["times"]}` {
			t.Fatalf("ToolOf(%q) = %+v", name, got)
		}
	}
	if got := ToolOf("bare", json.RawMessage(`{"name":"bare"}`)); string(got.Parameters) != `{"type":"object","properties":{},"required":[]}` || got.Description != "" {
		t.Fatalf("ToolOf without parameters = %+v", got)
	}
}

package bus

import (
	"strings"
	"testing"

	"github.com/engram-dev/engram/events"
)

// Every subject engram builds parses back to what built it, and the
// filters select what they name.
func TestSubjectsRoundTrip(t *testing.T) {
	aggs := []events.Aggregate{
		{Kind: events.KindAgent, ID: "agent-01a2497f-624f-748e-a960-0a80eb10e501"},
		{Kind: events.KindAgent, ID: "agent-01JD000000000000000000000A"},
		{Kind: events.KindBlock, ID: "block-123e4567-e89b-12d3-a456-426614174000"},
		{Kind: events.KindTool, ID: "tool-1"},
		{Kind: events.KindSource, ID: "source-1"},
		{Kind: events.KindJob, ID: "job-1"},
	}
	for _, a := range aggs {
		for _, typ := range []events.Type{events.TypeMessageReceived, events.TypeBlockUpdated} {
			s := Subject("acme", a, typ)
			got, ok := ParseSubject(s)
			if !ok || got != (EventSubject{Tenant: "acme", Aggregate: a, Type: typ}) {
				t.Errorf("ParseSubject(%q) = %+v, %v", s, got, ok)
			}
			if !matches(AggregateFilter("acme", a), s) || !matches(KindFilter("acme", a.Kind), s) {
				t.Errorf("%s is not selected by its aggregate and kind filters", s)
			}
		}
	}
	agent := aggs[0]
	anyOf := func(filters []string, subj string) bool {
		for _, f := range filters {
			if matches(f, subj) {
				return true
			}
		}
		return false
	}
	for _, typ := range []events.Type{events.TypeMessageReceived, events.TypeRunRequested} {
		in := Subject("acme", agent, typ)
		if !anyOf(partitionInputs("acme", Partition(agent.ID)), in) {
			t.Errorf("%s is not selected by its partition's input filter", in)
		}
		if anyOf(partitionInputs("acme", (Partition(agent.ID)+1)%Partitions), in) {
			t.Errorf("%s is selected by another partition's input filter", in)
		}
	}
	if anyOf(partitionInputs("acme", Partition(agent.ID)), Subject("acme", agent, events.TypeMessageAppended)) {
		t.Error("an agent's own output is selected as an input")
	}
	for _, bad := range []string{
		"", "ev", "ev.acme.agent.00.agent-x", "nope.acme.block.b.block_created",
		"ev.acme.agent.zz." + agent.ID + ".message_received", // wrong partition
		"ev.acme.block.b.x.block_created", "ev..block.b.block_created",
	} {
		if got, ok := ParseSubject(bad); ok {
			t.Errorf("ParseSubject(%q) = %+v, want not ok", bad, got)
		}
	}

	req := AgentRequestSubject("acme", agent.ID)
	if tenant, id, ok := parseAgentRequest(req); !ok || tenant != "acme" || id != agent.ID {
		t.Errorf("parseAgentRequest(%q) = %q, %q, %v", req, tenant, id, ok)
	}
	if !matches(agentRequests("acme"), req) {
		t.Errorf("%s is not selected by the request wildcard", req)
	}
	for _, bad := range []string{"engram.acme.agent.x", "engram.acme.run.x.messages", "ev.acme.agent.x.messages"} {
		if _, _, ok := parseAgentRequest(bad); ok {
			t.Errorf("parseAgentRequest(%q) ok, want not", bad)
		}
	}
}

// matches reports whether a NATS subject filter selects a subject.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}

package rest

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
)

// uuidID is the form of every id engram makes: "<prefix>-<uuid>", the uuid
// in lowercase hex with version 7 (time-ordered) or 8 (derived from a key).
var uuidID = regexp.MustCompile(`^[a-z]+-[0-9a-f]{8}-[0-9a-f]{4}-[78][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNewIDsAreUUIDs checks that objects made through the API get uuid-form
// ids, which Letta 0.5's client (^<prefix>-[a-fA-F0-9]{8}) accepts.
func TestNewIDsAreUUIDs(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "Ada"}}})
	b := x.block(api.CreateBlock{Label: "notes", Value: "v"})
	var kb api.Block // a keyed command's ids derive from the key, and are uuid-form too
	x.do("POST", "/v1/blocks/", api.CreateBlock{Label: "k", Value: "v"}, 200, &kb, "Idempotency-Key", "k-1")
	ids := []string{a.ID, b.ID, kb.ID, x.source("docs").ID, x.tool("uuid_tool").ID}
	for _, blk := range a.Memory.Blocks {
		ids = append(ids, blk.ID)
	}
	for _, tl := range a.Tools {
		ids = append(ids, tl.ID)
	}
	for _, id := range ids {
		if !uuidID.MatchString(id) {
			t.Errorf("id %q is not in uuid form", id)
		}
	}
}

// TestLegacyAndImportedIDs checks that objects whose ids are ULIDs (a log
// written before the uuid form) or uuid4s (as Letta makes, so an export's
// ids import unchanged) work through every kind of route: read, list,
// attach, update, archival insert and delete.
func TestLegacyAndImportedIDs(t *testing.T) {
	for _, tc := range []struct{ name, agent, block, tool string }{
		{"ulid", "agent-01JD000000000000000000000A", "block-01JD000000000000000000000B", "tool-01JD000000000000000000000T"},
		{"uuid4", "agent-8f5c3b1e-2d4a-4c6b-9e7f-0a1b2c3d4e5f", "block-1b4e28ba-2fa1-41d2-883f-0016d3cca427", "tool-c9bf9e57-1685-4c89-bafb-ff5af830be8a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newHarness(t, Config{})
			x.appendEvents(events.Aggregate{Kind: events.KindBlock, ID: tc.block},
				&events.BlockCreated{ID: events.BlockID(tc.block), Label: "human", Value: "First name: Chad", Limit: 2000})
			schema := json.RawMessage(`{"name":"roll_dice","description":"Roll a die.","parameters":{"type":"object","properties":{},"required":[]}}`)
			x.appendEvents(events.Aggregate{Kind: events.KindTool, ID: tc.tool},
				&events.ToolCreated{ID: events.ToolID(tc.tool), Name: "roll_dice", Description: "Roll a die.",
					SourceCode: "def roll_dice() -> str:\n    return '4'", SourceType: "python", JSONSchema: schema, ToolType: "custom", ReturnCharLimit: 6000})
			x.appendEvents(events.Aggregate{Kind: events.KindAgent, ID: tc.agent},
				&events.AgentCreated{ID: events.AgentID(tc.agent), Name: "sam", System: "You are Sam.", AgentType: "memgpt_agent",
					LLMConfig:       json.RawMessage(`{"model":"gpt-4o-mini","model_endpoint_type":"openai","context_window":128000}`),
					EmbeddingConfig: json.RawMessage(`{"embedding_model":"text-embedding-3-small","embedding_endpoint_type":"openai","embedding_dim":1536}`),
					BlockIDs:        []events.BlockID{events.BlockID(tc.block)}, ToolRules: json.RawMessage(`[]`)})

			var a api.AgentState
			x.do("GET", "/v1/agents/"+tc.agent, nil, 200, &a)
			if a.ID != tc.agent || len(a.Memory.Blocks) != 1 || a.Memory.Blocks[0].ID != tc.block {
				t.Fatalf("agent %s: id %q, blocks %+v", tc.agent, a.ID, a.Memory.Blocks)
			}
			var list []api.AgentState
			x.do("GET", "/v1/agents/?after=", nil, 200, &list)
			if len(list) != 1 || list[0].ID != tc.agent {
				t.Errorf("agents listed: %v", agentIDs(list))
			}
			var blk api.Block
			x.do("GET", "/v1/blocks/"+tc.block, nil, 200, &blk)
			x.do("PATCH", "/v1/blocks/"+tc.block, map[string]any{"value": "First name: Ada"}, 200, &blk)
			if blk.Value != "First name: Ada" {
				t.Errorf("block value %q", blk.Value)
			}
			x.do("PATCH", "/v1/agents/"+tc.agent+"/tools/attach/"+tc.tool, nil, 200, nil)
			var tools []api.Tool
			x.do("GET", "/v1/agents/"+tc.agent+"/tools", nil, 200, &tools)
			if len(tools) != 1 || tools[0].ID != tc.tool {
				t.Errorf("tools after attach: %v", toolIDs(tools))
			}
			x.do("PATCH", "/v1/agents/"+tc.agent+"/core-memory/blocks/detach/"+tc.block, nil, 200, nil)
			x.do("PATCH", "/v1/agents/"+tc.agent+"/core-memory/blocks/attach/"+tc.block, nil, 200, nil)
			var ps []api.Passage
			x.do("POST", "/v1/agents/"+tc.agent+"/archival-memory", map[string]any{"text": "likes bananas"}, 200, &ps)
			if len(ps) != 1 || !uuidID.MatchString(ps[0].ID) {
				t.Fatalf("passages %+v", ps)
			}
			x.do("DELETE", "/v1/agents/"+tc.agent+"/archival-memory/"+ps[0].ID, nil, 200, nil)
			x.do("DELETE", "/v1/agents/"+tc.agent, nil, 200, nil)
			code, body := x.call("GET", "/v1/agents/"+tc.agent, nil)
			if code != 404 {
				t.Errorf("deleted agent: %d %s", code, body)
			}
			checkDetail(t, body, "not found")
		})
	}
}

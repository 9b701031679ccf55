package agents

import (
	"encoding/json"
	"slices"

	"github.com/engram-dev/engram/memo"
)

// ToolOf is the tool name offers the model, read from its stored JSON
// schema: the schema's description and parameters (an empty object schema
// when it has none). It is remembered by the schema's text; the parameters
// are shared, read-only, by every step that offers the tool.
func ToolOf(name string, schema json.RawMessage) Tool {
	parts := toolParts.GetBytes(schema, func() (Tool, int) {
		var parsed struct {
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		}
		json.Unmarshal(schema, &parsed)
		if len(parsed.Parameters) == 0 {
			parsed.Parameters = json.RawMessage(`{"type":"object","properties":{},"required":[]}`)
		}
		// Clipped, so that an append copies.
		t := Tool{Description: parsed.Description, Parameters: slices.Clip(parsed.Parameters)}
		return t, len(t.Description) + len(t.Parameters)
	})
	parts.Name = name
	return parts
}

// toolParts remembers ToolOf's schemas.
var toolParts memo.Cache[Tool]

package agents

import (
	"encoding/json"
	"slices"
	"sync"
)

// memo is a bounded cache of a pure function of a string: what a step
// computes again, alike, at every step (each tool's schema, each past
// call's arguments, each input's envelope), since it renders the whole
// context afresh.
type memo[V any] struct {
	mu    sync.RWMutex
	m     map[string]V
	bytes int // of the keys and values held
}

// maxMemoBytes bounds what a memo holds: past it the memo starts again.
const maxMemoBytes = 8 << 20

// get returns f's value for key, computing it once; f also says the
// value's size in bytes. A value over 1/64 of the budget is not held.
func (c *memo[V]) get(key string, f func() (V, int)) V {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v, n := f()
	size := len(key) + n
	if size > maxMemoBytes/64 {
		return v // too big to be worth holding
	}
	c.mu.Lock()
	if c.m == nil || c.bytes+size > maxMemoBytes {
		c.m, c.bytes = map[string]V{}, 0
	}
	if _, ok := c.m[key]; !ok {
		c.m[key] = v
		c.bytes += size
	}
	c.mu.Unlock()
	return v
}

// ToolOf is the tool name offers the model, read from its stored JSON
// schema: the schema's description and parameters (an empty object schema
// when it has none). It is remembered by the schema's text; the parameters
// are shared, read-only, by every step that offers the tool.
func ToolOf(name string, schema json.RawMessage) Tool {
	parts := toolParts.get(string(schema), func() (Tool, int) {
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
var toolParts memo[Tool]

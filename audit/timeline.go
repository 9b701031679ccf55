// Package audit renders an agent's history (the events GET
// /v1/agents/{id}/events answers) as a timeline a person can read: memory
// edits as diffs, tool calls with their arguments and results, messages
// abridged.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
)

// Timeline writes events as lines of a timeline. It remembers the blocks it
// has seen, so that it can show a block's new value as a diff against the
// old; events must come in log order. It is not safe for concurrent use.
type Timeline struct {
	w      io.Writer
	blocks map[string]*block // by aggregate ("block/…")
	// Width is the most characters a quoted text keeps before it is
	// abridged; 0 means 72.
	Width int
}

type block struct{ label, value string }

// NewTimeline returns a timeline that writes to w.
func NewTimeline(w io.Writer) *Timeline {
	return &Timeline{w: w, blocks: map[string]*block{}}
}

// Write writes one event as one line: its sequence, time, who issued it
// and what it did.
func (t *Timeline) Write(e api.Event) error {
	who := e.IssuedBy
	if who == "agent step" && e.InputID != "" {
		who = "agent ← " + shortID(e.InputID)
	}
	_, err := fmt.Fprintf(t.w, "#%-5d %s  %-26s %s\n", e.Seq, e.Time.UTC().Format("2006-01-02 15:04:05"), who, t.describe(e))
	return err
}

// shortID keeps an id's prefix and the last 8 characters of its uuid (the
// first ones are a timestamp, alike for ids made together).
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 && len(id) > i+17 {
		return id[:i+1] + "…" + id[len(id)-8:]
	}
	return id
}

func (t *Timeline) quote(s string) string {
	w := t.Width
	if w == 0 {
		w = 72
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > w {
		r := []rune(s)
		s = string(r[:w]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// message is a stored message as its event's data holds it.
type message = events.MessageAppended

func (t *Timeline) describe(e api.Event) string {
	switch e.Type {
	case "message_received", "message_appended", "message_updated":
		var m message
		if json.Unmarshal(e.Data, &m) != nil {
			break
		}
		s := t.message(m)
		if e.Type == "message_updated" {
			s = "rewrites " + shortID(string(m.ID)) + ": " + s
		}
		return s
	case "input_taken":
		var v struct{ IDs []string }
		if json.Unmarshal(e.Data, &v) == nil {
			ids := make([]string, len(v.IDs))
			for i, id := range v.IDs {
				ids[i] = shortID(id)
			}
			return "run takes " + strings.Join(ids, ", ")
		}
	case "block_created":
		var v struct{ Label, Value string }
		if json.Unmarshal(e.Data, &v) == nil {
			t.blocks[e.Aggregate] = &block{label: v.Label, value: v.Value}
			return fmt.Sprintf("%s: new block %s", v.Label, t.quote(v.Value))
		}
	case "block_updated":
		var v struct {
			Label *string `json:"label"`
			Value *string `json:"value"`
		}
		if json.Unmarshal(e.Data, &v) != nil {
			break
		}
		b := t.blocks[e.Aggregate]
		if b == nil {
			b = &block{label: strings.TrimPrefix(e.Aggregate, "block/")}
			t.blocks[e.Aggregate] = b
		}
		var parts []string
		if v.Label != nil && *v.Label != b.label {
			parts = append(parts, "renamed "+*v.Label)
			b.label = *v.Label
		}
		if v.Value != nil {
			parts = append(parts, t.diff(b.value, *v.Value))
			b.value = *v.Value
		}
		if others := otherFields(e.Data, "label", "value"); others != "" {
			parts = append(parts, others)
		}
		return b.label + ": " + strings.Join(parts, "; ")
	case "block_deleted":
		return t.label(e.Aggregate) + ": block deleted"
	case "core_block_attached", "core_block_detached":
		var v struct {
			BlockID string `json:"block_id"`
		}
		if json.Unmarshal(e.Data, &v) == nil {
			verb := "attaches"
			if e.Type == "core_block_detached" {
				verb = "detaches"
			}
			return verb + " block " + t.label("block/"+v.BlockID)
		}
	case "passage_inserted":
		var v struct{ ID, Text string }
		if json.Unmarshal(e.Data, &v) == nil {
			return "archival + " + t.quote(v.Text)
		}
	case "passage_deleted":
		var v struct{ ID string }
		if json.Unmarshal(e.Data, &v) == nil {
			return "archival - " + shortID(v.ID)
		}
	case "agent_created":
		var v struct {
			Name       string
			BlockIDs   []string `json:"block_ids"`
			ToolIDs    []string `json:"tool_ids"`
			ForkedFrom *struct {
				AgentID string `json:"agent_id"`
				Seq     uint64 `json:"seq"`
			} `json:"forked_from"`
		}
		if json.Unmarshal(e.Data, &v) == nil {
			s := fmt.Sprintf("agent %q created with %d blocks and %d tools", v.Name, len(v.BlockIDs), len(v.ToolIDs))
			if f := v.ForkedFrom; f != nil {
				s += fmt.Sprintf(", forked from %s at #%d", f.AgentID, f.Seq)
			}
			return s
		}
	case "agent_updated":
		return "agent updated: " + otherFields(e.Data)
	case "agent_secrets_set":
		// The values are sealed; only their names are worth reading.
		var v struct{ Secrets map[string]string }
		if json.Unmarshal(e.Data, &v) == nil {
			if len(v.Secrets) == 0 {
				return "tool secrets removed"
			}
			names := make([]string, 0, len(v.Secrets))
			for k := range v.Secrets {
				names = append(names, k)
			}
			sort.Strings(names)
			return "tool secrets set: " + strings.Join(names, ", ") + " (sealed)"
		}
	case "file_created":
		var v struct {
			ID   string
			Name string
			Size int64
		}
		if json.Unmarshal(e.Data, &v) == nil {
			return fmt.Sprintf("file %s %q uploaded (%d bytes)", shortID(v.ID), v.Name, v.Size)
		}
	case "file_updated":
		var v struct {
			ID, Status, Error string
			Passages          int
		}
		if json.Unmarshal(e.Data, &v) == nil {
			s := fmt.Sprintf("file %s %s", shortID(v.ID), v.Status)
			if v.Passages > 0 {
				s += fmt.Sprintf(", %d passages", v.Passages)
			}
			if v.Error != "" {
				s += ": " + t.quote(v.Error)
			}
			return s
		}
	case "file_deleted":
		var v struct{ ID string }
		if json.Unmarshal(e.Data, &v) == nil {
			return "file " + shortID(v.ID) + " deleted"
		}
	}
	return strings.ReplaceAll(e.Type, "_", " ") + " " + t.quote(string(e.Data))
}

func (t *Timeline) label(agg string) string {
	if b := t.blocks[agg]; b != nil {
		return b.label
	}
	return shortID(strings.TrimPrefix(agg, "block/"))
}

// otherFields names the fields of an update other than skip, with their
// values abridged.
func otherFields(data json.RawMessage, skip ...string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !contains(skip, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := string(m[k])
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (t *Timeline) message(m message) string {
	switch m.Role {
	case "user":
		kind, words, ok := m.Words()
		switch {
		case !ok:
			return "user: " + t.quote(m.Text)
		case kind == events.InputUser:
			return "user: " + t.quote(words)
		case kind == events.InputHeartbeat || kind == events.InputLogin || words == "":
			return kind
		}
		return kind + ": " + t.quote(words)
	case "system":
		return fmt.Sprintf("system prompt (%d characters)", len(m.Text))
	case "tool":
		var r struct{ Status, Message string }
		if json.Unmarshal([]byte(m.Text), &r) == nil && r.Status != "" {
			return fmt.Sprintf("%s → %s %s", m.Name, r.Status, t.quote(r.Message))
		}
		return m.Name + " → " + t.quote(m.Text)
	}
	var parts []string
	if m.Text != "" {
		parts = append(parts, "thinks "+t.quote(m.Text))
	}
	for _, c := range m.ToolCalls {
		if c.Name == "send_message" {
			var a struct{ Message string }
			if json.Unmarshal([]byte(c.Arguments), &a) == nil {
				parts = append(parts, "says "+t.quote(a.Message))
				continue
			}
		}
		parts = append(parts, "calls "+c.Name+callArgs(c.Arguments))
	}
	if len(parts) == 0 {
		return m.Role + ": (empty)"
	}
	return strings.Join(parts, "; ")
}

// callArgs shows a call's arguments as name=value pairs, values abridged,
// without request_heartbeat.
func callArgs(args string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(args), &m) != nil {
		return "(" + args + ")"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "request_heartbeat" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := string(m[k])
		if len(v) > 60 {
			v = v[:60] + "…"
		}
		parts[i] = k + "=" + v
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// diff shows a change of text: what was added at the end, what was
// removed from it, or what changed between a common head and tail.
func (t *Timeline) diff(old, new string) string {
	switch {
	case old == new:
		return "unchanged"
	case strings.HasPrefix(new, old):
		return "+ " + t.quote(strings.TrimLeft(new[len(old):], "\n"))
	case strings.HasPrefix(old, new):
		return "- " + t.quote(strings.TrimLeft(old[len(new):], "\n"))
	}
	p := 0
	for p < len(old) && p < len(new) && old[p] == new[p] {
		p++
	}
	for p > 0 && !utf8.RuneStart(old[p]) {
		p--
	}
	s := 0
	for s < len(old)-p && s < len(new)-p && old[len(old)-1-s] == new[len(new)-1-s] {
		s++
	}
	for s > 0 && !utf8.RuneStart(old[len(old)-s]) {
		s--
	}
	o, n := old[p:len(old)-s], new[p:len(new)-s]
	where := ""
	if head := []rune(strings.TrimSpace(old[:p])); len(head) > 0 {
		if len(head) > 20 {
			head = append([]rune("…"), head[len(head)-20:]...)
		}
		where = fmt.Sprintf(" after %q", string(head))
	}
	switch {
	case o == "":
		return "+ " + t.quote(n) + where
	case n == "":
		return "- " + t.quote(o) + where
	}
	return "- " + t.quote(o) + " + " + t.quote(n) + where
}

package search

import (
	"encoding/json"
	"strings"

	"github.com/engram-dev/engram/events"
)

// FromEvent returns the index change an event makes, with Seq set to the
// envelope's, and whether the event concerns the index at all. It is a pure
// function of the envelope.
//
//   - passage_inserted puts a passage owned by its agent or source (the
//     aggregate when the event names neither), with its tags, its embedding
//     and its creation time (the envelope's when it has none);
//   - passage_deleted deletes it;
//   - message_appended and message_received put a user or assistant message
//     owned by the agent, at the envelope's time, with the text a person
//     would search: a user's words without the JSON envelope the runtime
//     wraps them in, an assistant's thoughts followed by what it said with
//     send_message. System and tool messages, and the runtime's own user
//     messages (heartbeats, system alerts, login events), are not indexed;
//   - agent_deleted and source_deleted drop every document of the agent or
//     source.
func FromEvent(env events.Envelope) (Batch, bool) {
	b := Batch{Seq: uint64(env.Seq)}
	switch e := env.Event.(type) {
	case *events.PassageInserted:
		owner := string(e.AgentID)
		if owner == "" {
			owner = string(e.SourceID)
		}
		if owner == "" {
			owner = env.Aggregate.ID
		}
		at := env.Time
		if e.CreatedAt != nil {
			at = *e.CreatedAt
		}
		b.Put = []Doc{{ID: string(e.ID), Kind: KindPassage, Owner: owner, Text: e.Text, Tags: e.Tags, Time: at.UTC(), Vector: e.Embedding, Seq: uint64(env.Seq), Part: int32(env.Part)}}
		return b, true
	case *events.PassageDeleted:
		b.Delete = []string{string(e.ID)}
		return b, true
	case *events.AgentDeleted, *events.SourceDeleted:
		b.DeleteOwner = []string{env.Aggregate.ID}
		return b, true
	}
	m, ok := events.AsMessage(env.Event)
	if !ok {
		return b, false
	}
	text, ok := MessageText(m)
	if !ok {
		return b, false
	}
	b.Put = []Doc{{ID: string(m.ID), Kind: KindMessage, Owner: env.Aggregate.ID, Text: text, Role: m.Role, Time: env.Time.UTC(), Seq: uint64(env.Seq), Part: int32(env.Part)}}
	return b, true
}

// sendMessage is the base tool whose argument is what the agent says.
const sendMessage = "send_message"

// MessageText returns the searchable text of a message, and false for a
// message that is not indexed (see FromEvent).
func MessageText(m *events.MessageAppended) (string, bool) {
	switch m.Role {
	case "user":
		text := m.Text
		if kind, words, ok := m.Words(); ok {
			if kind != events.InputUser {
				return "", false // the runtime's own: heartbeats, alerts, logins
			}
			text = words
		}
		text = strings.TrimSpace(text)
		return text, text != ""
	case "assistant":
		parts := []string{m.Text}
		if m.Reply != "" { // the modern loop's answer
			parts = append(parts, m.Reply)
		}
		for _, tc := range m.ToolCalls {
			if tc.Name != sendMessage {
				continue
			}
			var args struct {
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
				parts = append(parts, args.Message)
			}
		}
		text := strings.TrimSpace(strings.Join(parts, " "))
		return text, text != ""
	}
	return "", false
}

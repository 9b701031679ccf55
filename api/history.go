package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Event is one entry of an agent's history (GET /v1/agents/{id}/events): an
// event of the agent or of one of its blocks, as the log stores it.
type Event struct {
	Seq       uint64    `json:"seq"`            // the log sequence of the message holding it
	Part      int       `json:"part,omitempty"` // its index in a packed message
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Aggregate string    `json:"aggregate"` // "agent/agent-…" or "block/block-…"
	Command   string    `json:"command"`   // the id of the command that wrote it
	// IssuedBy is who issued the command: "client" for a client's
	// request, "agent step" for a step of a run, "agent summary" when the
	// agent summarized its context, or the actor the command names.
	IssuedBy string `json:"issued_by"`
	// InputID, on an agent step's events, is the client message the run
	// answered (when the log names it).
	InputID string          `json:"input_id,omitempty"`
	Data    json.RawMessage `json:"data"`
}

// EventFilter selects a page of an agent's history. Zero values select
// everything.
type EventFilter struct {
	After  uint64    // only events at sequences above this
	Before uint64    // only events at sequences below this (0: no bound)
	Limit  int       // at most this many (0: 100)
	Types  []string  // only these event types
	Since  time.Time // only events at or after this time
	Until  time.Time // only events before this time
}

// At names a past point of the log: the state after the event at sequence
// Seq, or after the last event written at or before Time. The zero At is
// now.
type At struct {
	Seq  uint64
	Time time.Time
}

// IsZero reports whether a names now.
func (a At) IsZero() bool { return a.Seq == 0 && a.Time.IsZero() }

// UnmarshalJSON reads a point of the log as a sequence (a number, or a
// string of digits) or an RFC 3339 time; null is now.
func (a *At) UnmarshalJSON(b []byte) error {
	*a = At{}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return json.Unmarshal(b, &a.Seq)
	}
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		a.Seq = n
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("at must be a log sequence or an RFC 3339 time, not %q", s)
	}
	a.Time = t.UTC()
	return nil
}

// ForkAgent is the body of POST /v1/agents/{id}/fork: the point of the
// agent's history to fork from (absent: now) and the new agent's name
// (absent: the old name with " fork").
type ForkAgent struct {
	At   At      `json:"at"`
	Name *string `json:"name,omitempty"`
}

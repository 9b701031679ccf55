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

// LogVerification is what walking the log and checking its seals found
// (GET /v1/admin/log/verify, engram verify). Verified is false when a
// message's seal or its place in the log is wrong; Problem then names the
// first such message.
type LogVerification struct {
	Verified bool   `json:"verified"`
	Summary  string `json:"summary"` // one line a person reads
	// Messages counts the stored messages read (a packed message holds
	// several events); Sealed those with a seal, Unsealed those written
	// before sealing began (at FirstSealed), which are reported, not failed.
	Messages    uint64 `json:"messages"`
	Sealed      uint64 `json:"sealed"`
	Unsealed    uint64 `json:"unsealed"`
	FirstSealed uint64 `json:"first_sealed,omitempty"`
	LastSeq     uint64 `json:"last_seq"`   // the last sequence read
	Aggregates  int    `json:"aggregates"` // aggregates seen (agents, blocks, …)
	// LastCheckpoint is the sequence of the last checkpoint checked, and
	// CheckpointThrough the last sequence it covers; Uncovered counts the
	// sealed messages after it, whose truncation no checkpoint would show.
	LastCheckpoint    uint64      `json:"last_checkpoint,omitempty"`
	CheckpointThrough uint64      `json:"checkpoint_through,omitempty"`
	Checkpoints       int         `json:"checkpoints"`
	Uncovered         uint64      `json:"uncovered"`
	KeyID             string      `json:"key_id"` // the sealing key's id (not the key)
	Problem           *LogProblem `json:"problem,omitempty"`
}

// LogProblem names the first message where the log is not as the server
// wrote it, and why.
type LogProblem struct {
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject,omitempty"`
	Reason  string `json:"reason"`
}

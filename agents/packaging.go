package agents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/engram-dev/engram/memo"
)

// Texts the runtime puts in front of the model. They follow Letta's
// structure (JSON envelopes with type, message and time), so agents written
// for Letta read them the same way.
const (
	// HiddenPrefix marks messages the user never sees.
	HiddenPrefix = "[This is an automated system message hidden from the user] "
	// HeartbeatRequested is the heartbeat reason after request_heartbeat.
	HeartbeatRequested = HiddenPrefix + "Function called using request_heartbeat=true, returning control"
	// HeartbeatFailed is the heartbeat reason after a failed function.
	HeartbeatFailed = HiddenPrefix + "Function call failed, returning control"
	// MemoryWarning warns that the history will soon be summarized.
	MemoryWarning = HiddenPrefix + "The conversation history will soon reach its maximum length and be trimmed. Do NOT tell the user about this system alert, they should not know that the history is reaching max length. If there is any important new information or general memories about you or the user that you would like to save, you should save that information immediately by calling function core_memory_append, core_memory_replace, or archival_memory_insert."
	// FunctionReturnLimit is the default cap on a function's return text.
	FunctionReturnLimit = 6000
)

// LocalTime formats t as the runtime shows times to the model, e.g.
// "2024-10-23 07:29:24 PM UTC+0000".
func LocalTime(t time.Time) string { return t.Format("2006-01-02 03:04:05 PM MST-0700") }

// dumps renders v as indented JSON without HTML escaping (Python's
// json.dumps(indent=2, ensure_ascii=False)).
func dumps(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

type envelope struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Time    string `json:"time"`
}

// UserMessage wraps a user's text as the model sees it.
func UserMessage(text string, now time.Time) string {
	return dumps(envelope{"user_message", text, LocalTime(now)})
}

// SystemAlert wraps a system notice.
func SystemAlert(text string, now time.Time) string {
	return dumps(envelope{"system_alert", text, LocalTime(now)})
}

// Heartbeat is the user-role message that wakes the agent to continue.
func Heartbeat(reason string, now time.Time) string {
	return dumps(struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
		Time   string `json:"time"`
	}{"heartbeat", reason, LocalTime(now)})
}

// FirstLogin is the last login a new agent's first message reports.
const FirstLogin = "Never (first login)"

// LoginEvent is the first user-role message of a new agent.
func LoginEvent(now time.Time) string { return Render(KindLogin, FirstLogin, now) }

// FunctionResponse packages a function's result as the tool message the
// model reads: {"status": "OK"|"Failed", "message": ..., "time": ...}.
func FunctionResponse(ok bool, message string, now time.Time) string {
	status := "OK"
	if !ok {
		status = "Failed"
	}
	return dumps(struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Time    string `json:"time"`
	}{status, message, LocalTime(now)})
}

// SummaryMessage is the user-role notice that replaces summarized history.
func SummaryMessage(summary string, summarized, hidden, total int, now time.Time) string {
	return SystemAlert(SummaryText(summary, summarized, hidden, total), now)
}

// SummaryText is the words of the summary notice (SummaryMessage wraps them
// in a system alert).
func SummaryText(summary string, summarized, hidden, total int) string {
	return fmt.Sprintf("Note: prior messages (%d of %d total messages) have been hidden from view due to conversation memory constraints.\nThe following is a summary of the previous %d messages:\n %s",
		hidden, total, summarized, summary)
}

// The kinds of wrapped input Render knows: Letta's envelope types, and the
// memory warning (a system alert). They equal the events package's Input*
// constants, which store them.
const (
	KindUser          = "user_message"
	KindSystemAlert   = "system_alert"
	KindHeartbeat     = "heartbeat"
	KindLogin         = "login"
	KindMemoryWarning = "memory_warning"
)

// Render wraps words of a kind in the envelope the model reads, with the
// time at: a user's message, a system alert, a heartbeat's reason, a login's
// last login. An unknown kind is shown as a system alert.
func Render(kind, words string, at time.Time) string {
	// A step renders every input in its context again: remember them. The
	// envelope shows at in the local zone, so the zone is part of the key.
	name, offset := at.Zone()
	var buf [512]byte // the key, built without an allocation when it fits
	key := append(buf[:0], kind...)
	key = strconv.AppendInt(append(key, 0), at.UnixNano(), 10)
	key = append(append(append(key, 0), name...), 0)
	key = strconv.AppendInt(key, int64(offset), 10)
	key = append(append(key, 0), words...)
	return rendered.GetBytes(key, func() (string, int) {
		v := render(kind, words, at)
		return v, len(v)
	})
}

// rendered remembers Render's envelopes.
var rendered memo.Cache[string]

// render is Render, computed.
func render(kind, words string, at time.Time) string {
	switch kind {
	case KindUser:
		return UserMessage(words, at)
	case KindHeartbeat:
		return Heartbeat(words, at)
	case KindLogin:
		return dumps(struct {
			Type      string `json:"type"`
			LastLogin string `json:"last_login"`
			Time      string `json:"time"`
		}{"login", words, LocalTime(at)})
	}
	return SystemAlert(words, at)
}

// Truncate caps a function's return text at limit characters, saying so.
func Truncate(s string, limit int) string {
	r := []rune(s)
	if limit <= 0 || len(r) <= limit {
		return s
	}
	return fmt.Sprintf("%s... [NOTE: function output was truncated since it exceeded the character limit (%d > %d)]", string(r[:limit]), len(r), limit)
}

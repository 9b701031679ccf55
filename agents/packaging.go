package agents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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

// dumps3 is dumps of a struct of three string fields named k1, k2 and k3
// (names that need no escaping), written directly: the runtime wraps every
// input and every tool's return so, at every step. A value with a character
// it does not write as encoding/json does (a control character other than
// \n, \r and \t; invalid UTF-8; U+2028, U+2029) is left to dumps(v).
func dumps3(v any, k1, v1, k2, v2, k3, v3 string) string {
	buf := make([]byte, 0, 32+len(k1)+len(k2)+len(k3)+len(v1)+len(v2)+len(v3))
	ok := true
	for i, kv := range [3][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
		if i == 0 {
			buf = append(buf, "{\n  \""...)
		} else {
			buf = append(buf, ",\n  \""...)
		}
		buf = append(append(buf, kv[0]...), "\": "...)
		if buf, ok = appendQuoted(buf, kv[1]); !ok {
			return dumps(v)
		}
	}
	return string(append(buf, "\n}"...))
}

// appendQuoted appends s as a JSON string as encoding/json writes it
// without HTML escaping, or says it cannot (see dumps3).
func appendQuoted(buf []byte, s string) ([]byte, bool) {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				return buf, false
			}
			i += size
			continue
		}
		if b >= 0x20 && b != '"' && b != '\\' {
			i++
			continue
		}
		buf = append(buf, s[start:i]...)
		switch b {
		case '"', '\\':
			buf = append(buf, '\\', b)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			return buf, false
		}
		i++
		start = i
	}
	return append(append(buf, s[start:]...), '"'), true
}

// UserMessage wraps a user's text as the model sees it.
func UserMessage(text string, now time.Time) string {
	e := envelope{"user_message", text, LocalTime(now)}
	return dumps3(e, "type", e.Type, "message", e.Message, "time", e.Time)
}

// SystemAlert wraps a system notice.
func SystemAlert(text string, now time.Time) string {
	e := envelope{"system_alert", text, LocalTime(now)}
	return dumps3(e, "type", e.Type, "message", e.Message, "time", e.Time)
}

// Heartbeat is the user-role message that wakes the agent to continue.
func Heartbeat(reason string, now time.Time) string {
	v := struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
		Time   string `json:"time"`
	}{"heartbeat", reason, LocalTime(now)}
	return dumps3(v, "type", v.Type, "reason", v.Reason, "time", v.Time)
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
	v := struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Time    string `json:"time"`
	}{status, message, LocalTime(now)}
	return dumps3(v, "status", v.Status, "message", v.Message, "time", v.Time)
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

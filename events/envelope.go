package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	gojson "github.com/goccy/go-json"
)

// Type is an event's constant wire name. It is also the last token of the
// event's subject, so it is lowercase letters and underscores only.
type Type string

// Kind names an aggregate type; it is a token of the event's subject.
type Kind string

// The aggregate kinds.
const (
	KindAgent  Kind = "agent"
	KindBlock  Kind = "block"
	KindTool   Kind = "tool"
	KindSource Kind = "source"
	KindJob    Kind = "job"
	// KindConversation is a conversation's aggregate (ConversationCreated).
	KindConversation Kind = "conversation"
	// KindLog is the log's own aggregate: its checkpoints (Checkpoints).
	KindLog Kind = "log"
)

// Checkpoints is the aggregate the log's checkpoints are appended to.
var Checkpoints = Aggregate{Kind: KindLog, ID: "checkpoints"}

// Aggregate names the consistency boundary an event belongs to.
type Aggregate struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

func (a Aggregate) String() string { return string(a.Kind) + "/" + a.ID }

// Selector picks events of one aggregate for a read of the log: all of
// them, or those of some types. Events stored together in a packed message
// are stored under the type SubjectPacked, so a read by type also delivers
// the aggregate's packed messages whole: the reader keeps what it wants.
type Selector struct {
	Aggregate Aggregate
	Types     []Type // nil: every type
}

// Event is implemented by every event struct.
type Event interface {
	// EventType returns the event's constant wire name.
	EventType() Type
}

// Envelope is one entry of the log: an event with the facts every event
// carries. Seq and Part are assigned by the log and are not part of the encoded bytes.
type Envelope struct {
	Seq  Seq `json:"-"`
	Part int `json:"-"` // index in a packed message (see EncodePacked); 0 otherwise
	// Hosted is set on an event stored in another aggregate's message (a
	// hosted message, see EncodeHosted): its aggregate's own subject does
	// not hold it, so it does not move that aggregate's version (the
	// sequence an expectation names). Assigned by the decoder, not encoded.
	Hosted    bool      `json:"-"`
	Type      Type      `json:"type"`
	Aggregate Aggregate `json:"aggregate"`
	Command   string    `json:"command"`         // idempotency id of the command that produced it
	Actor     string    `json:"actor,omitempty"` // who issued the command
	Time      time.Time `json:"time"`            // when the command was decided (UTC)
	Event     Event     `json:"-"`
}

// wire is the encoded form of an Envelope.
type wire struct {
	Type      Type            `json:"type"`
	Aggregate Aggregate       `json:"aggregate"`
	Command   string          `json:"command"`
	Actor     string          `json:"actor,omitempty"`
	Time      time.Time       `json:"time"`
	Data      json.RawMessage `json:"data"`
}

// ErrUnknownType is returned by Decode for an event type this build does not know.
var ErrUnknownType = errors.New("unknown event type")

// Encode returns the wire bytes of e. The envelope's Type is taken from the
// event. The envelope is written by hand around the marshalled event, which
// halves the cost of the hot append path; the golden tests pin the bytes.
func Encode(e Envelope) ([]byte, error) {
	if e.Event == nil {
		return nil, errors.New("encode: envelope has no event")
	}
	return appendEnvelope(make([]byte, 0, envelopeSize(e)), e)
}

// envelopeSize is a guess of e's encoded size, to size a buffer for it.
func envelopeSize(e Envelope) int {
	return dataSize(e.Event) + 160 + len(e.Command) + len(e.Actor) + len(e.Aggregate.ID)
}

// appendEnvelope appends Encode(e) to buf; e has an event.
func appendEnvelope(buf []byte, e Envelope) ([]byte, error) {
	buf = append(buf, `{"type":`...)
	buf = appendString(buf, string(e.Event.EventType()))
	buf = append(buf, `,"aggregate":{"kind":`...)
	buf = appendString(buf, string(e.Aggregate.Kind))
	buf = append(buf, `,"id":`...)
	buf = appendString(buf, e.Aggregate.ID)
	buf = append(buf, `},"command":`...)
	buf = appendString(buf, e.Command)
	if e.Actor != "" {
		buf = append(buf, `,"actor":`...)
		buf = appendString(buf, e.Actor)
	}
	buf = append(buf, `,"time":"`...)
	buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","data":`...)
	buf, err := appendData(buf, e.Event)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Event.EventType(), err)
	}
	return append(buf, '}'), nil
}

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML characters too). It writes the common escapes itself and leaves a
// string with a rarer one (a control character other than \n, \r and \t,
// invalid UTF-8, U+2028, U+2029) to json.Marshal.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	mark := len(buf)
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				b, _ := json.Marshal(s)
				return append(buf[:mark], b...)
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		case '<', '>', '&':
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			b, _ := json.Marshal(s)
			return append(buf[:mark], b...)
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// Decode parses wire bytes into an Envelope with a typed Event. An unknown
// type is an error wrapping ErrUnknownType, never a generic map.
func Decode(b []byte) (Envelope, error) {
	if env, ok := decodeFast(b); ok {
		return env, nil
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	mk, ok := registry[w.Type]
	if !ok {
		return Envelope{}, fmt.Errorf("decode %q: %w", w.Type, ErrUnknownType)
	}
	if len(w.Data) == 0 {
		return Envelope{}, fmt.Errorf("decode %s: no data", w.Type)
	}
	ev := mk()
	if err := json.Unmarshal(w.Data, ev); err != nil {
		return Envelope{}, fmt.Errorf("decode %s: %w", w.Type, err)
	}
	if w.Aggregate.Kind == "" || w.Aggregate.ID == "" {
		return Envelope{}, fmt.Errorf("decode %s: missing aggregate", w.Type)
	}
	return Envelope{
		Type: w.Type, Aggregate: w.Aggregate, Command: w.Command,
		Actor: w.Actor, Time: w.Time, Event: ev,
	}, nil
}

// Types lists every known event type, in a fixed order.
func Types() []Type {
	out := make([]Type, 0, len(registry))
	for _, t := range typeOrder {
		out = append(out, t)
	}
	return out
}

// decodeFast reads the exact layout Encode writes, parsing the event's data
// once instead of twice (replay spends most of its time decoding). Anything
// else — escaped or invalid strings, other key orders, bad data — reports
// !ok, and Decode takes the general path, so both agree on every input.
// The type and kind are the known names' own strings and the time is
// parsed in place, so of the envelope only the id and the command are
// copied.
func decodeFast(b []byte) (Envelope, bool) {
	r := b
	// field reads the string after prefix: one pass to its closing quote,
	// refusing escapes and control characters, and checking UTF-8 only
	// when it is not ASCII.
	field := func(prefix string) ([]byte, bool) {
		if len(r) < len(prefix) || string(r[:len(prefix)]) != prefix {
			return nil, false
		}
		r = r[len(prefix):]
		ascii := true
		for i, c := range r {
			switch {
			case c == '"':
				s := r[:i]
				r = r[i+1:]
				return s, ascii || utf8.Valid(s)
			case c < 0x20 || c == '\\':
				return nil, false
			case c >= 0x80:
				ascii = false
			}
		}
		return nil, false
	}
	var env Envelope
	typ, ok1 := field(`{"type":"`)
	kind, ok2 := field(`,"aggregate":{"kind":"`)
	id, ok3 := field(`,"id":"`)
	cmd, ok4 := field(`},"command":"`)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(kind) == 0 || len(id) == 0 {
		return env, false
	}
	var actor []byte
	if bytes.HasPrefix(r, []byte(`,"actor":"`)) {
		var ok bool
		if actor, ok = field(`,"actor":"`); !ok {
			return env, false
		}
	}
	ts, ok := field(`,"time":"`)
	if !ok || !bytes.HasPrefix(r, []byte(`,"data":`)) {
		return env, false
	}
	r = r[len(`,"data":`):]
	if len(r) < 2 || r[len(r)-1] != '}' {
		return env, false
	}
	data := r[:len(r)-1]
	// UnmarshalText is UnmarshalJSON without the quotes: RFC 3339, strictly.
	var at time.Time
	if err := at.UnmarshalText(ts); err != nil {
		return env, false
	}
	t, known := typeNames[string(typ)]
	if !known {
		return env, false
	}
	k, ok := kindNames[string(kind)]
	if !ok {
		k = Kind(kind)
	}
	// goccy/go-json decodes faster than encoding/json but does not reject
	// every malformed input, nor replace invalid UTF-8 as encoding/json
	// does, so the data is checked first and anything unusual takes the
	// general path (FuzzDecode holds both paths to the same answers). The
	// check is jsontext's, about three times as fast as json.Valid's
	// scanner, and stricter: it also refuses invalid UTF-8 and duplicate
	// names (I-JSON, RFC 7493), which then take the general path too.
	if !jsontext.Value(data).IsValid() {
		return env, false
	}
	ev := t.mk()
	if err := gojson.Unmarshal(data, ev); err != nil {
		return env, false
	}
	return Envelope{Type: t.Type, Aggregate: Aggregate{Kind: k, ID: string(id)}, Command: string(cmd), Actor: string(actor), Time: at, Event: ev}, true
}

// typeNames and kindNames hold the known names, so that a decoded envelope
// shares their strings instead of a copy of each; typeNames also holds each
// type's constructor (one look-up, not two).
var (
	typeNames = func() map[string]knownType {
		m := make(map[string]knownType, len(registry))
		for t, mk := range registry {
			m[string(t)] = knownType{t, mk}
		}
		return m
	}()
	kindNames = func() map[string]Kind {
		m := map[string]Kind{}
		for _, k := range []Kind{KindAgent, KindBlock, KindTool, KindSource, KindJob, KindConversation, KindLog, KindOrg, KindAccess} {
			m[string(k)] = k
		}
		return m
	}()
)

// knownType is a known event type and its constructor.
type knownType struct {
	Type
	mk func() Event
}

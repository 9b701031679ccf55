package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A packed message stores several events of one aggregate as one log
// message: a JSON array of envelopes, each exactly as Encode writes it.
// Every event in it shares the message's sequence and is told apart by its
// Part, its index in the array. A command whose events all belong to one
// aggregate is appended this way, so that it needs one publish with one
// expectation instead of a multi-message atomic batch. The form was added
// after the single-envelope form; logs written before hold no packed
// messages, and DecodeAll reads both.
//
// Forms of a log message, in the order they were added (the log keeps
// every form it ever held, so a reader reads all of them):
//
//  1. one envelope (Encode);
//  2. packed: an array of envelopes of one aggregate (EncodePacked);
//  3. hosted: an array whose first envelope's aggregate, the host, owns the
//     message's subject, and whose other envelopes may belong to
//     aggregates the command creates (EncodeHosted). Those events are
//     Hosted: their aggregates' own subjects do not hold them. A reader of
//     form 2 alone refuses form 3 (two aggregates), it never misreads it.

// SubjectPacked is the type token of a packed message's subject: the
// message holds events of several types, so it is stored under this one.
const SubjectPacked Type = "packed"

// EncodePacked returns the wire bytes of a packed message holding envs, in
// order. It needs at least two envelopes, all of one aggregate.
func EncodePacked(envs []Envelope) ([]byte, error) {
	if len(envs) < 2 {
		return nil, errors.New("encode packed: fewer than two events")
	}
	return encodeArray(envs, func(i int, e Envelope) error {
		if e.Aggregate != envs[0].Aggregate {
			return fmt.Errorf("encode packed: event %d is of %s, not %s", i, e.Aggregate, envs[0].Aggregate)
		}
		return nil
	})
}

// encodeArray returns envs encoded as a JSON array, each envelope as
// Encode writes it, in one buffer; check, if not nil, refuses an envelope
// before it is encoded.
func encodeArray(envs []Envelope, check func(int, Envelope) error) ([]byte, error) {
	size := 2
	for _, e := range envs {
		size += envelopeSize(e) + 1
	}
	buf := append(make([]byte, 0, size), '[')
	for i, e := range envs {
		if check != nil {
			if err := check(i, e); err != nil {
				return nil, err
			}
		}
		if e.Event == nil {
			return nil, errors.New("encode: envelope has no event")
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendEnvelope(buf, e); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

// EncodeHosted returns the wire bytes of a hosted message (form 3 above):
// envs in order; the first names the host aggregate, and any of the others
// may belong to other aggregates. It needs at least two envelopes. Which
// events may be hosted is the writer's rule (bus.Log.Append: only events of
// aggregates the command itself creates).
func EncodeHosted(envs []Envelope) ([]byte, error) {
	if len(envs) < 2 {
		return nil, errors.New("encode hosted: fewer than two events")
	}
	return encodeArray(envs, nil)
}

// DecodeAll parses the wire bytes of one log message, in any of its forms,
// into its envelopes; each envelope's Part is its index in the message, and
// an event of another aggregate than the first's is Hosted.
func DecodeAll(b []byte) ([]Envelope, error) {
	return AppendDecoded(nil, b)
}

// AppendDecoded is DecodeAll appending the message's envelopes to dst: a
// reader decoding many messages keeps them in one array. On an error it
// returns dst as it was.
func AppendDecoded(dst []Envelope, b []byte) ([]Envelope, error) {
	if len(b) == 0 || b[0] != '[' {
		env, err := Decode(b)
		if err != nil {
			return dst, err
		}
		return append(dst, env), nil
	}
	raws, ok := splitPacked(b)
	if !ok {
		// Not the exact form EncodePacked writes: let encoding/json judge.
		var all []json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return dst, fmt.Errorf("decode packed: %w", err)
		}
		raws = make([][]byte, len(all))
		for i, r := range all {
			raws[i] = r
		}
	}
	if len(raws) < 2 {
		return dst, fmt.Errorf("decode packed: %d events, want at least two", len(raws))
	}
	n := len(dst)
	for i, raw := range raws {
		env, err := Decode(raw)
		if err != nil {
			clear(dst[n:])
			return dst[:n], fmt.Errorf("decode packed event %d: %w", i, err)
		}
		env.Part = i
		env.Hosted = i > 0 && env.Aggregate != dst[n].Aggregate
		dst = append(dst, env)
	}
	return dst, nil
}

// DecodePart decodes the event at index part of one log message (0 for a
// message of one event) without decoding the others: a packed message of
// many large events (passages with embeddings) is only scanned up to the
// one asked for.
func DecodePart(b []byte, part int) (Envelope, error) {
	if len(b) == 0 || b[0] != '[' {
		if part != 0 {
			return Envelope{}, fmt.Errorf("decode part %d: the message holds one event", part)
		}
		return Decode(b)
	}
	start, end, err := arrayElement(b, part)
	if err != nil {
		return Envelope{}, fmt.Errorf("decode part %d: %w", part, err)
	}
	env, err := Decode(b[start:end])
	if err != nil {
		return Envelope{}, fmt.Errorf("decode part %d: %w", part, err)
	}
	env.Part = part
	if part > 0 {
		hs, he, err := arrayElement(b, 0)
		if err != nil {
			return Envelope{}, fmt.Errorf("decode part %d: %w", part, err)
		}
		host, err := aggregateOf(b[hs:he])
		if err != nil {
			return Envelope{}, fmt.Errorf("decode part %d: host: %w", part, err)
		}
		env.Hosted = env.Aggregate != host
	}
	return env, nil
}

// aggregateOf reads the aggregate of one encoded envelope without decoding
// its event.
func aggregateOf(b []byte) (Aggregate, error) {
	// Encode's layout: {"type":"…","aggregate":{"kind":"…","id":"…"},…
	if r, ok := bytes.CutPrefix(b, []byte(`{"type":"`)); ok {
		if i := bytes.IndexByte(r, '"'); i >= 0 {
			r = r[i+1:]
			if r, ok = bytes.CutPrefix(r, []byte(`,"aggregate":{"kind":"`)); ok {
				k := bytes.IndexByte(r, '"')
				if k > 0 {
					kind := r[:k]
					if r, ok = bytes.CutPrefix(r[k+1:], []byte(`,"id":"`)); ok {
						if j := bytes.IndexByte(r, '"'); j > 0 && plainString(kind) && plainString(r[:j]) {
							return Aggregate{Kind: Kind(kind), ID: string(r[:j])}, nil
						}
					}
				}
			}
		}
	}
	var w struct {
		Aggregate Aggregate `json:"aggregate"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Aggregate{}, err
	}
	if w.Aggregate.Kind == "" || w.Aggregate.ID == "" {
		return Aggregate{}, errors.New("missing aggregate")
	}
	return w.Aggregate, nil
}

// arrayElement returns the bounds of the element at index i of the JSON
// array b, scanning strings and nesting but decoding nothing.
func arrayElement(b []byte, i int) (int, int, error) {
	depth, idx, start := 0, 0, -1
	inStr, esc := false, false
	for j := 1; j < len(b); j++ {
		c := b[j]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if depth == 0 && idx == i {
				start = j
			}
			depth++
		case '}', ']':
			depth--
			if depth == 0 && start >= 0 {
				return start, j + 1, nil
			}
			if depth < 0 {
				return 0, 0, fmt.Errorf("no event %d in a message of %d", i, idx+1)
			}
		case ',':
			if depth == 0 {
				idx++
			}
		}
	}
	return 0, 0, errors.New("truncated packed message")
}

// plainString reports whether s, the inside of a JSON string, reads as
// itself: valid UTF-8 with no escapes and no control characters.
func plainString(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(s)
}

// splitPacked returns the elements of a packed message in the exact form
// EncodePacked writes — '[', objects separated by ',', ']', no spaces —
// scanning strings and nesting but decoding nothing (each element is then
// decoded, and so checked, on its own). Anything else reports !ok.
func splitPacked(b []byte) ([][]byte, bool) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, false
	}
	out := make([][]byte, 0, 4)
	depth, start := 0, -1
	inStr, esc := false, false
	for j := 1; j < len(b)-1; j++ {
		c := b[j]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			if depth == 0 {
				return nil, false
			}
			inStr = true
		case '{', '[':
			if depth == 0 {
				if c != '{' || start >= 0 {
					return nil, false
				}
				start = j
			}
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return nil, false
			}
			if depth == 0 {
				out = append(out, b[start:j+1])
				start = -1
				if next := b[j+1]; next != ',' && next != ']' {
					return nil, false
				}
			}
		case ',':
			if depth == 0 && (start >= 0 || b[j-1] != '}' || b[j+1] != '{') {
				return nil, false
			}
		default:
			if depth == 0 {
				return nil, false
			}
		}
	}
	if depth != 0 || inStr || start >= 0 {
		return nil, false
	}
	return out, true
}

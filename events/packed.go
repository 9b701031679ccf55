package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A packed message stores several events of one aggregate as one log
// message: a JSON array of envelopes, each exactly as Encode writes it.
// Every event in it shares the message's sequence and is told apart by its
// Part, its index in the array. A command whose events all belong to one
// aggregate is appended this way, so that it needs one publish with one
// expectation instead of a multi-message atomic batch. The form was added
// after the single-envelope form; logs written before hold no packed
// messages, and DecodeAll reads both.

// SubjectPacked is the type token of a packed message's subject: the
// message holds events of several types, so it is stored under this one.
const SubjectPacked Type = "packed"

// EncodePacked returns the wire bytes of a packed message holding envs, in
// order. It needs at least two envelopes, all of one aggregate.
func EncodePacked(envs []Envelope) ([]byte, error) {
	if len(envs) < 2 {
		return nil, errors.New("encode packed: fewer than two events")
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, e := range envs {
		if e.Aggregate != envs[0].Aggregate {
			return nil, fmt.Errorf("encode packed: event %d is of %s, not %s", i, e.Aggregate, envs[0].Aggregate)
		}
		b, err := Encode(e)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// DecodeAll parses the wire bytes of one log message, packed or not, into
// its envelopes; each envelope's Part is its index in the message.
func DecodeAll(b []byte) ([]Envelope, error) {
	if len(b) == 0 || b[0] != '[' {
		env, err := Decode(b)
		if err != nil {
			return nil, err
		}
		return []Envelope{env}, nil
	}
	raws, ok := splitPacked(b)
	if !ok {
		// Not the exact form EncodePacked writes: let encoding/json judge.
		var all []json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, fmt.Errorf("decode packed: %w", err)
		}
		raws = make([][]byte, len(all))
		for i, r := range all {
			raws[i] = r
		}
	}
	if len(raws) < 2 {
		return nil, fmt.Errorf("decode packed: %d events, want at least two", len(raws))
	}
	out := make([]Envelope, len(raws))
	for i, raw := range raws {
		env, err := Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("decode packed event %d: %w", i, err)
		}
		if env.Aggregate != out[0].Aggregate && i > 0 {
			return nil, fmt.Errorf("decode packed event %d: aggregate %s, not %s", i, env.Aggregate, out[0].Aggregate)
		}
		env.Part = i
		out[i] = env
	}
	return out, nil
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
	return env, nil
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

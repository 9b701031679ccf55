package events

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fill sets every field of v, recursively, to a random value: strings from
// an alphabet of every kind of character JSON escapes (HTML ones, controls,
// invalid UTF-8, U+2028), and slices and pointers nil, empty or filled, so
// that each omitempty rule and each field of the struct is exercised.
func fill(r *rand.Rand, v reflect.Value) {
	alphabet := []string{"a", "Z", "0", " ", "<", ">", "&", "'", "\"", "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", "\xff", "{"}
	switch v.Kind() {
	case reflect.String:
		var b strings.Builder
		for range r.IntN(3) * r.IntN(6) { // often empty
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		v.SetString(b.String())
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt([]int64{0, 1, -7, 1 << 40}[r.IntN(4)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Pointer:
		if r.IntN(2) == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem())
		v.Set(p)
	case reflect.Slice:
		switch r.IntN(3) {
		case 0:
			v.Set(reflect.Zero(v.Type()))
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			if v.Type() == reflect.TypeFor[json.RawMessage]() {
				v.Set(reflect.ValueOf(json.RawMessage(`{"type":"object"}`)))
				return
			}
			s := reflect.MakeSlice(v.Type(), 1+r.IntN(2), 3)
			for i := range s.Len() {
				fill(r, s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i))
			}
		}
	default:
		panic("fill: no rule for " + v.Type().String())
	}
}

// TestFastEncodeIsMarshal: the events written by hand (fastencode.go) are
// written byte for byte as json.Marshal writes them, every field of them
// set at random; the others go to json.Marshal.
func TestFastEncodeIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 30_000 {
		for _, ev := range []Event{&MessageAppended{}, &MessageReceived{}, &InputTaken{}, &BlockUpdated{}} {
			fill(r, reflect.ValueOf(ev).Elem())
			if m, ok := ev.(*MessageReceived); ok && i%2 == 0 {
				m.Approvals, m.ClientTools = nil, nil // the fast path's case, half the time
			}
			if b, ok := ev.(*BlockUpdated); ok && i%2 == 0 {
				b.Metadata = nil // the fast path's case, half the time
			}
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendData(nil, ev)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%T %+v:\nwritten %s (%v)\nMarshal %s", ev, ev, got, err, want)
			}
		}
	}
	for _, ev := range []Event{(*MessageAppended)(nil), (*MessageReceived)(nil), (*InputTaken)(nil), (*BlockUpdated)(nil)} {
		if got, err := appendData(nil, ev); err != nil || string(got) != "null" {
			t.Fatalf("%T nil = %s, %v", ev, got, err)
		}
	}
}

// BenchmarkEncodeStep encodes what a step stores (the model's turn and the
// tool's return) with Encode and, as the baseline, with Encode as it was
// before the hand-written events (json.Marshal of the event's data, the
// envelope around it).
//
//	go test ./events -run '^$' -bench EncodeStep
func BenchmarkEncodeStep(b *testing.B) {
	turn := &MessageAppended{ID: "message-4b1d8f0e-8a7e-4d6c-9a51-0c6f2f3b9e11", Role: "assistant", Text: "The user greeted me; I should answer warmly.",
		ToolCalls: []ToolCall{{ID: "call_abc123", Name: "send_message", Arguments: `{"message": "Hello! How can I help you today?"}`}},
		Model:     "gpt-4o-mini", RunID: "run-1f0c2d3e", Usage: &Usage{PromptTokens: 1000, CompletionTokens: 20, TotalTokens: 1020}, StopReason: "end_turn"}
	ret := &MessageAppended{ID: "message-5c2e9a1f-9b8f-4e7d-8b62-1d7a3a4c0f22", Role: "tool", Name: "send_message", ToolCallID: "call_abc123",
		Text: "{\n  \"status\": \"OK\",\n  \"message\": \"None\",\n  \"time\": \"2026-12-06 05:00:00 PM UTC+0000\"\n}", RunID: "run-1f0c2d3e"}
	envs := []Envelope{
		{Aggregate: Aggregate{Kind: KindAgent, ID: "agent-7d9e"}, Command: "step-1", Time: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Event: turn},
		{Aggregate: Aggregate{Kind: KindAgent, ID: "agent-7d9e"}, Command: "step-1", Time: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC), Event: ret},
	}
	for _, env := range envs {
		got, _ := Encode(env)
		if want, _ := marshalEncode(env); !bytes.Equal(got, want) {
			b.Fatalf("Encode = %s, want %s", got, want)
		}
	}
	for _, c := range []struct {
		name string
		enc  func(Envelope) ([]byte, error)
	}{{"marshal", marshalEncode}, {"direct", Encode}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, env := range envs {
					c.enc(env)
				}
			}
		})
	}
}

// marshalEncode is Encode as it was before the hand-written events.
func marshalEncode(e Envelope) ([]byte, error) {
	data, err := json.Marshal(e.Event)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(data)+160+len(e.Command)+len(e.Actor)+len(e.Aggregate.ID))
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
	buf = append(buf, data...)
	return append(buf, '}'), nil
}

// TestPackedIsItsEnvelopes: a packed and a hosted message are the array of
// their envelopes each as Encode writes it, written into one buffer.
func TestPackedIsItsEnvelopes(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	agg := Aggregate{Kind: KindAgent, ID: "agent-1"}
	for range 2000 {
		var envs []Envelope
		for range 2 + r.IntN(3) {
			var ev Event
			switch r.IntN(4) {
			case 0:
				ev = &MessageAppended{}
			case 1:
				ev = &MessageReceived{}
			case 2:
				ev = &InputTaken{}
			default:
				ev = &BlockUpdated{}
			}
			fill(r, reflect.ValueOf(ev).Elem())
			envs = append(envs, Envelope{Aggregate: agg, Command: "step-<1>", Actor: []string{"", "agent"}[r.IntN(2)],
				Time: time.Unix(int64(r.IntN(1<<31)), int64(r.IntN(1e9))), Event: ev})
		}
		want := []byte{'['}
		for i, e := range envs {
			b, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				want = append(want, ',')
			}
			want = append(want, b...)
		}
		want = append(want, ']')
		for name, encode := range map[string]func([]Envelope) ([]byte, error){"packed": EncodePacked, "hosted": EncodeHosted} {
			if got, err := encode(envs); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s = %s, %v\nwant %s", name, got, err, want)
			}
		}
	}
	if _, err := EncodePacked([]Envelope{{Aggregate: agg, Event: &InputTaken{}}, {Aggregate: Aggregate{Kind: KindBlock, ID: "b"}, Event: &InputTaken{}}}); err == nil {
		t.Fatal("a packed message of two aggregates was encoded")
	}
	if _, err := EncodeHosted([]Envelope{{Aggregate: agg, Event: &InputTaken{}}, {Aggregate: agg}}); err == nil {
		t.Fatal("an envelope without an event was encoded")
	}
}

// BenchmarkEncodePackedStep packs a step's three events (the input taken,
// the model's turn, the tool's return) in one buffer and, as the baseline,
// as it was packed before: each envelope encoded on its own, then copied.
//
//	go test ./events -run '^$' -bench EncodePackedStep
func BenchmarkEncodePackedStep(b *testing.B) {
	agg := Aggregate{Kind: KindAgent, ID: "agent-7d9e"}
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	envs := []Envelope{
		{Aggregate: agg, Command: "step-1", Time: at, Event: &InputTaken{IDs: []MessageID{"message-4b1d8f0e-8a7e-4d6c-9a51-0c6f2f3b9e10"}}},
		{Aggregate: agg, Command: "step-1", Time: at, Event: &MessageAppended{ID: "message-4b1d8f0e-8a7e-4d6c-9a51-0c6f2f3b9e11", Role: "assistant",
			Text: "The user greeted me; I should answer warmly.", Model: "gpt-4o-mini", RunID: "run-1f0c2d3e", StopReason: "end_turn",
			ToolCalls: []ToolCall{{ID: "call_abc123", Name: "send_message", Arguments: `{"message": "Hello! How can I help you today?"}`}}}},
		{Aggregate: agg, Command: "step-1", Time: at, Event: &MessageAppended{ID: "message-5c2e9a1f-9b8f-4e7d-8b62-1d7a3a4c0f22", Role: "tool",
			Name: "send_message", ToolCallID: "call_abc123", RunID: "run-1f0c2d3e",
			Text: "{\n  \"status\": \"OK\",\n  \"message\": \"None\",\n  \"time\": \"2026-12-06 05:00:00 PM UTC+0000\"\n}"}},
	}
	each := func(envs []Envelope) ([]byte, error) {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i, e := range envs {
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
	for _, c := range []struct {
		name string
		pack func([]Envelope) ([]byte, error)
	}{{"each", each}, {"one-buffer", EncodePacked}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.pack(envs)
			}
		})
	}
}

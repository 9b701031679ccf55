package projections

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// snapshotState is a state whose agents' lists exercise the v5 format:
// every Ref field set, sequences and times that go back as well as
// forward, windows that follow the recall index, skip about in it, and
// hold ids it lacks.
func snapshotState() *State {
	st := fold(history(2000, 3))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range 4 {
		id := events.AgentID(fmt.Sprint("agent-lists-", i))
		a := &Agent{ID: id, Name: "lists", Created: 1}
		for k := range 50 * i {
			a.Messages = append(a.Messages, Ref{ID: fmt.Sprintf("message-%d-%d", i, k), Seq: events.Seq(1000 + 3*k - (k%5)*7),
				CreatedAt: t0 + int64(k)*1e9 - int64(k%3)*5e9, Input: k%2 == 0, Conv: k%3 == 0, Part: int32(k % 4)})
		}
		for k := range 7 * i {
			a.Passages = append(a.Passages, Ref{ID: fmt.Sprintf("passage-%d", k), Seq: events.Seq(k * 10)})
		}
		switch i {
		case 1: // the recall index's tail, in order
			for _, m := range a.Messages[20:] {
				a.MessageIDs = append(a.MessageIDs, events.MessageID(m.ID))
			}
		case 2: // out of order, an id twice, ids the recall index lacks
			a.MessageIDs = []events.MessageID{"message-elsewhere", events.MessageID(a.Messages[90].ID), events.MessageID(a.Messages[3].ID),
				events.MessageID(a.Messages[3].ID), "message-elsewhere-too", events.MessageID(a.Messages[99].ID)}
		case 3: // more ids it lacks than windowScans full searches
			for k := range 3 * windowScans {
				a.MessageIDs = append(a.MessageIDs, events.MessageID(a.Messages[(k*37)%len(a.Messages)].ID), events.MessageID(fmt.Sprint("missing-", k)))
			}
		}
		st.Agents[id] = a
	}
	return st
}

// TestSnapshotV5MatchesGob checks that a v5 snapshot restores exactly the
// state a v4 (gob) snapshot of the same state restores: every field, the
// agents' lists included.
func TestSnapshotV5MatchesGob(t *testing.T) {
	st := snapshotState()
	data, err := encodeSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	old, err := gobSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeGobSnapshot(old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for id, a := range want.Agents {
			if !reflect.DeepEqual(got.Agents[id], a) {
				t.Fatalf("agent %s:\n got %+v\nwant %+v", id, got.Agents[id], a)
			}
		}
		t.Fatal("the v5 snapshot restores another state than gob does")
	}
	if len(data) >= len(old) {
		t.Errorf("v5 snapshot of %d bytes, gob %d: no smaller", len(data), len(old))
	}
}

// TestSnapshotRefFields guards the v5 format against a field added to Ref
// and not to appendRefs: a Ref with every field set must come back whole.
func TestSnapshotRefFields(t *testing.T) {
	var r Ref
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("message-x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(int64(3 + i))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(5 + i))
		default:
			t.Fatalf("Ref.%s is a %s, which this test cannot set: teach it, and appendRefs", v.Type().Field(i).Name, f.Kind())
		}
	}
	d := &snapReader{b: appendRefs(nil, []Ref{r})}
	got := d.refs()
	if d.err != nil || len(got) != 1 || got[0] != r {
		t.Fatalf("Ref %+v came back as %+v (%v): does appendRefs write every field?", r, got, d.err)
	}
}

// TestSnapshotDamaged checks that every cut of a v5 snapshot, and every
// byte of it changed, is an error or a state, never a panic; the cuts are
// all errors.
func TestSnapshotDamaged(t *testing.T) {
	st := NewState()
	a := &Agent{ID: "agent-1", Name: "a"}
	for k := range 5 {
		a.Messages = append(a.Messages, Ref{ID: fmt.Sprint("message-", k), Seq: events.Seq(k + 1), CreatedAt: int64(k)})
		a.MessageIDs = append(a.MessageIDs, events.MessageID(fmt.Sprint("message-", k)))
	}
	a.MessageIDs = append(a.MessageIDs, "message-gone")
	a.Passages = []Ref{{ID: "passage-1", Seq: 9}}
	st.Agents[a.ID] = a
	data, err := encodeSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := decodeSnapshot(data[:n]); err == nil {
			t.Fatalf("a snapshot cut to %d of %d bytes decoded", n, len(data))
		}
	}
	for i := range data {
		b := append([]byte(nil), data...)
		b[i] ^= 0x5a
		decodeSnapshot(b) // must not panic
	}
	if _, err := decodeSnapshot(append(data, 0)); err == nil {
		t.Fatal("a snapshot with a byte after its end decoded")
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	data, err := encodeSnapshot(snapshotState())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSnapshot(b)
		if err == nil && st == nil {
			t.Fatal("no state and no error")
		}
	})
}

// benchState is the replay workload's state (engram bench): agents with
// messages each, every message in its agent's recall index and window.
func benchState(agents, messages int) *State {
	st := NewState()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := events.Seq(0)
	for i := range agents {
		seq++
		id := events.AgentID(events.NewID(events.PrefixAgent, t0))
		a := &Agent{ID: id, Name: fmt.Sprint("agent ", i), System: "You are a test agent.", Created: seq, CreatedAt: t0}
		st.Agents[id] = a
	}
	for k := range messages {
		for _, a := range st.Agents {
			seq++
			m := events.NewID(events.PrefixMessage, t0.Add(time.Duration(k)*time.Millisecond))
			a.Messages = append(a.Messages, Ref{ID: m, Seq: seq, CreatedAt: t0.UnixNano() + int64(seq), Input: false})
			a.MessageIDs = append(a.MessageIDs, events.MessageID(m))
		}
	}
	st.Applied = seq
	return st
}

// BenchmarkSnapshot encodes and decodes a snapshot of 1,000 agents with
// 1,000 messages each (the replay workload's million events) in both
// formats.
//
//	go test ./projections -run '^$' -bench Snapshot -benchtime 5x
func BenchmarkSnapshot(b *testing.B) {
	st := benchState(1000, 1000)
	for _, f := range []struct {
		name   string
		encode func(*State) ([]byte, error)
		decode func([]byte) (*State, error)
	}{
		{"v4-gob", gobSnapshot, decodeGobSnapshot},
		{"v5", encodeSnapshot, decodeSnapshot},
	} {
		data, err := f.encode(st)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.encode(st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
		b.Run(f.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.decode(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
	}
}

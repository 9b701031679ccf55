package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"

	"github.com/engram-dev/engram/events"
)

// Snapshots are saved under a name that says their format; bump it when the
// format or the State layout changes incompatibly. A node restores the
// newest format it finds, reads the one before (oldSnapshotName) when the
// newest is missing, and replays the log when neither can be read.
const (
	// v2: Agent.Keys and Agent.Pending; v3: runs; v4: conversations'
	// windows; v5: agents' messages, passages and windows out of the gob
	// (encodeSnapshot).
	snapshotName    = "projections-v5"
	oldSnapshotName = "projections-v4" // the whole State in one gob (decodeGobSnapshot)
)

// snapshotMagic begins a v5 snapshot.
const snapshotMagic = "engram projections v5\n"

// encodeSnapshot encodes st in the v5 format: the magic, the length of a gob
// of the State without the agents' recall and archival indexes and context
// windows, that gob, then those three lists per agent, compactly. They are
// nearly all of a large state (a message is a Ref in its agent's recall
// index and an id in its window), and gob spends most of a restore on
// them: here the ids of a list are one string the Refs share (one
// allocation a list, not one an id), sequences and times are deltas, and a
// window's ids name the recall Ref holding the same id.
//
// The caller must hold st still (Projection holds its read lock).
func encodeSnapshot(st *State) ([]byte, error) {
	cp := *st
	cp.Agents = make(map[events.AgentID]*Agent, len(st.Agents))
	size := binary.MaxVarintLen64 // what the lists take, near enough
	for id, a := range st.Agents {
		bare := *a
		bare.Messages, bare.Passages, bare.MessageIDs = nil, nil, nil
		cp.Agents[id] = &bare
		size += len(id) + 4*binary.MaxVarintLen64 + 3*len(a.MessageIDs)
		for _, refs := range [][]Ref{a.Messages, a.Passages} {
			for _, r := range refs {
				size += len(r.ID) + 12
			}
		}
	}
	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(&cp); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(snapshotMagic)+binary.MaxVarintLen64+g.Len()+size)
	out = append(out, snapshotMagic...)
	out = binary.AppendUvarint(out, uint64(g.Len()))
	out = append(out, g.Bytes()...)
	out = binary.AppendUvarint(out, uint64(len(st.Agents)))
	for id, a := range st.Agents {
		out = appendString(out, string(id))
		out = appendRefs(out, a.Messages)
		out = appendRefs(out, a.Passages)
		out = appendWindowIDs(out, a.MessageIDs, a.Messages)
	}
	return out, nil
}

// decodeSnapshot decodes what encodeSnapshot encoded.
func decodeSnapshot(data []byte) (*State, error) {
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, errors.New("not a v5 snapshot")
	}
	d := &snapReader{b: data[len(snapshotMagic):]}
	g := d.next(d.count())
	if d.err != nil {
		return nil, d.err
	}
	st := NewState()
	if err := gob.NewDecoder(bytes.NewReader(g)).Decode(st); err != nil {
		return nil, err
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := events.AgentID(d.string())
		a := st.Agents[id]
		if a == nil {
			return nil, fmt.Errorf("lists of agent %q, which the snapshot does not hold", id)
		}
		a.Messages = d.refs()
		a.Passages = d.refs()
		a.MessageIDs = d.window(a.Messages)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the last list", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return st, nil
}

// decodeGobSnapshot decodes a v4 snapshot: the whole State in one gob.
func decodeGobSnapshot(data []byte) (*State, error) {
	st := NewState()
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(st); err != nil {
		return nil, err
	}
	return st, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendRefs appends refs: their number; if any, the length of their ids
// together, the ids, and each id's length; then per Ref the zigzag deltas
// of Seq and CreatedAt from the Ref before, and its flags (Input, Conv)
// with Part above them.
func appendRefs(b []byte, refs []Ref) []byte {
	b = binary.AppendUvarint(b, uint64(len(refs)))
	if len(refs) == 0 {
		return b
	}
	total := 0
	for _, r := range refs {
		total += len(r.ID)
	}
	b = binary.AppendUvarint(b, uint64(total))
	for _, r := range refs {
		b = append(b, r.ID...)
	}
	for _, r := range refs {
		b = binary.AppendUvarint(b, uint64(len(r.ID)))
	}
	var seq uint64
	var at int64
	for _, r := range refs {
		b = binary.AppendVarint(b, int64(uint64(r.Seq)-seq))
		b = binary.AppendVarint(b, r.CreatedAt-at)
		seq, at = uint64(r.Seq), r.CreatedAt
		flags := uint64(uint32(r.Part)) << 2
		if r.Input {
			flags |= 1
		}
		if r.Conv {
			flags |= 2
		}
		b = binary.AppendUvarint(b, flags)
	}
	return b
}

// windowLookahead is how far past the last match appendWindowIDs looks for a
// window's next id among the recall Refs, and windowScans how many times
// an agent's window may search them all, before it writes ids out in full.
const (
	windowLookahead = 16
	windowScans     = 4
)

// appendWindowIDs appends a context window: its length, then per id 1 + the
// index of the Ref in msgs with that id, or 0 and the id itself. A window
// is mostly the recall index's newest stretch, in order, so each id is
// looked for just after the one before.
func appendWindowIDs(b []byte, ids []events.MessageID, msgs []Ref) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	next, scans := 0, 0
	for _, id := range ids {
		k := -1
		for i := next; i < len(msgs) && i < next+windowLookahead; i++ {
			if msgs[i].ID == string(id) {
				k = i
				break
			}
		}
		if k < 0 && scans < windowScans {
			scans++
			for i := range msgs {
				if msgs[i].ID == string(id) {
					k = i
					break
				}
			}
		}
		if k < 0 {
			b = binary.AppendUvarint(b, 0)
			b = appendString(b, string(id))
			continue
		}
		b = binary.AppendUvarint(b, uint64(k)+1)
		next = k + 1
	}
	return b
}

// snapReader reads a v5 snapshot; the first failure sticks in err and
// every read after it returns zero values.
type snapReader struct {
	b   []byte
	err error
}

func (d *snapReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("snapshot: "+format, args...)
	}
	d.b = nil
}

func (d *snapReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *snapReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of things that each take at least a byte of what
// is left, so a damaged count cannot make a huge allocation.
func (d *snapReader) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("count %d beyond the %d bytes left", v, len(d.b))
		return 0
	}
	return int(v)
}

// next returns the next n bytes (n from count).
func (d *snapReader) next(n int) []byte {
	if n > len(d.b) {
		d.fail("%d bytes wanted, %d left", n, len(d.b))
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *snapReader) string() string { return string(d.next(d.count())) }

// refs reads what appendRefs wrote. The Refs' ids share one string.
func (d *snapReader) refs() []Ref {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	ids := string(d.next(d.count()))
	refs := make([]Ref, n)
	off := 0
	for i := range refs {
		l := d.uvarint()
		if l > uint64(len(ids)-off) {
			d.fail("ids longer than their %d bytes", len(ids))
			return nil
		}
		refs[i].ID = ids[off : off+int(l)]
		off += int(l)
	}
	if off != len(ids) {
		d.fail("ids of %d bytes, %d used", len(ids), off)
		return nil
	}
	var seq uint64
	var at int64
	for i := range refs {
		seq += uint64(d.varint())
		at += d.varint()
		flags := d.uvarint()
		r := &refs[i]
		r.Seq, r.CreatedAt = events.Seq(seq), at
		r.Input, r.Conv, r.Part = flags&1 != 0, flags&2 != 0, int32(uint32(flags>>2))
	}
	if d.err != nil {
		return nil
	}
	return refs
}

// window reads what appendWindowIDs wrote; ids found in msgs share its Refs'
// strings.
func (d *snapReader) window(msgs []Ref) []events.MessageID {
	n := d.count()
	if n == 0 || d.err != nil {
		return nil
	}
	ids := make([]events.MessageID, n)
	for i := range ids {
		k := d.uvarint()
		switch {
		case k == 0:
			ids[i] = events.MessageID(d.string())
		case k <= uint64(len(msgs)):
			ids[i] = events.MessageID(msgs[k-1].ID)
		default:
			d.fail("window names message %d of %d", k, len(msgs))
			return nil
		}
	}
	if d.err != nil {
		return nil
	}
	return ids
}

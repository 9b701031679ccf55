package verify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/highwayhash"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// rig is a data directory with a server on it: the NATS store under
// nats/, the key and head files beside it, as a node lays them out.
type rig struct {
	dir    string
	srv    *bus.Server
	log    *bus.Log
	sealer *bus.Sealer
}

func startRig(t *testing.T, dir string, listen bool) *rig {
	t.Helper()
	ctx := context.Background()
	cfg := bus.DefaultConfig(filepath.Join(dir, "nats"))
	cfg.SyncAlways = false
	if listen {
		cfg.ClientAddr = "127.0.0.1:0"
	}
	srv, err := bus.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	key, _, err := LoadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := bus.OpenLog(ctx, srv, bus.LogConfig{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{dir: dir, srv: srv, log: l, sealer: sealer}
}

func (r *rig) verify(t *testing.T) api.LogVerification {
	t.Helper()
	head, err := ReadHead(filepath.Join(r.dir, HeadFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Log(context.Background(), r.log, r.sealer, head)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var (
	agentA = events.Aggregate{Kind: events.KindAgent, ID: "agent-A"}
	blockB = events.Aggregate{Kind: events.KindBlock, ID: "block-B"}
)

func env(a events.Aggregate, ev events.Event) events.Envelope {
	return events.Envelope{Aggregate: a, Time: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), Event: ev}
}

func str(s string) *string { return &s }

// fixture is what writeFixture stored: where its interesting messages are.
type fixture struct {
	unsealed  int        // messages written before sealing
	tea       events.Seq // the block update holding "Likes tea"
	noExpect  events.Seq // an agent event appended without an expectation
	batch     events.Seq // the first message of a three-message atomic batch
	firstCP   events.Seq // the first checkpoint
	lastCP    events.Seq // the last checkpoint
	through   events.Seq // what it covers
	last      events.Seq // the last message
	afterTail events.Seq // the first message after the last checkpoint
}

// writeFixture writes a log of every shape an append takes — unsealed
// messages from before sealing, single and packed messages, an atomic
// batch over two aggregates, appends with and without expectations — and
// checkpoints, the last covering all but a tail of two messages.
func writeFixture(t *testing.T, r *rig) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var f fixture
	// Before sealing: the same log, opened without a sealer.
	old, err := bus.OpenLog(ctx, r.srv, bus.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u := events.Aggregate{Kind: events.KindAgent, ID: "agent-U"}
	for i := range 3 {
		if _, err := old.Append(ctx, events.Batch{Command: "old-" + strconv.Itoa(i), Events: []events.Envelope{env(u, &events.AgentUpdated{Name: str("u" + strconv.Itoa(i))})}}); err != nil {
			t.Fatal(err)
		}
		f.unsealed++
	}
	var last events.Seq
	var lastA, lastB events.Seq
	app := func(cmd string, expect []events.Expectation, envs ...events.Envelope) events.Seq {
		t.Helper()
		seq, err := r.log.Append(ctx, events.Batch{Command: cmd, Expect: expect, Events: envs})
		if err != nil {
			t.Fatalf("append %s: %v", cmd, err)
		}
		last = seq
		return seq
	}
	lastA = app("create-a", []events.Expectation{{Aggregate: agentA}}, env(agentA, &events.AgentCreated{ID: "agent-A", Name: "a"}))
	lastB = app("create-b", []events.Expectation{{Aggregate: blockB}}, env(blockB, &events.BlockCreated{ID: "block-B", Label: "human", Value: "Ada"}))
	// Packed: two events of one aggregate in one message.
	lastA = app("packed", []events.Expectation{{Aggregate: agentA, Version: lastA}},
		env(agentA, &events.AgentUpdated{Name: str("a1")}), env(agentA, &events.AgentUpdated{Description: str("d")}))
	// An atomic batch: agent, block, agent.
	lastA = app("batch", []events.Expectation{{Aggregate: agentA, Version: lastA}, {Aggregate: blockB, Version: lastB}},
		env(agentA, &events.AgentUpdated{Name: str("a2")}), env(blockB, &events.BlockUpdated{Value: str("Ada L.")}), env(agentA, &events.AgentUpdated{Name: str("a3")}))
	f.batch, lastB = lastA-2, lastA-1
	// No expectation (as an input taken is appended).
	lastA = app("loose", nil, env(agentA, &events.AgentUpdated{Name: str("a4")}))
	f.noExpect = lastA
	lastB = app("tea", []events.Expectation{{Aggregate: blockB, Version: lastB}}, env(blockB, &events.BlockUpdated{Value: str("Ada. Likes tea.")}))
	f.tea = lastB
	for i := range 5 {
		lastA = app("step-"+strconv.Itoa(i), []events.Expectation{{Aggregate: agentA, Version: lastA}}, env(agentA, &events.AgentUpdated{Name: str("s" + strconv.Itoa(i))}))
	}
	// Checkpoints: a run of the checkpointer with a short interval.
	f.firstCP, _ = checkpoint(t, r, last)
	lastA = app("step-after-1", []events.Expectation{{Aggregate: agentA, Version: lastA}}, env(agentA, &events.AgentUpdated{Name: str("x")}))
	f.lastCP, f.through = checkpoint(t, r, last)
	f.afterTail = app("tail-1", []events.Expectation{{Aggregate: agentA, Version: lastA}}, env(agentA, &events.AgentUpdated{Name: str("y")}))
	f.last = app("tail-2", []events.Expectation{{Aggregate: blockB, Version: lastB}}, env(blockB, &events.BlockUpdated{Value: str("z")}))
	return f
}

// checkpoint runs a checkpointer until it has written a checkpoint through
// at least through, and returns that checkpoint and what it covers.
func checkpoint(t *testing.T, r *rig, through events.Seq) (events.Seq, events.Seq) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	headFile := filepath.Join(r.dir, HeadFile)
	c := NewCheckpointer(r.log, CheckpointConfig{Every: -1, Interval: 20 * time.Millisecond, HeadFile: headFile})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for {
		h, err := ReadHead(headFile)
		if err != nil {
			t.Fatal(err)
		}
		if h != nil && h.Through >= through {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("checkpointer: %v", err)
			}
			return h.Checkpoint, h.Through
		}
		select {
		case err := <-done:
			t.Fatalf("checkpointer stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestVerifyClean(t *testing.T) {
	r := startRig(t, t.TempDir(), false)
	f := writeFixture(t, r)
	rep := r.verify(t)
	if !rep.Verified || rep.Problem != nil {
		t.Fatalf("clean log: %s", rep.Summary)
	}
	if rep.Unsealed != uint64(f.unsealed) || rep.FirstSealed != uint64(f.unsealed+1) || rep.LastSeq != uint64(f.last) ||
		rep.LastCheckpoint != uint64(f.lastCP) || rep.Checkpoints != 2 || rep.Uncovered != 3 || rep.Aggregates != 4 {
		t.Fatalf("clean log: %+v", rep)
	}
	if !strings.Contains(rep.Summary, "verified") || !strings.Contains(rep.Summary, "3 unsealed") {
		t.Fatalf("summary %q", rep.Summary)
	}
	t.Log(rep.Summary)
}

// TestVerifyForged publishes onto an event subject around engram's
// checks. Other NATS clients are refused that (bus
// TestOnlyEngramWritesTheLog), so the forger here uses engram's own
// connection, as a bug, a stolen connection or an operator with the
// server's credentials could; the seal still names each forgery.
func TestVerifyForged(t *testing.T) {
	ctx := context.Background()
	otherKey := make([]byte, bus.SealKeySize)
	rand.Read(otherKey)
	other, _ := bus.NewSealer(otherKey)
	for _, tc := range []struct {
		name   string
		header func(r *rig, real nats.Header) nats.Header
		reason string
	}{
		{"no seal", func(*rig, nats.Header) nats.Header { return nats.Header{} }, "no seal"},
		{"a real message's seal and headers, copied", func(_ *rig, real nats.Header) nats.Header { return real }, "does not match"},
		{"sealed under another key", func(_ *rig, real nats.Header) nats.Header {
			h := nats.Header{}
			h.Set("Engram-Seal", "v1 "+other.KeyID()+" AAAA")
			return h
		}, "another key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, t.TempDir(), true)
			f := writeFixture(t, r)
			js, _ := jetstream.New(r.srv.Conn())
			st, _ := js.Stream(ctx, bus.StreamName)
			real, err := st.GetMsg(ctx, uint64(f.tea))
			if err != nil {
				t.Fatal(err)
			}
			forged := nats.NewMsg(real.Subject)
			forged.Data = []byte(strings.Replace(string(real.Data), "Likes tea", "Likes rum", 1))
			for k, v := range tc.header(r, real.Header) {
				if !strings.HasPrefix(k, "Nats-Expected") && k != "Nats-Msg-Id" && !strings.HasPrefix(k, "Nats-Seq") && k != "Nats-Stream" && k != "Nats-Subject" && k != "Nats-Time-Stamp" {
					forged.Header[k] = v
				}
			}
			ack, err := js.PublishMsg(ctx, forged)
			if err != nil {
				t.Fatal(err)
			}
			rep := r.verify(t)
			if rep.Verified || rep.Problem == nil || rep.Problem.Seq != ack.Sequence || !strings.Contains(rep.Problem.Reason, tc.reason) {
				t.Fatalf("forged message at %d: %s", ack.Sequence, rep.Summary)
			}
			t.Log(rep.Summary)
		})
	}
}

// stopAndCopy stops the rig's server and copies its data directory, as an
// attacker with access to the disk would work on it.
func stopAndCopy(t *testing.T, r *rig) string {
	t.Helper()
	r.srv.Close()
	dst := t.TempDir()
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func streamDir(dir string) string {
	return filepath.Join(dir, "nats", "jetstream", "$G", "streams", bus.StreamName)
}

// editBlock replaces old with new (same length) in the stream's first
// message block; with fixSum it also recomputes the record's checksum, so
// that JetStream serves the altered message as sound.
func editBlock(t *testing.T, dir, old, new string, fixSum bool) {
	t.Helper()
	path := filepath.Join(streamDir(dir), "msgs", "1.blk")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := strings.Index(string(b), old)
	if at < 0 || len(old) != len(new) {
		t.Fatalf("%q not in %s", old, path)
	}
	copy(b[at:], new)
	if fixSum {
		// Records: total_len(4) seq(8) ts(8) subj_len(2) subj [hdr_len(4) hdr] msg hash(8);
		// the high bit of total_len says there are headers.
		le := binary.LittleEndian
		for off := 0; off < len(b); {
			rl := int(le.Uint32(b[off:]) &^ (1 << 31))
			hasHdr := le.Uint32(b[off:])&(1<<31) != 0
			if at >= off && at < off+rl {
				rec := b[off : off+rl]
				sl := int(le.Uint16(rec[20:]))
				key := sha256.Sum256([]byte(bus.StreamName + "-1"))
				hh, _ := highwayhash.New64(key[:])
				hh.Write(rec[4:20])
				hh.Write(rec[22 : 22+sl])
				body := rec[22+sl : rl-8]
				if hasHdr {
					hl := int(le.Uint32(body))
					hh.Write(body[4 : 4+hl])
					body = body[4+hl:]
				}
				hh.Write(body)
				copy(rec[rl-8:], hh.Sum(nil))
				break
			}
			off += rl
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// allowDeletes lifts the stream's deny-delete in its stored configuration,
// fixing the file's checksum, as a JetStream client cannot (the server
// refuses to lift it) but someone with the disk can.
func allowDeletes(t *testing.T, dir string) {
	t.Helper()
	meta := filepath.Join(streamDir(dir), "meta.inf")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"deny_delete":true`, `"deny_delete":false`, 1)
	if s == string(b) {
		t.Fatalf("no deny_delete in %s", b)
	}
	key := sha256.Sum256([]byte(bus.StreamName))
	hh, _ := highwayhash.New64(key[:])
	hh.Write([]byte(s))
	if err := os.WriteFile(meta, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(streamDir(dir), "meta.sum"), []byte(hex.EncodeToString(hh.Sum(nil))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// attack lifts deny-delete in the copied store at dir, starts a bare
// server on it (no engram: nothing puts deny-delete back) and hands fn the
// stream.
func attack(t *testing.T, dir string, fn func(jetstream.Stream)) {
	t.Helper()
	allowDeletes(t, dir)
	srv, err := bus.StartServer(context.Background(), bus.DefaultConfig(filepath.Join(dir, "nats")))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := srv.JetStream().Stream(context.Background(), bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	fn(st)
}

func TestVerifyAltered(t *testing.T) {
	for _, fixSum := range []bool{true, false} {
		name := "checksum left broken"
		if fixSum {
			name = "checksum fixed"
		}
		t.Run(name, func(t *testing.T) {
			r := startRig(t, t.TempDir(), false)
			f := writeFixture(t, r)
			dir := stopAndCopy(t, r)
			editBlock(t, dir, "Likes tea", "Likes rum", fixSum)
			rep := startRig(t, dir, false).verify(t)
			// Whatever JetStream makes of a bad checksum (serve the bytes,
			// drop the message, or the block from there on), the altered
			// message is the one named.
			if rep.Verified || rep.Problem == nil || rep.Problem.Seq != uint64(f.tea) && !strings.Contains(rep.Problem.Reason, " "+strconv.Itoa(int(f.tea))) {
				t.Fatalf("altered message %d: %s", f.tea, rep.Summary)
			}
			if fixSum && !strings.Contains(rep.Problem.Reason, "does not match") {
				t.Fatalf("altered message %d with a sound checksum: %s", f.tea, rep.Summary)
			}
			t.Log(rep.Summary)
		})
	}
}

func TestVerifyDeleted(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), false)
	f := writeFixture(t, r)
	dir := stopAndCopy(t, r)
	attack(t, dir, func(st jetstream.Stream) {
		if err := st.DeleteMsg(ctx, uint64(f.noExpect)); err != nil {
			t.Fatal(err)
		}
	})
	rep := startRig(t, dir, false).verify(t)
	want := "message " + strconv.Itoa(int(f.noExpect)) + " missing"
	if rep.Verified || rep.Problem == nil || rep.Problem.Seq != uint64(f.noExpect+1) || !strings.Contains(rep.Problem.Reason, want) {
		t.Fatalf("deleted message %d: %s", f.noExpect, rep.Summary)
	}
	t.Log(rep.Summary)
}

func TestVerifyTruncated(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), false)
	f := writeFixture(t, r)
	dir := stopAndCopy(t, r)
	// Cut the log back to before its last checkpoint's coverage ends.
	from := f.through - 1
	attack(t, dir, func(st jetstream.Stream) {
		for s := f.last; s >= from; s-- {
			if err := st.DeleteMsg(ctx, uint64(s)); err != nil {
				t.Fatal(err)
			}
		}
	})
	rep := startRig(t, dir, false).verify(t)
	if rep.Verified || rep.Problem == nil || rep.Problem.Seq != uint64(from) && rep.Problem.Seq != uint64(f.lastCP) {
		t.Fatalf("log truncated from %d (last checkpoint %d): %s", from, f.lastCP, rep.Summary)
	}
	t.Log(rep.Summary)
}

// readAll reads every stored message of r's log into memory.
func readAll(t *testing.T, r *rig) []bus.RawMsg {
	t.Helper()
	var all []bus.RawMsg
	err := r.log.ReadRaw(context.Background(), 1, bus.RawOptions{}, func(m bus.RawMsg) error {
		m.Data = append([]byte(nil), m.Data...)
		all = append(all, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestCheckerWithoutGaps checks the log as someone with the disk but not
// the key could leave it after deleting messages and renumbering the rest,
// so that no sequence is missing: the expectations, batch framing,
// checkpoints and the recorded head still name the place.
func TestCheckerWithoutGaps(t *testing.T) {
	r := startRig(t, t.TempDir(), false)
	f := writeFixture(t, r)
	all := readAll(t, r)
	head, err := ReadHead(filepath.Join(r.dir, HeadFile))
	if err != nil || head == nil {
		t.Fatalf("head: %v, %v", head, err)
	}
	// without drops the message at seq and renumbers the ones after it.
	without := func(seq events.Seq) []bus.RawMsg {
		var out []bus.RawMsg
		for _, m := range all {
			switch {
			case m.Seq < seq:
				out = append(out, m)
			case m.Seq > seq:
				m.Seq--
				out = append(out, m)
			}
		}
		return out
	}
	// replaced puts a copy of the message at src (sealed, valid anywhere
	// its expectation holds) in place of the one at seq.
	replaced := func(seq, src events.Seq) []bus.RawMsg {
		out := append([]bus.RawMsg(nil), all...)
		out[seq-1] = all[src-1]
		out[seq-1].Seq = seq
		return out
	}
	check := func(msgs []bus.RawMsg, head *Head) api.LogVerification {
		c := NewChecker(r.sealer, head)
		for _, m := range msgs {
			if c.Add(m) != nil {
				break
			}
		}
		c.Finish(msgs[len(msgs)-1].Seq)
		return c.Report()
	}
	for _, tc := range []struct {
		name   string
		msgs   []bus.RawMsg
		head   *Head
		seq    events.Seq // where the problem is named
		reason string
	}{
		{"a message a later expectation names", without(f.noExpect), nil, f.noExpect + 1, "message " + strconv.Itoa(int(f.noExpect)) + " deleted"},
		{"a message replaced by a replayed copy of another", replaced(f.tea+1, f.noExpect), nil, f.firstCP, "checkpoint committed to"},
		{"the middle of an atomic batch", without(f.batch + 1), nil, f.batch + 1, "message 2 onwards is missing"},
		{"the last message before a checkpoint", without(f.lastCP - 1), nil, f.lastCP - 1, "checkpoint"},
		{"the tail, from before the last checkpoint", all[:f.through-2], head, f.lastCP, "does not hold the checkpoint recorded beside it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := check(tc.msgs, tc.head)
			if rep.Verified || rep.Problem == nil || rep.Problem.Seq != uint64(tc.seq) || !strings.Contains(rep.Problem.Reason, tc.reason) {
				t.Fatalf("want a problem at %d (%q): %s", tc.seq, tc.reason, rep.Summary)
			}
			t.Log(rep.Summary)
		})
	}
	// What it cannot see: the same truncation without the head file (lost,
	// or rolled back with the log) verifies.
	if rep := check(all[:f.through-2], nil); !rep.Verified {
		t.Fatalf("truncated without a head: %s", rep.Summary)
	}
	if rep := check(all, head); !rep.Verified {
		t.Fatalf("the whole log, in memory: %s", rep.Summary)
	}
}

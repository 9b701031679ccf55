package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
)

// Checker checks a log's messages, fed to it in log order (Add), and then
// the log's end (Finish). It stops at the first problem. It is not safe
// for concurrent use.
type Checker struct {
	sealer *bus.Sealer
	head   *Head
	r      api.LogVerification

	prev     events.Seq            // the last sequence added
	last     map[string]events.Seq // last sequence by aggregate and by kind subject prefix
	aggs     int
	batch    openBatch
	chain    chain
	hist     []chain // the chain after each sealed message since the last checkpoint checked
	base     chain   // the chain before hist[0]
	headSeen bool
}

type openBatch struct {
	id    string
	next  int
	start events.Seq
}

// NewChecker returns a checker for a log sealed with sealer. head, when not
// nil, is the last checkpoint recorded beside the log (ReadHead), which the
// log must still hold.
func NewChecker(sealer *bus.Sealer, head *Head) *Checker {
	return &Checker{sealer: sealer, head: head, last: map[string]events.Seq{},
		r: api.LogVerification{KeyID: sealer.KeyID()}}
}

// errStop ends a read at the first problem.
var errStop = errors.New("stop")

func (c *Checker) fail(m bus.RawMsg, format string, args ...any) error {
	c.r.Problem = &api.LogProblem{Seq: uint64(m.Seq), Subject: m.Subject, Reason: fmt.Sprintf(format, args...)}
	return errStop
}

// Add checks the next message of the log. A non-nil result means a problem
// was found (Report names it); later messages are not checked.
func (c *Checker) Add(m bus.RawMsg) error {
	if c.r.Problem != nil {
		return errStop
	}
	if m.Seq != c.prev+1 {
		if m.Seq <= c.prev {
			return c.fail(m, "sequence %d after %d: out of order", m.Seq, c.prev)
		}
		return c.fail(m, "%s missing before this message: deleted from the log (the stream denies deletes, so JetStream never leaves gaps)", span(c.prev+1, m.Seq-1))
	}
	c.prev = m.Seq
	c.r.Messages++
	c.r.LastSeq = uint64(m.Seq)
	seal := bus.Seal(m.Header)
	switch err := c.sealer.Check(m.Subject, m.Header, m.Data); {
	case errors.Is(err, bus.ErrUnsealed) && c.r.FirstSealed == 0:
		c.r.Unsealed++
	case errors.Is(err, bus.ErrUnsealed):
		return c.fail(m, "no seal, after sealing began at %d: not appended by engram (published onto the event subject around the server, or the seal header removed)", c.r.FirstSealed)
	case errors.Is(err, bus.ErrOtherKey):
		return c.fail(m, "%v: written by a server with another key, or forged", err)
	case err != nil:
		return c.fail(m, "%v: its subject, payload or placing headers were altered since it was written, or it is forged", err)
	default:
		if c.r.FirstSealed == 0 {
			c.r.FirstSealed = uint64(m.Seq)
		}
		c.r.Sealed++
	}
	es, ok := bus.ParseSubject(m.Subject)
	if !ok {
		if seal != "" {
			return c.fail(m, "not an event subject")
		}
		// An unsealed message of another layout, before sealing: counted only.
		c.chain.add(m.Seq, "")
		return nil
	}
	aggPrefix := m.Subject[:strings.LastIndexByte(m.Subject, '.')]
	kindPrefix := bus.KindFilter(es.Tenant, es.Aggregate.Kind)
	kindPrefix = kindPrefix[:len(kindPrefix)-2]
	// Expectations name an aggregate (or kind) under its tenant token, as
	// logs written before organizations had tokens of their own did, or
	// under any (bus.AnyTenant), as they are written now: both are kept.
	anyAgg := bus.AggregateFilter(bus.AnyTenant, es.Aggregate)
	anyAgg = anyAgg[:len(anyAgg)-2]
	anyKind := bus.KindFilter(bus.AnyTenant, es.Aggregate.Kind)
	anyKind = anyKind[:len(anyKind)-2]
	if seal != "" {
		if err := c.checkPlace(m, seal); err != nil {
			return err
		}
	}
	if _, seen := c.last[anyAgg]; !seen {
		c.aggs++
	}
	c.last[aggPrefix] = m.Seq
	c.last[kindPrefix] = m.Seq
	c.last[anyAgg] = m.Seq
	c.last[anyKind] = m.Seq
	c.chain.add(m.Seq, seal)
	if seal != "" {
		c.hist = append(c.hist, c.chain)
		if es.Aggregate == events.Checkpoints && es.Type == events.TypeLogCheckpointed {
			if err := c.checkpoint(m); err != nil {
				return err
			}
		}
	}
	if c.head != nil && m.Seq == c.head.Checkpoint {
		if !(es.Aggregate == events.Checkpoints && es.Type == events.TypeLogCheckpointed && seal != "") {
			return c.fail(m, "the checkpoint recorded beside the log (%s) is at %d, but this message is not a sealed checkpoint", HeadFile, m.Seq)
		}
		c.headSeen = true
	}
	return nil
}

// checkPlace checks a sealed message's expectation and batch headers
// against the log before it.
func (c *Checker) checkPlace(m bus.RawMsg, seal string) error {
	h := bus.ReadSealHeaders(m.Header)
	if h.ExpectSubject != "" {
		want, err := strconv.ParseUint(h.ExpectSeq, 10, 64)
		if err != nil || !strings.HasSuffix(h.ExpectSubject, ".>") {
			return c.fail(m, "unreadable expectation %q on %q", h.ExpectSeq, h.ExpectSubject)
		}
		got := c.last[strings.TrimSuffix(h.ExpectSubject, ".>")]
		if uint64(got) != want {
			switch {
			case want == 0:
				return c.fail(m, "was written when %s held no message, but the log has one at %d before it: inserted", h.ExpectSubject, got)
			case got == 0:
				return c.fail(m, "was written after message %d of %s, which the log no longer holds: deleted", want, h.ExpectSubject)
			case uint64(got) < want:
				return c.fail(m, "was written after message %d of %s, but the last one before it is %d: message %d deleted", want, h.ExpectSubject, got, want)
			default:
				return c.fail(m, "was written after message %d of %s, but the log has %d after that: inserted, or moved", want, h.ExpectSubject, got)
			}
		}
	}
	if c.batch.id != "" {
		if h.BatchID != c.batch.id || h.BatchSeq != strconv.Itoa(c.batch.next) {
			return c.fail(m, "atomic batch %s (from %d) ends at %d without its commit: its message %d onwards is missing", c.batch.id, c.batch.start, m.Seq-1, c.batch.next)
		}
		c.batch.next++
		if h.BatchCommit {
			c.batch = openBatch{}
		}
		return nil
	}
	if h.BatchID != "" {
		if h.BatchSeq != "1" {
			return c.fail(m, "is message %s of atomic batch %s, whose earlier messages are missing", h.BatchSeq, h.BatchID)
		}
		if !h.BatchCommit {
			c.batch = openBatch{id: h.BatchID, next: 2, start: m.Seq}
		}
	}
	return nil
}

// checkpoint checks a sealed checkpoint against the chain recomputed here.
func (c *Checker) checkpoint(m bus.RawMsg) error {
	env, err := events.Decode(m.Data)
	if err != nil {
		return c.fail(m, "sealed checkpoint does not decode: %v", err)
	}
	cp, ok := env.Event.(*events.LogCheckpointed)
	if !ok {
		return c.fail(m, "sealed checkpoint holds a %s", env.Type)
	}
	if cp.Through >= m.Seq || cp.Through < c.base.seq {
		return c.fail(m, "checkpoint covers through %d, outside the messages since the last checkpoint (%d–%d)", cp.Through, c.base.seq, m.Seq-1)
	}
	// The chain as of cp.Through: the last point at or before it.
	i := sort.Search(len(c.hist), func(i int) bool { return c.hist[i].seq > cp.Through })
	at := c.base
	if i > 0 {
		at = c.hist[i-1]
	}
	if at.n != cp.Sealed || at.digest() != cp.Digest {
		return c.fail(m, "checkpoint committed to %d sealed messages through %d, but the log holds %d sealed messages there, with another digest: a sealed message at or before %d was deleted, inserted or moved after the checkpoint was written", cp.Sealed, cp.Through, at.n, cp.Through)
	}
	c.base = at
	c.hist = c.hist[:copy(c.hist, c.hist[i:])]
	c.r.Checkpoints++
	c.r.LastCheckpoint, c.r.CheckpointThrough = uint64(m.Seq), uint64(cp.Through)
	return nil
}

// Finish checks the end of the log: last is the last sequence JetStream
// reports for the stream.
func (c *Checker) Finish(last events.Seq) {
	if c.r.Problem != nil {
		return
	}
	end := bus.RawMsg{Seq: c.prev}
	switch {
	case c.batch.id != "":
		c.fail(end, "atomic batch %s (from %d) ends the log without its commit: its message %d onwards is missing", c.batch.id, c.batch.start, c.batch.next)
	case last > c.prev:
		c.fail(bus.RawMsg{Seq: c.prev + 1}, "%s missing at the end of the log: the log's tail was deleted", span(c.prev+1, last))
	case c.head != nil && !c.headSeen:
		c.fail(bus.RawMsg{Seq: c.head.Checkpoint}, "the log does not hold the checkpoint recorded beside it (%s: at %d, through %d): the log was truncated or rolled back", HeadFile, c.head.Checkpoint, c.head.Through)
	}
}

// Report returns what was found.
func (c *Checker) Report() api.LogVerification {
	r := c.r
	r.Aggregates = c.aggs
	r.Verified = r.Problem == nil
	r.Uncovered = c.chain.n - c.base.n
	if r.Checkpoints == 0 {
		r.Uncovered = c.chain.n
	}
	switch {
	case r.Problem != nil:
		r.Summary = fmt.Sprintf("FAILED at %d: %s", r.Problem.Seq, r.Problem.Reason)
		if r.Problem.Subject != "" {
			r.Summary = fmt.Sprintf("FAILED at %d (%s): %s", r.Problem.Seq, r.Problem.Subject, r.Problem.Reason)
		}
	default:
		r.Summary = fmt.Sprintf("verified %d messages (%d sealed", r.Messages, r.Sealed)
		if r.Unsealed > 0 {
			r.Summary += fmt.Sprintf(", %d unsealed: written before sealing began", r.Unsealed)
		}
		r.Summary += fmt.Sprintf("), %d aggregates", r.Aggregates)
		if r.Checkpoints > 0 {
			r.Summary += fmt.Sprintf(", last checkpoint at %d (through %d); %d sealed after it", r.LastCheckpoint, r.CheckpointThrough, r.Uncovered)
		} else {
			r.Summary += ", no checkpoint yet"
		}
	}
	return r
}

func span(a, b events.Seq) string {
	if a == b {
		return fmt.Sprintf("message %d", a)
	}
	return fmt.Sprintf("messages %d–%d", a, b)
}

// Log walks the whole log l, checking every message with sealer (and the
// recorded head, when not nil), and reports. An error is an I/O failure;
// a log that fails verification is a report with Verified false.
func Log(ctx context.Context, l *bus.Log, sealer *bus.Sealer, head *Head) (api.LogVerification, error) {
	c := NewChecker(sealer, head)
	_, last, _, err := l.Bounds(ctx)
	if err != nil {
		return api.LogVerification{}, fmt.Errorf("verify: %w", err)
	}
	err = l.ReadRaw(ctx, 1, bus.RawOptions{}, c.Add)
	if err != nil && !errors.Is(err, errStop) {
		return api.LogVerification{}, fmt.Errorf("verify: %w", err)
	}
	c.Finish(last)
	return c.Report(), nil
}

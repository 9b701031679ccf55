package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// Log is the event log on a JetStream stream. It is safe for concurrent use.
type Log struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	snaps  jetstream.ObjectStore
	files  jetstream.ObjectStore
	tenant string
	sealer *Sealer // nil: messages are appended unsealed
	// clustered: the stream has replicas, and a direct get may be answered
	// by one that lags (see getMsg).
	clustered bool
	// sync and fileSync, with group commit (durable.go), track and sync
	// the files of the event stream and of the file bucket; nil otherwise.
	sync, fileSync *durable
	// taps and tapsCur: who is told of each append as it is stored (tap.go).
	taps    tapFns
	tapsCur atomic.Pointer[[]*tapFn]
}

// LogConfig configures the event stream.
type LogConfig struct {
	Tenant   string // subject tenant token; "" means DefaultTenant
	Replicas int    // stream replicas; 0 means 1
	// Sealer, when set, seals every appended message (see seal.go); nil
	// appends without seals, as logs were written before sealing.
	Sealer *Sealer
	// BeforeSync, when set, is called before each fsync round of the event
	// stream under group commit (durable.go). It exists for fault-injection
	// tests (holding the disk back); leave it nil.
	BeforeSync func()
}

// Dedup window for Nats-Msg-Id: longer than any client's retry horizon.
const dedupWindow = 10 * time.Minute

// OpenLog creates the event stream and the object store buckets, or adopts
// them when they exist (a node joining a cluster, a restart), updating a
// stream made by an older engram in place. A stream or bucket whose
// replicas differ from cfg.Replicas is refused: changing them is an
// operator's decision, not a side effect of one node's flags. In a cluster
// JetStream may be briefly unavailable (elections, members still joining);
// OpenLog retries (see retry).
func OpenLog(ctx context.Context, s *Server, cfg LogConfig) (*Log, error) {
	if cfg.Tenant == "" {
		cfg.Tenant = DefaultTenant
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas > 1 && !s.clustered {
		return nil, fmt.Errorf("open log: %d replicas need a cluster; a single node keeps 1", cfg.Replicas)
	}
	want := jetstream.StreamConfig{
		Name:               StreamName,
		Description:        "engram event log (append-only audit trail)",
		Subjects:           []string{streamSubjects},
		Storage:            jetstream.FileStorage,
		Replicas:           cfg.Replicas,
		Retention:          jetstream.LimitsPolicy,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Duplicates:         dedupWindow,
		MaxMsgSize:         1 << 20,
	}
	var st jetstream.Stream
	err := retry(ctx, func(ctx context.Context) (err error) {
		st, err = ensureStream(ctx, s.js, want)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open log: stream %s: %w", StreamName, err)
	}
	buckets := []jetstream.ObjectStoreConfig{
		{Bucket: SnapshotBucket, Description: "projection snapshots (rebuildable from the event log)"},
		{Bucket: FileBucket, Description: "bytes of files loaded into sources (events hold the name and digest)"},
	}
	stores := make([]jetstream.ObjectStore, len(buckets))
	for i, b := range buckets {
		b.Storage, b.Replicas = jetstream.FileStorage, cfg.Replicas
		err := retry(ctx, func(ctx context.Context) (err error) {
			stores[i], err = ensureBucket(ctx, s.js, b)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("open log: bucket %s: %w", b.Bucket, err)
		}
	}
	l := &Log{nc: s.conn, js: s.js, stream: st, snaps: stores[0], files: stores[1], tenant: cfg.Tenant, sealer: cfg.Sealer, clustered: s.clustered}
	if s.groupCommit {
		last, err := l.LastSeq(ctx)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		if l.sync, err = openDurable(s.storeDir, StreamName, uint64(last)); err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		l.sync.before = cfg.BeforeSync
		if l.fileSync, err = openDurable(s.storeDir, "OBJ_"+FileBucket, 0); err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
	}
	return l, nil
}

// ReplicasError says that a stream or bucket exists with other replicas
// than this node is configured for.
type ReplicasError struct {
	Name      string // stream name
	Have, Set int    // the stream's replicas, and this node's setting
}

func (e *ReplicasError) Error() string {
	return fmt.Sprintf("stream %s has %d replicas but this node is configured for %d: start it with --replicas %d, "+
		"or change the stream deliberately (nats stream edit %s --replicas %d) and restart every node with the new setting",
		e.Name, e.Have, e.Set, e.Have, e.Name, e.Set)
}

// ensureStream adopts the stream when it exists and creates it otherwise.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return js.Stream(ctx, want.Name) // another member created it first
		}
		return st, err
	}
	if err != nil {
		return nil, err
	}
	have := st.CachedInfo().Config
	if have.Replicas != want.Replicas {
		return nil, &ReplicasError{Name: want.Name, Have: have.Replicas, Set: want.Replicas}
	}
	if streamDiffers(have, want) {
		// A stream made by an older engram: bring it up to this one's settings.
		return js.UpdateStream(ctx, want)
	}
	return st, nil
}

// streamDiffers reports whether the settings engram chooses differ.
func streamDiffers(have, want jetstream.StreamConfig) bool {
	return have.Description != want.Description || !slices.Equal(have.Subjects, want.Subjects) ||
		have.DenyDelete != want.DenyDelete || have.DenyPurge != want.DenyPurge ||
		have.AllowDirect != want.AllowDirect || have.AllowAtomicPublish != want.AllowAtomicPublish ||
		have.Duplicates != want.Duplicates || have.MaxMsgSize != want.MaxMsgSize
}

// ensureBucket adopts the object store when it exists and creates it
// otherwise.
func ensureBucket(ctx context.Context, js jetstream.JetStream, want jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	obj, err := js.ObjectStore(ctx, want.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obj, err = js.CreateObjectStore(ctx, want)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return js.ObjectStore(ctx, want.Bucket)
		}
		return obj, err
	}
	if err != nil {
		return nil, err
	}
	st, err := obj.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Replicas() != want.Replicas {
		return nil, &ReplicasError{Name: "OBJ_" + want.Bucket, Have: st.Replicas(), Set: want.Replicas}
	}
	return obj, nil
}

// retry calls fn until it succeeds, fails for good, or ctx ends (or
// DefaultClusterWait passes, when ctx has no deadline). JetStream answers
// "temporarily unavailable", "insufficient resources" or nothing at all
// while a cluster elects leaders or members are still joining.
func retry(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultClusterWait)
		defer cancel()
	}
	backoff := 50 * time.Millisecond
	for {
		// Each attempt gets its own bound: a request JetStream drops (to a
		// stream or consumer whose leader is not elected yet) is never
		// answered, and waiting for it would use up all of ctx.
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("%w (gave up waiting: %v)", err, ctx.Err())
			}
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up waiting: %v)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// transient reports whether a JetStream API error may go away by itself in
// a cluster.
func transient(err error) bool {
	var re *ReplicasError
	if errors.As(err, &re) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case errCodeClusterNotAvail, errCodeInsufficientResources, errCodeNoPeers, jetstream.JSErrCodeJetStreamNotEnabled:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// attemptTimeout bounds one attempt of a JetStream API call in retry.
const attemptTimeout = 5 * time.Second

// JetStream error codes nats.go declares no constant for: no meta leader
// yet, and not enough members up yet to place a replicated stream.
const (
	errCodeClusterNotAvail       = 10008
	errCodeInsufficientResources = 10023
	errCodeNoPeers               = 10005
)

// errCodeBatchDuplicate is JetStream's "atomic batch already committed"
// (nats.go declares no constant for it); with the wrong-last-sequence codes
// an append treats it as "someone else wrote first".
const errCodeBatchDuplicate = 10201

// errCodeMsgIDInProcess is "duplicate message id is in process": on a
// replicated stream, a message with this Nats-Msg-Id is being stored.
const errCodeMsgIDInProcess = 10158

type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
}

// Append writes a batch atomically and returns the sequence of its last event.
//
// Three things can happen: the batch is stored whole and its last sequence
// returned; an expectation fails and the result is a *ConflictError (nothing
// stored); or the command was already appended (a retry with the same
// Command), in which case the sequence of the earlier append's last event is
// returned and nothing new is stored. Other errors are I/O failures.
func (l *Log) Append(ctx context.Context, b events.Batch) (events.Seq, error) {
	if len(b.Events) == 0 {
		return 0, errors.New("append: empty batch")
	}
	if b.Command == "" {
		return 0, errors.New("append: batch has no command id")
	}
	msgs, carried, packed, err := l.pack(b)
	if err != nil {
		return 0, fmt.Errorf("append %s: %w", b.Command, err)
	}
	expect := b.Expect
	if packed {
		expect = carried
	}
	if !packed {
		msgs = make([]*nats.Msg, len(b.Events))
		for i, env := range b.Events {
			env.Command = b.Command
			data, err := events.Encode(env)
			if err != nil {
				return 0, fmt.Errorf("append %s: %w", b.Command, err)
			}
			m := nats.NewMsg(Subject(l.tenantOf(b, env.Aggregate), env.Aggregate, env.Event.EventType()))
			m.Data = data
			m.Header.Set(hdrCommand, b.Command)
			if i == 0 {
				// The JetStream duplicate window catches a retried command even
				// when no expectation does; one id per batch suffices.
				m.Header.Set(hdrMsgID, b.Command)
			}
			msgs[i] = m
		}
	}
	for _, x := range expect {
		i := 0
		if !packed {
			i = l.carrier(b.Events, x)
		} else if l.carrier(b.Events, x) < 0 {
			i = -1
		}
		if i < 0 {
			return 0, fmt.Errorf("append %s: expectation on %s matches no event", b.Command, x.Aggregate)
		}
		if msgs[i].Header.Get(hdrExpectSubj) != "" {
			return 0, fmt.Errorf("append %s: two expectations on event %d", b.Command, i)
		}
		msgs[i].Header.Set(hdrExpectSeq, strconv.FormatUint(uint64(x.Version), 10))
		msgs[i].Header.Set(hdrExpectSubj, l.filter(x))
	}
	// Tamper evidence: the seal covers the headers set above (seal.go).
	l.sealAll(msgs)
	ack, err := l.publishPatiently(ctx, msgs)
	if err != nil {
		return 0, fmt.Errorf("append %s: %w", b.Command, err)
	}
	if ack.Error == nil {
		if b.Ahead {
			// The caller waits for the disk (Durable); its message goes to
			// the follower now, before those it wakes need it.
			if !ack.Duplicate {
				stored := l.storedOf(ack.Seq, msgs)
				l.tell(stored, true)
				l.tell(stored, false)
			}
			return events.Seq(ack.Seq), nil
		}
		var stored []Stored // nil for a duplicate: nothing new was stored
		if !ack.Duplicate {
			stored = l.storedOf(ack.Seq, msgs)
			l.tell(stored, false)
		}
		// A duplicate (a retry inside the dedup window) names the original,
		// which may still be on its way to the disk too. The fsync starts
		// first, on this goroutine; meanwhile the follower's consumer
		// brings the message, and what it has not brought yet the tap
		// hands on after.
		if err := l.sync.wait(ctx, ack.Seq); err != nil {
			return 0, fmt.Errorf("append %s: %w", b.Command, err)
		}
		l.tell(stored, true)
		return events.Seq(ack.Seq), nil
	}
	switch ack.Error.ErrCode {
	case int(jetstream.JSErrCodeStreamWrongLastSequence), int(jetstream.JSErrCodeStreamWrongLastSequenceConstant), errCodeBatchDuplicate:
		x := events.Expectation{Aggregate: b.Events[0].Aggregate}
		if len(expect) > 0 {
			x = expect[0]
		}
		seq, err := l.resolveConflict(ctx, b.Command, x)
		if err == nil && !b.Ahead {
			err = l.sync.wait(ctx, uint64(seq))
		}
		return seq, err
	}
	return 0, fmt.Errorf("append %s: jetstream error %d: %s", b.Command, ack.Error.ErrCode, ack.Error.Description)
}

// maxPacked bounds a packed message, well under the stream's MaxMsgSize; a
// bigger command is appended as an atomic batch of one message per event.
const maxPacked = 512 << 10

// pack returns the command as one packed message when that keeps its
// meaning, with the expectations that message carries: several events, all
// of one aggregate (the first event's: the host) or of aggregates the
// command creates (b.Fresh, expected at version 0, whose events the message
// hosts: events.EncodeHosted), at most one expectation left once those of
// the hosted aggregates are dropped, carried by the host, and no event that
// a consumer selects by its subject's type token (agent inputs, which the
// partition consumers filter on). One message needs no atomic batch, which
// on a single-replica stream costs the server a temporary file store per
// batch (see the reference notes on JetStream).
//
// A hosted aggregate's expectation can be dropped because its id is the
// command's own: only this command, or a retry of it, writes there, and a
// retry is caught by the message id and the host's expectation. Its later
// commands expect the version its own subject holds, which its hosted
// events do not move (projections skip them: events.Envelope.Hosted).
func (l *Log) pack(b events.Batch) ([]*nats.Msg, []events.Expectation, bool, error) {
	if len(b.Events) < 2 {
		return nil, nil, false, nil
	}
	host := b.Events[0].Aggregate
	hosted := false
	envs := make([]events.Envelope, len(b.Events))
	for i, env := range b.Events {
		if env.Event == nil || env.Event.EventType() == events.TypeMessageReceived {
			return nil, nil, false, nil
		}
		if env.Aggregate != host {
			if !slices.Contains(b.Fresh, env.Aggregate) {
				return nil, nil, false, nil
			}
			hosted = true
		}
		env.Command = b.Command
		envs[i] = env
	}
	var carried []events.Expectation
	for _, x := range b.Expect {
		if !x.WholeKind && x.Aggregate != host && slices.Contains(b.Fresh, x.Aggregate) {
			if x.Version != 0 {
				return nil, nil, false, nil
			}
			continue
		}
		if x.Aggregate != host && !(x.WholeKind && x.Aggregate.Kind == host.Kind) {
			return nil, nil, false, nil // the host cannot carry it
		}
		carried = append(carried, x)
	}
	if len(carried) > 1 {
		return nil, nil, false, nil
	}
	encode := events.EncodePacked
	if hosted {
		encode = events.EncodeHosted
	}
	data, err := encode(envs)
	if err != nil {
		return nil, nil, false, err
	}
	if len(data) > maxPacked {
		return nil, nil, false, nil
	}
	m := nats.NewMsg(Subject(l.tenantOf(b, host), host, events.SubjectPacked))
	m.Data = data
	m.Header.Set(hdrCommand, b.Command)
	m.Header.Set(hdrMsgID, b.Command)
	return []*nats.Msg{m}, carried, true, nil
}

// carrier picks the event that carries expectation x: the first event of
// that aggregate (or kind).
func (l *Log) carrier(evs []events.Envelope, x events.Expectation) int {
	for i, env := range evs {
		if env.Aggregate.Kind != x.Aggregate.Kind {
			continue
		}
		if x.WholeKind || env.Aggregate.ID == x.Aggregate.ID {
			return i
		}
	}
	return -1
}

// filter is the subject filter of an expectation. It matches the
// aggregate (or kind) under every tenant token: an aggregate's events are
// under its organization's token, and those of an organization's aggregate
// written before organizations had tokens of their own are under the log's
// default one.
func (l *Log) filter(x events.Expectation) string {
	if x.WholeKind {
		return KindFilter(AnyTenant, x.Aggregate.Kind)
	}
	return AggregateFilter(AnyTenant, x.Aggregate)
}

// tenantOf is the tenant token aggregate a's events of batch b are stored
// under.
func (l *Log) tenantOf(b events.Batch, a events.Aggregate) string {
	if t := b.Tenants[a]; t != "" {
		return t
	}
	return l.tenant
}

// resolveConflict decides whether a rejected batch was in fact already
// stored (a retried command) or lost a race (a conflict).
func (l *Log) resolveConflict(ctx context.Context, command string, x events.Expectation) (events.Seq, error) {
	// From the leader: a direct get may be answered by a replica that has
	// not stored the batch that made this one conflict yet.
	last, err := l.patiently(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return l.leaderGet(ctx, msgGetRequest{LastFor: l.filter(x)})
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, &events.ConflictError{Aggregate: x.Aggregate}
		}
		return 0, fmt.Errorf("append %s: read last of %s: %w", command, x.Aggregate, err)
	}
	if last.Header.Get(hdrCommand) == command {
		return events.Seq(last.Sequence), nil
	}
	return 0, &events.ConflictError{Aggregate: x.Aggregate, Latest: events.Seq(last.Sequence)}
}

// An append waits for the stream to take it through a leader election
// (4-9 s after a stream leader dies) but not for ever; each attempt is
// bounded, because a publish that reaches a replica with no leader is
// dropped unanswered.
const (
	appendWait     = 20 * time.Second
	publishAttempt = 5 * time.Second
)

// publishPatiently publishes msgs until JetStream answers, re-sending when
// an attempt goes unanswered or is refused for the moment. Re-sending is
// safe: the first message carries the command's Nats-Msg-Id, so a copy that
// was stored after all is a duplicate, or a conflict that resolveConflict
// recognises as this command's.
func (l *Log) publishPatiently(ctx context.Context, msgs []*nats.Msg) (*pubAck, error) {
	deadline := time.Now().Add(appendWait)
	wait := 10 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, publishAttempt)
		ack, err := l.publish(actx, msgs)
		cancel()
		again := false
		switch {
		case err == nil:
			// Replicated, a copy of this command still being stored
			// elsewhere (two nodes running one idempotent command) is "in
			// process"; a stream with no leader is "temporarily unavailable".
			again = ack.Error != nil && (ack.Error.ErrCode == errCodeMsgIDInProcess || ack.Error.ErrCode == errCodeClusterNotAvail)
		case ctx.Err() == nil:
			again = errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
		}
		if !again || time.Now().After(deadline) {
			if err == nil && again {
				err = fmt.Errorf("jetstream error %d: %s (still, after %s)", ack.Error.ErrCode, ack.Error.Description, appendWait)
			} else if err != nil && again {
				err = fmt.Errorf("no stream leader answered in %s: %w", appendWait, err)
			}
			return ack, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// msgGetRequest is JetStream's STREAM.MSG.GET request: the message at Seq,
// the first at or after Seq on NextFor, or the last on LastFor.
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
}

// readAttempt bounds one attempt of a read in getMsg: a request that
// reaches a stream with no leader is dropped unanswered.
const readAttempt = 2 * time.Second

// getMsg reads a message with a direct get, which any replica may answer.
// In a cluster a replica that lags may not have it yet (JetStream promises
// no read-after-write on direct gets); "not found" is then asked of the
// stream's leader, which has every acknowledged message. A read that finds
// no leader (one died, the others elect another) is tried again, as an
// append is, for up to appendWait: a write that was stored must not be
// answered 503 because reading it back met the election.
func (l *Log) getMsg(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	if !l.clustered {
		return l.getMsgOnce(ctx, req)
	}
	return l.patiently(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return l.getMsgOnce(ctx, req) })
}

// patiently runs a read of the log, each attempt bounded by readAttempt,
// again while it fails for want of a leader, for up to appendWait. A
// request to the stream's leader is dropped unanswered when there is
// none: unbounded, it would wait as long as its caller (a write's HTTP
// request, and a shutdown waiting for that).
func (l *Log) patiently(ctx context.Context, get func(context.Context) (*jetstream.RawStreamMsg, error)) (*jetstream.RawStreamMsg, error) {
	deadline := time.Now().Add(appendWait)
	wait := 10 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, readAttempt)
		m, err := get(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !leaderless(err) || time.Now().After(deadline) {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// leaderless says whether a JetStream request's error is one that a stream
// or meta leader election gives: no answer, no responders, or "cluster
// not available"/503.
func leaderless(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.Code == 503 || api.ErrorCode == errCodeClusterNotAvail)
}

// getMsgOnce is one attempt of getMsg.
func (l *Log) getMsgOnce(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	var opts []jetstream.GetMsgOpt
	if req.NextFor != "" {
		opts = append(opts, jetstream.WithGetMsgSubject(req.NextFor))
	}
	var (
		m   *jetstream.RawStreamMsg
		err error
	)
	if req.LastFor != "" {
		m, err = l.stream.GetLastMsgForSubject(ctx, req.LastFor)
	} else {
		m, err = l.stream.GetMsg(ctx, req.Seq, opts...)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) && l.clustered {
		return l.leaderGet(ctx, req)
	}
	return m, err
}

// leaderGet reads a message from the stream's leader (STREAM.MSG.GET, not
// the direct get that any replica answers).
func (l *Log) leaderGet(ctx context.Context, req msgGetRequest) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := l.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+StreamName, body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs,omitempty"`
			Data    []byte    `json:"data,omitempty"`
			Time    time.Time `json:"time"`
		} `json:"message,omitempty"`
		Error *jetstream.APIError `json:"error,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("bad message get reply %q: %w", resp.Data, err)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, r.Error
	}
	if r.Message == nil {
		return nil, fmt.Errorf("bad message get reply %q", resp.Data)
	}
	m := &jetstream.RawStreamMsg{Subject: r.Message.Subject, Sequence: r.Message.Seq, Data: r.Message.Data, Time: r.Message.Time}
	if len(r.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(r.Message.Header); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// publish sends one message, or an atomic batch, and returns the ack.
func (l *Log) publish(ctx context.Context, msgs []*nats.Msg) (*pubAck, error) {
	if len(msgs) > 1 {
		if msgs[0].Header.Get(hdrBatchID) == "" {
			frameBatch(msgs)
		}
		for _, m := range msgs[:len(msgs)-1] {
			if err := l.nc.PublishMsg(m); err != nil {
				return nil, err
			}
		}
	}
	resp, err := l.nc.RequestMsgWithContext(ctx, msgs[len(msgs)-1])
	if err != nil {
		return nil, err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("bad publish ack %q: %w", resp.Data, err)
	}
	return &ack, nil
}

// frameBatch sets the atomic-batch headers on msgs: one new batch id, each
// message's place in it, the commit on the last.
func frameBatch(msgs []*nats.Msg) {
	id := nats.NewInbox()[len(nats.InboxPrefix):]
	if len(id) > 64 {
		id = id[:64]
	}
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
	}
	msgs[len(msgs)-1].Header.Set(hdrBatchCommit, "1")
}

// Load reads the event stored at seq and, when the message there is packed,
// at index part in it (0 for a message of one event).
func (l *Log) Load(ctx context.Context, seq events.Seq, part int) (events.Envelope, error) {
	m, err := l.getMsg(ctx, msgGetRequest{Seq: uint64(seq)})
	if err != nil {
		return events.Envelope{}, fmt.Errorf("load %d: %w", seq, err)
	}
	if part < 0 {
		return events.Envelope{}, fmt.Errorf("load %d: no event %d", seq, part)
	}
	env, err := events.DecodePart(m.Data, part)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("load %d: %w", seq, err)
	}
	env.Seq = seq
	return env, nil
}

// LoadAll reads every event of the message at seq: one, or all of a packed
// message, each with its Part.
func (l *Log) LoadAll(ctx context.Context, seq events.Seq) ([]events.Envelope, error) {
	m, err := l.getMsg(ctx, msgGetRequest{Seq: uint64(seq)})
	if err != nil {
		return nil, fmt.Errorf("load %d: %w", seq, err)
	}
	envs, err := events.DecodeAll(m.Data)
	if err != nil {
		return nil, fmt.Errorf("load %d: %w", seq, err)
	}
	for i := range envs {
		envs[i].Seq = seq
	}
	return envs, nil
}

// LastSeq returns the sequence of the last event in the log (0 when empty).
func (l *Log) LastSeq(ctx context.Context) (events.Seq, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("log info: %w", err)
	}
	return events.Seq(info.State.LastSeq), nil
}

// Stats is the size of the log's stream.
type Stats struct {
	Stream   string
	Messages uint64
	Bytes    uint64
	LastSeq  events.Seq
}

// Stats reads the stream's size and last sequence from JetStream.
func (l *Log) Stats(ctx context.Context) (Stats, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("log info: %w", err)
	}
	return Stats{Stream: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes, LastSeq: events.Seq(info.State.LastSeq)}, nil
}

// followBytes bounds the bytes a follower asks the server for at once. A
// count bound alone let a follower of large events (25 passages with their
// vectors are ~100 kB) have hundreds of megabytes in flight; the server
// buffers them for the in-process connection, and past its 64 MiB pending
// limit it closes that connection as a slow consumer, failing the appends
// that share it. Several followers at this bound stay well under that
// limit, and one bound is more than the largest message (MaxMsgSize).
const followBytes = 8 << 20

// Follow delivers every event from sequence from onwards, in order, to fn,
// and keeps delivering new ones until ctx ends or fn returns an error. It
// returns ctx.Err() or fn's error.
// fn receives the raw bytes, which it must not keep; decoding is its job.
func (l *Log) Follow(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte) error) error {
	return l.ReadRaw(ctx, from, RawOptions{Follow: true}, func(m RawMsg) error { return fn(m.Seq, m.Data) })
}

// FollowPending is Follow that also tells fn how many messages the server
// holds ready after each one, so that a follower can decode a backlog in
// parallel and stop batching once it has caught up. fn may keep data: every
// message arrives in a buffer of its own (nats.go copies each payload).
//
// On a single node it reads what the log holds when it starts with batched
// direct gets, which deliver about twice as fast as an ordered consumer
// (BenchmarkReadMethods), and follows from there with an ordered consumer.
func (l *Log) FollowPending(ctx context.Context, from events.Seq, fn func(seq events.Seq, data []byte, pending uint64) error) error {
	return l.followPending(ctx, from, false, fn)
}

// followPending is FollowPending; ahead hands on messages before they are
// on disk (Log.Ahead).
func (l *Log) followPending(ctx context.Context, from events.Seq, ahead bool, fn func(seq events.Seq, data []byte, pending uint64) error) error {
	from, err := l.catchUp(ctx, from, ahead, fn)
	if err != nil {
		return err
	}
	return l.ReadRaw(ctx, from, RawOptions{Follow: true, Ahead: ahead}, func(m RawMsg) error { return fn(m.Seq, m.Data, m.Pending) })
}

// catchUp delivers, on a single node, what the log holds when it is called
// with batched direct gets, and returns the sequence to follow from.
func (l *Log) catchUp(ctx context.Context, from events.Seq, ahead bool, fn func(seq events.Seq, data []byte, pending uint64) error) (events.Seq, error) {
	if from < 1 {
		from = 1
	}
	if l.clustered {
		return from, nil
	}
	last, err := l.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if from > last {
		return from, nil
	}
	return l.readDirect(ctx, from, last, func(seq events.Seq, data []byte) error {
		if !ahead {
			if err := l.sync.wait(ctx, uint64(seq)); err != nil {
				return fmt.Errorf("read %d: %w", seq, err)
			}
		}
		return fn(seq, data, uint64(last-seq))
	})
}

// ErrNoSnapshot is returned by LoadSnapshot when none has been saved.
var ErrNoSnapshot = errors.New("no snapshot")

// SaveSnapshot stores data as the snapshot called name, taken at seq.
func (l *Log) SaveSnapshot(ctx context.Context, name string, seq events.Seq, data []byte) error {
	_, err := l.snaps.Put(ctx, jetstream.ObjectMeta{
		Name:     name,
		Metadata: map[string]string{"seq": strconv.FormatUint(uint64(seq), 10)},
	}, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("save snapshot %s at %d: %w", name, seq, err)
	}
	return nil
}

// LoadSnapshot returns the snapshot called name and the sequence it was taken at.
func (l *Log) LoadSnapshot(ctx context.Context, name string) (events.Seq, []byte, error) {
	info, seq, err := l.snapshotInfo(ctx, name)
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	data, err := l.readSnapshot(ctx, name, info.Size)
	if err != nil {
		return 0, nil, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	return seq, data, nil
}

// SnapshotInfo returns the sequence the snapshot called name was taken at
// and the digest of its bytes (as SnapshotDigest gives it), without reading
// them; ErrNoSnapshot when there is none.
func (l *Log) SnapshotInfo(ctx context.Context, name string) (events.Seq, string, error) {
	info, seq, err := l.snapshotInfo(ctx, name)
	if err != nil {
		return 0, "", fmt.Errorf("snapshot %s: %w", name, err)
	}
	return seq, info.Digest, nil
}

func (l *Log) snapshotInfo(ctx context.Context, name string) (*jetstream.ObjectInfo, events.Seq, error) {
	info, err := l.snaps.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, ErrNoSnapshot
	}
	if err != nil {
		return nil, 0, err
	}
	seq, err := strconv.ParseUint(info.Metadata["seq"], 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("bad seq %q", info.Metadata["seq"])
	}
	return info, events.Seq(seq), nil
}

// SnapshotDigest is the digest the snapshot store records of a snapshot of
// these bytes (SnapshotInfo): their SHA-256.
func SnapshotDigest(data []byte) string {
	h := sha256.New()
	h.Write(data)
	return jetstream.GetObjectDigestValue(h)
}

// readSnapshot reads the object called name, of size bytes as its info
// says, into one buffer of that size (ObjectStore.GetBytes grows one as it
// reads: copies of the whole snapshot, ~100 MB at a million events), then
// reads to the end, where the object's digest is checked.
func (l *Log) readSnapshot(ctx context.Context, name string, size uint64) ([]byte, error) {
	r, err := l.snaps.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > 1<<40 {
		return nil, fmt.Errorf("size %d", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	var more [1]byte
	if n, err := r.Read(more[:]); n > 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("longer than its info says")
		}
		return nil, err
	}
	return data, nil
}

// DeleteSnapshot removes the snapshot called name; none is not an error.
func (l *Log) DeleteSnapshot(ctx context.Context, name string) error {
	err := l.snaps.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete snapshot %s: %w", name, err)
	}
	return nil
}

// ErrNoFile is returned by GetFile when no object has the name.
var ErrNoFile = errors.New("no such file object")

// PutFile stores a file's bytes under name and returns their digest,
// "sha256:<hex>". Storing the same name again replaces the object.
func (l *Log) PutFile(ctx context.Context, name string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	_, err := l.files.Put(ctx, jetstream.ObjectMeta{
		Name:     name,
		Metadata: map[string]string{"digest": digest},
	}, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("store file %s: %w", name, err)
	}
	// The event that names the file will be on disk; so must its bytes.
	if err := l.fileSync.flush(); err != nil {
		return "", fmt.Errorf("store file %s: %w", name, err)
	}
	return digest, nil
}

// GetFile returns the bytes stored under name, checked against digest when
// digest is not empty.
func (l *Log) GetFile(ctx context.Context, name, digest string) ([]byte, error) {
	data, err := l.files.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ErrNoFile
	}
	if err != nil {
		return nil, fmt.Errorf("read file %s: %w", name, err)
	}
	if digest != "" {
		sum := sha256.Sum256(data)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
			return nil, fmt.Errorf("read file %s: digest %s, want %s", name, got, digest)
		}
	}
	return data, nil
}

// Tenant is the tenant token this log writes under.
func (l *Log) Tenant() string { return l.tenant }

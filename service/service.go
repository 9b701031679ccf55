// Package service is engram's command and query layer: it validates each
// client operation against the projections, decides the events it causes,
// appends them with optimistic concurrency, and answers reads from the
// projections once they hold the caller's own writes. The REST transport and
// the Local client both call it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/search"
)

// Log is the event log as the service uses it.
type Log interface {
	// Append stores a batch atomically and returns its last sequence. A stale
	// expectation is an error wrapping events.ErrConflict; a batch whose
	// command was already stored returns the earlier sequence.
	Append(ctx context.Context, b events.Batch) (events.Seq, error)
	// Load reads the event at seq, at index part of the message when it is
	// packed (0 otherwise).
	Load(ctx context.Context, seq events.Seq, part int) (events.Envelope, error)
	// LoadAll reads every event of the message at seq, in order.
	LoadAll(ctx context.Context, seq events.Seq) ([]events.Envelope, error)
	// Read delivers the events the selectors pick (a packed message of a
	// selector by type comes whole), stored at sequences from through to
	// (to 0: the last), in log order, until fn returns false or an error,
	// which Read returns.
	Read(ctx context.Context, sel []events.Selector, from, to events.Seq, fn func(events.Envelope) (bool, error)) error
}

// SchemaDeriver derives a tool's schema from Python source.
type SchemaDeriver interface {
	Derive(ctx context.Context, source string) (pytool.Derived, error)
}

// Config configures a Service. Zero values take the defaults noted.
type Config struct {
	Version         string               // reported by Health; "" means "dev"
	Models          []api.Model          // chat models clients may pick
	EmbeddingModels []api.EmbeddingModel // embedding models clients may pick
	DefaultModel    string               // handle used when an agent names none; "" = first of Models
	DefaultEmbed    string               // handle used when an agent or source names none; "" = first
	Clock           func() time.Time     // nil means time.Now
	MaxRetries      int                  // conflict retries per command; 0 means 25
	Providers       Providers            // chat models by handle; nil: agents cannot run
	Runs            RunBus               // carries runs' reports to waiting callers; nil: sends fail
	Files           FileStore            // keeps uploaded files; nil: sources cannot load files
	Ingest          Ingester             // splits files into passages; nil: sources cannot load files
	// Embed returns the embedder for an embedding config, or nil when its
	// model is not served (then passages are stored without vectors and
	// search is by words alone). A nil Embed serves none.
	Embed  func(api.EmbeddingConfig) Embedder
	Logger *slog.Logger // nil means slog.Default()
	Search Searcher     // the search index; nil: searches scan the log
	// Verifier checks the log's seals (VerifyLog); nil: the log cannot be
	// verified through this service.
	Verifier LogVerifier
	// Secrets seals agents' tool environment variables; nil: agents cannot
	// be given any.
	Secrets SecretBox
	// Bodies caches message events; fed by the log's follower (see Bodies)
	// it holds what was just stored. nil: a cache of its own, filled by
	// reads alone.
	Bodies *Bodies
}

// LogVerifier walks the whole log and checks that engram wrote every
// message as it stands (package verify). A log that fails is a report
// with Verified false; an error is an I/O failure.
type LogVerifier interface {
	VerifyLog(ctx context.Context) (api.LogVerification, error)
}

// Searcher is the search index as the service uses it.
type Searcher interface {
	// Search ranks or lists documents (see search.Query).
	Search(ctx context.Context, q search.Query) (search.Result, error)
	// WaitFor waits until the index holds the event at seq.
	WaitFor(ctx context.Context, seq events.Seq) error
}

// Providers finds the chat model behind a handle such as "openai/gpt-4o-mini".
type Providers interface {
	// Lookup returns the model and the provider's name for it, or an error
	// that says what to configure.
	Lookup(handle string) (agents.Model, string, error)
}

// Service implements every client operation. It is safe for concurrent use.
type Service struct {
	log    Log
	proj   *projections.Projection
	schema SchemaDeriver
	cfg    Config
	bodies *Bodies
	*shared
	// ahead: reads see the read models ahead of the disk (Ahead).
	ahead bool
}

// shared is what a Service and its Ahead view share.
type shared struct {
	conflicts atomic.Int64
	stop      chan struct{}  // closed by Close: background work stops
	stopOnce  sync.Once      // closes stop
	work      sync.WaitGroup // background work: file loads
	loading   sync.Map       // job id → true while the job runs here
	windows   windowCache    // the context windows steps read (StepContext)
}

// Ahead returns a view of the service whose reads see the read models as
// they are, events not yet on disk included (projections.ReadAhead), for
// an agent's runs (package runner), which start on an input while its
// fsync is under way and tell no one anything before it ends. Everything
// else about it is the service's own.
func (s *Service) Ahead() *Service {
	v := *s
	v.ahead = true
	return &v
}

// Close stops background work (a file load in progress resumes at the next
// start) and waits for it to end, or for ctx to end, and then says what did
// not stop.
func (s *Service) Close(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	done := make(chan struct{})
	go func() {
		s.work.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background work did not stop: %w", ctx.Err())
	}
}

// background returns a context for background work that Close cancels;
// call cancel when the work ends.
func (s *Service) background() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Conflicts counts appends that lost a race and were decided again.
func (s *Service) Conflicts() int64 { return s.conflicts.Load() }

// New returns a Service over a log and a projection that follows it.
func New(log Log, proj *projections.Projection, schema SchemaDeriver, cfg Config) *Service {
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 25
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bodies := cfg.Bodies
	if bodies == nil {
		bodies = NewBodies(0)
	}
	return &Service{log: log, proj: proj, schema: schema, cfg: cfg, bodies: bodies, shared: &shared{stop: make(chan struct{})}}
}

type ctxKey int

const (
	keyCommand ctxKey = iota
	keyActor
	keyDigest
)

// WithRequestDigest gives the command run under ctx a fingerprint of the
// request that carried its idempotency key, computed when the command
// starts. A key used again with another fingerprint is refused (422)
// rather than answered with the first request's result.
func WithRequestDigest(ctx context.Context, digest func() string) context.Context {
	return context.WithValue(ctx, keyDigest, digest)
}

// WithIdempotencyKey marks the command run under ctx with a client-chosen
// id: running it again with the same key has no further effect and returns
// the same result.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCommand, key)
}

// WithActor records who issues the commands run under ctx.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, keyActor, actor)
}

// command is one run of a command: its id and how it names new aggregates.
type command struct {
	id      string
	key     string // the client's idempotency key, if any
	digest  string // the keyed request's fingerprint, if known (WithRequestDigest)
	derived bool   // the id came from the client, so new ids derive from it
	actor   string
	org     string // the organization it runs as (WithOrganization); "" is the default one
	now     time.Time
	n       int // ids named so far in this attempt (newID); exec resets it
	// ahead: the command's append is acknowledged once stored, before it is
	// on disk (events.Batch.Ahead); the caller waits for the disk itself.
	ahead bool
}

// command starts a run of the operation op on target. A client key is
// scoped to both, so one key reused for another operation or another target
// names another command.
func (s *Service) command(ctx context.Context, op, target string) *command {
	c := &command{now: s.cfg.Clock().UTC()}
	c.org = orgOf(ctx)
	if k, ok := ctx.Value(keyCommand).(string); ok && k != "" {
		// A key is the organization's own: another's same key names
		// another command (and so other new ids).
		scope := "key:"
		if c.org != "" {
			scope += c.org + ":"
		}
		c.id, c.key, c.derived = scope+op+":"+target+":"+k, k, true
		if digest, ok := ctx.Value(keyDigest).(func() string); ok && digest != nil {
			c.digest = digest()
		}
	} else {
		c.id = events.NewID("cmd", c.now)
	}
	c.actor, _ = ctx.Value(keyActor).(string)
	return c
}

// stored is the command's id as the log stores it: with the request's
// fingerprint, when there is one, after an "@" (projections.Version.Done
// matches either form).
func (c *command) stored() string {
	if c.digest == "" {
		return c.id
	}
	return c.id + "@" + c.digest
}

// newID names the command's next new aggregate or message: the n-th call
// since the command began deciding (exec starts each attempt at the first)
// names the n-th. A keyed command's ids derive from its id and that ordinal,
// so its retries and concurrent copies name the same objects.
func (c *command) newID(prefix string) string {
	c.n++
	return c.idAt(prefix, c.n)
}

// idAt is the id a keyed command gives its ordinal-th new object (a fresh
// id for a command without a key).
func (c *command) idAt(prefix string, ordinal int) string {
	if c.derived {
		return events.DerivedID(prefix, fmt.Sprintf("%s#%d", c.id, ordinal))
	}
	return events.NewID(prefix, c.now)
}

// decision is what a command decided to append.
type decision struct {
	expect []events.Expectation
	evs    []events.Envelope
	fresh  []events.Aggregate // aggregates created under this command's own ids (events.Batch.Fresh)
}

func (d *decision) add(c *command, agg events.Aggregate, ev events.Event) {
	d.evs = append(d.evs, events.Envelope{Aggregate: agg, Command: c.stored(), Actor: c.actor, Time: c.now, Event: ev})
}

func (d *decision) expectAt(st *projections.State, agg events.Aggregate) {
	d.expect = append(d.expect, events.Expectation{Aggregate: agg, Version: st.VersionOf(agg).Seq})
}

func (d *decision) expectKind(st *projections.State, agg events.Aggregate) {
	d.expect = append(d.expect, events.Expectation{Aggregate: agg, WholeKind: true, Version: st.Kinds[agg.Kind]})
}

// errNothing is returned by a decide function that has nothing to append.
var errNothing = errors.New("nothing to do")

// exec runs a command: decide from current state, append, and on a conflict
// reload and decide again. primary is the aggregate the command is about; if
// it already holds this command (a retry), nothing is appended. On success
// the projection has applied the command's events when exec returns.
func (s *Service) exec(ctx context.Context, c *command, primary events.Aggregate, decide func(st *projections.State, d *decision) error) error {
	_, err := s.execAppend(ctx, c, primary, decide)
	return err
}

// execAppend is exec that also reports whether this call appended the
// command's events (false: they were there already, or decide had nothing
// to do).
func (s *Service) execAppend(ctx context.Context, c *command, primary events.Aggregate, decide func(st *projections.State, d *decision) error) (bool, error) {
	for attempt := 0; ; attempt++ {
		var (
			d    decision
			err  error
			done events.Seq
		)
		var (
			other bool       // the key was used with another request
			seen  events.Seq // what the decision read, maybe not yet on disk
		)
		// Decided ahead of the disk: an append is acknowledged once on disk,
		// with every write stored before it. An answer without an append
		// waits for what it read (settle).
		s.proj.ReadAhead(func(st *projections.State) {
			seen = st.Applied
			if seq, as, ok := st.VersionOf(primary).DoneAs(c.id); ok {
				done = seq
				_, digest, _ := strings.Cut(as, "@")
				other = c.digest != "" && digest != "" && digest != c.digest
				return
			}
			c.n = 0
			err = decide(st, &d)
		})
		if other || done != 0 || err != nil {
			if serr := s.proj.Settle(ctx, seen); serr != nil {
				return false, fault.Wrap(fault.Unavailable, serr, "the event log is unavailable")
			}
		}
		if other {
			return false, unprocessable("the idempotency key %q was already used for another request (other method, path or body); use a new key for a new request", c.key)
		}
		if done != 0 {
			return false, nil
		}
		if errors.Is(err, errNothing) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := checkSize(d.evs); err != nil {
			return false, err
		}
		seq, err := s.appendLog(ctx, events.Batch{Command: c.stored(), Expect: d.expect, Events: d.evs, Fresh: d.fresh, Ahead: c.ahead})
		if err == nil {
			if err := s.proj.WaitFor(ctx, seq); err != nil {
				return true, fault.Wrap(fault.Unavailable, err, "the write was stored but is not yet visible; retry the read")
			}
			return true, nil
		}
		var ce *events.ConflictError
		if !errors.As(err, &ce) {
			if ctx.Err() != nil {
				return false, fault.Wrap(fault.Unavailable, err, "request cancelled")
			}
			return false, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
		}
		if err := s.afterConflict(ctx, ce, attempt); err != nil {
			return false, err
		}
	}
}

// afterConflict is the one policy for a command whose append lost a race to
// another write (ce): it counts the conflict, gives up with fault.Conflict
// after Config.MaxRetries attempts, waits until the projections hold the
// write that won, and pauses a jittered moment that grows with attempt, so
// that writers racing on one aggregate spread out. nil means: decide again
// from the new state. exec, optimistic and CommitStep use it; a run decides
// a conflicted step again at most a few times, since each repeats a model
// call (package runner).
func (s *Service) afterConflict(ctx context.Context, ce *events.ConflictError, attempt int) error {
	s.conflicts.Add(1)
	if attempt >= s.cfg.MaxRetries {
		return fault.Wrap(fault.Conflict, ce, "too many concurrent changes to %s; retry", ce.Aggregate)
	}
	if err := s.proj.WaitFor(ctx, ce.Latest); err != nil {
		return fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	time.Sleep(time.Duration(rand.IntN(200*(attempt+1))) * time.Microsecond)
	return nil
}

// optimistic runs attempt, which reads the projection and appends with an
// expectation, until it stands: on a conflict (the attempt's error wraps
// events.ErrConflict) it waits for the projection to hold the write that
// won and tries again, as exec does (afterConflict). It is for commands that
// read the log while deciding (exec decides under the projection's lock alone).
func (s *Service) optimistic(ctx context.Context, attempt func() error) error {
	for try := 0; ; try++ {
		err := attempt()
		var ce *events.ConflictError
		if !errors.As(err, &ce) {
			return err
		}
		if err := s.afterConflict(ctx, ce, try); err != nil {
			return err
		}
	}
}

// read runs fn under the projection's read lock, once what it holds is on
// disk (projections.Projection.Read); in the Ahead view, at once.
func (s *Service) read(fn func(st *projections.State)) {
	if s.ahead {
		s.proj.ReadAhead(fn)
		return
	}
	s.proj.Read(fn)
}

// Health reports that the service is up.
func (s *Service) Health(ctx context.Context) api.Health {
	return api.Health{Status: "ok", Version: s.cfg.Version}
}

package events

import (
	"errors"
	"fmt"
)

// Expectation states the version an append expects: the sequence of the last
// event of an aggregate (or, with WholeKind, of every aggregate of its kind).
// Version 0 means none must exist yet.
type Expectation struct {
	Aggregate Aggregate
	WholeKind bool
	Version   Seq
}

// Batch is what one command appends: all of its events or none.
type Batch struct {
	Command string // idempotency id; every event in the batch carries it
	Expect  []Expectation
	Events  []Envelope
	// Fresh names aggregates this command creates under ids of its own
	// making (derived from the command, or new), which no other command can
	// write: their expectation (version 0) can only fail for a retry of this
	// command, which the first aggregate's expectation and the command's
	// id already catch. The log may then store their events inside the
	// first aggregate's message (EncodeHosted) instead of appending an
	// atomic batch of several messages. Each must also be expected at
	// version 0 in Expect, which holds when the log cannot host them.
	Fresh []Aggregate
	// Tenants gives the subject tenant token of the aggregates that belong
	// to an organization other than the log's default one (their events are
	// stored under ev.<organization id>.…); an aggregate not named is the
	// log's own tenant's.
	Tenants map[Aggregate]string
	// Ahead has the log acknowledge the batch once it is stored, before it
	// is on disk: the caller waits for the disk itself (the log's Durable)
	// before anyone hears of the write. A send that waits for its agent's
	// answer appends its input so: the step's fsync, which the answer waits
	// for, covers the input too, and the input needs no fsync of its own.
	Ahead bool
}

// ErrConflict is the domain outcome of an append whose expectation no longer
// holds. Callers reload state and decide again.
var ErrConflict = errors.New("version conflict")

// ConflictError says which aggregate moved and to what sequence.
type ConflictError struct {
	Aggregate Aggregate
	Latest    Seq // the aggregate's last sequence, as far as the log knows
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s moved to %d: %v", e.Aggregate, e.Latest, ErrConflict)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

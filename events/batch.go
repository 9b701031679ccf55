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

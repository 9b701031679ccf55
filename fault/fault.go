// Package fault is engram's error vocabulary: a small set of stable kinds
// that every layer wraps and the HTTP transport maps to status codes.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what a caller can do about it.
type Kind int

// The kinds. Their order is not part of the API.
const (
	Internal      Kind = iota // a bug or an unexpected failure; never caused by input
	Invalid                   // the request is malformed or breaks a rule; retrying cannot fix it
	NotFound                  // a named thing does not exist
	Conflict                  // the state changed underneath; a retry from fresh state may succeed
	Permission                // the caller may not do this
	Unavailable               // a dependency is down or overloaded; retry later
	Unprocessable             // well-formed input that fails validation (HTTP 422)
	TooLarge                  // the input is over a size limit (HTTP 413)
	Unsupported               // the input's media type is not supported (HTTP 415)
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Permission:
		return "permission denied"
	case Unavailable:
		return "unavailable"
	case Unprocessable:
		return "unprocessable"
	case TooLarge:
		return "too large"
	case Unsupported:
		return "unsupported media type"
	}
	return "internal"
}

// Error is an error with a Kind and a message that is safe to show a client.
type Error struct {
	Kind Kind
	Msg  string // shown to clients; must not carry internal detail
	Err  error  // the cause, for logs; never shown to clients
	// Data, when set, is what a client is shown instead of Msg where the
	// API it speaks answers this error with an object (Letta's 409 for a
	// pending approval: code, message, pending_request_id). It must be
	// safe to show, as Msg is.
	Data any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, fault.NotFound) style checks work through E values:
// errors.Is(err, &fault.Error{Kind: fault.NotFound}) matches any NotFound.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// E builds an error of the given kind with a client-safe message.
func E(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap builds an error of the given kind around a cause. The message is what
// a client sees; the cause is kept for logs.
func Wrap(k Kind, err error, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of the outermost *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Message returns the client-safe message of err: the outermost *Error's Msg,
// or a generic text for errors that carry no kind.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Msg
	}
	return "internal error"
}

// DataOf returns the structured detail of the outermost *Error in err's
// chain, or nil.
func DataOf(err error) any {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Data
	}
	return nil
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }

// names are the kinds' wire names, stable across versions: errors cross
// NATS (run reports, agent requests) as {"detail": ..., "kind": name}.
var names = map[Kind]string{
	Internal: "internal", Invalid: "invalid", NotFound: "not_found", Conflict: "conflict",
	Permission: "permission_denied", Unavailable: "unavailable", Unprocessable: "unprocessable",
	TooLarge: "too_large", Unsupported: "unsupported_media_type",
}

// Name is k's stable wire name.
func (k Kind) Name() string {
	if n, ok := names[k]; ok {
		return n
	}
	return names[Internal]
}

// ParseKind reads a wire name back; it also reads the display strings
// (String) that engram 0.x sent before wire names existed. Anything else
// is Internal.
func ParseKind(name string) Kind {
	for k, n := range names {
		if name == n || name == k.String() {
			return k
		}
	}
	return Internal
}

// Wire is an error as it crosses the bus: what a client may see, and the
// kind that decides its HTTP status.
type Wire struct {
	Detail string `json:"detail"`
	Kind   string `json:"kind"`
}

// ToWire encodes err for the bus.
func ToWire(err error) Wire { return Wire{Detail: Message(err), Kind: KindOf(err).Name()} }

// Err decodes w back into an error of its kind.
func (w Wire) Err() error { return &Error{Kind: ParseKind(w.Kind), Msg: w.Detail} }

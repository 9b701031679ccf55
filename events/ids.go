package events

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Seq is a position in the event stream (JetStream stream sequence).
// Zero means "no event": an aggregate at version 0 does not exist yet.
type Seq uint64

// Typed identifiers. Each is "<prefix>-<ULID>".
type (
	AgentID   string
	BlockID   string
	ToolID    string
	SourceID  string
	JobID     string
	PassageID string
	MessageID string
	FileID    string
)

// ID prefixes, as Letta spells them.
const (
	PrefixAgent   = "agent"
	PrefixBlock   = "block"
	PrefixTool    = "tool"
	PrefixSource  = "source"
	PrefixJob     = "job"
	PrefixPassage = "passage"
	PrefixMessage = "message"
	PrefixFile    = "file"
)

var (
	entropyMu sync.Mutex // guards entropy
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a fresh "<prefix>-<ULID>" whose ULID time is t.
func NewID(prefix string, t time.Time) string {
	entropyMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(t), entropy)
	entropyMu.Unlock()
	return prefix + "-" + id.String()
}

// DerivedID returns a "<prefix>-<ULID>" that is a pure function of key, so a
// command retried with the same idempotency key names the same aggregate.
func DerivedID(prefix, key string) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + key))
	var u ulid.ULID
	copy(u[:], sum[:16])
	u[0] &= 0x7f // keep the timestamp inside ULID's valid range
	return prefix + "-" + u.String()
}

// ValidID reports whether s is "<prefix>-<ULID>" for the given prefix.
// IDs are valid NATS subject tokens: Crockford base32 has no '.', '*' or '>'.
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"-")
	if !ok || len(rest) != ulid.EncodedSize || strings.ToUpper(rest) != rest {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}

// CheckID returns an error naming the expected form when s is not a valid id.
func CheckID(prefix, s string) error {
	if !ValidID(prefix, s) {
		return fmt.Errorf("%q is not a valid %s id (expected %s-<ULID>)", s, prefix, prefix)
	}
	return nil
}

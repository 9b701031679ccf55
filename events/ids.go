package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Seq is a position in the event stream (JetStream stream sequence).
// Zero means "no event": an aggregate at version 0 does not exist yet.
type Seq uint64

// Typed identifiers. Each is "<prefix>-<uuid>", the uuid in lowercase
// 8-4-4-4-12 hex text form, as Letta's ids are. Logs written before that
// form was adopted hold "<prefix>-<ULID>" ids, which stay valid.
type (
	AgentID   string
	BlockID   string
	ToolID    string
	SourceID  string
	JobID     string
	PassageID string
	MessageID string
	FileID    string
	// ConversationID names a conversation ("conv-<uuid>").
	ConversationID string
)

// ID prefixes, as Letta spells them.
const (
	PrefixAgent        = "agent"
	PrefixBlock        = "block"
	PrefixTool         = "tool"
	PrefixSource       = "source"
	PrefixJob          = "job"
	PrefixPassage      = "passage"
	PrefixMessage      = "message"
	PrefixFile         = "file"
	PrefixConversation = "conv"
)

// The state of the id generator: the millisecond and the 74-bit counter
// (hi holds its top 10 bits, lo the low 64) of the last id made.
var (
	genMu        sync.Mutex // guards genMs, genHi, genLo
	genMs        uint64
	genHi, genLo uint64
)

const (
	maxMs     = 1<<48 - 1 // the last millisecond a UUIDv7 can hold
	hiOverflw = 1 << 10   // genHi at or past this: the counter overflowed
)

// NewID returns a fresh "<prefix>-<uuid>" in the UUIDv7 layout: 48 bits of
// Unix milliseconds from t, the version (7) and variant (10) bits, and 74
// bits that are random but monotonic within the process. Ids made in
// sequence sort in the order they were made, as strings, also when many
// share a millisecond or t goes backwards (the millisecond never goes back:
// an id carries the later of t and the last id's millisecond).
func NewID(prefix string, t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	ms = min(ms, maxMs)

	genMu.Lock()
	if ms <= genMs && (genHi|genLo) != 0 {
		ms = genMs
		var carry uint64
		genLo, carry = bits.Add64(genLo, mrand.Uint64N(1<<32)+1, 0)
		genHi += carry
		if genHi >= hiOverflw { // the millisecond is full: use the next
			ms++
			genHi, genLo = freshCounter()
		}
	} else {
		genHi, genLo = freshCounter()
	}
	genMs = ms
	hi, lo := genHi, genLo
	genMu.Unlock()

	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], ms<<16)
	randA := hi<<2 | lo>>62 // the counter's top 12 bits
	u[6] = 0x70 | byte(randA>>8)&0x0f
	u[7] = byte(randA)
	binary.BigEndian.PutUint64(u[8:16], 0x8000000000000000|lo&(1<<62-1))
	return prefix + "-" + uuidText(u)
}

// freshCounter returns a random 74-bit counter, never zero, with its top
// bit clear so that a millisecond has room for many ids before it is full.
func freshCounter() (hi, lo uint64) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("events: reading random bytes: %v", err))
	}
	hi = uint64(binary.BigEndian.Uint16(b[0:2])) & (1<<9 - 1)
	lo = binary.BigEndian.Uint64(b[8:16]) | 1
	return hi, lo
}

// DerivedID returns a "<prefix>-<uuid>" that is a pure function of key (its
// sha256, with the version 8 and variant bits set), so a command retried
// with the same idempotency key names the same aggregate.
func DerivedID(prefix, key string) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + key))
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = 0x80 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return prefix + "-" + uuidText(u)
}

// uuidText formats u as 8-4-4-4-12 lowercase hex.
func uuidText(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// ValidID reports whether s is an id with the given prefix: "<prefix>-"
// followed by a uuid in lowercase 8-4-4-4-12 hex text form (any version, so
// ids imported from Letta keep their names), or by a ULID (ids in logs
// written before the uuid form). Both are valid NATS subject tokens: they
// hold no '.', '*', '>' or white space.
func ValidID(prefix string, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"-")
	if !ok {
		return false
	}
	switch len(rest) {
	case 36:
		return validUUIDText(rest)
	case ulid.EncodedSize:
		if strings.ToUpper(rest) != rest {
			return false
		}
		_, err := ulid.ParseStrict(rest)
		return err == nil
	}
	return false
}

func validUUIDText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// CheckID returns an error naming the expected form when s is not a valid id.
func CheckID(prefix, s string) error {
	if !ValidID(prefix, s) {
		return fmt.Errorf("%q is not a valid %s id (expected %s-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, a uuid in lowercase hex)", s, prefix, prefix)
	}
	return nil
}

package bus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// A seal makes a stored message tamper-evident. Append puts one on every
// message it publishes, in the Engram-Seal header: an HMAC-SHA256, under a
// key only the server holds, over the message's subject, its payload and
// the headers that place it in the log (sealedHeaders): the command, the
// expected previous sequence of its aggregate and the filter that
// expectation is on (or their absence, which the MAC covers too), and its
// place in an atomic batch. A plain hash would not do: whoever can publish
// onto an event subject can compute SHA-256 as well as the server.
//
// The MAC does not cover the message's own stream sequence, which the
// server does not know before JetStream stores it. Order is checked by
// what the MAC does cover: each expectation names the previous message of
// its aggregate, each batch member its place in the batch, and checkpoints
// (package verify) commit to every seal in log order.
const (
	hdrSeal     = "Engram-Seal"
	sealVersion = "v1"
)

// sealedHeaders are the stored headers a seal covers, in this order. An
// absent header counts as the empty string (none of them is ever set empty).
var sealedHeaders = []string{hdrCommand, hdrMsgID, hdrExpectSubj, hdrExpectSeq, hdrBatchID, hdrBatchSeq, hdrBatchCommit}

// SealKeySize is the size of a sealing key in bytes.
const SealKeySize = 32

// Sealer computes and checks seals under one key. It is safe for
// concurrent use.
type Sealer struct {
	key []byte
	id  string
	mac sync.Pool // of hash.Hash keyed with key
}

// NewSealer returns a sealer for key, which must be SealKeySize random bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("seal key: %d bytes, want %d", len(key), SealKeySize)
	}
	k := append([]byte(nil), key...)
	id := sha256.Sum256(append([]byte("engram seal key id\x00"), k...))
	s := &Sealer{key: k, id: hex.EncodeToString(id[:4])}
	s.mac.New = func() any { return hmac.New(sha256.New, s.key) }
	return s, nil
}

// KeyID names the key without revealing it: 8 hex digits.
func (s *Sealer) KeyID() string { return s.id }

// Seal sets m's Engram-Seal header. m's subject, data and sealed headers
// must be final: Append seals what it publishes; a test or benchmark
// building a log by hand seals with it.
func (s *Sealer) Seal(m *nats.Msg) {
	m.Header.Set(hdrSeal, sealVersion+" "+s.id+" "+base64.RawURLEncoding.EncodeToString(s.sum(m.Subject, m.Header, m.Data)))
}

// Sum returns the MAC of a stored message: subject, headers, payload.
func (s *Sealer) sum(subject string, h nats.Header, data []byte) []byte {
	mac := s.mac.Get().(hash.Hash)
	defer s.mac.Put(mac)
	mac.Reset()
	var n [binary.MaxVarintLen64]byte
	field := func(b []byte) {
		mac.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		mac.Write(b)
	}
	mac.Write([]byte("engram seal v1\x00"))
	field([]byte(subject))
	for _, name := range sealedHeaders {
		field([]byte(h.Get(name)))
	}
	field(data)
	return mac.Sum(nil)
}

// Errors of Sealer.Check.
var (
	// ErrUnsealed: the message carries no seal.
	ErrUnsealed = errors.New("no seal")
	// ErrOtherKey: the seal was made with another key.
	ErrOtherKey = errors.New("sealed with another key")
	// ErrBadSeal: the seal does not match the message.
	ErrBadSeal = errors.New("seal does not match the message")
)

// Seal is the value of a stored message's seal header, "" when it has none.
func Seal(h nats.Header) string { return h.Get(hdrSeal) }

// Check reports whether the stored message (subject, headers, payload)
// carries a seal made by this key over exactly these bytes: nil, or an
// error wrapping ErrUnsealed, ErrOtherKey or ErrBadSeal.
func (s *Sealer) Check(subject string, h nats.Header, data []byte) error {
	v := h.Get(hdrSeal)
	if v == "" {
		return ErrUnsealed
	}
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != sealVersion {
		return fmt.Errorf("%w: malformed seal %q", ErrBadSeal, v)
	}
	if f[1] != s.id {
		return fmt.Errorf("%w (key %s; this key is %s)", ErrOtherKey, f[1], s.id)
	}
	got, err := base64.RawURLEncoding.DecodeString(f[2])
	if err != nil {
		return fmt.Errorf("%w: malformed seal %q", ErrBadSeal, v)
	}
	if !hmac.Equal(got, s.sum(subject, h, data)) {
		return ErrBadSeal
	}
	return nil
}

// SealHeaders are the stored headers a verifier reads besides the seal.
type SealHeaders struct {
	ExpectSubject string // the filter of the expectation ("" when none)
	ExpectSeq     string // the expected last sequence on it ("" when none)
	BatchID       string // the atomic batch ("" when none)
	BatchSeq      string // the place in it, from 1
	BatchCommit   bool   // the batch's last message
}

// ReadSealHeaders reads the headers a seal covers that place a message in the log.
func ReadSealHeaders(h nats.Header) SealHeaders {
	return SealHeaders{
		ExpectSubject: h.Get(hdrExpectSubj), ExpectSeq: h.Get(hdrExpectSeq),
		BatchID: h.Get(hdrBatchID), BatchSeq: h.Get(hdrBatchSeq), BatchCommit: h.Get(hdrBatchCommit) != "",
	}
}

// sealAll frames msgs as an atomic batch when there are several, then
// seals each. The batch headers are set here rather than in publish
// because the seal covers them.
func (l *Log) sealAll(msgs []*nats.Msg) {
	if len(msgs) > 1 && msgs[0].Header.Get(hdrBatchID) == "" {
		frameBatch(msgs)
	}
	if l.sealer == nil {
		return
	}
	for _, m := range msgs {
		l.sealer.Seal(m)
	}
}

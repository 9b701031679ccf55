package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/engram-dev/engram/events"
)

// chain is the running digest a checkpoint commits to: over every sealed
// message in log order, d = SHA-256(d ‖ seq as 8 bytes big-endian ‖ seal
// header). It is strictly stronger than a hash of the aggregates' heads
// (it implies each head and also fixes every earlier message and the
// order), costs one SHA-256 of ~80 bytes per message, and needs neither
// sorting nor a list of aggregates at checkpoint time.
type chain struct {
	seq events.Seq // the last sequence folded in (sealed or not)
	n   uint64     // sealed messages folded in
	d   [sha256.Size]byte
}

// add folds in the message at seq; seal is its seal header ("" when it
// has none, which changes only seq).
func (c *chain) add(seq events.Seq, seal string) {
	c.seq = seq
	if seal == "" {
		return
	}
	var buf [sha256.Size + 8 + 128]byte
	b := append(buf[:0], c.d[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = append(b, seal...)
	c.d = sha256.Sum256(b)
	c.n++
}

func (c *chain) digest() string { return hex.EncodeToString(c.d[:]) }

// chainAt returns the chain a checkpoint resumes from.
func chainAt(cp *events.LogCheckpointed) (chain, bool) {
	d, err := hex.DecodeString(cp.Digest)
	if err != nil || len(d) != sha256.Size {
		return chain{}, false
	}
	c := chain{seq: cp.Through, n: cp.Sealed}
	copy(c.d[:], d)
	return c, true
}

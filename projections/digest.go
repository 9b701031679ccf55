package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Digest fingerprints the state, "sha256:<hex>": two states that hold the
// same read model have the same digest, whichever node folded them and
// whether they were replayed from the log or restored from a snapshot. A
// cluster's nodes compare digests at one applied sequence to show that
// they agree.
//
// It hashes canonical JSON: object keys sorted (encoding/json sorts map
// keys), and an empty slice or map the same as none, because a snapshot
// (gob) restores empty collections as nil.
func (s *State) Digest() (string, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("digest at %d: %w", s.Applied, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep sequences and sizes exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("digest at %d: %w", s.Applied, err)
	}
	canon, err := json.Marshal(canonical(v))
	if err != nil {
		return "", fmt.Errorf("digest at %d: %w", s.Applied, err)
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// canonical replaces empty arrays and objects by null, all the way down.
func canonical(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = canonical(x[i])
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
		for k := range x {
			x[k] = canonical(x[k])
		}
	}
	return v
}

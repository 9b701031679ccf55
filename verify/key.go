package verify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/engram-dev/engram/bus"
)

// KeyFile is the name of the sealing key's file in a data directory.
// Losing it means the log can no longer be verified; anyone who reads it
// can write messages that verify.
const KeyFile = "log.key"

// HeadFile is the name of the file, beside the key, that records the last
// checkpoint the server wrote.
const HeadFile = "log.head"

// ErrNoKey is returned by LoadKey when the key file does not exist.
var ErrNoKey = errors.New("no sealing key")

// LoadKey reads the sealing key at path (hex, as CreateKey writes it).
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read sealing key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != bus.SealKeySize {
		return nil, fmt.Errorf("sealing key %s: want %d hex-encoded bytes", path, bus.SealKeySize)
	}
	return key, nil
}

// LoadOrCreateKey reads the sealing key at path, creating it (random, mode
// 0600) when it does not exist; created reports which.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = LoadKey(path)
	if !errors.Is(err, ErrNoKey) {
		return key, false, err
	}
	key = make([]byte, bus.SealKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("make sealing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("make sealing key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("make sealing key: %w", err)
	}
	return key, true, nil
}

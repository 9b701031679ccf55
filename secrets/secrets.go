// Package secrets seals values the log must keep but nobody may read from
// it — agents' tool environment variables — with AES-256-GCM under a key
// kept in the data directory.
//
// A sealed value is "v1:" and the base64 (standard, unpadded) of a 12-byte
// random nonce followed by the ciphertext and its tag. The caller names
// what the value is for (its additional data, such as an agent and a
// variable), so a sealed value copied elsewhere in the log does not open
// there. The key file is made once, readable by the server's user alone;
// losing it loses every sealed value, and a cluster's members must share
// it (as they share log.key) to run each other's agents' tools.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the key's file in the data directory.
const KeyFile = "secrets.key"

const (
	keySize = 32
	prefix  = "v1:"
)

// ErrOpen is returned for a sealed value that does not open under this key
// and its additional data: made under another key, for another purpose, or
// altered.
var ErrOpen = errors.New("secrets: the value does not open under this server's key")

// Box seals and opens values. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box over a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("secrets: key is %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Load opens the key file in dir, making it (mode 0600) with a fresh random
// key when there is none.
func Load(dir string) (*Box, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("secrets: make key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) { // made meanwhile by another opener
			return Load(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		_, werr := f.Write(key)
		serr := f.Sync()
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = serr
		}
		if werr != nil {
			return nil, fmt.Errorf("secrets: write %s: %w", path, werr)
		}
	} else if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return New(key)
}

// Seal encrypts plain for the purpose ad.
func (b *Box) Seal(ad, plain string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(ad))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the same ad; anything else is ErrOpen.
func (b *Box) Open(ad, sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrOpen
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	n := b.aead.NonceSize()
	if err != nil || len(raw) < n+b.aead.Overhead() {
		return "", ErrOpen
	}
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

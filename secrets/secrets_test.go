package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	s1, err := b.Seal("agent-a/TOKEN", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.Seal("agent-a/TOKEN", "hunter2")
	if s1 == s2 || strings.Contains(s1, "hunter2") {
		t.Errorf("sealed %q and %q: want different nonces and no plain text", s1, s2)
	}
	if got, err := b.Open("agent-a/TOKEN", s1); err != nil || got != "hunter2" {
		t.Errorf("open = %q, %v", got, err)
	}
	// The same key file opens it after a restart.
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Open("agent-a/TOKEN", s1); err != nil || got != "hunter2" {
		t.Errorf("open after reload = %q, %v", got, err)
	}
	other, _ := Load(t.TempDir())
	flipped := []byte(s1)
	flipped[len(flipped)-2] ^= 1
	for name, try := range map[string]func() (string, error){
		"other purpose": func() (string, error) { return b.Open("agent-b/TOKEN", s1) },
		"other key":     func() (string, error) { return other.Open("agent-a/TOKEN", s1) },
		"altered":       func() (string, error) { return b.Open("agent-a/TOKEN", string(flipped)) },
		"not sealed":    func() (string, error) { return b.Open("agent-a/TOKEN", "hunter2") },
		"short":         func() (string, error) { return b.Open("agent-a/TOKEN", "v1:AAAA") },
	} {
		if got, err := try(); !errors.Is(err, ErrOpen) || got != "" {
			t.Errorf("%s: %q, %v; want ErrOpen", name, got, err)
		}
	}
}

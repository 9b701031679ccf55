package node_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/node"
)

// logBuffer collects a node's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

const fromCopy = "restored the read models from the snapshot's copy"

// TestSnapshotCopy: a clean Close leaves a copy of its snapshot that the
// next start restores (and removes); a copy that is not the store's
// snapshot (another node's) or cannot be read is not restored, and the
// node starts from its store's snapshot as without one.
func TestSnapshotCopy(t *testing.T) {
	ctx := context.Background()
	start := func(dir string) (*node.Node, *logBuffer) {
		t.Helper()
		cfg := node.DefaultConfig(dir)
		cfg.SyncAlways = false
		logs := &logBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		n, err := node.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return n, logs
	}
	names := func(n *node.Node) string {
		t.Helper()
		as, err := n.Service.ListAgents(ctx, api.AgentFilter{}, api.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.Name)
		}
		return strings.Join(out, ",")
	}
	withAgent := func(dir, name string) {
		t.Helper()
		n, _ := start(dir)
		if _, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: &name}); err != nil {
			t.Fatal(err)
		}
		n.Close(ctx)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	copyA, copyB := filepath.Join(dirA, node.SnapshotCopyFile), filepath.Join(dirB, node.SnapshotCopyFile)
	withAgent(dirA, "ada")
	if _, err := os.Stat(copyA); err != nil {
		t.Fatalf("no copy of the snapshot after a clean Close: %v", err)
	}

	n, logs := start(dirA)
	if !strings.Contains(logs.String(), fromCopy) {
		t.Fatalf("the start did not restore the copy; its log:\n%s", logs)
	}
	if _, err := os.Stat(copyA); !os.IsNotExist(err) {
		t.Fatalf("the copy is still there after the start that read it (%v)", err)
	}
	if got := names(n); got != "ada" {
		t.Fatalf("agents after a start from the copy: %q", got)
	}
	n.Close(ctx)
	ada, err := os.ReadFile(copyA)
	if err != nil {
		t.Fatal(err)
	}

	withAgent(dirB, "bob")
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"another node's copy", ada},
		{"a damaged copy", append([]byte("engram projections v5\n"), bytes.Repeat([]byte{0xff}, 64)...)},
		{"a copy cut short", ada[:len(ada)/2]},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(copyB, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			n, logs := start(dirB)
			defer n.Close(ctx)
			if strings.Contains(logs.String(), fromCopy) {
				t.Fatalf("the start restored %s; its log:\n%s", c.name, logs)
			}
			if got := names(n); got != "bob" {
				t.Fatalf("agents after a start beside %s: %q", c.name, got)
			}
		})
	}
}

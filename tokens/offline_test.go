package tokens_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/engram-dev/engram/tokens"
)

// TestOffline loads and uses both encodings in a fresh process whose home,
// cache and temp directories are empty and whose proxies point at a closed
// port, and checks that counting worked, no HTTP request was attempted and
// nothing was written to disk. A fresh process matters: in this one the
// encodings may already be loaded.
func TestOffline(t *testing.T) {
	if os.Getenv("TOKENS_OFFLINE_CHILD") != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	dirs := map[string]string{}
	for _, v := range []string{"HOME", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR", "XDG_CACHE_HOME", "TMPDIR"} {
		d := filepath.Join(dir, v)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs[v] = d
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOfflineChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "TOKENS_OFFLINE_CHILD=1", "NO_PROXY=", "no_proxy=")
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		cmd.Env = append(cmd.Env, v+"=http://127.0.0.1:1")
	}
	for v, d := range dirs {
		cmd.Env = append(cmd.Env, v+"="+d)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("child: %v\n%s", err, out)
	} else {
		t.Logf("child:\n%s", out)
	}
	for v, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("%s: loading wrote %s", v, e.Name())
		}
	}
}

// TestOfflineChild is TestOffline's child process.
func TestOfflineChild(t *testing.T) {
	if os.Getenv("TOKENS_OFFLINE_CHILD") == "" {
		t.Skip("run by TestOffline")
	}
	var requests atomic.Int32
	http.DefaultTransport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		requests.Add(1)
		return nil, errors.New("no network in this test")
	})
	// Both encodings' first loads race, from several goroutines each.
	var wg sync.WaitGroup
	for _, model := range []string{"gpt-4o", "o1", "gpt-4", "claude-3-haiku"} {
		for range 4 {
			wg.Go(func() {
				c, err := tokens.ForModel(model)
				if err != nil {
					t.Errorf("ForModel(%s): %v", model, err)
					return
				}
				if got := c.Count("tiktoken is great!"); got != 6 {
					t.Errorf("%s: Count = %d, want 6", model, got)
				}
			})
		}
	}
	wg.Wait()
	o, _ := tokens.ForModel("gpt-4o")
	c, _ := tokens.ForModel("gpt-4")
	const s = "Héllo wörld — naïve café 🎉🚀 日本語のテキスト"
	if got := o.Count(s); got != 20 {
		t.Errorf("o200k_base: Count(%q) = %d, want 20", s, got)
	}
	if got := c.Count(s); got != 24 {
		t.Errorf("cl100k_base: Count(%q) = %d, want 24", s, got)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d HTTP requests attempted", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

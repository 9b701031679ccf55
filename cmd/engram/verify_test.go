package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// engram runs the engram command (this test binary standing in) and
// returns its output and exit code.
func engram(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = []string{"ENGRAM_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestVerifyCommand: engram verify through a running server's API, then on
// its data directory once it has stopped (a checkpoint written at
// shutdown's latest by the short interval), then without the key.
func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	cmd, url, log := startEngram(t, "--data-dir", dir, "--checkpoint-interval", "50ms")
	resp, err := http.Post(url+"/v1/agents/", "application/json", strings.NewReader(`{"name":"sam","memory_blocks":[{"label":"human","value":"Ada"}]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create agent: %v %v", resp, err)
	}
	var agent struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&agent)
	resp.Body.Close()
	// The block's creation is hosted in the agent's message; its first
	// edit expects its own subject empty, which verify checks too.
	req, _ := http.NewRequest("PATCH", url+"/v1/agents/"+agent.ID+"/core-memory/blocks/human", strings.NewReader(`{"value":"Ada Lovelace"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("edit block: %v %v", resp, err)
	}
	resp.Body.Close()
	out, code := engram(t, "verify", "--url", url)
	if code != 0 || !strings.HasPrefix(out, "verified ") {
		t.Fatalf("verify --url: exit %d: %s\n%s", code, out, log.String())
	}
	// With the server running the data directory is locked.
	if out, code := engram(t, "verify", "--data-dir", dir); code == 0 || !strings.Contains(out, "in use") {
		t.Fatalf("verify --data-dir of a running server: exit %d: %s", code, out)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(readFile(t, filepath.Join(dir, "log.head")), "checkpoint"); {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint written:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	out, code = engram(t, "verify", "--data-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "verified ") || !strings.Contains(out, "last checkpoint at") {
		t.Fatalf("verify --data-dir: exit %d: %s", code, out)
	}
	t.Log(strings.TrimSpace(out))
	if err := os.Remove(filepath.Join(dir, "log.key")); err != nil {
		t.Fatal(err)
	}
	if out, code := engram(t, "verify", "--data-dir", dir); code != 1 || !strings.Contains(out, "no sealing key") {
		t.Fatalf("verify without the key: exit %d: %s", code, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

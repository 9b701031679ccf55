package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for engram: with
// ENGRAM_TEST_MAIN=1 it runs main with the arguments after the test flags'
// "--".
func TestMain(m *testing.M) {
	if os.Getenv("ENGRAM_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"engram"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startEngram runs "engram server" in a process of its own and returns it,
// its base URL and its log so far once it listens.
func startEngram(t *testing.T, args ...string) (*exec.Cmd, string, *lockedLog) {
	t.Helper()
	args = append([]string{"-test.run=^$", "--", "server", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--nats-addr", ""}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"ENGRAM_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	log := &lockedLog{}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`url=(http\S+)`)
		for sc.Scan() {
			log.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if !ok {
			t.Fatalf("engram exited before listening:\n%s", log.String())
		}
		return cmd, url, log
	case <-time.After(60 * time.Second):
		t.Fatalf("engram did not listen within a minute")
	}
	return nil, "", nil
}

// lockedLog is a server's log, written by the goroutine that reads it.
type lockedLog struct {
	mu    sync.Mutex // guards lines
	lines []string
}

func (l *lockedLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/agents/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokenNotInCommandLine: a token from --token-file protects the server
// and appears nowhere in its command line, which every user can read; one
// given with --token works but draws a warning.
func TestTokenNotInCommandLine(t *testing.T) {
	const token = "tok-9d2f6a1e-not-for-ps"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, url, _ := startEngram(t, "--token-file", file)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cmdline), token) {
		t.Errorf("the token is in the command line: %q", cmdline)
	}
	if got := status(t, url, ""); got != 401 {
		t.Errorf("without the token: %d, want 401", got)
	}
	if got := status(t, url, token); got != 200 {
		t.Errorf("with the token from the file: %d, want 200", got)
	}

	_, url, log := startEngram(t, "--token", token)
	if got := status(t, url, token); got != 200 {
		t.Errorf("with the token from --token: %d, want 200", got)
	}
	if !strings.Contains(log.String(), "visible to every user") {
		t.Errorf("no warning about --token in the log:\n%s", log.String())
	}
}

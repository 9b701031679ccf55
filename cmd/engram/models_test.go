package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/engram-dev/engram/llmtest"
)

// runEngram runs engram with args in a process of its own, with env added
// to a bare environment, and returns its stdout, its stderr and how it ended.
func runEngram(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append([]string{"ENGRAM_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// closedURL is a loopback base URL nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String() + "/v1"
}

// TestModelsCommand: engram models lists what a configured provider serves;
// with none configured, what the local servers that answer serve; and it
// fails with a message naming where it looked when nothing answers.
func TestModelsCommand(t *testing.T) {
	script := llmtest.NewServer(t)
	script.Models = []string{"llama3.2:3b", "qwen2.5"}
	dead := closedURL(t)

	out, errOut, err := runEngram(t, nil, "models", "--local-models", "ollama="+dead+",llamacpp="+script.URL)
	if err != nil {
		t.Fatalf("models with a local server: %v\n%s", err, errOut)
	}
	for _, m := range script.Models {
		if !strings.Contains(out, "llamacpp/"+m) || !strings.Contains(out, script.URL) {
			t.Errorf("local listing lacks llamacpp/%s at %s:\n%s", m, script.URL, out)
		}
	}
	if strings.Contains(out, "ollama/") {
		t.Errorf("the dead endpoint is listed:\n%s", out)
	}

	out, errOut, err = runEngram(t, []string{"OPENAI_API_KEY=k", "OPENAI_BASE_URL=" + script.URL}, "models", "--local-models", "")
	if err != nil {
		t.Fatalf("models with OpenAI configured: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "openai/qwen2.5") || strings.Contains(out, "llamacpp/") {
		t.Errorf("configured listing:\n%s", out)
	}

	_, errOut, err = runEngram(t, nil, "models", "--local-models", "ollama="+dead)
	if err == nil || !strings.Contains(errOut, "no model provider configured") || !strings.Contains(errOut, dead) {
		t.Errorf("models with nothing answering: %v\n%s", err, errOut)
	}

	_, errOut, err = runEngram(t, []string{"OPENAI_API_KEY=k", "OPENAI_BASE_URL=" + dead}, "models")
	if err == nil || !strings.Contains(errOut, "could not list the models of openai") {
		t.Errorf("models with the provider down: %v\n%s", err, errOut)
	}
}

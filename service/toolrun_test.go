package service_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
	"github.com/engram-dev/engram/sandbox"
)

// toolMessage is the last tool message the model was sent.
func toolMessage(t *testing.T, s *llmtest.Server) string {
	t.Helper()
	reqs := s.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		ms := reqs[i].Messages
		for j := len(ms) - 1; j >= 0; j-- {
			if ms[j].Role == "tool" {
				return ms[j].Content
			}
		}
	}
	t.Fatal("the model was sent no tool message")
	return ""
}

// hostileTool is a tool body and what the model must be told about it.
type hostileTool struct {
	name    string
	body    string
	timeout float64            // timeout_seconds, 0 for the default
	want    []string           // substrings of what the model is sent
	not     []string           // must not appear in it, nor in the response
	after   func(t *testing.T) // checks the host once the call has ended
}

// TestHostileToolsAreContained has an agent call tools that misbehave in
// different ways. Each is contained, the model is told what happened, and the
// server goes on answering.
func TestHostileToolsAreContained(t *testing.T) {
	const secret = "s3cret-provider-key-7f2c"
	t.Setenv("ENGRAM_TEST_PROVIDER_KEY", secret)
	dir := t.TempDir()
	r := startRig(t, dir, nil)
	ctx := context.Background()
	srv := httptest.NewServer(rest.NewHandler(r.n.Service, rest.Config{}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	// A file the node wrote in its data directory.
	var dataFile string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && dataFile == "" {
			dataFile = path
		}
		return nil
	})
	if dataFile == "" {
		t.Fatal("the node wrote no file in its data directory")
	}
	// What this host permits, as the node's own runner found it.
	iso := sandbox.New(sandbox.Config{HideDirs: []string{dir}}).Isolation()
	hidden := strings.Contains(iso, " hidden (")
	netIsolated := strings.Contains(iso, "network: isolated")
	t.Logf("isolation: %s", iso)

	doc := `"""Misbehave.

    Args:
        x (str): anything
    """`
	cases := []hostileTool{
		{name: "works", body: "return 'echo ' + x", want: []string{`"status": "OK"`, "echo hi"}},
		{name: "raises", body: "raise KeyError('no such key ' + x)", want: []string{`"status": "Failed"`, "KeyError", "no such key hi"}},
		{name: "sleeps", body: "import time\n    time.sleep(60)", timeout: 1,
			want: []string{`"status": "Failed"`, "TimeoutError", "timed out after 1s"}},
		{name: "allocates", body: "chunks = []\n    while True:\n        chunks.append(bytearray(1 << 24))",
			want: []string{`"status": "Failed"`, "MemoryError"}},
		{name: "prints_megabytes", body: "import sys\n    for _ in range(64):\n        sys.stdout.write('y' * (1 << 16))\n    return 'printed'",
			want: []string{`"status": "OK"`, "printed"}},
		{name: "reads_secret", body: "import os\n    return repr(os.environ.get('ENGRAM_TEST_PROVIDER_KEY')) + ' ' + repr(sorted(os.environ))",
			want: []string{`"status": "OK"`, "None ['HOME', 'LC_CTYPE', 'PATH']"}, not: []string{secret}},
	}
	if hidden {
		cases = append(cases, hostileTool{name: "opens_data_file", body: fmt.Sprintf("return open(%q, 'rb').read(64).hex()", dataFile),
			want: []string{`"status": "Failed"`, "FileNotFoundError"}})
	} else {
		t.Logf("the data directory is not hidden here; skipping the data-file case")
	}
	if netIsolated {
		cases = append(cases, hostileTool{name: "connects_to_server", body: fmt.Sprintf("import urllib.request\n    return urllib.request.urlopen('http://%s/v1/health/', timeout=3).read().decode()", u.Host),
			want: []string{`"status": "Failed"`, "URLError", "Network is unreachable"}})
	} else {
		t.Logf("the network is not isolated here; skipping the connect case")
	}
	// What the server itself runs as and owns: the tool must reach none of it.
	if strings.Contains(iso, "containment not permitted") {
		t.Logf("this host does not permit containing tools; skipping the identity, process and /tmp cases")
	} else {
		cases = append(cases, containmentCases(t)...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("def %s(x: str) -> str:\n    %s\n    %s\n", tc.name, doc, tc.body)
			req := api.CreateTool{SourceCode: src}
			if tc.timeout > 0 {
				req.TimeoutSeconds = &tc.timeout
			}
			a := r.agent(t) // a fresh context each time, so no summary runs
			tool, err := r.n.Service.CreateTool(ctx, req, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.n.Service.AttachTool(ctx, a.ID, tool.ID); err != nil {
				t.Fatal(err)
			}
			r.llm.Push(
				llmtest.Step{ToolCalls: []agents.ToolCall{call(tc.name, map[string]any{"x": "hi", "request_heartbeat": true})}},
				say("done"),
			)
			began := time.Now()
			resp := send(t, r, a.ID, "call "+tc.name)
			took := time.Since(began)
			seen := toolMessage(t, r.llm)
			for _, w := range tc.want {
				if !strings.Contains(seen, w) {
					t.Errorf("the model was sent %q; want %q in it", seen, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(seen, n) || strings.Contains(fmt.Sprint(resp), n) {
					t.Errorf("the secret %q leaked: %q", n, seen)
				}
			}
			if said(resp) != "done" {
				t.Errorf("the agent did not finish its step: %q", said(resp))
			}
			if took > 20*time.Second {
				t.Errorf("the call took %s", took)
			}
			for _, m := range resp.Messages {
				// The first return is the tool's; the second, send_message's.
				if m.MessageType == api.ToolReturnMessageType && m.ToolReturn != nil && strings.Contains(*m.ToolReturn, tc.name) || tc.name == "prints_megabytes" && len(m.Stdout) > 0 {
					out := strings.Join(m.Stdout, "\n") + strings.Join(m.Stderr, "\n")
					if len(out) > 128<<10 {
						t.Errorf("tool_return_message carries %d bytes of output", len(out))
					}
					if tc.name == "prints_megabytes" && !strings.Contains(out, "output truncated") {
						t.Errorf("no truncation note in %d bytes of stdout", len(out))
					}
				}
			}
			t.Logf("%s (%s): %.200s", tc.name, took.Round(time.Millisecond), seen)
			if tc.after != nil {
				tc.after(t)
			}

			// The server stays healthy: its port answers and the agent
			// takes the next message.
			res, err := http.Get(srv.URL + "/v1/health/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("health after %s: %d %s", tc.name, res.StatusCode, body)
			}
			r.llm.Push(say("still here"))
			if got := said(send(t, r, a.ID, "are you there?")); got != "still here" {
				t.Errorf("follow-up said %q", got)
			}
		})
	}
	if _, err := os.Stat(dataFile); err != nil {
		t.Errorf("data file after the tools ran: %v", err)
	}
}

// containmentCases are tools that try to reach beyond their call, with the
// server running as root as in CI: read root's files, see or signal the
// server, fork without end, leave a process behind, or leave a file in the
// host's /tmp.
func containmentCases(t *testing.T) []hostileTool {
	pid := os.Getpid() // the server runs in this process
	marker := fmt.Sprintf("%d.%d", 4000+pid%1000, time.Now().UnixNano()%1000000)
	tmpFile := fmt.Sprintf("/tmp/engram-hostile-%s", marker)
	t.Cleanup(func() { os.Remove(tmpFile) })
	return []hostileTool{
		{name: "reads_shadow", body: "return open('/etc/shadow').read()",
			want: []string{`"status": "Failed"`, "PermissionError"}},
		{name: "lists_root", body: "import os\n    return repr(os.listdir('/root'))",
			want: []string{`"status": "Failed"`, "PermissionError"}},
		{name: "sees_server", body: fmt.Sprintf("import os\n    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n    return ('server visible' if os.path.exists('/proc/%d') else 'server invisible') + ' among ' + repr(pids)", pid),
			want: []string{`"status": "OK"`, "server invisible"}, not: []string{"server visible"}},
		{name: "reads_server_cmdline", body: fmt.Sprintf("return open('/proc/%d/cmdline').read()", pid),
			want: []string{`"status": "Failed"`, "FileNotFoundError"}},
		// Signal 0 asks whether the server could be signalled at all,
		// without harming a server that can be.
		{name: "signals_server", body: fmt.Sprintf("import os\n    os.kill(%d, 0)\n    return 'signalled'", pid),
			want: []string{`"status": "Failed"`, "ProcessLookupError"}, not: []string{"signalled"}},
		{name: "forks_300", body: "import os, time\n    n, err = 0, 'nothing'\n    for _ in range(300):\n        try:\n            child = os.fork()\n        except OSError as e:\n            err = type(e).__name__\n            break\n        if child == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\n    return f'forked {n}, then {err}'",
			want: []string{`"status": "OK"`, "then BlockingIOError"}, not: []string{"forked 300"}},
		{name: "detaches_child", body: fmt.Sprintf("import subprocess\n    subprocess.Popen(['sleep', '%s'], start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n    return 'detached'", marker),
			want: []string{`"status": "OK"`, "detached"},
			after: func(t *testing.T) {
				if pids := processesWith(t, "sleep\x00"+marker+"\x00"); len(pids) > 0 {
					t.Errorf("the detached child still runs after the call: pids %v", pids)
				}
			}},
		{name: "writes_tmp", body: fmt.Sprintf("open(%q, 'w').write('left behind')\n    return 'wrote'", tmpFile),
			want: []string{`"status": "OK"`, "wrote"},
			after: func(t *testing.T) {
				if _, err := os.Stat(tmpFile); err == nil {
					t.Errorf("the tool's %s is on the host", tmpFile)
				}
			}},
	}
}

// processesWith lists the host's live processes whose command line contains
// s (arguments separated by NUL bytes).
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !strings.Contains(string(stat), ") Z ") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestToolsOff: with --tools=off a custom Python tool is never run; the
// model reads why, and the agent goes on.
func TestToolsOff(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil, func(c *node.Config) { c.Tools = node.ToolsOff })
	a := r.agent(t)
	marker := filepath.Join(t.TempDir(), "ran")
	src := fmt.Sprintf("def touch(x: str) -> str:\n    \"\"\"Touch a file.\n\n    Args:\n        x: ignored\n    \"\"\"\n    open(%q, 'w').write('ran')\n    return 'ran'\n", marker)
	tool, err := r.n.Service.CreateTool(ctx, api.CreateTool{SourceCode: src}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.Service.AttachTool(ctx, a.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{call("touch", map[string]any{"x": "hi", "request_heartbeat": true})}}, say("done"))
	resp := send(t, r, a.ID, "touch it")
	if seen := toolMessage(t, r.llm); !strings.Contains(seen, "--tools=off") || !strings.Contains(seen, `"status": "Failed"`) {
		t.Errorf("the model was sent %q; want the refusal naming --tools=off", seen)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the tool ran (%v)", err)
	}
	if said(resp) != "done" {
		t.Errorf("the agent did not go on: %q", said(resp))
	}
	for _, s := range []string{"contained", "any", "off", ""} {
		if _, err := node.ParseToolsMode(s); err != nil {
			t.Errorf("ParseToolsMode(%q): %v", s, err)
		}
	}
	if _, err := node.ParseToolsMode("on"); err == nil {
		t.Error(`ParseToolsMode("on") accepted`)
	}
}

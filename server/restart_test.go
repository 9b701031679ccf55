package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// The restart test runs the server in a child process (this test binary,
// re-executed) so that it can be killed with SIGKILL mid-flight.

const childEnv = "ENGRAM_TEST_CHILD_DATA"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChild(dir)
		return
	}
	os.Exit(m.Run())
}

func runChild(dir string) {
	cfg := DefaultConfig(dir)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	cfg.Node.SyncAlways = true // the point: acknowledged means on disk
	if os.Getenv("OPENAI_BASE_URL") != "" {
		reg, err := llm.FromEnv(os.Getenv)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		cfg.Node.Service.Providers = reg
	}
	if os.Getenv("ENGRAM_TEST_PAUSE_BEFORE_COMMIT") != "" {
		cfg.Node.Run.BeforeStepCommit = func() {
			fmt.Println("PAUSED")
			select {} // until killed
		}
	}
	if os.Getenv("ENGRAM_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("READY %s %d\n", s.URL, s.Node.Ready.Microseconds())
	select {} // until killed
}

type child struct {
	cmd   *exec.Cmd
	url   string
	ready time.Duration
	lines chan string // what the child prints after READY
}

// waitFor waits until the child prints a line starting with text.
func (c *child) waitFor(text string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return false
			}
			if strings.HasPrefix(line, text) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func startChild(t *testing.T, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+dir), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.Fatalf("child did not start: %q %v", line, err)
	}
	var c child
	var us int64
	fmt.Sscanf(strings.TrimPrefix(line, "READY "), "%s %d", &c.url, &us)
	c.cmd, c.ready = cmd, time.Duration(us)*time.Microsecond
	c.lines = make(chan string, 16)
	go func() {
		defer close(c.lines)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case c.lines <- l:
			default:
			}
		}
	}()
	return &c
}

func call(t *testing.T, method, url string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b
}

func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	const agents = 10
	var ids []string
	for i := 0; i < agents; i++ {
		var a struct{ ID string }
		json.Unmarshal(call(t, "POST", c.url+"/v1/agents/", map[string]any{
			"name":          fmt.Sprint("agent ", i),
			"memory_blocks": []map[string]any{{"label": "human", "value": "v0"}, {"label": "persona", "value": "p"}},
		}), &a)
		ids = append(ids, a.ID)
	}
	acked := agents
	for round := 1; round <= 5; round++ {
		for _, id := range ids {
			call(t, "PATCH", c.url+"/v1/agents/"+id+"/core-memory/blocks/human", map[string]any{"value": fmt.Sprint("v", round)})
			call(t, "POST", c.url+"/v1/agents/"+id+"/archival-memory", map[string]any{"text": fmt.Sprint("memory ", round)})
			acked += 2
		}
	}
	// What the clients were told, as the server reports it now.
	want := map[string][]byte{}
	for _, id := range ids {
		want[id] = call(t, "GET", c.url+"/v1/agents/"+id, nil)
		want[id+"/archival"] = call(t, "GET", c.url+"/v1/agents/"+id+"/archival-memory", nil)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()

	c2 := startChild(t, dir)
	t.Logf("%d acknowledged operations; restart after SIGKILL ready in %v", acked, c2.ready)
	for _, id := range ids {
		if got := call(t, "GET", c2.url+"/v1/agents/"+id, nil); !bytes.Equal(got, want[id]) {
			t.Errorf("agent %s after restart:\n got %s\nwant %s", id, got, want[id])
		}
		if got := call(t, "GET", c2.url+"/v1/agents/"+id+"/archival-memory", nil); !bytes.Equal(got, want[id+"/archival"]) {
			t.Errorf("archival of %s after restart:\n got %s\nwant %s", id, got, want[id+"/archival"])
		}
	}
}

// The process dies after the model was asked but before the step committed.
// On restart the accepted message is answered exactly once.
func TestSIGKILLMidStepAnswersOnce(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t,
		llmtest.Step{Delay: time.Minute}, // the first model call never returns: the process dies during it
		llmtest.Step{Content: "back", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"answered once"}`}}},
	)
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, env...)
	var a struct{ ID string }
	json.Unmarshal(call(t, "POST", c.url+"/v1/agents/", map[string]any{
		"agent_type": "memgpt_agent",
		"llm_config": map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
	}), &a)
	go func() {
		b, _ := json.Marshal(map[string]any{"input": "hello"})
		req, _ := http.NewRequest("POST", c.url+"/v1/agents/"+a.ID+"/messages", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(script.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(script.Requests()) == 0 {
		t.Fatal("the model was never called")
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()

	c2 := startChild(t, dir, env...)
	inputs, replies := answers(t, c2, a.ID)
	if inputs != 1 || replies != 1 {
		t.Fatalf("after restart: %d copies of the input, %d replies; want 1 and 1", inputs, replies)
	}
	if got := len(script.Requests()); got != 2 {
		t.Fatalf("%d model calls; want 2 (the interrupted one and the rerun)", got)
	}
}

// The process dies after the model answered and before the step committed:
// the worst moment. After restart the message is answered exactly once.
func TestSIGKILLBetweenAnswerAndCommit(t *testing.T) {
	dir := t.TempDir()
	answer := llmtest.Step{Content: "ok", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"answered once"}`}}}
	script := llmtest.NewServer(t, answer, answer)
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, append(env, "ENGRAM_TEST_PAUSE_BEFORE_COMMIT=1")...)
	var a struct{ ID string }
	json.Unmarshal(call(t, "POST", c.url+"/v1/agents/", map[string]any{
		"agent_type": "memgpt_agent",
		"llm_config": map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
	}), &a)
	go func() {
		b, _ := json.Marshal(map[string]any{"input": "hello"})
		req, _ := http.NewRequest("POST", c.url+"/v1/agents/"+a.ID+"/messages", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if !c.waitFor("PAUSED", 10*time.Second) {
		t.Fatal("the child never reached the moment before the commit")
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()

	c2 := startChild(t, dir, env...)
	inputs, replies := answers(t, c2, a.ID)
	if inputs != 1 || replies != 1 || len(script.Requests()) != 2 {
		t.Fatalf("after restart: %d inputs, %d replies, %d model calls; want 1, 1, 2", inputs, replies, len(script.Requests()))
	}
}

// answers waits for the agent's history to end with a tool return (a
// finished run) and counts the copies of the input "hello" and of the reply
// "answered once" in it.
func answers(t *testing.T, c *child, agentID string) (inputs, replies int) {
	t.Helper()
	var history []api.LettaMessage
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		json.Unmarshal(call(t, "GET", c.url+"/v1/agents/"+agentID+"/messages?order=asc&limit=1000", nil), &history)
		if n := len(history); n > 0 && history[n-1].MessageType == api.ToolReturnMessageType {
			break
		}
	}
	for _, m := range history {
		if m.MessageType == api.UserMessageType && *m.Content == "hello" {
			inputs++
		}
		if m.MessageType == api.AssistantMessageType && *m.Content == "answered once" {
			replies++
		}
	}
	return inputs, replies
}

// The process dies after the first step of a run committed (the model
// called a tool that edits memory and asked for a heartbeat), during the
// model call of its next step. After restart the run goes on from its
// stored step: the tool's edit is there once, the heartbeat that the
// interrupted step would have stored is stored once, and the reply comes
// once.
func TestSIGKILLAfterFirstStepContinues(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t,
		llmtest.Step{Content: "noting", ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		llmtest.Step{Delay: time.Minute}, // the second step's call never returns: the process dies during it
		llmtest.Step{Content: "back", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"answered once"}`}}},
	)
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, env...)
	var a struct{ ID string }
	json.Unmarshal(call(t, "POST", c.url+"/v1/agents/", map[string]any{
		"agent_type":    "memgpt_agent",
		"memory_blocks": []map[string]any{{"label": "human", "value": "Ada."}, {"label": "persona", "value": "p"}},
		"llm_config":    map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
	}), &a)
	go func() {
		b, _ := json.Marshal(map[string]any{"input": "hello"})
		req, _ := http.NewRequest("POST", c.url+"/v1/agents/"+a.ID+"/messages", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(script.Requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(script.Requests()) < 2 {
		t.Fatal("the run never reached its second step")
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()

	c2 := startChild(t, dir, env...)
	restarted := time.Now()
	defer func() { t.Logf("answered %s after the restart", time.Since(restarted)) }()
	var (
		history         []api.LettaMessage
		inputs, replies int
	)
	for deadline := time.Now().Add(30 * time.Second); replies == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		json.Unmarshal(call(t, "GET", c2.url+"/v1/agents/"+a.ID+"/messages?order=asc&limit=1000", nil), &history)
		inputs, replies = 0, 0
		for _, m := range history {
			if m.MessageType == api.UserMessageType && *m.Content == "hello" {
				inputs++
			}
			if m.MessageType == api.AssistantMessageType && *m.Content == "answered once" {
				replies++
			}
		}
	}
	if inputs != 1 || replies != 1 {
		t.Fatalf("after restart: %d copies of the input, %d replies; want 1 and 1", inputs, replies)
	}
	if got := len(script.Requests()); got != 3 {
		t.Fatalf("%d model calls; want 3 (the first step, the interrupted second, the second again)", got)
	}
	calls, heartbeats := 0, 0
	for _, m := range history {
		if m.MessageType == api.ToolCallMessageType && m.ToolCall != nil && m.ToolCall.Name == "core_memory_append" {
			calls++
		}
		if m.MessageType == api.UserMessageType && m.Content != nil && strings.Contains(*m.Content, "heartbeat") {
			heartbeats++
		}
	}
	var block struct{ Value string }
	json.Unmarshal(call(t, "GET", c2.url+"/v1/agents/"+a.ID+"/core-memory/blocks/human", nil), &block)
	if calls != 1 || heartbeats != 1 || strings.Count(block.Value, "Likes tea") != 1 {
		t.Fatalf("after restart: %d tool calls, %d heartbeats, human block %q; want the call and its heartbeat once, the edit once", calls, heartbeats, block.Value)
	}
	// The step after the restart read the first step's call and its return
	// and one heartbeat.
	last := script.Requests()[2]
	hb := 0
	for _, m := range last.Messages {
		if m.Role == "user" && strings.Contains(m.Content, "heartbeat") {
			hb++
		}
	}
	if hb != 1 {
		t.Fatalf("the continued step read %d heartbeats; want 1", hb)
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// These tests hold a send to exactly-once: a message a client sends with an
// otid or an Idempotency-Key is stored once and answered once, and every
// copy of the send — concurrent, resent, resent after a crash — gets that
// one answer.

// echo is a model that answers each call with send_message "re: <text>",
// where text is the newest user message in the context, after delay. A call
// whose context does not end with a user's message (a memory warning, a
// summary request) gets a plain "noted", which says nothing to the user.
func echo(delay time.Duration) func(llmtest.Recorded) llmtest.Step {
	return func(rec llmtest.Recorded) llmtest.Step {
		var env struct{ Type string }
		if n := len(rec.Messages); n == 0 || json.Unmarshal([]byte(rec.Messages[n-1].Content), &env) != nil || env.Type != "user_message" {
			return llmtest.Step{Delay: delay, Content: "noted"}
		}
		return llmtest.Step{Delay: delay, Content: "thinking", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: quoteArgs("re: " + newestInput(rec))}}}
	}
}

// newestInput is the newest user message a model call sees.
func newestInput(rec llmtest.Recorded) string {
	for i := len(rec.Messages) - 1; i >= 0; i-- {
		var env struct{ Type, Message string }
		if m := rec.Messages[i]; m.Role == "user" && json.Unmarshal([]byte(m.Content), &env) == nil && env.Type == "user_message" {
			return env.Message
		}
	}
	return ""
}

func quoteArgs(message string) string {
	b, _ := json.Marshal(map[string]any{"message": message})
	return string(b)
}

type testServer struct {
	*Server
	once sync.Once
}

// stop closes the server; the test's cleanup does it otherwise.
func (s *testServer) stop() {
	s.once.Do(func() { s.Close(context.Background()) })
}

// startModelAt starts an in-process server on dir whose agents run on script.
func startModelAt(t *testing.T, dir string, script *llmtest.Server, edit ...func(*Config)) *testServer {
	t.Helper()
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 30 * time.Second}))
	cfg := DefaultConfig(dir)
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "", false
	cfg.Node.Service.Providers = reg
	for _, e := range edit {
		e(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s}
	t.Cleanup(ts.stop)
	return ts
}

func newAgent(t *testing.T, url string) string {
	t.Helper()
	var a api.AgentState
	json.Unmarshal(call(t, "POST", url+"/v1/agents/", map[string]any{
		"agent_type": "memgpt_agent", // the scripts speak the MemGPT loop
		"llm_config": map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
	}), &a)
	if a.ID == "" {
		t.Fatal("no agent created")
	}
	return a.ID
}

// sent is what a client was told about one send.
type sent struct {
	code int
	resp api.LettaResponse
	body string
	err  error
}

// replies lists what the agent said in the response.
func (s sent) replies() []string {
	var out []string
	for _, m := range s.resp.Messages {
		if m.MessageType == api.AssistantMessageType && m.Content != nil {
			out = append(out, *m.Content)
		}
	}
	return out
}

// answered reports whether the client got 200 with exactly the one reply want.
func (s sent) answered(want string) bool {
	r := s.replies()
	return s.err == nil && s.code == 200 && len(r) == 1 && r[0] == want
}

func (s sent) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("%d %s", s.code, s.body)
}

// messagesOf lists the response's messages (id, type, date and text), its
// stop reason and its usage.
func messagesOf(s sent) []string {
	var out []string
	for _, m := range s.resp.Messages {
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	b, _ := json.Marshal([]any{s.resp.StopReason, s.resp.Usage})
	return append(out, string(b))
}

// sendText sends one user message, with an otid and an Idempotency-Key when
// they are not empty.
func sendText(url, agentID, text, otid, key string) sent {
	msg := map[string]any{"role": "user", "content": text}
	if otid != "" {
		msg["otid"] = otid
	}
	b, _ := json.Marshal(map[string]any{"messages": []any{msg}})
	req, _ := http.NewRequest("POST", url+"/v1/agents/"+agentID+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return sent{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := sent{code: resp.StatusCode, body: string(body)}
	if resp.StatusCode == 200 {
		out.err = json.Unmarshal(body, &out.resp)
	}
	return out
}

// turn is one stored message as history shows it: who, and what.
type turn struct{ kind, text string }

// history lists an agent's user messages and replies, oldest first.
func history(t *testing.T, url, agentID string) []turn {
	t.Helper()
	var ms []api.LettaMessage
	json.Unmarshal(call(t, "GET", url+"/v1/agents/"+agentID+"/messages?order=asc&limit=10000", nil), &ms)
	var out []turn
	for _, m := range ms {
		switch {
		case m.MessageType == api.UserMessageType && m.Content != nil && !strings.HasPrefix(*m.Content, "{"):
			out = append(out, turn{"user", *m.Content})
		case m.MessageType == api.AssistantMessageType && m.Content != nil:
			out = append(out, turn{"reply", *m.Content})
		}
	}
	return out
}

func count(h []turn, kind, text string) int {
	n := 0
	for _, x := range h {
		if x.kind == kind && x.text == text {
			n++
		}
	}
	return n
}

// Defect 1 of issue 12: four simultaneous sends of one message store it once,
// run the agent once, and all four get its reply.
func TestConcurrentSendsWithOneKeyStoreAndAnswerOnce(t *testing.T) {
	for _, tc := range []struct{ name, otid, key string }{{"otid", "o1", ""}, {"Idempotency-Key", "", "k1"}} {
		t.Run(tc.name, func(t *testing.T) {
			script := llmtest.NewServer(t)
			script.SetResponder(echo(300 * time.Millisecond))
			s := startModelAt(t, t.TempDir(), script)
			id := newAgent(t, s.URL)
			got := make([]sent, 4)
			var wg sync.WaitGroup
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i] = sendText(s.URL, id, "x", tc.otid, tc.key)
				}()
			}
			wg.Wait()
			for i, g := range got {
				if !g.answered("re: x") {
					t.Errorf("send %d: %v", i, g)
				}
				// The same response: messages (ids, dates, contents), stop reason, usage.
				if a, b := fmt.Sprint(messagesOf(got[0])), fmt.Sprint(messagesOf(g)); a != b {
					t.Errorf("send %d answered other messages than send 0:\n%s\n%s", i, b, a)
				}
			}
			h := history(t, s.URL, id)
			if count(h, "user", "x") != 1 || count(h, "reply", "re: x") != 1 || len(script.Requests()) != 1 {
				t.Fatalf("history %v after %d model calls; want the input once and one reply", h, len(script.Requests()))
			}
		})
	}
}

// Defect 2 of issue 12: sends that overlap, and their resends, each get the
// reply of their own input — resent after the run, or while it runs.
func TestResentSendsAnswerTheirOwnReply(t *testing.T) {
	script := llmtest.NewServer(t)
	script.SetResponder(echo(time.Second))
	s := startModelAt(t, t.TempDir(), script)
	id := newAgent(t, s.URL)
	texts := []string{"W", "X", "Y"}
	first := make([]sent, len(texts))
	var wg sync.WaitGroup
	for i, text := range texts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			first[i] = sendText(s.URL, id, text, "otid-"+text, "")
		}()
	}
	wg.Wait()
	for i, text := range texts {
		if !first[i].answered("re: " + text) {
			t.Errorf("send %s: %v", text, first[i])
		}
		if again := sendText(s.URL, id, text, "otid-"+text, ""); !again.answered("re: "+text) ||
			fmt.Sprint(messagesOf(again)) != fmt.Sprint(messagesOf(first[i])) {
			t.Errorf("resent %s: %v\nfirst answered %v", text, again, first[i])
		}
	}
	// Resent while its run is still going: the resend waits for the reply.
	var z sent
	wg.Add(1)
	go func() {
		defer wg.Done()
		z = sendText(s.URL, id, "Z", "otid-Z", "")
	}()
	time.Sleep(300 * time.Millisecond)
	again := sendText(s.URL, id, "Z", "otid-Z", "")
	wg.Wait()
	if !z.answered("re: Z") || !again.answered("re: Z") {
		t.Errorf("Z: %v; resent during its run: %v", z, again)
	}
	h := history(t, s.URL, id)
	for _, text := range append(texts, "Z") {
		if count(h, "user", text) != 1 || count(h, "reply", "re: "+text) != 1 {
			t.Fatalf("history %v: want each input once with one reply", h)
		}
	}
	if n := len(script.Requests()); n != 4 {
		t.Fatalf("%d model calls for 4 inputs", n)
	}
}

// Defect 2 of issue 12, after a crash: the process dies during the model
// call; resent after the restart, the send gets its own reply (waiting for
// the run the restart began).
func TestResendAfterCrashMidStepGetsItsReply(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	script.SetResponder(echo(2 * time.Second))
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, env...)
	id := newAgent(t, c.url)
	go sendText(c.url, id, "hello", "otid-hello", "")
	for deadline := time.Now().Add(10 * time.Second); len(script.Requests()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the model was never called")
		}
	}
	time.Sleep(time.Second)
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()

	c2 := startChild(t, dir, env...)
	if got := sendText(c2.url, id, "hello", "otid-hello", ""); !got.answered("re: hello") {
		t.Fatalf("resent after the crash: %v", got)
	}
	h := history(t, c2.url, id)
	if count(h, "user", "hello") != 1 || count(h, "reply", "re: hello") != 1 {
		t.Fatalf("history %v: want the input once with one reply", h)
	}
}

// Defect 3 of issue 12: an otid or a key is recognised however many messages
// came after it, after a restart from a snapshot and after a full replay, and
// its resend never hangs.
func TestKeyRecognisedAfterAnyNumberOfMessages(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	script.SetResponder(echo(0))
	s := startModelAt(t, dir, script)
	id := newAgent(t, s.URL)
	if g := sendText(s.URL, id, "first", "otid-first", ""); !g.answered("re: first") {
		t.Fatal(g)
	}
	if g := sendText(s.URL, id, "keyed", "", "key-keyed"); !g.answered("re: keyed") {
		t.Fatal(g)
	}
	for i := 0; i < 180; i++ { // 540 later messages: inputs and their replies
		if g := sendText(s.URL, id, fmt.Sprint("m", i), "", ""); g.code != 200 {
			t.Fatal(g)
		}
	}
	calls := len(script.Requests())
	check := func(what, url string) {
		t.Helper()
		if g := sendText(url, id, "first", "otid-first", ""); !g.answered("re: first") {
			t.Errorf("%s: otid resent: %v", what, g)
		}
		if g := sendText(url, id, "keyed", "", "key-keyed"); !g.answered("re: keyed") {
			t.Errorf("%s: key resent: %v", what, g)
		}
		h := history(t, url, id)
		if count(h, "user", "first") != 1 || count(h, "user", "keyed") != 1 || len(script.Requests()) != calls {
			t.Fatalf("%s: inputs stored %d and %d times, %d model calls (want %d)", what,
				count(h, "user", "first"), count(h, "user", "keyed"), len(script.Requests()), calls)
		}
	}
	check("running", s.URL)
	s.stop() // writes a snapshot
	s2 := startModelAt(t, dir, script)
	check("restored from a snapshot", s2.URL)
	s2.stop()
	s3 := startModelAt(t, dir, script, func(c *Config) { c.Node.NoRestore = true })
	check("replayed from the log", s3.URL)
}

// Defect 4 of issue 12: inputs left unanswered by a crash are answered after
// the restart one by one, in order, each with its own reply.
func TestEachInputGetsItsOwnReplyAfterRestart(t *testing.T) {
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	script.SetResponder(echo(time.Minute))
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, env...)
	id := newAgent(t, c.url)
	go sendText(c.url, id, "A", "otid-A", "")
	for deadline := time.Now().Add(10 * time.Second); len(script.Requests()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the model was never called")
		}
	}
	go sendText(c.url, id, "B", "otid-B", "")
	for deadline := time.Now().Add(10 * time.Second); count(history(t, c.url, id), "user", "B") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("B was never stored")
		}
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()

	script.SetResponder(echo(0))
	c2 := startChild(t, dir, env...)
	var h []turn
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if h = history(t, c2.url, id); count(h, "reply", "re: B") > 0 {
			break
		}
	}
	for len(h) > 0 && h[0].kind != "user" { // the greeting
		h = h[1:]
	}
	// B was stored while A's run went on; each has a run and a reply of its own, A's first.
	want := []turn{{"user", "A"}, {"user", "B"}, {"reply", "re: A"}, {"reply", "re: B"}}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Fatalf("history after restart %v; want %v", h, want)
	}
}

// Defect 5 of issue 12: an input that is stored is answered, never refused
// with 409, even when another input arrives while its run summarizes.
func TestStoredInputIsNeverAnswered409(t *testing.T) {
	script := llmtest.NewServer(t)
	var (
		overflow   atomic.Bool
		summarized = make(chan struct{}, 1)
	)
	script.SetResponder(func(rec llmtest.Recorded) llmtest.Step {
		if len(rec.Messages) > 0 && strings.Contains(rec.Messages[0].Content, "summarize") {
			select {
			case summarized <- struct{}{}:
			default:
			}
			return llmtest.Step{Delay: time.Second, Content: "Ada and Sam talked."}
		}
		if newestInput(rec) == "A" && overflow.CompareAndSwap(true, false) {
			return llmtest.Step{Overflow: true}
		}
		return echo(0)(rec)
	})
	s := startModelAt(t, t.TempDir(), script)
	id := newAgent(t, s.URL)
	for i := 0; i < 3; i++ {
		if g := sendText(s.URL, id, fmt.Sprint("warm-up ", i), "", ""); g.code != 200 {
			t.Fatal(g)
		}
	}
	overflow.Store(true)
	var a, b sent
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a = sendText(s.URL, id, "A", "otid-A", "")
	}()
	select {
	case <-summarized:
	case <-time.After(10 * time.Second):
		t.Fatal("the run never summarized")
	}
	go func() {
		defer wg.Done()
		b = sendText(s.URL, id, "B", "otid-B", "")
	}()
	wg.Wait()
	if !a.answered("re: A") || !b.answered("re: B") {
		t.Fatalf("A (its run summarized while B arrived): %v\nB: %v", a, b)
	}
	h := history(t, s.URL, id)
	if count(h, "user", "A") != 1 || count(h, "reply", "re: A") != 1 || count(h, "reply", "re: B") != 1 {
		t.Fatalf("history %v", h)
	}
}

// Defect 6 of issue 12: a key (an otid, or an Idempotency-Key) reused with
// another body is refused with 422, and nothing of it is stored.
func TestReusedKeyWithAnotherBodyIs422(t *testing.T) {
	script := llmtest.NewServer(t)
	script.SetResponder(echo(0))
	s := startModelAt(t, t.TempDir(), script)
	id := newAgent(t, s.URL)
	for _, tc := range []struct{ name, otid, key string }{{"otid", "otid-1", ""}, {"Idempotency-Key", "", "key-1"}} {
		if g := sendText(s.URL, id, "a "+tc.name, tc.otid, tc.key); !g.answered("re: a " + tc.name) {
			t.Fatalf("%s: %v", tc.name, g)
		}
		g := sendText(s.URL, id, "b "+tc.name, tc.otid, tc.key)
		var d struct{ Detail string }
		json.Unmarshal([]byte(g.body), &d)
		if g.code != 422 || d.Detail == "" {
			t.Errorf("%s reused with another body: %v; want 422 with a detail", tc.name, g)
		}
		if h := history(t, s.URL, id); count(h, "user", "b "+tc.name) != 0 {
			t.Errorf("%s: the other body was stored: %v", tc.name, h)
		}
	}
	// An otid names the send's command, so it is bounded as a key is.
	if g := sendText(s.URL, id, "long", strings.Repeat("o", 256), ""); g.code != 422 {
		t.Errorf("a 256-byte otid: %v; want 422", g)
	}
	if n := len(script.Requests()); n != 2 {
		t.Fatalf("%d model calls; want 2", n)
	}
}

// A send whose run failed does not hold up the agent's later sends, and is
// not run again for them: its own resend runs it and gets its reply.
func TestFailedSendWaitsForItsOwnRetry(t *testing.T) {
	script := llmtest.NewServer(t, llmtest.Step{Status: 500})
	script.SetResponder(echo(0))
	s := startModelAt(t, t.TempDir(), script)
	id := newAgent(t, s.URL)
	if g := sendText(s.URL, id, "F", "otid-F", ""); g.code < 500 {
		t.Fatalf("the failed run was answered %v", g)
	}
	if g := sendText(s.URL, id, "G", "otid-G", ""); !g.answered("re: G") || len(script.Requests()) != 2 {
		t.Fatalf("the send after a failed one: %v after %d model calls", g, len(script.Requests()))
	}
	if g := sendText(s.URL, id, "F", "otid-F", ""); !g.answered("re: F") {
		t.Fatalf("the failed send resent: %v", g)
	}
	h := history(t, s.URL, id)
	if count(h, "user", "F") != 1 || count(h, "reply", "re: F") != 1 || count(h, "reply", "re: G") != 1 {
		t.Fatalf("history %v", h)
	}
}

// A resend answers with the stop reason the first got: here the run stopped
// at the client's max_steps, although the agent asked to go on.
func TestResentSendKeepsItsStopReason(t *testing.T) {
	script := llmtest.NewServer(t, llmtest.Step{Content: "noting", ToolCalls: []agents.ToolCall{
		{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}})
	s := startModelAt(t, t.TempDir(), script)
	id := newAgent(t, s.URL)
	body := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "I like tea", "otid": "otid-tea"}}, "max_steps": 1}
	var first, again api.LettaResponse
	json.Unmarshal(call(t, "POST", s.URL+"/v1/agents/"+id+"/messages", body), &first)
	json.Unmarshal(call(t, "POST", s.URL+"/v1/agents/"+id+"/messages", body), &again)
	if first.StopReason.StopReason != "max_steps" {
		t.Fatalf("first: stop reason %+v", first.StopReason)
	}
	if a, b := fmt.Sprint(messagesOf(sent{resp: first})), fmt.Sprint(messagesOf(sent{resp: again})); a != b {
		t.Fatalf("resent:\n%s\nfirst:\n%s", b, a)
	}
}

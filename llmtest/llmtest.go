// Package llmtest is a scripted LLM for tests: a real HTTP server on loopback
// that speaks OpenAI's chat-completions and Anthropic's messages protocols and
// replays a script.
//
// The server is faithful enough on the wire that the official OpenAI and
// Anthropic SDKs talk to it as they would to the real services, streaming
// included. It serves:
//
//	POST /v1/chat/completions  OpenAI chat completions; SSE chunks when "stream": true
//	POST /v1/messages          Anthropic messages; SSE events when "stream": true
//	GET  /v1/models            the model list, in OpenAI's format (Anthropic's when
//	                           the request carries an anthropic-version header)
//	POST /v1/embeddings        OpenAI embeddings from a scripted function
//	                           ([Server.SetEmbedder]); consumes no step
//
// Every completion request, of either protocol, consumes the next [Step] of
// the script, in order; a retry by the client is a request like any other and
// consumes a step too. When the script is exhausted the server answers the
// step its responder computes from the request ([Server.SetResponder]), or
// else the default step ([Server.SetDefault]), which is at first an HTTP 500 "script
// exhausted" that asks the SDKs not to retry, so that a test that sends more
// requests than it scripted fails at once. A request the real service would
// reject as malformed (an unknown role, a tool result that answers no call,
// no max_tokens for Anthropic) gets the service's 400 reply and consumes no
// step.
//
// [Server.Requests] returns every request received, decoded, for assertions
// on what the client sent.
package llmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
)

// Step is one scripted reply. The zero Step is a plain reply with empty
// content. At most one of Overflow, Status, Malformed and Empty takes effect,
// in that order.
type Step struct {
	Content string // assistant text
	// Reasoning is native reasoning sent with the reply: OpenAI-compatible
	// servers' reasoning_content (whole and in deltas); for Anthropic, a
	// thinking block before the text.
	Reasoning string
	ToolCalls []agents.ToolCall // name and arguments JSON; an empty ID is generated
	// Finish overrides the finish reason, in OpenAI's words: "stop",
	// "tool_calls", "length" (truncation), "content_filter". Anthropic replies
	// translate them to end_turn, tool_use, max_tokens and refusal; other
	// values are sent as they are. Empty: "tool_calls" when there are tool
	// calls, else "stop".
	Finish string
	// Status, when non-zero, answers this HTTP status with ErrorBody instead
	// of a reply.
	Status int
	// ErrorBody is the body sent with Status. Empty: an error JSON shaped as
	// the provider shapes it, with the provider's error type for the status.
	ErrorBody string
	// RetryAfter is sent with Status as the retry-after-ms header, which both
	// SDKs obey; the zero value sends "0" so that clients retry at once.
	// Negative sends no header, and the SDKs back off on their own (half a
	// second and up).
	RetryAfter time.Duration
	// Overflow answers the provider's context-overflow error: for OpenAI a
	// 400 with code "context_length_exceeded" and the message "This model's
	// maximum context length is ...", for Anthropic a 400
	// invalid_request_error "prompt is too long: ...".
	Overflow bool
	// Delay is waited before answering, to provoke client timeouts. The wait
	// ends early if the client goes away.
	Delay time.Duration
	// Hold, when set, is waited for (closed) before answering, after Delay:
	// a test holds the model call open while it does something else. A
	// responder must not block itself: it runs under the server's lock.
	Hold <-chan struct{}
	// Malformed answers 200 with a body that is not valid JSON (for a
	// streaming request, an SSE event whose data is not JSON).
	Malformed bool
	// Empty answers a reply with no choices (OpenAI) or no content blocks
	// (Anthropic).
	Empty bool
	// Usage is the token usage reported. Zero: a plausible count derived from
	// the sizes of the request and the reply; a zero TotalTokens is the sum of
	// the other two.
	Usage agents.Usage

	exhausted bool // the built-in default: 500 with x-should-retry: false
}

// Recorded is one request the server received, decoded.
type Recorded struct {
	Protocol string // "openai" or "anthropic"
	Method   string
	Path     string
	Header   http.Header
	Body     []byte // the raw request body

	Model        string
	Stream       bool
	IncludeUsage bool   // OpenAI: stream_options.include_usage
	System       string // Anthropic: the top-level system text, blocks joined by "\n"
	Messages     []Message
	Tools        []agents.Tool // name, description and the raw JSON schema
	// ToolChoice is OpenAI's tool_choice when it is a string ("auto",
	// "required", "none") or its raw JSON when it is an object; Anthropic's
	// tool_choice.type ("auto", "any", "tool", "none"). Empty when absent.
	ToolChoice string
	// ParallelToolCalls is OpenAI's parallel_tool_calls, or the negation of
	// Anthropic's tool_choice.disable_parallel_tool_use; nil when absent.
	ParallelToolCalls *bool
	MaxTokens         int // max_tokens, or OpenAI's max_completion_tokens
	Temperature       *float64
}

// Message is one decoded message of a recorded request.
type Message struct {
	Role string
	// Content is the text: a string content as it is; text parts (OpenAI)
	// or text blocks (Anthropic) joined by "\n".
	Content    string
	Name       string            // OpenAI: the sender's name
	ToolCalls  []agents.ToolCall // OpenAI tool_calls; Anthropic tool_use blocks, input as compact JSON
	ToolCallID string            // OpenAI tool messages: the call answered
	// ToolResults are Anthropic tool_result blocks.
	ToolResults []ToolResult
}

// ToolResult is an Anthropic tool_result block.
type ToolResult struct {
	ToolCallID string // tool_use_id
	Content    string // text, blocks joined by "\n"
	IsError    bool
}

// Server is a scripted LLM server on loopback. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL for OpenAI clients: http://127.0.0.1:PORT/v1.
	URL string
	// AnthropicURL is the base URL for Anthropic clients,
	// http://127.0.0.1:PORT, to which the SDK appends /v1/messages.
	AnthropicURL string
	// Models are the ids GET /v1/models lists. Set them before the first
	// request. Default: ["gpt-4o-mini"].
	Models []string

	srv  *httptest.Server
	done chan struct{} // closed at cleanup, to end handlers waiting out a Delay

	mu    sync.Mutex // guards the fields below
	steps []Step
	def   *Step
	reply func(Recorded) Step
	reqs  []Recorded
	seq   int // numbers replies, for their IDs

	emb embeddings // POST /v1/embeddings (embeddings.go)
}

// NewServer starts a server that replays steps, and closes it when the test
// ends.
func NewServer(t testing.TB, steps ...Step) *Server {
	t.Helper()
	s := &Server{
		Models: []string{"gpt-4o-mini"},
		done:   make(chan struct{}),
		steps:  append([]Step(nil), steps...),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.serveOpenAI)
	mux.HandleFunc("POST /v1/messages", s.serveAnthropic)
	mux.HandleFunc("GET /v1/models", s.serveModels)
	mux.HandleFunc("POST /v1/embeddings", s.serveEmbeddings)
	mux.HandleFunc("/", s.serveNotFound)
	s.srv = httptest.NewServer(mux)
	s.AnthropicURL = s.srv.URL
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// Push appends steps to the script.
func (s *Server) Push(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, steps...)
}

// SetDefault sets the step answered once the script is exhausted. nil
// restores the built-in default, an HTTP 500 "script exhausted".
func (s *Server) SetDefault(step *Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if step == nil {
		s.def = nil
		return
	}
	st := *step
	s.def = &st
}

// SetResponder makes the server compute the step it answers from the
// request, once the script is exhausted (before the default step): a reply
// that depends on what was asked, for tests that send concurrently and
// cannot know the order of model calls. f must be safe for concurrent use.
// nil removes it.
func (s *Server) SetResponder(f func(Recorded) Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = f
}

// Requests returns every request received so far, in order of arrival.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.reqs...)
}

// Pending reports how many scripted steps have not been consumed yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.steps)
}

// record stores rec and, if consume is set, takes the next step of the
// script. It returns the step and the reply's sequence number.
func (s *Server) record(rec Recorded, consume bool) (Step, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, rec)
	s.seq++
	if !consume {
		return Step{}, s.seq
	}
	if len(s.steps) > 0 {
		st := s.steps[0]
		s.steps = s.steps[1:]
		return st, s.seq
	}
	if s.reply != nil {
		return s.reply(rec), s.seq
	}
	if s.def != nil {
		return *s.def, s.seq
	}
	return Step{exhausted: true}, s.seq
}

// wait sleeps for d, and reports false if the client or the server went away
// meanwhile.
func (s *Server) wait(ctx context.Context, st Step) bool {
	if st.Delay > 0 {
		t := time.NewTimer(st.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	if st.Hold != nil {
		select {
		case <-st.Hold:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	return true
}

func newRecorded(protocol string, r *http.Request, body []byte) Recorded {
	return Recorded{
		Protocol: protocol,
		Method:   r.Method,
		Path:     r.URL.Path,
		Header:   r.Header.Clone(),
		Body:     body,
	}
}

func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	protocol := "openai"
	if r.Header.Get("anthropic-version") != "" {
		protocol = "anthropic"
	}
	s.record(newRecorded(protocol, r, nil), false)
	type openAIModel struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	type anthropicModel struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	if protocol == "anthropic" {
		list := struct {
			Data    []anthropicModel `json:"data"`
			HasMore bool             `json:"has_more"`
			FirstID *string          `json:"first_id"`
			LastID  *string          `json:"last_id"`
		}{Data: []anthropicModel{}}
		for _, id := range s.Models {
			list.Data = append(list.Data, anthropicModel{Type: "model", ID: id, DisplayName: id, CreatedAt: "2025-01-01T00:00:00Z"})
		}
		if n := len(s.Models); n > 0 {
			list.FirstID, list.LastID = &s.Models[0], &s.Models[n-1]
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	list := struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{Object: "list", Data: []openAIModel{}}
	for _, id := range s.Models {
		list.Data = append(list.Data, openAIModel{ID: id, Object: "model", Created: 1700000000, OwnedBy: "llmtest"})
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) serveNotFound(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.record(newRecorded("openai", r, body), false)
	writeJSON(w, http.StatusNotFound, json.RawMessage(openAIErrorBody(http.StatusNotFound,
		fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "")))
}

// writeJSON answers status with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always encode
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers an error status the way st asks for: with its
// retry-after header, and x-should-retry: false for the built-in default.
func writeError(w http.ResponseWriter, st Step, status int, body string) {
	switch {
	case st.exhausted:
		w.Header().Set("x-should-retry", "false")
	case st.RetryAfter >= 0:
		w.Header().Set("retry-after-ms", fmt.Sprint(st.RetryAfter.Milliseconds()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// sse writes server-sent events, flushing each.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &sse{w: w, f: f}
}

// event writes one event; an empty name writes a data-only event.
func (e *sse) event(name string, data any) {
	var b []byte
	switch d := data.(type) {
	case string:
		b = []byte(d)
	case []byte:
		b = d
	default:
		var err error
		if b, err = json.Marshal(d); err != nil {
			panic(err)
		}
	}
	if name != "" {
		fmt.Fprintf(e.w, "event: %s\n", name)
	}
	fmt.Fprintf(e.w, "data: %s\n\n", b)
	if e.f != nil {
		e.f.Flush()
	}
}

// pieces splits s into chunks of at most n runes, as a model streams it.
func pieces(s string, n int) []string {
	var out []string
	r := []rune(s)
	for len(r) > n {
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
}

// usage is the step's usage, or a plausible one for a request of reqSize
// bytes.
func (st Step) usage(reqSize int) agents.Usage {
	u := st.Usage
	if u == (agents.Usage{}) {
		n := len(st.Content)
		for _, c := range st.ToolCalls {
			n += len(c.Name) + len(c.Arguments)
		}
		u.PromptTokens = reqSize/4 + 1
		u.CompletionTokens = n/4 + 1
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

// finish is the step's finish reason, in OpenAI's words.
func (st Step) finish() string {
	switch {
	case st.Finish != "":
		return st.Finish
	case len(st.ToolCalls) > 0:
		return "tool_calls"
	default:
		return "stop"
	}
}

// joinText joins texts with newlines.
func joinText(texts []string) string {
	var b strings.Builder
	for _, t := range texts {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(t)
	}
	return b.String()
}

// stringOrTexts decodes a content that is either a JSON string or an array of
// {"type":"text","text":...} parts, and returns its text.
func stringOrTexts(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor an array of parts")
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return joinText(texts), nil
}

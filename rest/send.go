package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// sendMessage answers POST /v1/agents/{id}/messages: a LettaResponse, or
// with "streaming": true (0.5: "stream_steps") a server-sent event stream.
func (h *handler) sendMessage(w http.ResponseWriter, r *http.Request) {
	h.send(w, r, false)
}

// streamMessage answers the deprecated .../messages/stream, which always streams.
func (h *handler) streamMessage(w http.ResponseWriter, r *http.Request) {
	h.send(w, r, true)
}

func (h *handler) send(w http.ResponseWriter, r *http.Request, alwaysStream bool) {
	var req api.SendMessage
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	h.sendTo(w, r, r.PathValue("agent_id"), "", req, alwaysStream)
}

// pingEvery is how often a stream asked for pings ("include_pings") sends
// one while the agent works, so that proxies and clients see it is alive.
var pingEvery = 10 * time.Second

// sendTo sends req to an agent, in one of its conversations ("" for its
// default one), answering JSON or a stream.
func (h *handler) sendTo(w http.ResponseWriter, r *http.Request, agentID, conv string, req api.SendMessage, alwaysStream bool) {
	inputs, err := service.Inputs(req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	streaming := alwaysStream || isTrue(req.Streaming) || isTrue(req.StreamSteps)
	if !streaming && (isTrue(req.StreamTokens) || (req.IncludePings != nil && !*req.IncludePings)) {
		h.fail(w, r, unprocessable("stream_tokens and include_pings need streaming: true"))
		return
	}
	keep, err := messageTypes(req.IncludeReturnMessageTypes)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	opts := service.SendOptions{UseAssistantMessage: req.UseAssistantMessage == nil || *req.UseAssistantMessage, ClientTools: req.ClientTools, ConversationID: conv}
	if req.OverrideModel != nil {
		opts.OverrideModel = *req.OverrideModel
	}
	if req.MaxSteps != nil {
		if *req.MaxSteps < 1 || *req.MaxSteps > 1000 {
			h.fail(w, r, unprocessable("max_steps must be in 1..1000"))
			return
		}
		opts.MaxSteps = *req.MaxSteps
	}
	ctx := r.Context()
	opts.Key = r.Header.Get("Idempotency-Key")
	if opts.Key == "" && len(inputs) > 0 {
		opts.Key = inputs[0].Otid
	}
	if opts.Key == "" {
		// The input is stored before the agent runs, so a send that failed
		// may have been kept, and sending the same body again stores it
		// twice. The official SDKs retry a 5xx on their own unless told
		// not to; without a key that makes the retry safe, tell them.
		w.Header().Set("X-Should-Retry", "false")
	}
	if !streaming {
		resp, err := h.svc.SendMessage(ctx, agentID, inputs, opts)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		resp.Messages = keepTypes(resp.Messages, keep)
		h.reply(w, r, http.StatusOK, resp)
		return
	}
	// Errors found before the first event are ordinary JSON errors.
	if _, err := h.svc.GetAgent(ctx, agentID); err != nil {
		h.fail(w, r, err)
		return
	}
	sse := &sseWriter{w: w, rc: http.NewResponseController(w), pings: isTrue(req.IncludePings)}
	if sse.pings {
		// The pinger is this handler's: stopped and waited for before
		// the handler returns. A ping opens the stream (sseWriter.start).
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(pingEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
					sse.ping()
				}
			}
		}()
		defer func() { close(stop); <-done }()
	}
	// With stream_tokens the model's thoughts go out as reasoning deltas
	// that share an id, one id per step; the whole reasoning message is
	// then not sent again (service.SendOptions.Stream).
	opts.Stream(isTrue(req.StreamTokens) && keep(api.ReasoningMessageType), func(m api.LettaMessage) {
		if keep(m.MessageType) {
			sse.data(m)
		}
	})
	opts.OnRun = sse.setRun // token deltas come before the run's first message
	resp, err := h.svc.SendMessage(ctx, agentID, inputs, opts)
	if err != nil {
		if !sse.started {
			h.fail(w, r, err)
			return
		}
		sse.data(api.StopReason{MessageType: "stop_reason", StopReason: "error"})
		sse.event("error", map[string]any{"message_type": "error_message", "error_type": "internal_error",
			"message": "An error occurred during agent execution.", "detail": failureText(err)})
		return
	}
	if len(resp.Usage.RunIDs) > 0 {
		sse.setRun(resp.Usage.RunIDs[0])
	}
	sse.data(resp.StopReason)
	sse.data(resp.Usage)
	sse.raw("data: [DONE]\n\n")
}

func isTrue(b *bool) bool { return b != nil && *b }

// lettaMessageTypes are the message_type values of Letta's message union, as
// include_return_message_types names them.
var lettaMessageTypes = []string{
	api.SystemMessageType, api.UserMessageType, api.AssistantMessageType, api.ReasoningMessageType,
	"hidden_reasoning_message", api.ToolCallMessageType, api.ToolReturnMessageType,
	"approval_request_message", "approval_response_message", "summary_message", "event_message",
}

// messageTypes reads include_return_message_types: keep reports whether a
// message of a type is returned. No types keeps every message; an unknown
// type is 422.
func messageTypes(types []string) (keep func(string) bool, err error) {
	if len(types) == 0 {
		return func(string) bool { return true }, nil
	}
	set := make(map[string]bool, len(types))
	for _, t := range types {
		if !slices.Contains(lettaMessageTypes, t) {
			return nil, unprocessable("include_return_message_types: unknown message type %q (known: %s)", t, strings.Join(lettaMessageTypes, ", "))
		}
		set[t] = true
	}
	return func(t string) bool { return set[t] }, nil
}

// withoutSendMessageReturns leaves out send_message's returns, as Letta
// lists messages with use_assistant_message (its default): the call shows
// as the assistant's message. Letta leaves a return out when its call is on
// the same page; engram whatever the page, so that no page depends on
// where it begins.
func withoutSendMessageReturns(ms []api.LettaMessage) []api.LettaMessage {
	out := ms[:0:0]
	for _, m := range ms {
		if m.MessageType == api.ToolReturnMessageType && m.Name != nil && *m.Name == "send_message" {
			continue
		}
		out = append(out, m)
	}
	return out
}

// keepTypes returns the messages keep keeps, in order.
func keepTypes(ms []api.LettaMessage, keep func(string) bool) []api.LettaMessage {
	out := make([]api.LettaMessage, 0, len(ms))
	for _, m := range ms {
		if keep(m.MessageType) {
			out = append(out, m)
		}
	}
	return out
}

// sseWriter writes server-sent events in the modern Letta framing: unnamed
// data events carrying JSON, "event: error" for failures, "[DONE]" last.
// Each data object is stamped as Letta stamps its stream: seq_id counts
// the events from 1, run_id names the run (once known), and otid is the
// message's own or one derived from the run and the event's place. With
// pings, a ping opens the stream, so a failure before its first event is
// still answered as a plain JSON error.
type sseWriter struct {
	mu      sync.Mutex // guards the writer and the fields below: deltas, messages and pings may come from different goroutines
	w       http.ResponseWriter
	rc      *http.ResponseController
	pings   bool // a ping opens the stream
	started bool
	closed  bool // [DONE] or an error was sent: nothing follows
	seq     int
	run     string
}

// setRun names the run the events belong to, for those that do not say.
func (s *sseWriter) setRun(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = id
}

// pingEvent is a ping (Letta's LettaPing: an id and a date of its own).
func pingEvent() map[string]any {
	now := timeNow().UTC()
	return map[string]any{"message_type": "ping", "id": events.NewID(events.PrefixMessage, now), "date": now.Truncate(time.Second)}
}

// ping sends a ping event, opening the stream if nothing has yet.
func (s *sseWriter) ping() { s.data(pingEvent()) }

// start sends the headers, and the opening ping when asked, before the
// stream's first event. The caller holds mu.
func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	s.w.Header().Set("Content-Type", "text/event-stream")
	s.w.Header().Set("Cache-Control", "no-cache")
	s.w.WriteHeader(http.StatusOK)
	if s.pings {
		s.write(pingEvent())
	}
}

func (s *sseWriter) raw(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.start()
	s.w.Write([]byte(text))
	s.rc.Flush()
	s.closed = text == "data: [DONE]\n\n"
}

func (s *sseWriter) data(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	var obj map[string]any
	if json.Unmarshal(b, &obj) != nil { // not an object: sent as it is
		s.raw("data: " + string(b) + "\n\n")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.started || obj["message_type"] != "ping" {
		s.start()
	} else { // a ping opens the stream by itself
		s.started, s.pings = false, false
		s.start()
	}
	s.write(obj)
}

// write stamps obj and sends it. The caller holds mu and has started the
// stream.
func (s *sseWriter) write(obj map[string]any) {
	s.seq++
	if run, ok := obj["run_id"].(string); ok && run != "" {
		s.run = run
	} else if s.run != "" {
		obj["run_id"] = s.run
	}
	obj["seq_id"] = s.seq
	if otid, _ := obj["otid"].(string); otid == "" {
		id, _ := obj["id"].(string)
		if id == "" {
			id = s.run
		}
		// One otid per message shown: the deltas of one message share
		// it (clients assemble them by otid), the tool calls of one
		// step do not.
		key := fmt.Sprintf("%s#%v", id, obj["message_type"])
		if tc, ok := obj["tool_call"].(map[string]any); ok {
			key += fmt.Sprintf("#%v", tc["tool_call_id"])
		}
		if id == s.run || id == "" { // not a message: its place in the stream names it
			key += fmt.Sprintf("#%d", s.seq)
		}
		obj["otid"] = derivedOtid(key)
	}
	b, _ := json.Marshal(obj)
	s.w.Write([]byte("data: " + string(b) + "\n\n"))
	s.rc.Flush()
}

// derivedOtid is an otid (a uuid, as Letta's) that is a pure function of key.
func derivedOtid(key string) string {
	_, u, _ := strings.Cut(events.DerivedID("otid", key), "-")
	return u
}

// event sends a named event; an error event ends the stream.
func (s *sseWriter) event(name string, v any) {
	b, _ := json.Marshal(v)
	s.raw("event: " + name + "\ndata: " + string(b) + "\n\n")
	if name == "error" {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	}
}

// failureText is what a stream's error event says: the client-safe message.
func failureText(err error) string { return fault.Message(err) }

func timeNow() time.Time { return time.Now() }

// listContextMessages answers GET /v1/agents/{id}/memory/messages (0.5):
// the messages in the agent's context window.
func (h *handler) listContextMessages(r *http.Request) (any, error) {
	return h.svc.ListContextMessages(r.Context(), r.PathValue("agent_id"))
}

// command is the body of POST /v1/agents/{id}/command, an engram route for
// the seed's run_command (Letta has none).
type command struct {
	Command string `json:"command"`
}

func (h *handler) runCommand(r *http.Request) (any, error) {
	var req command
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Command) == "" {
		return nil, unprocessable("command must not be empty")
	}
	return h.svc.RunCommand(r.Context(), r.PathValue("agent_id"), req.Command)
}

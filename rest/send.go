package rest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
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
	opts := service.SendOptions{UseAssistantMessage: req.UseAssistantMessage == nil || *req.UseAssistantMessage, ClientTools: req.ClientTools}
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
	agentID := r.PathValue("agent_id")
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
	sse := &sseWriter{w: w, rc: http.NewResponseController(w)}
	// With stream_tokens the model's thoughts go out as reasoning deltas
	// that share an id, one id per step; the whole reasoning message is
	// then not sent again (service.SendOptions.Stream).
	opts.Stream(isTrue(req.StreamTokens) && keep(api.ReasoningMessageType), func(m api.LettaMessage) {
		if keep(m.MessageType) {
			sse.data(m)
		}
	})
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
type sseWriter struct {
	mu      sync.Mutex // guards the writer: deltas and messages may come from different goroutines
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (s *sseWriter) start() {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", "text/event-stream")
		s.w.Header().Set("Cache-Control", "no-cache")
		s.w.WriteHeader(http.StatusOK)
	}
}

func (s *sseWriter) raw(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start()
	s.w.Write([]byte(text))
	s.rc.Flush()
}

func (s *sseWriter) data(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.raw("data: " + string(b) + "\n\n")
}

func (s *sseWriter) event(name string, v any) {
	b, _ := json.Marshal(v)
	s.raw("event: " + name + "\ndata: " + string(b) + "\n\n")
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

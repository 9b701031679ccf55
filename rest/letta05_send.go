package rest

import (
	"net/http"
	"strings"
	"sync"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/api/letta05"
	"github.com/engram-dev/engram/service"
)

// send05 answers 0.5's POST /v1/agents/{id}/messages: a LettaResponse of
// 0.5's message types (or Message objects with return_message_object), or,
// with stream_steps or stream_tokens, a stream of 0.5's chunks: each step's
// items between "[DONE_GEN]" and "[DONE_STEP]", then {"usage": …} (not on
// the 0.5.1 surface, whose reader has no such chunk) and "[DONE]".
//
// Letta 0.5's server refused stream_tokens without stream_steps, although
// its own client sends exactly that for token streaming; engram streams.
func (h *handler) send05(w http.ResponseWriter, r *http.Request) {
	var req letta05.SendMessage
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(req.Messages) == 0 {
		h.fail(w, r, unprocessable("messages must hold at least one message"))
		return
	}
	modern := api.SendMessage{Messages: make([]api.MessageCreate, len(req.Messages))}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "system" {
			h.fail(w, r, unprocessable("messages[%d].role must be user or system, not %q", i, m.Role))
			return
		}
		text := m.Text
		modern.Messages[i] = api.MessageCreate{Role: m.Role, Text: &text, Name: m.Name}
	}
	inputs, err := service.Inputs(modern)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	as := assistant05{on: isTrue(req.UseAssistantMessage), name: "send_message", kwarg: "message"}
	for _, n := range []*string{req.AssistantMessageFunctionName, req.AssistantMessageToolName} {
		if n != nil && *n != "" {
			as.name = *n
		}
	}
	for _, k := range []*string{req.AssistantMessageFunctionKwarg, req.AssistantMessageToolKwarg} {
		if k != nil && *k != "" {
			as.kwarg = *k
		}
	}
	// The service answers every tool call as a call; the translation picks
	// out the assistant's words.
	opts := service.SendOptions{UseAssistantMessage: false, Key: r.Header.Get(idempotencyHeader)}
	ctx := r.Context()
	agentID := r.PathValue("agent_id")
	streaming := isTrue(req.StreamSteps) || isTrue(req.StreamTokens)
	if !streaming {
		resp, err := h.svc.SendMessage(ctx, agentID, inputs, opts)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out := letta05.LettaResponse{Usage: usage05(resp.Usage)}
		if isTrue(req.ReturnMessageObject) {
			var ids []string
			seen := map[string]bool{}
			for _, m := range resp.Messages {
				if !seen[m.ID] {
					seen[m.ID] = true
					ids = append(ids, m.ID)
				}
			}
			ms, err := h.svc.StoredMessagesByID(ctx, agentID, ids)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			out.Messages = mapSlice(ms, message05)
		} else {
			out.Messages = lettaMessages05(resp.Messages, as)
		}
		h.reply(w, r, http.StatusOK, out)
		return
	}
	if _, err := h.svc.GetAgent(ctx, agentID); err != nil {
		h.fail(w, r, err)
		return
	}
	sse := &sseWriter{w: w, rc: http.NewResponseController(w)}
	var (
		mu sync.Mutex // guards held and stepOpen
		// held is a function call that arrived without its call id (a
		// send_message shown from its assistant view): it goes out with
		// the id of the return that follows it.
		held *letta05.LettaMessage
		// Each step's items go out between "[DONE_GEN]" (the model's call
		// returned) and "[DONE_STEP]" (after the function's return), as
		// 0.5's server framed them.
		stepOpen bool
	)
	send := func(v letta05.LettaMessage) {
		if !stepOpen {
			sse.raw("data: [DONE_GEN]\n\n")
			stepOpen = true
		}
		sse.data(v)
		if v.MessageType == letta05.FunctionReturnType {
			sse.raw("data: [DONE_STEP]\n\n")
			stepOpen = false
		}
	}
	flush := func() {
		if held != nil {
			send(*held)
			held = nil
		}
	}
	// Token deltas of the reasoning come as reasoning messages too; they
	// go out as 0.5's internal_monologue pieces.
	opts.Stream(isTrue(req.StreamTokens), func(m api.LettaMessage) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := lettaMessage05(m, as)
		if !ok {
			return
		}
		if held != nil && v.MessageType == letta05.FunctionReturnType && v.FunctionCallID != nil {
			held.FunctionCall.FunctionCallID = *v.FunctionCallID
		}
		flush()
		if v.FunctionCall != nil && v.FunctionCall.FunctionCallID == "" {
			held = &v
			return
		}
		send(v)
	})
	resp, err := h.svc.SendMessage(ctx, agentID, inputs, opts)
	mu.Lock()
	flush()
	if stepOpen {
		sse.raw("data: [DONE_STEP]\n\n")
	}
	mu.Unlock()
	if err != nil {
		if !sse.started {
			h.fail(w, r, err)
			return
		}
		sse.data(map[string]string{"error": failureText(err)})
		sse.raw("data: [DONE]\n\n")
		return
	}
	if !strings.HasPrefix(r.URL.Path, Prefix051+"/") { // 0.5.1's reader has no usage chunk
		sse.data(map[string]letta05.Usage{"usage": usage05(resp.Usage)})
	}
	sse.raw("data: [DONE]\n\n")
}

func usage05(u api.Usage) letta05.Usage {
	return letta05.Usage{CompletionTokens: u.CompletionTokens, PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens, StepCount: u.StepCount}
}

package rest

import (
	"net/http"

	"github.com/engram-dev/engram/api"
)

// conversationSend is the body of POST /v1/conversations/{id}/messages:
// a send, and for the "default" conversation the agent it goes to.
type conversationSend struct {
	api.SendMessage
	AgentID *string `json:"agent_id,omitempty"`
}

// createConversation serves POST /v1/conversations/?agent_id=.
func (h *handler) createConversation(r *http.Request) (any, error) {
	q := queryOf(r)
	agentID := q.str("agent_id")
	if q.err != nil {
		return nil, q.err
	}
	if agentID == "" {
		return nil, unprocessable("query parameter agent_id is required")
	}
	var req api.CreateConversation
	if err := decodeOptional(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateConversation(r.Context(), agentID, req)
}

func (h *handler) listConversations(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.ConversationFilter{AgentID: q.str("agent_id"), SummarySearch: q.str("summary_search")}
	p := q.page()
	if by := q.str("order_by"); by != "" && by != "created_at" {
		q.fail(unprocessable("query parameter order_by: engram orders conversations by created_at only, not %q", by))
	}
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListConversations(r.Context(), f, p)
}

func (h *handler) getConversation(r *http.Request) (any, error) {
	return h.svc.GetConversation(r.Context(), r.PathValue("conversation_id"))
}

func (h *handler) updateConversation(r *http.Request) (any, error) {
	var req api.UpdateConversation
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateConversation(r.Context(), r.PathValue("conversation_id"), req)
}

func (h *handler) deleteConversation(r *http.Request) (any, error) {
	return nil, h.svc.DeleteConversation(r.Context(), r.PathValue("conversation_id"))
}

// listConversationMessages serves GET /v1/conversations/{id}/messages: a
// conversation's messages, or with "default" and agent_id the agent's.
func (h *handler) listConversationMessages(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	agentID := q.str("agent_id")
	keep, err := messageTypes(q.strs("include_return_message_types"))
	if err != nil {
		return nil, err
	}
	if q.err != nil {
		return nil, q.err
	}
	agent, conv, err := h.svc.ConversationAgent(r.Context(), r.PathValue("conversation_id"), agentID)
	if err != nil {
		return nil, err
	}
	var ms []api.LettaMessage
	if conv == "" { // the default one: messages of no other conversation, as Letta lists them
		ms, err = h.svc.ListDefaultMessages(r.Context(), agent, p)
	} else {
		ms, err = h.svc.ListConversationMessages(r.Context(), conv, p)
	}
	if err != nil {
		return nil, err
	}
	return keepTypes(withoutSendMessageReturns(ms), keep), nil
}

// sendConversationMessage serves POST /v1/conversations/{id}/messages,
// which streams unless the body says "streaming": false.
func (h *handler) sendConversationMessage(w http.ResponseWriter, r *http.Request) {
	var req conversationSend
	if err := decode(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	agentID := ""
	if req.AgentID != nil {
		agentID = *req.AgentID
	}
	agent, conv, err := h.svc.ConversationAgent(r.Context(), r.PathValue("conversation_id"), agentID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Streaming == nil {
		on := true
		req.Streaming = &on
	}
	h.sendTo(w, r, agent, conv, req.SendMessage, false)
}

// getMessage serves GET /v1/messages/{id}: the messages one stored message
// shows as (Letta answers a list).
func (h *handler) getMessage(r *http.Request) (any, error) {
	return h.svc.GetMessage(r.Context(), r.PathValue("message_id"))
}

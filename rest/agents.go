package rest

import (
	"fmt"
	"net/http"

	"github.com/engram-dev/engram/api"
)

// message is the body of the delete routes that answer with a sentence.
type message struct {
	Message string `json:"message"`
}

func (h *handler) health(r *http.Request) (any, error) {
	v := h.svc.Health(r.Context())
	if h.cfg.Version != "" {
		v.Version = h.cfg.Version
	}
	if h.cfg.Cluster != nil {
		h.cfg.Cluster.Health(&v)
		if v.Quorum != nil && !*v.Quorum {
			v.Status = "no quorum"
			return withStatus{http.StatusServiceUnavailable, v}, nil
		}
	}
	return v, nil
}

// clusterStatus answers GET /v1/cluster: the cluster as this node sees it,
// or this node alone.
func (h *handler) clusterStatus(r *http.Request) (any, error) {
	if h.cfg.Cluster == nil {
		return api.ClusterStatus{Replicas: []api.ClusterReplica{}, Nodes: []api.ClusterNode{}, Owners: map[string]string{}}, nil
	}
	return h.cfg.Cluster.Status(r.Context())
}

func (h *handler) listModels(r *http.Request) (any, error) {
	return h.svc.ListModels(r.Context()), nil
}

func (h *handler) listEmbeddingModels(r *http.Request) (any, error) {
	return h.svc.ListEmbeddingModels(r.Context()), nil
}

func (h *handler) createAgent(r *http.Request) (any, error) {
	var req api.CreateAgent
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateAgent(r.Context(), req)
}

func (h *handler) listAgents(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.AgentFilter{
		Name:        q.str("name"),
		Tags:        q.strs("tags"),
		MatchAllTag: q.boolean("match_all_tags", false),
		QueryText:   q.str("query_text"),
	}
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAgents(r.Context(), f, p)
}

func (h *handler) getAgent(r *http.Request) (any, error) {
	q := queryOf(r)
	at := q.at()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.GetAgentAt(r.Context(), r.PathValue("agent_id"), at)
}

func (h *handler) updateAgent(r *http.Request) (any, error) {
	var req api.UpdateAgent
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateAgent(r.Context(), r.PathValue("agent_id"), req)
}

func (h *handler) deleteAgent(r *http.Request) (any, error) {
	id := r.PathValue("agent_id")
	if err := h.svc.DeleteAgent(r.Context(), id); err != nil {
		return nil, err
	}
	return message{fmt.Sprintf("Agent id=%s successfully deleted", id)}, nil
}

// Agent tools. The modern attach and detach answer null (what Letta sends a
// 1.x SDK); the 0.5 add-tool and remove-tool answer the agent.

func (h *handler) listAgentTools(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAgentTools(r.Context(), r.PathValue("agent_id"), p)
}

func (h *handler) attachTool(r *http.Request) (any, error) {
	_, err := h.svc.AttachTool(r.Context(), r.PathValue("agent_id"), r.PathValue("tool_id"))
	return nil, err
}

func (h *handler) detachTool(r *http.Request) (any, error) {
	_, err := h.svc.DetachTool(r.Context(), r.PathValue("agent_id"), r.PathValue("tool_id"))
	return nil, err
}

func (h *handler) addTool(r *http.Request) (any, error) {
	return h.svc.AttachTool(r.Context(), r.PathValue("agent_id"), r.PathValue("tool_id"))
}

func (h *handler) removeTool(r *http.Request) (any, error) {
	return h.svc.DetachTool(r.Context(), r.PathValue("agent_id"), r.PathValue("tool_id"))
}

// Agent sources, as the modern folders routes: attach and detach answer null.

func (h *handler) listAgentSources(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAttachedSources(r.Context(), r.PathValue("agent_id"), p)
}

func (h *handler) attachSource(r *http.Request) (any, error) {
	_, err := h.svc.AttachSource(r.Context(), r.PathValue("agent_id"), r.PathValue("source_id"))
	return nil, err
}

func (h *handler) detachSource(r *http.Request) (any, error) {
	_, err := h.svc.DetachSource(r.Context(), r.PathValue("agent_id"), r.PathValue("source_id"))
	return nil, err
}

// Messages.

// listMessages pages through the history; include_return_message_types
// (repeated) keeps the messages of those types, from the page as cut.
func (h *handler) listMessages(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	at := q.at()
	keep, err := messageTypes(q.strs("include_return_message_types"))
	if err != nil {
		return nil, err
	}
	conv := q.str("conversation_id")
	useAssistant := q.boolean("use_assistant_message", true)
	if q.err != nil {
		return nil, q.err
	}
	if conv != "" {
		agent, conv, err := h.svc.ConversationAgent(r.Context(), conv, r.PathValue("agent_id"))
		if err != nil {
			return nil, err
		}
		var ms []api.LettaMessage
		if !at.IsZero() {
			return nil, unprocessable("query parameters at and conversation_id cannot be combined")
		} else if conv == "" { // "default" or an agent's id: messages of no other conversation, as Letta lists them
			ms, err = h.svc.ListDefaultMessages(r.Context(), agent, p)
		} else {
			ms, err = h.svc.ListConversationMessages(r.Context(), conv, p)
		}
		if err != nil {
			return nil, err
		}
		if useAssistant {
			ms = withoutSendMessageReturns(ms)
		}
		return keepTypes(ms, keep), nil
	}
	ms, err := h.svc.ListMessagesAt(r.Context(), r.PathValue("agent_id"), at, p)
	if err != nil {
		return nil, err
	}
	if useAssistant {
		ms = withoutSendMessageReturns(ms)
	}
	return keepTypes(ms, keep), nil
}

package rest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// Core memory.

func (h *handler) getCoreMemory(r *http.Request) (any, error) {
	q := queryOf(r)
	at := q.at()
	if q.err != nil {
		return nil, q.err
	}
	a, err := h.svc.GetAgentAt(r.Context(), r.PathValue("agent_id"), at)
	return a.Memory, err
}

func (h *handler) listAgentBlocks(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	at := q.at()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAgentBlocksAt(r.Context(), r.PathValue("agent_id"), at, p)
}

func (h *handler) getAgentBlock(r *http.Request) (any, error) {
	return h.svc.GetAgentBlock(r.Context(), r.PathValue("agent_id"), r.PathValue("block_label"))
}

func (h *handler) updateAgentBlock(r *http.Request) (any, error) {
	var req api.UpdateBlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateAgentBlock(r.Context(), r.PathValue("agent_id"), r.PathValue("block_label"), req)
}

func (h *handler) attachBlock(r *http.Request) (any, error) {
	return h.svc.AttachBlock(r.Context(), r.PathValue("agent_id"), r.PathValue("block_id"))
}

func (h *handler) detachBlock(r *http.Request) (any, error) {
	return h.svc.DetachBlock(r.Context(), r.PathValue("agent_id"), r.PathValue("block_id"))
}

// oldMemory is Letta 0.5's memory object: the blocks keyed by label.
type oldMemory struct {
	Memory         map[string]api.Block `json:"memory"`
	PromptTemplate string               `json:"prompt_template"`
}

func oldMemoryOf(m api.Memory) oldMemory {
	out := oldMemory{Memory: make(map[string]api.Block, len(m.Blocks)), PromptTemplate: m.PromptTemplate}
	for _, b := range m.Blocks {
		out.Memory[b.Label] = b
	}
	return out
}

func (h *handler) getOldMemory(r *http.Request) (any, error) {
	m, err := h.svc.GetCoreMemory(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	return oldMemoryOf(m), nil
}

// updateOldMemory serves 0.5's PATCH /v1/agents/{id}/memory, whose body maps
// labels to new values. Every label must exist and every value be a string
// (or null, which is skipped) before anything changes; the blocks are then
// updated one by one, in label order.
func (h *handler) updateOldMemory(r *http.Request) (any, error) {
	agentID := r.PathValue("agent_id")
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	values := make(map[string]string, len(body))
	for label, raw := range body {
		if string(raw) == "null" {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, unprocessable("the value of %q must be a string", label)
		}
		values[label] = v
	}
	mem, err := h.svc.GetCoreMemory(r.Context(), agentID)
	if err != nil {
		return nil, err
	}
	labels := slices.Sorted(maps.Keys(values))
	for _, l := range labels {
		if _, ok := mem.Get(l); !ok {
			return nil, fault.E(fault.NotFound, "No block with label '%s' found for agent '%s'", l, agentID)
		}
	}
	key := r.Header.Get(idempotencyHeader)
	for _, l := range labels {
		ctx := r.Context()
		if key != "" {
			// One request, several commands: each needs its own key.
			ctx = service.WithIdempotencyKey(ctx, key+"#memory:"+l)
		}
		if mem, err = h.svc.UpdateCoreMemory(ctx, agentID, l, values[l]); err != nil {
			return nil, err
		}
	}
	return oldMemoryOf(mem), nil
}

// Archival memory.

func (h *handler) insertArchival(r *http.Request) (any, error) {
	var req api.CreatePassage
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.InsertArchival(r.Context(), r.PathValue("agent_id"), req)
}

// listArchival takes after, before and limit, ascending (default true) for
// the order, and search, which keeps the passages containing its text.
func (h *handler) listArchival(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.has("ascending") || p.Order == "" {
		p.Order = "desc"
		if q.boolean("ascending", true) {
			p.Order = "asc"
		}
	}
	search := q.str("search")
	at := q.at()
	if q.err != nil {
		return nil, q.err
	}
	if !at.IsZero() {
		if search != "" {
			return nil, unprocessable("query parameters at and search cannot be combined")
		}
		return h.svc.ListArchivalAt(r.Context(), r.PathValue("agent_id"), at, p)
	}
	return h.svc.ListArchivalContaining(r.Context(), r.PathValue("agent_id"), p, search)
}

// searchArchival serves GET /v1/agents/{agent_id}/archival-memory/search.
func (h *handler) searchArchival(r *http.Request) (any, error) {
	q := queryOf(r)
	aq := service.ArchivalQuery{Query: q.str("query"), Tags: q.strs("tags"), TagMatch: q.str("tag_match_mode")}
	if !q.has("query") {
		q.fail(unprocessable("query parameter query is required"))
	}
	if n := q.atLeast("top_k", 1); n != nil {
		aq.Limit = *n
	}
	aq.After = q.datetime("start_datetime")
	aq.Before = q.datetime("end_datetime")
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.SearchArchival(r.Context(), r.PathValue("agent_id"), aq)
}

func (h *handler) deleteArchival(r *http.Request) (any, error) {
	id := r.PathValue("memory_id")
	if err := h.svc.DeleteArchival(r.Context(), r.PathValue("agent_id"), id); err != nil {
		return nil, err
	}
	return message{fmt.Sprintf("Memory id=%s successfully deleted", id)}, nil
}

func (h *handler) archivalSummary(r *http.Request) (any, error) {
	return h.svc.ArchivalSummary(r.Context(), r.PathValue("agent_id"))
}

func (h *handler) recallSummary(r *http.Request) (any, error) {
	return h.svc.RecallSummary(r.Context(), r.PathValue("agent_id"))
}

// contextOverview is the part of Letta's context window overview engram can
// tell.
type contextOverview struct {
	NumArchivalMemory int `json:"num_archival_memory"`
	NumRecallMemory   int `json:"num_recall_memory"`
}

func (h *handler) contextSummary(r *http.Request) (any, error) {
	id := r.PathValue("agent_id")
	a, err := h.svc.ArchivalSummary(r.Context(), id)
	if err != nil {
		return nil, err
	}
	m, err := h.svc.RecallSummary(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return contextOverview{NumArchivalMemory: a.Size, NumRecallMemory: m.Size}, nil
}

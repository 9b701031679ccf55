package rest

import (
	"context"
	"net/http"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

// Blocks.

func (h *handler) createBlock(r *http.Request) (any, error) {
	var req api.CreateBlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateBlock(r.Context(), req)
}

// listBlocks takes Letta's filters: label, name, templates_only,
// label_search, value_search, description_search, tags (repeated) with
// match_all_tags, and connected_to_agents_count_gt, _lt and _eq (repeated).
func (h *handler) listBlocks(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.BlockFilter{
		Label: q.str("label"), TemplatesOnly: q.boolean("templates_only", false), Name: q.str("name"),
		LabelSearch: q.str("label_search"), ValueSearch: q.str("value_search"), DescriptionSearch: q.str("description_search"),
		Tags: q.strs("tags"), MatchAllTags: q.boolean("match_all_tags", false),
		AgentsGT: q.intp("connected_to_agents_count_gt"), AgentsLT: q.intp("connected_to_agents_count_lt"),
		AgentsEq: q.ints("connected_to_agents_count_eq"),
	}
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListBlocks(r.Context(), f, p)
}

func (h *handler) getBlock(r *http.Request) (any, error) {
	return h.svc.GetBlock(r.Context(), r.PathValue("block_id"))
}

func (h *handler) updateBlock(r *http.Request) (any, error) {
	var req api.UpdateBlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateBlock(r.Context(), r.PathValue("block_id"), req)
}

func (h *handler) deleteBlock(r *http.Request) (any, error) {
	return nil, h.svc.DeleteBlock(r.Context(), r.PathValue("block_id"))
}

// listBlockAgents answers the agents whose core memory holds the block,
// newest first unless the page says otherwise.
func (h *handler) listBlockAgents(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAgents(r.Context(), api.AgentFilter{BlockID: r.PathValue("block_id")}, p)
}

// Tools.

// upsertTool serves POST and PUT /v1/tools/: both update a tool of the same
// name in place, as Letta does.
// upsertTool creates a tool, or updates the one with the same name; with
// ?update=false an existing name is an error instead.
func (h *handler) upsertTool(r *http.Request) (any, error) {
	q := queryOf(r)
	upsert := q.boolean("update", true)
	if q.err != nil {
		return nil, q.err
	}
	var req api.CreateTool
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateTool(r.Context(), req, upsert)
}

// generateToolSchema answers POST /v1/tools/generate-schema: the schema a
// tool created from the source would have, with nothing stored.
func (h *handler) generateToolSchema(r *http.Request) (any, error) {
	var req api.CodeInput
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.GenerateToolSchema(r.Context(), req)
}

// listTools takes Letta's filters: name, names, tool_ids, search,
// tool_types, exclude_tool_types (lists repeat the key or are
// comma-separated) and return_only_letta_tools.
func (h *handler) listTools(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.ToolFilter{
		Name: q.str("name"), Names: q.list("names"), IDs: q.list("tool_ids"), Search: q.str("search"),
		Types: q.list("tool_types"), ExcludeTypes: q.list("exclude_tool_types"),
		LettaOnly: q.boolean("return_only_letta_tools", false),
	}
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListToolsMatching(r.Context(), f, p)
}

func (h *handler) getTool(r *http.Request) (any, error) {
	return h.svc.GetTool(r.Context(), r.PathValue("tool_id"))
}

func (h *handler) updateTool(r *http.Request) (any, error) {
	var req api.UpdateTool
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateTool(r.Context(), r.PathValue("tool_id"), req)
}

func (h *handler) deleteTool(r *http.Request) (any, error) {
	return nil, h.svc.DeleteTool(r.Context(), r.PathValue("tool_id"))
}

// toolIDByName answers the tool's id as a JSON string.
func (h *handler) toolIDByName(r *http.Request) (any, error) {
	t, err := h.svc.GetToolByName(r.Context(), r.PathValue("tool_name"))
	if err != nil {
		return nil, err
	}
	return t.ID, nil
}

// Sources, under /v1/folders/ and /v1/sources/ alike.

func (h *handler) createSource(r *http.Request) (any, error) {
	var req api.CreateSource
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateSource(r.Context(), req)
}

func (h *handler) listSources(r *http.Request) (any, error) {
	q := queryOf(r)
	name := q.str("name")
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListSources(r.Context(), name, p)
}

func (h *handler) getSource(r *http.Request) (any, error) {
	return h.svc.GetSource(r.Context(), r.PathValue("source_id"))
}

func (h *handler) updateSource(r *http.Request) (any, error) {
	var req api.UpdateSource
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.UpdateSource(r.Context(), r.PathValue("source_id"), req)
}

func (h *handler) deleteSource(r *http.Request) (any, error) {
	return nil, h.svc.DeleteSource(r.Context(), r.PathValue("source_id"))
}

// sourceByNameOrAgents serves GET /name/{name} (the source's id as a JSON
// string) and GET /{source_id}/agents (the ids of the agents it is attached
// to, a plain array paged by before, after, limit and order, newest first by
// default). "name" is never a source id, so /name/agents is the source named
// "agents".
func (h *handler) sourceByNameOrAgents(r *http.Request) (any, error) {
	first, second := r.PathValue("first"), r.PathValue("second")
	switch {
	case first == "name":
		src, err := h.svc.GetSourceByName(r.Context(), second)
		if err != nil {
			return nil, err
		}
		return src.ID, nil
	case second == "agents":
		q := queryOf(r)
		p := q.page()
		if q.err != nil {
			return nil, q.err
		}
		list, err := h.svc.ListAgents(r.Context(), api.AgentFilter{SourceID: first}, p)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(list))
		for i, a := range list {
			out[i] = a.ID
		}
		return out, nil
	}
	return nil, errNotFound
}

// attachSourceOld and detachSourceOld serve 0.5's
// POST /v1/sources/{source_id}/attach?agent_id= (and detach), which answer
// the source.
func (h *handler) attachSourceOld(r *http.Request) (any, error) {
	return h.sourceOp(r, h.svc.AttachSource)
}

func (h *handler) detachSourceOld(r *http.Request) (any, error) {
	return h.sourceOp(r, h.svc.DetachSource)
}

func (h *handler) sourceOp(r *http.Request, op func(ctx context.Context, agentID, sourceID string) (api.AgentState, error)) (any, error) {
	q := queryOf(r)
	agentID := q.str("agent_id")
	if q.err != nil {
		return nil, q.err
	}
	if agentID == "" {
		return nil, unprocessable("query parameter agent_id is required")
	}
	sourceID := r.PathValue("source_id")
	if _, err := op(r.Context(), agentID, sourceID); err != nil {
		return nil, err
	}
	return h.svc.GetSource(r.Context(), sourceID)
}

// Jobs.

func (h *handler) listJobs(r *http.Request) (any, error) {
	q := queryOf(r)
	src := q.str("source_id")
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListJobs(r.Context(), src, p)
}

// listActiveJobs lists the jobs that are created or running, newest first.
// It takes source_id but no page: 0.5 had none, and active jobs are few.
func (h *handler) listActiveJobs(r *http.Request) (any, error) {
	q := queryOf(r)
	src := q.str("source_id")
	if q.err != nil {
		return nil, q.err
	}
	jobs, err := h.svc.ListJobs(r.Context(), src, api.Page{Limit: service.MaxPageLimit})
	if err != nil {
		return nil, err
	}
	active := make([]api.Job, 0, len(jobs))
	for _, j := range jobs {
		if j.Status == api.JobCreated || j.Status == api.JobRunning {
			active = append(active, j)
		}
	}
	return active, nil
}

func (h *handler) getJob(r *http.Request) (any, error) {
	return h.svc.GetJob(r.Context(), r.PathValue("job_id"))
}

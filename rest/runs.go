package rest

import (
	"net/http"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

// Runs: Letta's async send, run status, a run's messages and usage, and
// cancel. A run is a projection of the send's events (service.GetRun).

// sendAsync answers POST /v1/agents/{id}/messages/async: the send's inputs
// are stored and its Run returned at once; the agent's worker runs it.
func (h *handler) sendAsync(r *http.Request) (any, error) {
	var req api.SendMessage
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	inputs, err := service.Inputs(req)
	if err != nil {
		return nil, err
	}
	if isTrue(req.Streaming) || isTrue(req.StreamSteps) || isTrue(req.StreamTokens) {
		return nil, unprocessable("an async send does not stream; poll GET /v1/runs/{run_id}")
	}
	opts := service.SendOptions{ClientTools: req.ClientTools}
	if req.OverrideModel != nil {
		opts.OverrideModel = *req.OverrideModel
	}
	if req.MaxSteps != nil {
		if *req.MaxSteps < 1 || *req.MaxSteps > 1000 {
			return nil, unprocessable("max_steps must be in 1..1000")
		}
		opts.MaxSteps = *req.MaxSteps
	}
	opts.Key = r.Header.Get("Idempotency-Key")
	if opts.Key == "" && len(inputs) > 0 {
		opts.Key = inputs[0].Otid
	}
	return h.svc.SendMessageAsync(r.Context(), r.PathValue("agent_id"), inputs, opts)
}

// cancelRuns is the body of POST /v1/agents/{id}/messages/cancel.
type cancelRuns struct {
	RunIDs []string `json:"run_ids"`
}

// cancel answers POST /v1/agents/{id}/messages/cancel, whose body
// ({"run_ids": [...]}) is optional: without ids, every run of the agent
// not yet ended is cancelled.
func (h *handler) cancel(r *http.Request) (any, error) {
	var req cancelRuns
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return nil, err
		}
	}
	return h.svc.CancelRuns(r.Context(), r.PathValue("agent_id"), req.RunIDs)
}

func (h *handler) getRun(r *http.Request) (any, error) {
	return h.svc.GetRun(r.Context(), r.PathValue("run_id"))
}

// listRuns answers GET /v1/runs/ with Letta's filters: agent_id (or the
// deprecated agent_ids), statuses, stop_reason, active, and paging (order,
// or the deprecated ascending).
func (h *handler) listRuns(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.RunFilter{
		AgentIDs:   append(q.list("agent_id"), q.list("agent_ids")...),
		Statuses:   q.list("statuses"),
		StopReason: q.str("stop_reason"),
		Active:     q.boolean("active", false),
	}
	p := q.page()
	if p.Order == "" && q.boolean("ascending", false) {
		p.Order = "asc"
	}
	if ob := q.str("order_by"); ob != "" && ob != "created_at" {
		q.fail(unprocessable("query parameter order_by must be created_at, not %q", ob))
	}
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListRuns(r.Context(), f, p)
}

func (h *handler) listRunMessages(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.RunMessages(r.Context(), r.PathValue("run_id"), p)
}

func (h *handler) listRunSteps(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.RunSteps(r.Context(), r.PathValue("run_id"), p)
}

func (h *handler) getRunUsage(r *http.Request) (any, error) {
	return h.svc.RunUsage(r.Context(), r.PathValue("run_id"))
}

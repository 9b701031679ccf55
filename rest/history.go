package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/engram-dev/engram/api"
)

// seq reads an optional log sequence: 0 when absent, 422 when not a
// non-negative integer.
func (q *query) seq(key string) uint64 {
	s := q.str(key)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		q.fail(unprocessable("query parameter %s must be a log sequence, not %q", key, s))
	}
	return n
}

// listEvents serves an agent's history: GET /v1/agents/{id}/events with
// after, before, limit, types (repeatable or comma-separated), since and
// until.
func (h *handler) listEvents(r *http.Request) (any, error) {
	q := queryOf(r)
	f := api.EventFilter{
		After: q.seq("after"), Before: q.seq("before"), Types: q.list("types"),
		Since: q.datetime("since"), Until: q.datetime("until"),
	}
	if n := q.intp("limit"); n != nil {
		f.Limit = *n
	}
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.History(r.Context(), r.PathValue("agent_id"), f)
}

// at reads the point of the log a read answers as of: a sequence, or an
// RFC 3339 time. Absent, it is now.
func (q *query) at() api.At {
	s := q.str("at")
	if s == "" {
		return api.At{}
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && n > 0 {
		return api.At{Seq: n}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail(unprocessable("query parameter at must be a log sequence or an RFC 3339 time, not %q", s))
		return api.At{}
	}
	return api.At{Time: t.UTC()}
}

// forkAgent serves POST /v1/agents/{id}/fork {"at": …, "name": …}.
func (h *handler) forkAgent(r *http.Request) (any, error) {
	var req api.ForkAgent
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.Fork(r.Context(), r.PathValue("agent_id"), req)
}

// verifyLog serves GET /v1/admin/log/verify: the whole log walked and its
// seals checked (engram verify --url).
func (h *handler) verifyLog(r *http.Request) (any, error) {
	return h.svc.VerifyLog(r.Context())
}

package rest

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// Tenancy: who a request is, what it may reach, and how much.
//
// Credentials (Authorization: Bearer K, or X-BARE-PASSWORD: password K):
//
//   - the server's token (Config.Token) is the admin key: it acts in the
//     default organization and alone may call the admin routes
//     (/v1/admin/...);
//   - an organization's API key (POST /v1/admin/keys) acts in its
//     organization; the organization comes from the key, never from
//     anything else in the request. Admin routes answer it 403;
//   - without a token configured, a request without a key is the admin, as
//     before organizations existed; a request presenting an API key is
//     held to it.
//
// A key that is unknown, revoked, expired, or whose organization was
// deleted is 401, and the refusal is recorded in the log
// (events.AccessDenied; at most deniedRate a second, the rest counted in
// the next record). Every id a route's path names (agent, block, tool,
// source, job, run) is checked before the route runs: an object of another organization is 404, exactly as one
// that does not exist.

// principalKey carries the request's service.Principal in its context.
type principalKey struct{}

// principalOf is the request's principal; the admin when none was set.
func principalOf(r *http.Request) service.Principal {
	if p, ok := r.Context().Value(principalKey{}).(service.Principal); ok {
		return p
	}
	return service.Principal{Admin: true}
}

// credentials are the keys a request presents, in either header.
func credentials(r *http.Request) []string {
	var out []string
	if v, found := cutPrefixFold(r.Header.Get("Authorization"), "Bearer "); found {
		out = append(out, strings.TrimSpace(v))
	}
	if v, found := cutPrefixFold(r.Header.Get("X-BARE-PASSWORD"), "password "); found {
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// isHealth reports whether r is for the health check, which needs no key.
func isHealth(r *http.Request) bool {
	return r.URL.Path == "/v1/health" || r.URL.Path == Prefix05+"/v1/health" || r.URL.Path == Prefix051+"/v1/health"
}

// isAdminRoute reports whether a route is the admin's alone.
func isAdminRoute(r *http.Request) bool {
	p := r.URL.Path
	p = strings.TrimPrefix(strings.TrimPrefix(p, Prefix051), Prefix05)
	return strings.HasPrefix(p, "/v1/admin/") || p == "/v1/admin" || p == "/metrics"
}

// authenticate names the request's principal, or answers 401 (recording
// the refusal) or 403 and reports false.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if isHealth(r) || isConsole(r) { // the console's files; the page asks for a key when the API refuses
		return r, true
	}
	keys := credentials(r)
	admin, apiKey := false, ""
	for _, k := range keys {
		admin = admin || h.cfg.Token != "" && h.tokenIs(k)
		if apiKey == "" && service.IsAPIKey(k) {
			apiKey = k
		}
	}
	var p service.Principal
	reason := ""
	switch {
	case admin:
		p = service.Principal{Admin: true}
	case apiKey != "" && h.svc != nil:
		p, reason = h.svc.Authenticate(r.Context(), apiKey)
	case h.cfg.Token == "":
		p = service.Principal{Admin: true}
	case len(keys) > 0:
		reason = service.DeniedUnknown
	default:
		reason = service.DeniedMissing
	}
	if reason != "" {
		h.recordDenied(r, reason, p.KeyID)
		w.Header().Set("WWW-Authenticate", "Bearer")
		h.fail(w, r, errUnauthorized)
		return r, false
	}
	if !p.Admin && isAdminRoute(r) {
		h.fail(w, r, fault.E(fault.Permission, "this route needs the admin key; an organization's key cannot use it"))
		return r, false
	}
	if p.Admin {
		return r, true // principalOf's default: the request is left as it came
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	ctx = service.WithOrganization(ctx, p.Org)
	ctx = service.WithActor(ctx, p.KeyID)
	return r.WithContext(ctx), true
}

// deniedRate bounds how many refusals a second are recorded in the log, so
// a flood of bad keys cannot flood the log; deniedBurst is how many may be
// recorded at once.
const (
	deniedRate  = 10
	deniedBurst = 50
)

// denials records refused requests in the log at a bounded rate.
type denials struct {
	limit *rate.Limiter
	mu    sync.Mutex // guards skipped
	// skipped counts refusals not recorded since the last one that was.
	skipped int
}

func newDenials() *denials {
	return &denials{limit: rate.NewLimiter(deniedRate, deniedBurst)}
}

// recordDenied appends an AccessDenied event for r, unless refusals come
// faster than deniedRate (then it is counted in the next one recorded).
func (h *handler) recordDenied(r *http.Request, reason, keyID string) {
	if h.svc == nil {
		return
	}
	d := h.denied
	d.mu.Lock()
	if !d.limit.Allow() {
		d.skipped++
		d.mu.Unlock()
		return
	}
	skipped := d.skipped
	d.skipped = 0
	d.mu.Unlock()
	path := r.URL.Path
	if len(path) > 512 {
		path = path[:512]
	}
	e := events.AccessDenied{Method: r.Method, Path: path, Remote: r.RemoteAddr, Reason: reason, KeyID: keyID, Suppressed: skipped}
	// The record must not wait on a client that went away, nor be
	// attributed to it: it is the server's.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := h.svc.RecordDenied(service.WithActor(ctx, "engram"), e); err != nil {
		h.log.Warn("cannot record a refused request", "err", err)
	}
}

// pathKinds are the path parameters that name an aggregate, and its kind.
var pathKinds = []struct {
	param string
	kind  events.Kind
}{
	{"agent_id", events.KindAgent},
	{"block_id", events.KindBlock},
	{"tool_id", events.KindTool},
	{"source_id", events.KindSource},
	{"job_id", events.KindJob},
	{"run_id", service.KindRun},
}

// scope answers NotFound when the route's path names an object of another
// organization than the caller's. (Ids in a query or a body are checked by
// the service, which runs every command as the caller's organization.)
func (h *handler) scope(r *http.Request) error {
	ctx := r.Context()
	for _, pk := range pathKinds {
		if id := r.PathValue(pk.param); id != "" {
			if err := h.svc.Visible(ctx, pk.kind, id); err != nil {
				return err
			}
		}
	}
	// GET /v1/folders/{first}/{second}: {first} is a source id unless it
	// is "name".
	if id := r.PathValue("first"); id != "" && id != "name" {
		if err := h.svc.Visible(ctx, events.KindSource, id); err != nil {
			return err
		}
	}
	return nil
}

// Limits per organization.

// tooMany answers 429 with a Retry-After of at least a second.
func (h *handler) tooMany(w http.ResponseWriter, r *http.Request, after time.Duration, msg string) {
	secs := int(math.Ceil(after.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
	h.fail(w, r, &statusError{http.StatusTooManyRequests, msg})
}

// limit applies the organization's request rate and, to a send, its limit
// of runs in progress. It answers 429 and reports false when over either.
func (h *handler) limit(w http.ResponseWriter, r *http.Request, pattern string) bool {
	p := principalOf(r)
	if isHealth(r) || isConsole(r) || (p.Admin && isAdminRoute(r)) {
		return true
	}
	org := p.Org
	if d := h.rates.Wait(org); d > 0 {
		h.tooMany(w, r, d, "too many requests for this organization; retry later")
		return false
	}
	if h.cfg.MaxRunsPerOrg > 0 && isSend(pattern) {
		if n := h.svc.ActiveRuns(r.Context()); n >= h.cfg.MaxRunsPerOrg {
			h.tooMany(w, r, time.Second, "this organization has "+strconv.Itoa(n)+" runs in progress, its limit; retry when one ends")
			return false
		}
	}
	return true
}

// isSend reports whether a route pattern starts a run.
func isSend(pattern string) bool {
	if !strings.HasPrefix(pattern, "POST ") {
		return false
	}
	return strings.HasSuffix(pattern, "/messages") || strings.HasSuffix(pattern, "/messages/stream") ||
		strings.HasSuffix(pattern, "/messages/async")
}

// Admin routes: organizations, their keys, and the access record.

func (h *handler) adminRoutes() {
	h.handle("GET /v1/admin/orgs", h.listOrgs)
	h.handle("POST /v1/admin/orgs", h.createOrg)
	h.handle("PATCH /v1/admin/orgs", h.updateOrg)
	h.handle("DELETE /v1/admin/orgs", h.deleteOrg)
	h.handle("GET /v1/admin/keys", h.listKeys)
	h.handle("POST /v1/admin/keys", h.createKey)
	h.handle("DELETE /v1/admin/keys/{key_id}", h.revokeKey)
	h.handle("GET /v1/admin/audit", h.accessAudit)
}

// adminCtx marks the admin's commands as the admin's.
func adminCtx(r *http.Request) context.Context { return service.WithActor(r.Context(), "admin") }

func (h *handler) listOrgs(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListOrgs(r.Context(), p)
}

func (h *handler) createOrg(r *http.Request) (any, error) {
	var req api.OrganizationCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.PrivilegedTools != nil && *req.PrivilegedTools {
		return nil, invalid("engram has no privileged tools; privileged_tools must be false")
	}
	return h.svc.CreateOrg(adminCtx(r), req)
}

func (h *handler) updateOrg(r *http.Request) (any, error) {
	q := queryOf(r)
	id := q.str("org_id")
	if q.err != nil {
		return nil, q.err
	}
	if id == "" {
		return nil, unprocessable("org_id is required")
	}
	var req api.OrganizationUpdate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.PrivilegedTools != nil && *req.PrivilegedTools {
		return nil, invalid("engram has no privileged tools; privileged_tools must be false")
	}
	return h.svc.UpdateOrg(adminCtx(r), id, req)
}

func (h *handler) deleteOrg(r *http.Request) (any, error) {
	q := queryOf(r)
	id := q.str("org_id")
	if q.err != nil {
		return nil, q.err
	}
	if id == "" {
		return nil, unprocessable("org_id is required")
	}
	return h.svc.DeleteOrg(adminCtx(r), id)
}

func (h *handler) listKeys(r *http.Request) (any, error) {
	q := queryOf(r)
	org := q.str("org_id")
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAPIKeys(r.Context(), org)
}

func (h *handler) createKey(r *http.Request) (any, error) {
	var req api.APIKeyCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return h.svc.CreateAPIKey(adminCtx(r), req)
}

func (h *handler) revokeKey(r *http.Request) (any, error) {
	return h.svc.RevokeAPIKey(adminCtx(r), r.PathValue("key_id"))
}

func (h *handler) accessAudit(r *http.Request) (any, error) {
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
	return h.svc.AccessAudit(r.Context(), f)
}

package rest

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
)

// Browsers can be made to send requests to a server on loopback: a page on
// any site may POST a form or a "simple" fetch to http://localhost:8283, and
// a name the attacker controls may be re-pointed at 127.0.0.1 (DNS
// rebinding), which makes the page same-origin with the server. When no
// token is configured (the default on loopback) nothing else stands in the
// way. guard closes both doors, before authentication:
//
//   - The Host header must name the server: localhost (or a name under
//     .localhost), an IP literal (a page can only send one of those as Host
//     if its own origin is that address), or one of Config.AllowedHosts.
//     Anything else is 421, so a rebound name reaches nothing.
//   - A request that carries Origin (browsers send it on every cross-origin
//     request, and on same-origin ones that are not GET or HEAD) must come
//     from the server's own origin or from Config.CORSOrigins, else 403.
//     SDKs and curl send no Origin and are not affected.
//   - A request with a body, or a Content-Type, must be application/json
//     (multipart/form-data on the upload routes, whose paths end in
//     /upload, and either on the agent-file import), else 415: a
//     text/plain fetch never reaches a route, and a form reaches only those
//     that take files (the Origin rule above stops a foreign page's form).
//
// CORS is off unless Config.CORSOrigins names origins: only those get
// Access-Control-* headers, and only their preflight requests are answered.

// corsHeaders are the request headers a permitted origin may send.
const corsHeaders = "Authorization, Content-Type, Idempotency-Key, X-BARE-PASSWORD, User-Id, X-Project"

// guard applies the rules above. It reports false when it has answered r.
func (h *handler) guard(w http.ResponseWriter, r *http.Request) bool {
	if !h.hostAllowed(r.Host) {
		h.fail(w, r, &statusError{http.StatusMisdirectedRequest, fmt.Sprintf("this server does not answer to the host %q; start it with --allowed-host to serve that name", r.Host)})
		return false
	}
	origin := r.Header.Get("Origin")
	cors := origin != "" && h.corsAllowed(origin)
	if cors {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		w.Header().Set("Access-Control-Expose-Headers", "Allow, WWW-Authenticate")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			w.Header().Set("Access-Control-Allow-Headers", corsHeaders)
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
	}
	if origin != "" && !cors && !sameOrigin(origin, r) {
		h.fail(w, r, &statusError{http.StatusForbidden, fmt.Sprintf("requests from the origin %q are refused; start the server with --cors-origin to allow it", origin)})
		return false
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions:
		return true // no route reads their body
	case ct == "" && r.ContentLength == 0:
		return true // no body, nothing to decode
	}
	want := []string{"application/json"}
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/upload"):
		want = []string{"multipart/form-data"}
	case r.Method == http.MethodPost && r.URL.Path == "/v1/agents/import":
		want = []string{"multipart/form-data", "application/json"} // a Letta Agent File, as a form's file or as the body
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !slices.Contains(want, mt) {
		h.fail(w, r, &statusError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type must be %s, not %q", strings.Join(want, " or "), ct)})
		return false
	}
	return true
}

// hostAllowed reports whether the Host header names this server.
func (h *handler) hostAllowed(host string) bool {
	name := host
	if n, _, err := net.SplitHostPort(host); err == nil {
		name = n
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	// Browsers always send Host; an HTTP/1.0 client may not.
	if name == "" || name == "localhost" || strings.HasSuffix(name, ".localhost") || net.ParseIP(name) != nil {
		return true
	}
	for _, a := range h.cfg.AllowedHosts {
		a = strings.ToLower(a)
		if a == name || a == strings.ToLower(host) {
			return true
		}
	}
	return false
}

// corsAllowed reports whether origin is one of Config.CORSOrigins ("*"
// allows every origin).
func (h *handler) corsAllowed(origin string) bool {
	return slices.ContainsFunc(h.cfg.CORSOrigins, func(o string) bool {
		return o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	})
}

// sameOrigin reports whether origin is the server's own, as the request
// names it.
func sameOrigin(origin string, r *http.Request) bool {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return strings.EqualFold(origin, scheme+r.Host)
}

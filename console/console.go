// Package console serves engram's web console: a page, embedded in the
// binary, for seeing and steering agents through the /v1 REST API.
//
// The console is plain HTML, CSS and ES modules under static/, committed as
// they are served: there is no build step, nothing is fetched from another
// origin at run time, and the page works offline. It talks only to the /v1
// API of the server that served it, so it runs under the API's own rules
// (Host and Origin checks, JSON bodies, bearer token). The static files
// themselves carry no secrets and need no token; when the API answers 401,
// the page asks for the key, keeps it in sessionStorage and sends it as
// "Authorization: Bearer", never in a URL.
//
// Handler serves GET / (the page) and GET /console/NAME (its assets).
package console

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path under which the console's assets are served.
const Prefix = "/console/"

// contentSecurityPolicy lets the page load and call only its own origin,
// run only its own scripts, and not be framed by another site.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the console: the page at "/" and its files under Prefix.
// Any other path is not found. It answers only GET and HEAD (the caller's
// router is expected to route no other method here).
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary; a browser revalidates rather
		// than keep an old app.js beside a new server.
		h.Set("Cache-Control", "no-cache")
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if r.URL.Path == "/" {
			name, ok = "index.html", true
		}
		var data []byte
		var err error
		if ok && name != "" && !strings.Contains(name, "/") {
			data, err = fs.ReadFile(sub, name)
		}
		if !ok || data == nil || err != nil {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"detail":"Not Found"}`))
			return
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	})
}

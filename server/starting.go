package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
)

// gate serves HTTP from the moment the listener opens: while the node
// starts, the health check answers 503 with a status such as
// "replaying 40%" and every other route 503 with Retry-After; once the
// API's handler is set, everything goes to it.
type gate struct {
	version string
	api     atomic.Pointer[http.Handler]
	done    atomic.Uint64 // the replay's progress, while starting
	total   atomic.Uint64
}

func (g *gate) progress(p node.Progress) {
	g.done.Store(uint64(p.Done))
	g.total.Store(uint64(p.Total))
}

func (g *gate) status() string {
	total := g.total.Load()
	if total == 0 {
		return "starting"
	}
	return fmt.Sprintf("replaying %d%%", node.Progress{Done: events.Seq(g.done.Load()), Total: events.Seq(total)}.Percent())
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.api.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	status := g.status()
	if isHealth(r.URL.Path) {
		json.NewEncoder(w).Encode(api.Health{Status: status, Version: g.version})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"detail": "engram is starting (" + status + "); retry shortly"})
}

// isHealth reports whether a path is one of the health checks, with or
// without its trailing slash.
func isHealth(path string) bool {
	path = strings.TrimSuffix(path, "/")
	for _, p := range []string{"", rest.Prefix05, rest.Prefix051} {
		if path == p+"/v1/health" {
			return true
		}
	}
	return false
}

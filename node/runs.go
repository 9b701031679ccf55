package node

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/service"
)

// runBus carries runs' reports to the callers waiting for them (service.RunBus).
// In a cluster they go over NATS, where the caller may be on another node.
// A node alone hands each report to the callers in this process directly,
// on the runner's goroutine and as it is, and publishes it on NATS only when
// somebody else watches the run's subject (bus.Server.RunWatched): a
// report's trip through the server and its JSON both ways cost more than
// the rest of a step's answer.
type runBus struct {
	ns     *bus.Server
	tenant string
	local  bool

	mu      sync.RWMutex
	watches map[string][]*runWatch // by input id; a slice is replaced, never changed
}

type runWatch struct{ fn func(service.RunReport) }

func newRunBus(ns *bus.Server, tenant string) *runBus {
	return &runBus{ns: ns, tenant: tenant, local: ns.Local(), watches: map[string][]*runWatch{}}
}

func (r *runBus) PublishRun(inputID string, rep service.RunReport) error {
	if r.local {
		r.mu.RLock()
		ws := r.watches[inputID]
		r.mu.RUnlock()
		for _, w := range ws {
			w.fn(rep)
		}
		if !r.ns.RunWatched(r.tenant, inputID) {
			return nil
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return r.ns.PublishRun(r.tenant, inputID, b)
}

func (r *runBus) WatchRun(inputID string, fn func(service.RunReport)) (func(), error) {
	if !r.local {
		return r.ns.WatchRun(r.tenant, inputID, func(b []byte) {
			var rep service.RunReport
			if json.Unmarshal(b, &rep) == nil {
				fn(rep)
			}
		})
	}
	w := &runWatch{fn: fn}
	r.mu.Lock()
	r.watches[inputID] = append(slices.Clip(r.watches[inputID]), w)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			ws := slices.DeleteFunc(slices.Clone(r.watches[inputID]), func(x *runWatch) bool { return x == w })
			if len(ws) == 0 {
				delete(r.watches, inputID)
			} else {
				r.watches[inputID] = ws
			}
		})
	}, nil
}

func (r *runBus) OfferTokens(inputID string) (func(), error) {
	return r.ns.OfferTokens(r.tenant, inputID)
}

func (r *runBus) WantsTokens(inputID string) bool { return r.ns.WantsTokens(r.tenant, inputID) }

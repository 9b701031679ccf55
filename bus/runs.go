package bus

import (
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Run reports carry a run's progress from the node that runs an agent to the
// caller waiting for it, on runSubject; whether a caller wants the reply's
// tokens as they are generated is asked on tokensSubject. Both are delivery
// preferences, not part of the log.
//
// In a cluster (or connected to an outside NATS) the runner and the caller
// may be on different servers, so both go over core NATS. A node alone runs
// every agent and serves every caller in its own process: reports reach
// this process's watchers directly, on the publishing goroutine, and the
// question about tokens is answered from this process's offers, without the
// round trips through the server (about 70 µs from a report's publish to
// its watcher, and a request per run). Reports are still published on
// NATS for anyone else watching runSubject.
type localRuns struct {
	mu      sync.RWMutex
	watches map[string][]*runWatch // by subject
	offers  map[string]int         // by subject: offers standing
}

type runWatch struct{ fn func([]byte) }

// local says whether runs are reported within this process (see localRuns).
func (s *Server) local() bool { return !s.clustered }

// PublishRun sends one progress event of the run answering inputID.
func (s *Server) PublishRun(tenant, inputID string, data []byte) error {
	subj := runSubject(tenant, inputID)
	if s.local() {
		s.runs.mu.RLock()
		ws := s.runs.watches[subj]
		s.runs.mu.RUnlock()
		for _, w := range ws {
			w.fn(data)
		}
	}
	return s.conn.Publish(subj, data)
}

// WatchRun calls fn with every progress event of the run answering inputID
// until cancel is called. It is subscribed when it returns: for whatever
// this process sends on its connection afterwards (the input's append)
// and for the runs that follows from it. fn must not block: on a node alone
// it is called on the goroutine that publishes the report.
func (s *Server) WatchRun(tenant, inputID string, fn func([]byte)) (cancel func(), err error) {
	subj := runSubject(tenant, inputID)
	if s.local() {
		w := &runWatch{fn: fn}
		s.runs.mu.Lock()
		if s.runs.watches == nil {
			s.runs.watches = map[string][]*runWatch{}
		}
		s.runs.watches[subj] = append(s.runs.watches[subj], w)
		s.runs.mu.Unlock()
		var once sync.Once
		return func() {
			once.Do(func() {
				s.runs.mu.Lock()
				defer s.runs.mu.Unlock()
				// A new slice: a publisher may be ranging over the old one.
				ws := slices.DeleteFunc(slices.Clone(s.runs.watches[subj]), func(x *runWatch) bool { return x == w })
				if len(ws) == 0 {
					delete(s.runs.watches, subj)
				} else {
					s.runs.watches[subj] = ws
				}
			})
		}, nil
	}
	sub, err := s.conn.Subscribe(subj, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, err
	}
	// In a cluster another server's runner publishes: the flush has this
	// server take the subscription before the input is sent.
	if err := s.conn.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// OfferTokens answers, until stop is called, that someone waits for the
// tokens of the run answering inputID. It is subscribed when it returns.
func (s *Server) OfferTokens(tenant, inputID string) (stop func(), err error) {
	subj := tokensSubject(tenant, inputID)
	if s.local() {
		s.runs.mu.Lock()
		if s.runs.offers == nil {
			s.runs.offers = map[string]int{}
		}
		s.runs.offers[subj]++
		s.runs.mu.Unlock()
		var once sync.Once
		return func() {
			once.Do(func() {
				s.runs.mu.Lock()
				defer s.runs.mu.Unlock()
				if s.runs.offers[subj]--; s.runs.offers[subj] <= 0 {
					delete(s.runs.offers, subj)
				}
			})
		}, nil
	}
	sub, err := s.conn.Subscribe(subj, func(m *nats.Msg) { m.Respond(nil) })
	if err != nil {
		return nil, err
	}
	if err := s.conn.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// WantsTokens reports whether someone waits for the tokens of the run
// answering inputID. In a cluster it asks the bus: with nobody listening
// the server answers "no responders" at once, so asking costs one round
// trip.
func (s *Server) WantsTokens(tenant, inputID string) bool {
	subj := tokensSubject(tenant, inputID)
	if s.local() {
		s.runs.mu.RLock()
		defer s.runs.mu.RUnlock()
		return s.runs.offers[subj] > 0
	}
	_, err := s.conn.Request(subj, nil, 2*time.Second)
	return err == nil
}

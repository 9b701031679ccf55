package bus

import (
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
// every agent and serves every caller in its own process: it hands reports
// to its own callers directly (package node), publishing them only when
// somebody else watches the run's subject (RunWatched); and it answers the
// question about tokens from the offers made here (localOffers), without a
// request's round trip per run.

// localOffers are the token offers standing in this process, by subject.
type localOffers struct {
	mu     sync.Mutex
	offers map[string]int
}

// Local reports whether this server is a node alone: every agent runs in
// this process, and every caller waits in it.
func (s *Server) Local() bool { return !s.clustered }

// PublishRun sends one progress event of the run answering inputID.
func (s *Server) PublishRun(tenant, inputID string, data []byte) error {
	return s.conn.Publish(runSubject(tenant, inputID), data)
}

// RunWatched reports whether anyone subscribes to the progress of the run
// answering inputID on the server (always true but on a node alone, where
// the server is asked).
func (s *Server) RunWatched(tenant, inputID string) bool {
	if !s.Local() || s.ns == nil {
		return true
	}
	return s.ns.GlobalAccount().SubscriptionInterest(runSubject(tenant, inputID))
}

// WatchRun calls fn with every progress event of the run answering inputID
// until cancel is called. It is subscribed when it returns: for whatever
// this process sends on its connection afterwards (the input's append)
// and for the runs that follows from it.
func (s *Server) WatchRun(tenant, inputID string, fn func([]byte)) (cancel func(), err error) {
	return s.subscribe(runSubject(tenant, inputID), func(m *nats.Msg) { fn(m.Data) })
}

// subscribe subscribes h to subj on the process's connection; the
// subscription is in place when it returns (subscribed).
func (s *Server) subscribe(subj string, h nats.MsgHandler) (unsubscribe func(), err error) {
	sub, err := s.conn.Subscribe(subj, h)
	if err != nil {
		return nil, err
	}
	if err := s.subscribed(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}

// subscribed makes a subscription just sent on the process's connection
// count before what depends on it. Alone, nothing needs to wait: the
// server reads one connection's protocol in order, so the subscription is
// in place before any message this connection sends afterwards. In a
// cluster (or connected to an outside NATS) another server's runner
// publishes, and the flush has this server take the subscription before
// the input is sent.
func (s *Server) subscribed() error {
	if s.Local() {
		return nil
	}
	return s.conn.Flush()
}

// OfferTokens answers, until stop is called, that someone waits for the
// tokens of the run answering inputID. It is in place when it returns.
func (s *Server) OfferTokens(tenant, inputID string) (stop func(), err error) {
	subj := tokensSubject(tenant, inputID)
	if s.Local() {
		s.offers.mu.Lock()
		if s.offers.offers == nil {
			s.offers.offers = map[string]int{}
		}
		s.offers.offers[subj]++
		s.offers.mu.Unlock()
		var once sync.Once
		return func() {
			once.Do(func() {
				s.offers.mu.Lock()
				defer s.offers.mu.Unlock()
				if s.offers.offers[subj]--; s.offers.offers[subj] <= 0 {
					delete(s.offers.offers, subj)
				}
			})
		}, nil
	}
	return s.subscribe(subj, func(m *nats.Msg) { m.Respond(nil) })
}

// WantsTokens reports whether someone waits for the tokens of the run
// answering inputID. In a cluster it asks the bus: with nobody listening
// the server answers "no responders" at once, so asking costs one round
// trip.
func (s *Server) WantsTokens(tenant, inputID string) bool {
	subj := tokensSubject(tenant, inputID)
	if s.Local() {
		s.offers.mu.Lock()
		defer s.offers.mu.Unlock()
		return s.offers.offers[subj] > 0
	}
	_, err := s.conn.Request(subj, nil, 2*time.Second)
	return err == nil
}

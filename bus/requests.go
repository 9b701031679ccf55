package bus

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"
)

// Handler answers one request. It returns the reply body.
type Handler func(ctx context.Context, agentID string, data []byte) []byte

// Responder serves agent requests on NATS. Requests are spread over every
// node that serves (a queue group) and each runs in its own goroutine.
type Responder struct {
	sub    *nats.Subscription
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// ServeAgentRequests subscribes h to every agent's request subject.
func (s *Server) ServeAgentRequests(tenant string, h Handler) (*Responder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Responder{cancel: cancel}
	sub, err := s.conn.QueueSubscribe(agentRequests(tenant), "engram", func(m *nats.Msg) {
		_, agentID, ok := parseAgentRequest(m.Subject)
		if !ok || m.Reply == "" {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = m.Respond(h(ctx, agentID, m.Data))
		}()
	})
	if err != nil {
		cancel()
		return nil, err
	}
	r.sub = sub
	return r, nil
}

// Close stops taking requests, cancels those in flight and waits for them.
func (r *Responder) Close() {
	_ = r.sub.Unsubscribe()
	r.cancel()
	r.wg.Wait()
}

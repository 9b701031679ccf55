package bus

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Request/reply subjects for programs that talk to agents over NATS. Like
// the event subjects they are public API.
//
//	engram.<tenant>.agent.<agentID>.messages   request: a send body (JSON); reply: the response or {"detail": ...}
const requestPrefix = "engram"

// AgentRequestSubject is the subject that sends messages to an agent.
func AgentRequestSubject(tenant, agentID string) string {
	return requestPrefix + "." + tenant + ".agent." + agentID + ".messages"
}

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
	subject := requestPrefix + "." + tenant + ".agent.*.messages"
	sub, err := s.conn.QueueSubscribe(subject, "engram", func(m *nats.Msg) {
		tokens := strings.Split(m.Subject, ".")
		if len(tokens) != 5 || m.Reply == "" {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = m.Respond(h(ctx, tokens[3], m.Data))
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

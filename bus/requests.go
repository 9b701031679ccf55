package bus

import (
	"context"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Handler answers one request to the agent agentID on the subject of
// tenant (AgentRequestSubject). It returns the reply body. The tenant is
// the one the subject names, which NATS permissions tie to the client's
// credentials (see clientAuth); the handler must take the organization
// from it, never from the body.
type Handler func(ctx context.Context, tenant, agentID string, data []byte) []byte

// Responder serves agent requests on NATS. Requests are spread over every
// node that serves (a queue group) and each runs in its own goroutine.
type Responder struct {
	sub    *nats.Subscription
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// ServeAgentRequests subscribes h to every agent's request subject, of
// every tenant. A request whose reply subject is not a client's inbox — an
// event subject, engram's own subjects, JetStream's ($JS...) — is dropped
// unanswered: engram's connection may publish anywhere, and its answer
// must not land in the log, in another agent's requests or in a JetStream
// acknowledgement (a push consumer made by a client delivers with such a
// reply).
func (s *Server) ServeAgentRequests(h Handler) (*Responder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Responder{cancel: cancel}
	sub, err := s.conn.QueueSubscribe(agentRequests("*"), "engram", func(m *nats.Msg) {
		tenant, agentID, ok := parseAgentRequest(m.Subject)
		if !ok || !clientReply(m.Reply) {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = m.Respond(h(ctx, tenant, agentID, m.Data))
		}()
	})
	if err != nil {
		cancel()
		return nil, err
	}
	r.sub = sub
	return r, nil
}

// clientReply reports whether engram may answer a request on reply: it is
// set and is not an event subject, one of engram's own subjects or a
// system one.
func clientReply(reply string) bool {
	return reply != "" && !strings.HasPrefix(reply, "$") &&
		!strings.HasPrefix(reply, SubjectPrefix+".") && !strings.HasPrefix(reply, requestPrefix+".")
}

// Close stops taking requests, cancels those in flight and waits for them.
func (r *Responder) Close() {
	_ = r.sub.Unsubscribe()
	r.cancel()
	r.wg.Wait()
}

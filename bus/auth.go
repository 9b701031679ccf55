package bus

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/engram-dev/engram/events"
)

// The log is written only through engram: its own in-process connection
// authenticates with a secret made at start and never leaves the process,
// and may do anything. Every other client is one of two kinds, and neither
// may publish onto event subjects:
//
//   - the admin: a client presenting the configured token (or any client
//     that presents no organization's key, when no token is configured). It
//     may read the whole log, consume its own consumers and send requests
//     to any agent, but may not change or delete streams, objects or
//     engram's input consumers, take or acknowledge agents' inputs, forge
//     run reports or members' heartbeats, or answer in engram's place
//     (clientPermissions);
//   - an organization: a client presenting one of its API keys as the NATS
//     token (Keys; see AuthorizeKeys). It may send requests to its own
//     organization's agents only, on engram.<org>.agent.*.messages, with
//     replies to inboxes under _INBOX.<org> (nats.CustomInboxPrefix), and
//     read events under ev.<org>.> only: subscriptions, JetStream consumers
//     created with exactly that filter (or a narrower one) and direct gets
//     of the last message of such subjects (orgPermissions). <org> is the
//     organization's id, or the log's tenant token for the default one.
//
// A key that is unknown, revoked or expired is refused at CONNECT, and a
// connection open with a key that stops working is closed within one watch
// period. Writes go through the API, which checks them.
type clientAuth struct {
	internal string // the in-process connection's secret
	token    string // what the admin must present; "" for none
	keys     atomic.Pointer[keyAuth]
}

// keyAuth is how organizations' keys are checked, once AuthorizeKeys set it.
type keyAuth struct {
	keys   Keys
	tenant string // the default organization's token
}

func newClientAuth(token string) (*clientAuth, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &clientAuth{internal: hex.EncodeToString(b), token: token}, nil
}

// isAPIKey reports whether a token has the form of an organization's key
// ("apikey-<uuid>.<secret>"); such a token is checked as a key and nothing
// else.
func isAPIKey(token string) bool {
	id, _, ok := strings.Cut(token, ".")
	return ok && events.ValidID(events.PrefixAPIKey, id)
}

// Check implements server.Authentication.
func (a *clientAuth) Check(c server.ClientAuthentication) bool {
	got := c.GetOpts().Token
	if subtle.ConstantTimeCompare([]byte(got), []byte(a.internal)) == 1 {
		c.RegisterUser(&server.User{Username: "engram"})
		return true
	}
	if a.token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) == 1 {
		c.RegisterUser(&server.User{Username: "client", Permissions: clientPermissions()})
		return true
	}
	k := a.keys.Load()
	if isAPIKey(got) {
		if k == nil {
			return false // keys are not checked yet: none works
		}
		org, keyID, refused := k.keys.Authenticate(got)
		if refused != "" || keyID == "" {
			k.keys.Refused(Refusal{Remote: remote(c), KeyID: keyID, Reason: cmp.Or(refused, RefusedUnknown)})
			return false
		}
		// The user name is the key's public part: the watch finds the
		// connection by it (and the server may log it; never the secret).
		c.RegisterUser(&server.User{Username: keyID, Permissions: orgPermissions(k.tenantOf(org), k.tenant)})
		return true
	}
	if a.token != "" {
		if k != nil {
			reason := RefusedUnknown
			if got == "" {
				reason = RefusedMissing
			}
			k.keys.Refused(Refusal{Remote: remote(c), Reason: reason})
		}
		return false
	}
	c.RegisterUser(&server.User{Username: "client", Permissions: clientPermissions()})
	return true
}

// remote is a client's address, "" when it has none (in-process).
func remote(c server.ClientAuthentication) string {
	if addr := c.RemoteAddress(); addr != nil {
		return addr.String()
	}
	return ""
}

// tenantOf is the subject token of an organization ("" is the default one).
func (k *keyAuth) tenantOf(org string) string {
	if org == "" {
		return k.tenant
	}
	return org
}

// Keys checks organizations' API keys for the NATS client listener. Its
// methods are called from the NATS server's goroutines, concurrently, and
// must neither block nor use NATS.
type Keys interface {
	// Authenticate returns the organization a key belongs to ("" for the
	// default one) and the key's id (its public part), or why it is
	// refused ("" when it is not): unknown, revoked or expired, its
	// organization deleted. The key id is returned when the key names
	// one, refused or not. An organization's id must be a single subject
	// token.
	Authenticate(key string) (org, keyID, refused string)
	// Active reports whether the key named keyID still authenticates.
	Active(keyID string) bool
	// Refused is told of every CONNECT refused once AuthorizeKeys was
	// called: a key Authenticate refused, a wrong admin token, none.
	Refused(Refusal)
}

// Refusal is a client the NATS listener refused at CONNECT.
type Refusal struct {
	Remote string // the client's address
	KeyID  string // the key it presented, when it named one
	Reason string // RefusedMissing, RefusedUnknown, or what Keys.Authenticate said
}

// Reasons for a Refusal the listener decides itself.
const (
	RefusedMissing = "missing" // no token, where one is required
	RefusedUnknown = "unknown" // a token that is neither the admin's nor a key
)

// DefaultKeyWatch is how often AuthorizeKeys looks for connections whose
// key stopped working.
const DefaultKeyWatch = time.Second

// KeyWatch closes the connections of keys that stop working; see
// AuthorizeKeys.
type KeyWatch struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Close stops the watch and waits for it. Keys keep being checked at
// CONNECT.
func (w *KeyWatch) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// AuthorizeKeys makes clients presenting an organization's API key as
// their NATS token connect as that organization (see clientAuth); until it
// is called, every key is refused. tenant is the default organization's
// subject token (the log's tenant). Every period (DefaultKeyWatch when
// zero) it closes the connections whose key is no longer Active; a client
// that reconnects is refused at CONNECT. The caller must Close the watch.
// On an external NATS (Config.URL) engram does not authenticate clients:
// it is an error.
func (s *Server) AuthorizeKeys(tenant string, k Keys, period time.Duration) (*KeyWatch, error) {
	if s.auth == nil || s.ns == nil {
		return nil, errors.New("authorize keys: the NATS server is not engram's own")
	}
	if tenant == "" {
		tenant = DefaultTenant
	}
	if period <= 0 {
		period = DefaultKeyWatch
	}
	s.auth.keys.Store(&keyAuth{keys: k, tenant: tenant})
	w := &KeyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				s.closeStaleKeys(k)
			}
		}
	}()
	return w, nil
}

// closeStaleKeys closes every open connection made with a key that is no
// longer Active.
func (s *Server) closeStaleKeys(k Keys) {
	const page = 1024
	var stale []uint64
	for offset := 0; ; offset += page {
		cz, err := s.ns.Connz(&server.ConnzOptions{Username: true, Offset: offset, Limit: page})
		if err != nil {
			s.log.Warn("nats: listing connections to check their keys", "err", err)
			return
		}
		for _, c := range cz.Conns {
			if user := c.AuthorizedUser; strings.HasPrefix(user, events.PrefixAPIKey+"-") && !k.Active(user) {
				stale = append(stale, c.Cid)
			}
		}
		if len(cz.Conns) < page {
			break
		}
	}
	for _, cid := range stale {
		if err := s.ns.DisconnectClientByID(cid); err == nil {
			s.log.Info("nats: closed a connection whose key stopped working", "cid", cid)
		}
	}
}

// clientPermissions are what the admin (a client other than engram) may
// not do.
func clientPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Deny: append([]string{
			SubjectPrefix + ".>", // appending events
			"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>",
			"$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>", "$JS.API.STREAM.RESTORE.>",
			"$JS.API.STREAM.SNAPSHOT.>", "$JS.API.STREAM.LEADER.>", "$JS.API.STREAM.PEER.>",
			"$JS.API.CONSUMER.PAUSE.>", "$JS.API.CONSUMER.UNPIN.>", "$JS.API.CONSUMER.LEADER.>",
			"$JS.ACK.>",     // acknowledging anyone's deliveries (ordered consumers need none)
			"$O.>", "$KV.>", // snapshots and files
			requestPrefix + ".*.run.>", requestPrefix + ".*.tokens.>", // run reports to waiting callers
			requestPrefix + ".*.node.>", // cluster members' heartbeats
		}, inputConsumerSubjects()...)},
		Subscribe: &server.SubjectPermission{Deny: []string{
			requestPrefix + ".*.agent.*.messages", // answering sends in engram's place
			requestPrefix + ".*.tokens.>",
			"$JS.API.>", // answering JetStream requests in the server's place
		}},
	}
}

// orgPermissions are all an organization's client may do: org is its
// subject token, tenant the default organization's. Everything not
// allowed here is refused, so JetStream requests that name no filter
// (stream info, a consumer without a filter, a direct get of a sequence,
// STREAM.MSG.GET) are refused with the rest.
//
// Events are read under ev.<org>.>, where the log stores an organization's
// aggregates (Batch.Tenants). The default organization's keys may read no
// events at all: the log's own token also holds what belongs to no
// organization (organizations, keys, the access record, checkpoints) and
// the events other organizations' aggregates had before organizations had
// tokens of their own.
func orgPermissions(org, tenant string) *server.Permissions {
	pub := []string{AgentRequestSubject(org, "*")} // its agents (the handler checks the agent is the organization's)
	sub := []string{"_INBOX." + org + ".>"}
	if org != tenant {
		evs := SubjectPrefix + "." + org + ".>"
		pub = append(pub,
			"$JS.API.CONSUMER.CREATE."+StreamName+".*."+evs, // the filter must be in the subject, and equal the config's
			"$JS.API.CONSUMER.MSG.NEXT."+StreamName+".*",    // pulling from a consumer it made (consumers are not listed to it)
			"$JS.API.DIRECT.GET."+StreamName+"."+evs,        // the last message of a subject; a body asking for a sequence is refused
		)
		sub = append(sub, evs)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub, Deny: inputConsumerSubjects()},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// inputConsumerSubjects are the JetStream API subjects that would update,
// delete or pull engram's input consumers (a wildcard matches whole tokens
// only, so each consumer is named).
func inputConsumerSubjects() []string {
	var out []string
	for p := range Partitions {
		name := fmt.Sprintf(inputConsumerFormat, p)
		for _, op := range []string{"CREATE.*." + name, "CREATE.*." + name + ".>", "DURABLE.CREATE.*." + name, "DELETE.*." + name, "MSG.NEXT.*." + name} {
			out = append(out, "$JS.API.CONSUMER."+op)
		}
	}
	return out
}

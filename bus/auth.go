package bus

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// The log is written only through engram: its own in-process connection
// authenticates with a secret made at start and never leaves the process,
// and may do anything. Every other client — with the configured token, or
// with none when none is configured — may read the log, consume its own
// consumers and send requests to agents, but may not publish onto event
// subjects, change or delete streams, objects or engram's input consumers,
// take or acknowledge agents' inputs, forge run reports or members'
// heartbeats, or answer in engram's place. Writes go through the API, which
// checks them.
type clientAuth struct {
	internal string // the in-process connection's secret
	token    string // what external clients must present; "" for none
}

func newClientAuth(token string) (*clientAuth, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &clientAuth{internal: hex.EncodeToString(b), token: token}, nil
}

// Check implements server.Authentication.
func (a *clientAuth) Check(c server.ClientAuthentication) bool {
	got := c.GetOpts().Token
	if subtle.ConstantTimeCompare([]byte(got), []byte(a.internal)) == 1 {
		c.RegisterUser(&server.User{Username: "engram"})
		return true
	}
	if a.token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
		return false
	}
	c.RegisterUser(&server.User{Username: "client", Permissions: clientPermissions()})
	return true
}

// clientPermissions are what a client other than engram may not do.
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

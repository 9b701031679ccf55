package bus

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/engram-dev/engram/events"
)

// Names and subject layout. These are public API and permanent: renaming the
// stream, a prefix, the tenant token or the partition count changes where
// every stored event lives and means migrating the whole log.
//
// Event subjects:
//
//	ev.<tenant>.agent.<pp>.<agentID>.<type>   agent events; pp = partition, 2 hex digits
//	ev.<tenant>.<kind>.<id>.<type>            every other aggregate (block, tool, source, job)
//
// One wildcard selects an aggregate (ev.default.agent.1f.agent-….>), another
// an event type across agents (ev.*.agent.*.*.message_appended).
const (
	// StreamName is the one event stream, the source of truth.
	StreamName = "EVENTS"
	// SubjectPrefix is the first token of every event subject.
	SubjectPrefix = "ev"
	// DefaultTenant is the tenant token used by a single-tenant server, and
	// by the default organization of one with organizations; another
	// organization's aggregates are under its id (Batch.Tenants).
	DefaultTenant = "default"
	// AnyTenant is the tenant token of a filter that matches every tenant.
	AnyTenant = "*"
	// Partitions is the fixed number of agent partitions.
	Partitions = 64
	// SnapshotBucket is the Object Store bucket that holds projection snapshots.
	SnapshotBucket = "SNAPSHOTS"
	// FileBucket is the Object Store bucket that holds the bytes of files
	// loaded into sources; file_created events name the object and its
	// digest. Renaming it orphans every stored file.
	FileBucket = "FILES"
)

// Header names engram writes on every event message.
const (
	hdrMsgID        = "Nats-Msg-Id"
	hdrExpectSeq    = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectSubj   = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrBatchID      = "Nats-Batch-Id"
	hdrBatchSeq     = "Nats-Batch-Sequence"
	hdrBatchCommit  = "Nats-Batch-Commit"
	hdrCommand      = "Engram-Command"
	streamSubjects  = SubjectPrefix + ".>"
	partitionFormat = "%02x"
)

// Partition returns the partition of an agent: fnv32a(id) mod Partitions.
func Partition(agentID string) int {
	h := fnv.New32a()
	h.Write([]byte(agentID))
	return int(h.Sum32() % Partitions)
}

// aggregatePrefix is the subject of an aggregate without the type token.
// It is built by concatenation: it is on every append's path, where
// fmt.Sprintf cost ~3% of an append's CPU.
func aggregatePrefix(tenant string, a events.Aggregate) string {
	if a.Kind == events.KindAgent {
		return SubjectPrefix + "." + tenant + "." + string(a.Kind) + "." + partitionToken(Partition(a.ID)) + "." + a.ID
	}
	return SubjectPrefix + "." + tenant + "." + string(a.Kind) + "." + a.ID
}

// partitionToken formats a partition as partitionFormat does: two
// lowercase hex digits.
func partitionToken(p int) string {
	const hex = "0123456789abcdef"
	return string([]byte{hex[p>>4&0xf], hex[p&0xf]})
}

// Subject is the subject an event of type t on aggregate a is stored under.
func Subject(tenant string, a events.Aggregate, t events.Type) string {
	return aggregatePrefix(tenant, a) + "." + string(t)
}

// AggregateFilter selects every event of one aggregate.
func AggregateFilter(tenant string, a events.Aggregate) string {
	return aggregatePrefix(tenant, a) + ".>"
}

// KindFilter selects every event of every aggregate of one kind.
func KindFilter(tenant string, k events.Kind) string {
	return fmt.Sprintf("%s.%s.%s.>", SubjectPrefix, tenant, k)
}

// inputTypes are the events a run takes: client messages and run requests.
var inputTypes = []events.Type{events.TypeMessageReceived, events.TypeRunRequested}

// partitionInputs selects the inputs (inputTypes) of the agents of one
// partition: the filters of that partition's input consumer.
func partitionInputs(tenant string, p int) []string {
	out := make([]string, len(inputTypes))
	for i, t := range inputTypes {
		out[i] = SubjectPrefix + "." + tenant + "." + string(events.KindAgent) + "." + partitionToken(p) + ".*." + string(t)
	}
	return out
}

// InputOf returns the agent whose input (a client's message or a run
// request: what the agent's input consumer delivers) is stored under
// subject, or ok false when subject holds no input.
func InputOf(subject string) (agentID string, ok bool) {
	if !slices.ContainsFunc(inputTypes, func(t events.Type) bool { return strings.HasSuffix(subject, "."+string(t)) }) {
		return "", false
	}
	es, ok := ParseSubject(subject)
	if !ok || es.Aggregate.Kind != events.KindAgent {
		return "", false
	}
	return es.Aggregate.ID, true
}

// EventSubject is an event subject taken apart.
type EventSubject struct {
	Tenant    string
	Aggregate events.Aggregate
	Type      events.Type
}

// ParseSubject takes an event subject apart; ok is false when s is not an
// event subject of this layout (an agent subject must also name the
// partition its id belongs to).
func ParseSubject(s string) (es EventSubject, ok bool) {
	t := strings.Split(s, ".")
	if len(t) < 5 || t[0] != SubjectPrefix {
		return es, false
	}
	es.Tenant, es.Aggregate.Kind = t[1], events.Kind(t[2])
	switch {
	case es.Aggregate.Kind == events.KindAgent && len(t) == 6:
		es.Aggregate.ID, es.Type = t[4], events.Type(t[5])
		if t[3] != partitionToken(Partition(es.Aggregate.ID)) {
			return EventSubject{}, false
		}
	case es.Aggregate.Kind != events.KindAgent && len(t) == 5:
		es.Aggregate.ID, es.Type = t[3], events.Type(t[4])
	default:
		return EventSubject{}, false
	}
	if es.Tenant == "" || es.Aggregate.ID == "" || es.Type == "" {
		return EventSubject{}, false
	}
	return es, true
}

// Request/reply subjects for programs that talk to agents over NATS, and
// the run subjects that carry a run's progress. Like the event subjects
// they are public API:
//
//	engram.<tenant>.agent.<agentID>.messages   request: a send body (JSON); reply: the response or {"detail": ...}
//	engram.<tenant>.run.<inputMessageID>       progress of the run answering one input
//	engram.<tenant>.node.<nodeName>            a cluster member's heartbeat (Member, JSON)
const requestPrefix = "engram"

// AgentRequestSubject is the subject that sends messages to an agent.
func AgentRequestSubject(tenant, agentID string) string {
	return requestPrefix + "." + tenant + ".agent." + agentID + ".messages"
}

// agentRequests selects every agent's request subject of a tenant.
func agentRequests(tenant string) string {
	return requestPrefix + "." + tenant + ".agent.*.messages"
}

// parseAgentRequest returns the agent a request subject names.
func parseAgentRequest(s string) (tenant, agentID string, ok bool) {
	t := strings.Split(s, ".")
	if len(t) != 5 || t[0] != requestPrefix || t[2] != "agent" || t[4] != "messages" || t[1] == "" || t[3] == "" {
		return "", "", false
	}
	return t[1], t[3], true
}

// runSubject carries the progress of the run answering inputID.
func runSubject(tenant, inputID string) string {
	return requestPrefix + "." + tenant + ".run." + inputID
}

// memberSubject carries the heartbeats of the member named node.
func memberSubject(tenant, node string) string {
	return requestPrefix + "." + tenant + ".node." + node
}

// tokensSubject is where a caller waiting for the run answering inputID
// says it wants the reply's tokens as they are generated.
func tokensSubject(tenant, inputID string) string {
	return requestPrefix + "." + tenant + ".tokens." + inputID
}

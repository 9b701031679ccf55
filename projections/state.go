package projections

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/engram-dev/engram/events"
)

// recentCommands is how many command ids each aggregate remembers, so a
// retried command is recognised even after other writes to the aggregate.
const recentCommands = 4

// Version is an aggregate's concurrency state: the sequence of its last
// event stored under its own subject (what an expectation names; hosted
// events, stored in another aggregate's message, do not count) and the
// commands that produced its last few events.
type Version struct {
	Seq    events.Seq
	Recent [recentCommands]Applied
}

// Applied records that a command's events ended at Seq.
type Applied struct {
	Command string
	Seq     events.Seq
}

func (v *Version) bump(env events.Envelope) {
	if !env.Hosted {
		// A hosted event lives in another aggregate's message: this
		// aggregate's subject, which expectations check, does not hold it.
		v.Seq = env.Seq
	}
	if n := len(v.Recent); v.Recent[n-1].Command == env.Command && env.Command != "" {
		v.Recent[n-1].Seq = env.Seq // later event of the same batch
		return
	}
	copy(v.Recent[:], v.Recent[1:])
	v.Recent[len(v.Recent)-1] = Applied{Command: env.Command, Seq: env.Seq}
}

// Newest is the sequence of the aggregate's newest event, hosted ones
// included: what its read model rests on.
func (v Version) Newest() events.Seq {
	return max(v.Seq, v.Recent[len(v.Recent)-1].Seq)
}

// Done reports whether command already produced events here, and the
// sequence of its last one.
func (v Version) Done(command string) (events.Seq, bool) {
	seq, _, ok := v.DoneAs(command)
	return seq, ok
}

// DoneAs is Done that also returns the command as stored: the id alone, or
// the id, "@" and the fingerprint of the request that carried it.
func (v Version) DoneAs(command string) (events.Seq, string, bool) {
	if command == "" {
		return 0, "", false
	}
	for _, a := range v.Recent {
		if a.Command == command || (len(a.Command) > len(command) && a.Command[len(command)] == '@' && a.Command[:len(command)] == command) {
			return a.Seq, a.Command, true
		}
	}
	return 0, "", false
}

// Agent is the read model of one agent.
type Agent struct {
	ID              events.AgentID
	Name            string
	Description     string
	System          string
	AgentType       string
	LLMConfig       json.RawMessage
	EmbeddingConfig json.RawMessage
	Metadata        json.RawMessage
	ToolRules       json.RawMessage
	Tags            []string
	ToolIDs         []events.ToolID
	BlockIDs        []events.BlockID
	SourceIDs       []events.SourceID
	MessageIDs      []events.MessageID // the context window: in-context messages, in order; never changed in place (see appendWindow)
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Created         events.Seq
	Version         Version
	Taken           events.Seq // the newest client input taken into the context
	StateSeq        events.Seq // the last event that changed the agent other than a queued input
	Passages        []Ref      // archival memory, in insertion order
	Messages        []Ref      // recall memory, in insertion order
	// Keys finds a client's input by the key that makes its send idempotent
	// (MessageReceived.Key) and by its otid: the first input so named. Nil
	// until the agent receives one.
	Keys map[string]Ref
	// Pending are the client inputs no run has taken yet, in arrival order.
	Pending []Ref
	// Awaiting is the assistant message whose tool calls wait for the
	// client (its run stopped with requires_approval: none of them ran),
	// until a step stores their returns or the window drops it.
	Awaiting events.MessageID
	// Runs are the ids of the agent's runs (State.Runs), oldest first.
	Runs []string
	// Related are the blocks, tools and sources the agent has had at any
	// time, in the order it first had them: the aggregates whose events
	// make up its history. A snapshot taken before this field existed
	// lacks those the agent no longer has.
	Related []events.Aggregate
	// ownWindow says MessageIDs' array is this agent's alone, so a
	// message can join the window in place; false when it may be shared
	// (an AgentUpdated's ids, or a restored snapshot's before the first
	// append). Not encoded: a restored agent copies once.
	ownWindow bool

	// Secrets are the agent's tool environment variables, each value
	// sealed (events.AgentSecretsSet); nil when it has none.
	Secrets map[string]string

	// CompactionSettings are Letta's compaction_settings, as the client sent them.
	CompactionSettings json.RawMessage
	// Org is the organization it belongs to; "" is the default one.
	Org string
}

// relate records that the agent has had an aggregate.
func (a *Agent) relate(k events.Kind, id string) {
	x := events.Aggregate{Kind: k, ID: id}
	if !slices.Contains(a.Related, x) {
		a.Related = append(a.Related, x)
	}
}

// Run statuses, as Letta names them.
const (
	RunCreated   = "created"   // its inputs wait for the agent
	RunRunning   = "running"   // a run took its inputs; steps follow
	RunCompleted = "completed" // its last step recorded a stop reason
	RunCancelled = "cancelled" // a client cancelled it (RunCancelled)
	RunFailed    = "failed"    // a step failed after it began (RunFailed)
)

// Run is the read model of one run: the work that answers one send. It is
// named by events.DerivedID("run", the id of the send's first input) and
// folded from the events a send already writes: its inputs
// (MessageReceived, created), the first step (InputTaken, running), each
// step's assistant message (MessageAppended.RunID, with its usage; a stop
// reason completes it), RunCancelled and RunFailed.
type Run struct {
	ID      string
	AgentID events.AgentID
	Command string // the command that stored its inputs
	// ConversationID is the conversation the send went to; "" for the
	// agent's default conversation.
	ConversationID events.ConversationID
	Inputs         []Ref // the send's inputs, in order
	Status         string
	StopReason     string // "" while it goes
	Error          string // why it failed
	Steps          int
	// Then, while the run goes on, is how it goes on after its last step
	// stored (MessageAppended.Then); nil once it ended, before its first
	// step, or for steps stored before runs said so.
	Then        *events.RunThen
	Usage       events.Usage
	CreatedAt   time.Time
	CompletedAt time.Time // zero while it goes
	Created     events.Seq
}

// Active reports whether the run has not ended.
func (r *Run) Active() bool { return r.Status == RunCreated || r.Status == RunRunning }

// Ref locates a passage or message body in the log.
type Ref struct {
	ID        string
	Seq       events.Seq
	CreatedAt int64 // unix nanoseconds
	Input     bool  // a message a client sent (message_received)
	// Conv says the message belongs to one of the agent's conversations
	// other than its default one: a send to it, or what its run stored.
	Conv bool
	Part int32 // index in the packed message at Seq (events.DecodeAll); 0 otherwise
}

// Block is the read model of one block.
type Block struct {
	ID          events.BlockID
	Label       string
	Value       string
	Limit       int
	Name        string
	IsTemplate  bool
	ReadOnly    bool
	Description string
	Metadata    json.RawMessage
	Tags        []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Created     events.Seq
	CreatedPart int32 // its index in the log message that created it (several aggregates made by one command share a message: events.EncodeHosted)
	// Hosted: its creation is stored in another aggregate's message (at
	// Created; events.EncodeHosted), so a read of its own subject misses it.
	Hosted  bool
	Version Version
	// Org is the organization it belongs to; "" is the default one.
	Org string
}

// Tool is the read model of one tool.
type Tool struct {
	ID              events.ToolID
	Name            string
	Description     string
	SourceCode      string
	SourceType      string
	JSONSchema      json.RawMessage
	Tags            []string
	ToolType        string
	ReturnCharLimit int
	Metadata        json.RawMessage
	AgentState      bool
	TimeoutSeconds  float64 // 0 means the server's default
	// DefaultRequiresApproval: agents given it get a requires_approval rule.
	DefaultRequiresApproval bool
	CreatedAt               time.Time
	UpdatedAt               time.Time
	Created                 events.Seq
	CreatedPart             int32 // its index in the log message that created it (several aggregates made by one command share a message: events.EncodeHosted)
	Version                 Version
	// Org is the organization it belongs to; "" is the default one.
	Org string
}

// Source is the read model of one data source.
type Source struct {
	ID              events.SourceID
	Name            string
	Description     string
	Instructions    string
	EmbeddingConfig json.RawMessage
	Metadata        json.RawMessage
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Created         events.Seq
	CreatedPart     int32 // its index in the log message that created it (several aggregates made by one command share a message: events.EncodeHosted)
	Version         Version
	Passages        []Ref
	Files           []*File // in upload order
	// Org is the organization it belongs to; "" is the default one.
	Org string
}

// File is the read model of one file loaded into a source.
type File struct {
	ID           events.FileID
	Name         string
	OriginalName string
	MIME         string
	Size         int64
	Digest       string
	Object       string
	JobID        events.JobID
	Status       string // parsing | embedding | completed | error
	Error        string
	Passages     []events.PassageID // written from this file, in order
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// File returns the source's file with the given id, or nil.
func (s *Source) File(id events.FileID) *File {
	for _, f := range s.Files {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// Job is the read model of one job.
type Job struct {
	ID          events.JobID
	JobType     string
	AgentID     events.AgentID
	SourceID    events.SourceID
	Status      string
	Metadata    json.RawMessage
	Error       string
	CreatedAt   time.Time
	CompletedAt time.Time
	Created     events.Seq
	CreatedPart int32 // its index in the log message that created it (several aggregates made by one command share a message: events.EncodeHosted)
	Version     Version
	// Org is the organization it belongs to; "" is the default one.
	Org string
}

// Conversation is the read model of one conversation.
type Conversation struct {
	ID                  events.ConversationID
	AgentID             events.AgentID
	Summary             string
	Model               string
	ModelSettings       json.RawMessage
	IsolatedBlockLabels []string
	// IsolatedBlockIDs are its own copies of the agent's blocks so
	// labelled (events.ConversationCreated).
	IsolatedBlockIDs []events.BlockID
	// Messages are the conversation's messages, in the order the agent
	// stored them: the inputs sent to it and what its runs stored.
	Messages []Ref
	// MessageIDs are the conversation's context window, as the agent's
	// (Agent.MessageIDs) is the default conversation's: it begins with the
	// agent's system message of the time it was created (as Letta gives a
	// conversation a system message of its own), and the runs of sends to
	// it add their messages here, not to the agent's window. Never changed
	// in place (see appendWindow).
	MessageIDs []events.MessageID
	// Awaiting is the assistant message of one of its runs whose tool
	// calls wait for the client (as Agent.Awaiting for the default
	// conversation).
	Awaiting      events.MessageID
	ownWindow     bool      // MessageIDs' array is this conversation's alone (as Agent.ownWindow)
	LastMessageAt time.Time // when the last send to it was stored
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Created       events.Seq
	Version       Version
}

// State is the whole read model. Its zero value is not ready; use NewState.
// It is not safe for concurrent use: Projection guards it.
type State struct {
	Applied events.Seq
	// AppliedPart is the index, in the message at Applied, of the last
	// event applied (0 unless that message is packed).
	AppliedPart int
	Agents      map[events.AgentID]*Agent
	Blocks      map[events.BlockID]*Block
	Tools       map[events.ToolID]*Tool
	Sources     map[events.SourceID]*Source
	Jobs        map[events.JobID]*Job
	// Conversations are every agent's conversations, by id. A snapshot
	// taken before conversations existed has none, as its log has none.
	Conversations map[events.ConversationID]*Conversation
	Kinds         map[events.Kind]events.Seq // last sequence stored under each aggregate kind's subjects (not hosted events)
	Gone          map[string]Version         // versions of deleted aggregates, by id
	Skipped       int                        // events that could not be applied (unknown type, bad bytes)
	Passages      map[events.PassageID]events.AgentID
	// SourcePassages maps each passage of a source to its source.
	SourcePassages map[events.PassageID]events.SourceID
	// Runs are every agent's runs, by id.
	Runs map[string]*Run
	// Orgs are the organizations made besides the default one, by id,
	// deleted ones included; APIKeys their keys, by key id.
	Orgs    map[string]*Org
	APIKeys map[string]*APIKey
	// GoneOrgs names the organization of deleted aggregates that belonged
	// to another than the default one, by id.
	GoneOrgs map[string]string
	// Denials counts the refused requests on record.
	Denials Denials
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Agents:  map[events.AgentID]*Agent{},
		Blocks:  map[events.BlockID]*Block{},
		Tools:   map[events.ToolID]*Tool{},
		Sources: map[events.SourceID]*Source{},
		Jobs:    map[events.JobID]*Job{},

		Conversations: map[events.ConversationID]*Conversation{},
		Kinds:         map[events.Kind]events.Seq{},
		Gone:          map[string]Version{},
		Passages:      map[events.PassageID]events.AgentID{},

		SourcePassages: map[events.PassageID]events.SourceID{},
		Runs:           map[string]*Run{},
		Orgs:           map[string]*Org{},
		APIKeys:        map[string]*APIKey{},
		GoneOrgs:       map[string]string{},
	}
}

// VersionOf returns the version of an aggregate, including a deleted one.
func (s *State) VersionOf(a events.Aggregate) Version {
	switch a.Kind {
	case events.KindAgent:
		if x := s.Agents[events.AgentID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindBlock:
		if x := s.Blocks[events.BlockID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindTool:
		if x := s.Tools[events.ToolID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindSource:
		if x := s.Sources[events.SourceID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindJob:
		if x := s.Jobs[events.JobID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindConversation:
		if x := s.Conversations[events.ConversationID(a.ID)]; x != nil {
			return x.Version
		}
	case events.KindOrg:
		if x := s.Orgs[a.ID]; x != nil {
			return x.Version
		}
	case events.KindAccess:
		return s.Denials.Version
	}
	return s.Gone[a.ID]
}

// ByCreation orders what was created by where its creation is in the log:
// its message's sequence, then its place in that message.
func ByCreation(seqA events.Seq, partA int32, seqB events.Seq, partB int32) int {
	if seqA != seqB {
		return cmp.Compare(seqA, seqB)
	}
	return cmp.Compare(partA, partB)
}

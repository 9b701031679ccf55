package events

import (
	"encoding/json"
	"strings"
	"time"
)

// Wire names of every event type. Renaming one orphans every stored event
// of that type: these strings are permanent.
const (
	TypeAgentCreated        Type = "agent_created"
	TypeAgentUpdated        Type = "agent_updated"
	TypeAgentDeleted        Type = "agent_deleted"
	TypeCoreBlockAttached   Type = "core_block_attached"
	TypeCoreBlockDetached   Type = "core_block_detached"
	TypeAgentToolAttached   Type = "agent_tool_attached"
	TypeAgentToolDetached   Type = "agent_tool_detached"
	TypeAgentSourceAttached Type = "agent_source_attached"
	TypeAgentSourceDetached Type = "agent_source_detached"
	TypeBlockCreated        Type = "block_created"
	TypeBlockUpdated        Type = "block_updated"
	TypeBlockDeleted        Type = "block_deleted"
	TypeToolCreated         Type = "tool_created"
	TypeToolUpdated         Type = "tool_updated"
	TypeToolDeleted         Type = "tool_deleted"
	TypeSourceCreated       Type = "source_created"
	TypeSourceUpdated       Type = "source_updated"
	TypeSourceDeleted       Type = "source_deleted"
	TypeJobCreated          Type = "job_created"
	TypeJobUpdated          Type = "job_updated"
	TypePassageInserted     Type = "passage_inserted"
	TypePassageDeleted      Type = "passage_deleted"
	TypeMessageAppended     Type = "message_appended"
	TypeMessageReceived     Type = "message_received"
	TypeInputTaken          Type = "input_taken"
	TypeFileCreated         Type = "file_created"
	TypeFileUpdated         Type = "file_updated"
	TypeFileDeleted         Type = "file_deleted"
	TypeMessageUpdated      Type = "message_updated"
	TypeJobDeleted          Type = "job_deleted"
	TypeRunCancelled        Type = "run_cancelled"
	TypeRunFailed           Type = "run_failed"
	TypeRunRequested        Type = "run_requested"
	TypeLogCheckpointed     Type = "log_checkpointed"
	TypeConversationCreated Type = "conversation_created"
	TypeConversationUpdated Type = "conversation_updated"
	TypeConversationDeleted Type = "conversation_deleted"
	TypeOrgCreated          Type = "organization_created"
	TypeOrgUpdated          Type = "organization_updated"
	TypeOrgDeleted          Type = "organization_deleted"
	TypeAPIKeyCreated       Type = "api_key_created"
	TypeAPIKeyRevoked       Type = "api_key_revoked"
	TypeAccessDenied        Type = "access_denied"
	TypeAgentSecretsSet     Type = "agent_secrets_set"
	TypeConversationWindow  Type = "conversation_window_set"
)

// registry maps wire names to constructors; Decode uses it.
var registry = map[Type]func() Event{
	TypeAgentCreated:        func() Event { return new(AgentCreated) },
	TypeAgentUpdated:        func() Event { return new(AgentUpdated) },
	TypeAgentDeleted:        func() Event { return new(AgentDeleted) },
	TypeCoreBlockAttached:   func() Event { return new(CoreBlockAttached) },
	TypeCoreBlockDetached:   func() Event { return new(CoreBlockDetached) },
	TypeAgentToolAttached:   func() Event { return new(AgentToolAttached) },
	TypeAgentToolDetached:   func() Event { return new(AgentToolDetached) },
	TypeAgentSourceAttached: func() Event { return new(AgentSourceAttached) },
	TypeAgentSourceDetached: func() Event { return new(AgentSourceDetached) },
	TypeBlockCreated:        func() Event { return new(BlockCreated) },
	TypeBlockUpdated:        func() Event { return new(BlockUpdated) },
	TypeBlockDeleted:        func() Event { return new(BlockDeleted) },
	TypeToolCreated:         func() Event { return new(ToolCreated) },
	TypeToolUpdated:         func() Event { return new(ToolUpdated) },
	TypeToolDeleted:         func() Event { return new(ToolDeleted) },
	TypeSourceCreated:       func() Event { return new(SourceCreated) },
	TypeSourceUpdated:       func() Event { return new(SourceUpdated) },
	TypeSourceDeleted:       func() Event { return new(SourceDeleted) },
	TypeJobCreated:          func() Event { return new(JobCreated) },
	TypeJobUpdated:          func() Event { return new(JobUpdated) },
	TypePassageInserted:     func() Event { return new(PassageInserted) },
	TypePassageDeleted:      func() Event { return new(PassageDeleted) },
	TypeMessageAppended:     func() Event { return new(MessageAppended) },
	TypeMessageReceived:     func() Event { return new(MessageReceived) },
	TypeInputTaken:          func() Event { return new(InputTaken) },
	TypeFileCreated:         func() Event { return new(FileCreated) },
	TypeFileUpdated:         func() Event { return new(FileUpdated) },
	TypeFileDeleted:         func() Event { return new(FileDeleted) },
	TypeMessageUpdated:      func() Event { return new(MessageUpdated) },
	TypeJobDeleted:          func() Event { return new(JobDeleted) },
	TypeRunCancelled:        func() Event { return new(RunCancelled) },
	TypeRunFailed:           func() Event { return new(RunFailed) },
	TypeRunRequested:        func() Event { return new(RunRequested) },
	TypeLogCheckpointed:     func() Event { return new(LogCheckpointed) },
	TypeConversationCreated: func() Event { return new(ConversationCreated) },
	TypeConversationUpdated: func() Event { return new(ConversationUpdated) },
	TypeConversationDeleted: func() Event { return new(ConversationDeleted) },
	TypeOrgCreated:          func() Event { return new(OrgCreated) },
	TypeOrgUpdated:          func() Event { return new(OrgUpdated) },
	TypeOrgDeleted:          func() Event { return new(OrgDeleted) },
	TypeAPIKeyCreated:       func() Event { return new(APIKeyCreated) },
	TypeAPIKeyRevoked:       func() Event { return new(APIKeyRevoked) },
	TypeAccessDenied:        func() Event { return new(AccessDenied) },
	TypeAgentSecretsSet:     func() Event { return new(AgentSecretsSet) },
	TypeConversationWindow:  func() Event { return new(ConversationWindowSet) },
}

var typeOrder = []Type{
	TypeAgentCreated, TypeAgentUpdated, TypeAgentDeleted,
	TypeCoreBlockAttached, TypeCoreBlockDetached,
	TypeAgentToolAttached, TypeAgentToolDetached,
	TypeAgentSourceAttached, TypeAgentSourceDetached,
	TypeBlockCreated, TypeBlockUpdated, TypeBlockDeleted,
	TypeToolCreated, TypeToolUpdated, TypeToolDeleted,
	TypeSourceCreated, TypeSourceUpdated, TypeSourceDeleted,
	TypeJobCreated, TypeJobUpdated,
	TypePassageInserted, TypePassageDeleted,
	TypeMessageAppended,
	TypeMessageReceived,
	TypeInputTaken,
	TypeFileCreated, TypeFileUpdated, TypeFileDeleted,
	TypeMessageUpdated, TypeJobDeleted,
	TypeRunCancelled, TypeRunFailed,
	TypeRunRequested,
	TypeLogCheckpointed,
	TypeConversationCreated, TypeConversationUpdated, TypeConversationDeleted,
	TypeOrgCreated, TypeOrgUpdated, TypeOrgDeleted,
	TypeAPIKeyCreated, TypeAPIKeyRevoked,
	TypeAccessDenied,
	TypeAgentSecretsSet,
	TypeConversationWindow,
}

// Raw JSON objects (configs, metadata, schemas) are kept opaque: the log
// stores what the client sent, and the api package gives them shape.

// AgentCreated starts an agent aggregate.
type AgentCreated struct {
	ID              AgentID         `json:"id"`
	Name            string          `json:"name"`
	Description     string          `json:"description,omitempty"`
	System          string          `json:"system"`
	AgentType       string          `json:"agent_type"`
	LLMConfig       json.RawMessage `json:"llm_config,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	Tags            []string        `json:"tags,omitempty"`
	ToolIDs         []ToolID        `json:"tool_ids,omitempty"`
	BlockIDs        []BlockID       `json:"block_ids,omitempty"`
	SourceIDs       []SourceID      `json:"source_ids,omitempty"`
	ToolRules       json.RawMessage `json:"tool_rules,omitempty"`
	// CompactionSettings are how the client asked the agent's context to be
	// compacted (Letta's compaction_settings), kept as sent.
	CompactionSettings json.RawMessage `json:"compaction_settings,omitempty"`
	// ForkedFrom, on an agent made by a fork, names the agent it was
	// forked from and the point of the log its state was taken at.
	ForkedFrom *Origin `json:"forked_from,omitempty"`
	// OrganizationID is the organization the agent belongs to; empty
	// means the default one (every one created before organizations).
	OrganizationID string `json:"organization_id,omitempty"`
}

// Origin is the agent and the log sequence a forked agent's state comes
// from: the state after the event at Seq.
type Origin struct {
	AgentID AgentID `json:"agent_id"`
	Seq     Seq     `json:"seq"`
}

// AgentUpdated changes the fields that are set; nil means unchanged.
// List fields replace the whole list.
type AgentUpdated struct {
	Name            *string         `json:"name,omitempty"`
	Description     *string         `json:"description,omitempty"`
	System          *string         `json:"system,omitempty"`
	LLMConfig       json.RawMessage `json:"llm_config,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	Tags            *[]string       `json:"tags,omitempty"`
	ToolIDs         *[]ToolID       `json:"tool_ids,omitempty"`
	SourceIDs       *[]SourceID     `json:"source_ids,omitempty"`
	MessageIDs      *[]MessageID    `json:"message_ids,omitempty"`
	ToolRules       json.RawMessage `json:"tool_rules,omitempty"`
	// CompactionSettings replaces the agent's compaction settings.
	CompactionSettings json.RawMessage `json:"compaction_settings,omitempty"`
}

// AgentDeleted ends an agent aggregate. Its blocks, passages and messages
// stay in the log for audit but are no longer served.
type AgentDeleted struct{}

// CoreBlockAttached adds a block to an agent's core memory.
type CoreBlockAttached struct {
	BlockID BlockID `json:"block_id"`
}

// CoreBlockDetached removes a block from an agent's core memory.
type CoreBlockDetached struct {
	BlockID BlockID `json:"block_id"`
}

// AgentToolAttached gives an agent a tool.
type AgentToolAttached struct {
	ToolID ToolID `json:"tool_id"`
	// ToolRules, when set, are the agent's tool rules from now on: the
	// tool requires approval by default (ToolCreated.DefaultRequiresApproval)
	// and the attach added its requires_approval rule.
	ToolRules json.RawMessage `json:"tool_rules,omitempty"`
}

// AgentToolDetached takes a tool from an agent.
type AgentToolDetached struct {
	ToolID ToolID `json:"tool_id"`
}

// AgentSourceAttached makes a source's passages searchable by an agent.
type AgentSourceAttached struct {
	SourceID SourceID `json:"source_id"`
}

// AgentSourceDetached undoes AgentSourceAttached.
type AgentSourceDetached struct {
	SourceID SourceID `json:"source_id"`
}

// BlockCreated starts a block aggregate: a core-memory section, or a saved
// human/persona template when IsTemplate is set.
type BlockCreated struct {
	ID          BlockID         `json:"id"`
	Label       string          `json:"label"`
	Value       string          `json:"value"`
	Limit       int             `json:"limit"`
	Name        string          `json:"name,omitempty"` // template name (Letta's template_name / old name)
	IsTemplate  bool            `json:"is_template,omitempty"`
	ReadOnly    bool            `json:"read_only,omitempty"`
	Description string          `json:"description,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	// OrganizationID is the organization the block belongs to; empty
	// means the default one (every one created before organizations).
	OrganizationID string `json:"organization_id,omitempty"`
}

// BlockUpdated changes the fields that are set; nil means unchanged.
type BlockUpdated struct {
	Label       *string         `json:"label,omitempty"`
	Value       *string         `json:"value,omitempty"`
	Limit       *int            `json:"limit,omitempty"`
	Name        *string         `json:"name,omitempty"`
	IsTemplate  *bool           `json:"is_template,omitempty"`
	ReadOnly    *bool           `json:"read_only,omitempty"`
	Description *string         `json:"description,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Tags        *[]string       `json:"tags,omitempty"`
}

// BlockDeleted ends a block; agents that had it attached lose it.
type BlockDeleted struct{}

// ToolCreated starts a tool aggregate.
type ToolCreated struct {
	ID              ToolID          `json:"id"`
	Name            string          `json:"name"`
	Description     string          `json:"description,omitempty"`
	SourceCode      string          `json:"source_code,omitempty"`
	SourceType      string          `json:"source_type,omitempty"`
	JSONSchema      json.RawMessage `json:"json_schema,omitempty"`
	Tags            []string        `json:"tags,omitempty"`
	ToolType        string          `json:"tool_type,omitempty"`
	ReturnCharLimit int             `json:"return_char_limit,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	AgentState      bool            `json:"agent_state,omitempty"`     // the function takes the agent's state
	TimeoutSeconds  float64         `json:"timeout_seconds,omitempty"` // wall-clock limit per call; 0 means the server's default
	// DefaultRequiresApproval: an agent given the tool gets a
	// requires_approval rule for it (AgentCreated.ToolRules,
	// AgentToolAttached.ToolRules).
	DefaultRequiresApproval bool `json:"default_requires_approval,omitempty"`
	// OrganizationID is the organization the tool belongs to; empty
	// means the default one (every one created before organizations).
	OrganizationID string `json:"organization_id,omitempty"`
}

// ToolUpdated changes the fields that are set; nil means unchanged.
type ToolUpdated struct {
	Name                    *string         `json:"name,omitempty"`
	Description             *string         `json:"description,omitempty"`
	SourceCode              *string         `json:"source_code,omitempty"`
	SourceType              *string         `json:"source_type,omitempty"`
	JSONSchema              json.RawMessage `json:"json_schema,omitempty"`
	Tags                    *[]string       `json:"tags,omitempty"`
	ReturnCharLimit         *int            `json:"return_char_limit,omitempty"`
	Metadata                json.RawMessage `json:"metadata,omitempty"`
	AgentState              *bool           `json:"agent_state,omitempty"`
	TimeoutSeconds          *float64        `json:"timeout_seconds,omitempty"` // 0 means the server's default
	DefaultRequiresApproval *bool           `json:"default_requires_approval,omitempty"`
}

// Thinking is a block of a model's native reasoning as its provider wants
// it back: its text and signature, or the data of a redacted block.
type Thinking struct {
	Text      string `json:"text,omitempty"`
	Signature string `json:"signature,omitempty"`
	Redacted  string `json:"redacted,omitempty"`
}

// ToolDeleted ends a tool; agents that had it lose it.
type ToolDeleted struct{}

// SourceCreated starts a data source (Letta's "folder").
type SourceCreated struct {
	ID              SourceID        `json:"id"`
	Name            string          `json:"name"`
	Description     string          `json:"description,omitempty"`
	Instructions    string          `json:"instructions,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	// OrganizationID is the organization the source belongs to; empty
	// means the default one (every one created before organizations).
	OrganizationID string `json:"organization_id,omitempty"`
}

// SourceUpdated changes the fields that are set; nil means unchanged.
type SourceUpdated struct {
	Name            *string         `json:"name,omitempty"`
	Description     *string         `json:"description,omitempty"`
	Instructions    *string         `json:"instructions,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
}

// SourceDeleted ends a source; it is detached from every agent.
type SourceDeleted struct{}

// ConversationCreated starts a conversation: a thread of messages with
// one agent (Letta's Conversation), on its own aggregate. The agent's
// memory is shared by all its conversations.
type ConversationCreated struct {
	ID            ConversationID  `json:"id"`
	AgentID       AgentID         `json:"agent_id"`
	Summary       string          `json:"summary,omitempty"`
	Model         string          `json:"model,omitempty"`          // a model handle that overrides the agent's
	ModelSettings json.RawMessage `json:"model_settings,omitempty"` // as the client sent them
	// IsolatedBlockLabels are the labels of the agent's blocks the client
	// asked to be the conversation's own, as sent.
	IsolatedBlockLabels []string `json:"isolated_block_labels,omitempty"`
	// IsolatedBlockIDs are the conversation's own copies of those blocks,
	// created in the same command (BlockCreated), in the labels' order:
	// its runs read and edit them in place of the agent's.
	IsolatedBlockIDs []BlockID `json:"isolated_block_ids,omitempty"`
}

// ConversationUpdated changes the fields that are set; nil means unchanged.
// LastMessageAt records a send to the conversation.
type ConversationUpdated struct {
	Summary       *string         `json:"summary,omitempty"`
	Model         *string         `json:"model,omitempty"`
	ModelSettings json.RawMessage `json:"model_settings,omitempty"`
	LastMessageAt *time.Time      `json:"last_message_at,omitempty"`
}

// ConversationWindowSet, an event of the agent's aggregate, replaces the
// context window of one of the agent's conversations (a summary of its
// oldest part): MessageIDs are the window's messages, in order. The
// agent's own window (AgentUpdated.MessageIDs) is unchanged.
type ConversationWindowSet struct {
	ConversationID ConversationID `json:"conversation_id"`
	MessageIDs     []MessageID    `json:"message_ids"`
}

func (ConversationWindowSet) EventType() Type { return TypeConversationWindow }

// ConversationDeleted ends a conversation: it is no longer served. Its
// messages stay with the agent.
type ConversationDeleted struct{}

// JobCreated starts a job (e.g. loading a file into a source).
type JobCreated struct {
	ID       JobID           `json:"id"`
	JobType  string          `json:"job_type"`
	AgentID  AgentID         `json:"agent_id,omitempty"`
	SourceID SourceID        `json:"source_id,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// OrganizationID is the organization the job belongs to; empty
	// means the default one (every one created before organizations).
	OrganizationID string `json:"organization_id,omitempty"`
}

// JobUpdated moves a job along created → running → completed | failed.
type JobUpdated struct {
	Status   string          `json:"status"`
	Metadata json.RawMessage `json:"metadata,omitempty"` // replaces the metadata when set
	Error    string          `json:"error,omitempty"`
}

// JobDeleted ends a job: it is no longer listed. Its work, if any was
// done, stays.
type JobDeleted struct{}

// PassageInserted adds a passage to an agent's archival memory (on the agent
// aggregate) or to a source (on the source aggregate). The embedding, when
// there is one, is computed once before the append so replays never call the
// embedding provider.
type PassageInserted struct {
	ID              PassageID       `json:"id"`
	AgentID         AgentID         `json:"agent_id,omitempty"`
	SourceID        SourceID        `json:"source_id,omitempty"`
	FileID          FileID          `json:"file_id,omitempty"`
	Text            string          `json:"text"`
	Tags            []string        `json:"tags,omitempty"`
	Embedding       []float32       `json:"embedding,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	CreatedAt       *time.Time      `json:"created_at,omitempty"` // when absent, the envelope time
}

// FileCreated records a file uploaded into a source (on the source
// aggregate). Its bytes are in the object store under Object; Digest is
// "sha256:<hex>" of those bytes. Status starts as "parsing".
type FileCreated struct {
	ID           FileID `json:"id"`
	Name         string `json:"name"`          // Letta's file_name: "<source>/<original>", suffixed for duplicates
	OriginalName string `json:"original_name"` // the name the client gave
	MIME         string `json:"mime,omitempty"`
	Size         int64  `json:"size"`
	Digest       string `json:"digest"`
	Object       string `json:"object"`
	JobID        JobID  `json:"job_id,omitempty"`
}

// FileUpdated moves a file's processing along parsing → embedding →
// completed | error.
type FileUpdated struct {
	ID       FileID `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Passages int    `json:"passages,omitempty"` // passages written from the file, once completed
}

// FileDeleted removes a file from its source. Its passages are removed by
// PassageDeleted events appended before it.
type FileDeleted struct {
	ID FileID `json:"id"`
}

// PassageDeleted removes a passage from its aggregate's archival memory.
type PassageDeleted struct {
	ID PassageID `json:"id"`
}

// MessageReceived is a message a client sent to an agent: like
// MessageAppended, but of its own type so that the workers that run agents
// consume inputs without seeing the agents' own output.
type MessageReceived struct {
	MessageAppended
	// Key, on the first input of a send made idempotent by its client (an
	// Idempotency-Key, or the first message's otid), is that key: a send
	// with the same key is the same send.
	Key string `json:"key,omitempty"`
	// Digest, beside Key, fingerprints the send's inputs, so that a key
	// reused with another body is told apart from a retry.
	Digest string `json:"digest,omitempty"`
	// MaxSteps, on the first input of a send, is the most steps the client
	// allows its run (0: the server's default).
	MaxSteps int `json:"max_steps,omitempty"`
	// ConversationID, on the first input of a send to one of the agent's
	// conversations (not its default one), names that conversation.
	ConversationID ConversationID `json:"conversation_id,omitempty"`
	// OverrideModel, on the first input of a send, is the model handle its run
	// uses instead of the conversation's or the agent's (override_model).
	OverrideModel string `json:"override_model,omitempty"`
	// Approvals, on an input of kind InputApproval, answer the tool calls
	// of the agent's last step that wait for the client (its
	// approval_request_message): approved or denied, or run by the client.
	Approvals []Approval `json:"approvals,omitempty"`
	// ClientTools, on the first input of a send, are tools the client runs
	// itself and offers the model for that send's run: a call to one stops
	// the run until the client posts its return (an InputApproval).
	ClientTools []ClientTool `json:"client_tools,omitempty"`
}

// Approval is a client's answer to one tool call awaiting approval: for a
// tool the server runs, Approve says whether to run it (Reason, when it is
// denied, is told to the model); for a client's tool, Return is what the
// client's run of it returned and Status says whether it succeeded.
type Approval struct {
	ToolCallID string  `json:"tool_call_id"`
	Approve    *bool   `json:"approve,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	Return     *string `json:"tool_return,omitempty"`
	Status     string  `json:"status,omitempty"` // success or error, beside Return
}

// ClientTool is a tool a client runs: its name and JSON schema.
type ClientTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// MessageUpdated replaces the body of a stored message of the agent (0.5's
// update_message): the message keeps its id and its place in history and
// in the context window; the log keeps the body it replaces.
type MessageUpdated struct {
	MessageAppended
}

// InputTaken records that a run took received messages into the agent's
// context window, in the order given. It is the first event of the run's
// first step, so an input is answered exactly when it is taken.
type InputTaken struct {
	IDs []MessageID `json:"ids"`
}

// RunCancelled records that a client cancelled one of the agent's runs
// (the run that answers a send, named by events.DerivedID("run", the id of
// the send's first input)). A run not yet begun never begins: its inputs
// leave the queue, kept in recall memory. A run under way stops at its next
// step boundary; the step in flight, if any, still commits. A run already
// ended is not changed.
type RunCancelled struct {
	RunID string `json:"run_id"`
}

// RunFailed records that a run under way (its inputs taken) ended on a
// failed step, which stored nothing; no run takes its inputs again.
type RunFailed struct {
	RunID      string `json:"run_id"`
	StopReason string `json:"stop_reason"` // error, llm_api_error, ...
	Detail     string `json:"detail,omitempty"`
}

// The kinds of RunRequested.
const (
	RunRetry         = "retry"          // rewind the context to the last user message and answer it again
	RunHeartbeat     = "heartbeat"      // an automated timer wakes the agent
	RunMemoryWarning = "memory_warning" // a system alert that the context is nearly full
	RunResend        = "resend"         // run a send whose run failed, named by Input, again
	RunSummarize     = "summarize"      // summarize the context window now (/summarize); no step follows
)

// RunRequested asks for a run of the agent that no client message starts:
// a command such as /retry or /heartbeat, or the resend of a send whose run
// failed. Like a MessageReceived it queues with the agent's inputs, is
// delivered to the node that owns the agent's partition, and is answered
// exactly when the first step of its run takes it (InputTaken names ID); it
// adds nothing to recall memory itself. The run's own input (the heartbeat,
// the alert) is rendered when the run begins, with that moment's time.
type RunRequested struct {
	ID     MessageID `json:"id"`
	Kind   string    `json:"kind"`             // RunRetry, RunHeartbeat, RunMemoryWarning or RunResend
	Reason string    `json:"reason,omitempty"` // a heartbeat's reason
	Input  MessageID `json:"input,omitempty"`  // RunResend: the first input of the send to run again
}

// LogCheckpointed is a checkpoint of the log's tamper evidence, written by
// the server on the aggregate Checkpoints: it commits to every sealed
// message stored at or before Through, in log order, by a running SHA-256
// over each one's sequence and seal (package verify says how). It changes
// no agent's state.
type LogCheckpointed struct {
	Through Seq    `json:"through"` // the last sequence the checkpoint covers
	Sealed  uint64 `json:"sealed"`  // sealed messages at or before Through
	Digest  string `json:"digest"`  // hex running digest over them
}

// AsMessage returns the message an event adds to recall memory, for both
// MessageAppended and MessageReceived.
func AsMessage(ev Event) (*MessageAppended, bool) {
	switch e := ev.(type) {
	case *MessageAppended:
		return e, true
	case *MessageReceived:
		return &e.MessageAppended, true
	case *MessageUpdated:
		return &e.MessageAppended, true
	}
	return nil, false
}

// ToolCall is one function call requested by the model.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON text, as the model produced it
}

// MessageAppended adds a message to an agent's recall memory.
type MessageAppended struct {
	ID   MessageID `json:"id"`
	Role string    `json:"role"` // system | user | assistant | tool
	// Kind, on a user- or system-role message the runtime shows the model
	// wrapped in an envelope (Letta's packaging), is the envelope's type
	// (InputUser, InputHeartbeat, ...), and Text is the words it wraps; the
	// envelope is rendered, with the event's time, where the message is
	// shown. Messages stored before kinds existed have no Kind and hold the
	// rendered envelope in Text: Words reads them back.
	Kind string `json:"kind,omitempty"`
	// Text is the message's text; on an assistant message, the MemGPT
	// loop's inner monologue (shown as reasoning).
	Text string `json:"text,omitempty"`
	// Reply, on an assistant message of the modern loop (letta_v1_agent),
	// is the model's plain content: its answer, shown as assistant_message.
	Reply string `json:"reply,omitempty"`
	// Reasoning, on an assistant message, is the model's native reasoning
	// where the provider gave it (shown as reasoning_message).
	Reasoning string `json:"reasoning,omitempty"`
	// Thinking is that reasoning as its provider wants it sent back with
	// the reply (Anthropic's signed thinking blocks), for the next steps.
	Thinking   []Thinking `json:"thinking,omitempty"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Model      string     `json:"model,omitempty"`
	Otid       string     `json:"otid,omitempty"`
	RunID      string     `json:"run_id,omitempty"`
	StepID     string     `json:"step_id,omitempty"`
	// (Logs before 2026-12 may hold "stream_tokens" on inputs, a delivery
	// preference; it is read and ignored. See bus.Server.OfferTokens.)
	// Stdout and Stderr, on a tool's return, are what the tool printed.
	Stdout []string `json:"stdout,omitempty"`
	Stderr []string `json:"stderr,omitempty"`
	// Usage, on the assistant's message of a step, is what its model call
	// cost, so that a resent send is answered with the usage the first got.
	Usage *Usage `json:"usage,omitempty"`
	// StopReason, on the assistant's message of the last step of a send's
	// run, is why the run ended there: end_turn, max_steps, or
	// requires_approval (its tool calls wait for the client: none ran).
	StopReason string `json:"stop_reason,omitempty"`
	// Then, on the assistant's message of a step after which its run goes
	// on, is how it goes on, so that another node can continue the run
	// when the one running it died after this step.
	Then *RunThen `json:"then,omitempty"`
}

// RunThen is how a run goes on after a step (MessageAppended.Then): the
// next step's chained input (Kind and Words, as a heartbeat or a memory
// warning is stored; none when the modern loop goes on after tool calls),
// and the turn's history that the tool rules read, as it stands after the
// step: the tools called and the last call's output.
type RunThen struct {
	Kind       string   `json:"kind,omitempty"`
	Words      string   `json:"words,omitempty"`
	Calls      []string `json:"calls,omitempty"`
	LastOutput string   `json:"last_output,omitempty"`
}

// The kinds of a wrapped message (MessageAppended.Kind): Letta's envelope
// types, and the memory warning, a system alert told apart so that the
// runtime need not recognise it by its words.
const (
	InputUser          = "user_message"
	InputSystemAlert   = "system_alert"
	InputHeartbeat     = "heartbeat"
	InputLogin         = "login"
	InputMemoryWarning = "memory_warning"
	// InputApproval is a client's answer to tool calls awaiting approval
	// (MessageReceived.Approvals); the model never reads it, only the
	// returns it leads to.
	InputApproval = "approval"
)

// Words returns the kind of a wrapped message and the words it wraps: Kind
// and Text as stored, or, for a message stored before kinds existed, both
// read back from the rendered envelope in Text. This is the one place that
// parses that older form. ok is false for a message that is not wrapped.
func (m *MessageAppended) Words() (kind, text string, ok bool) {
	if m.Kind != "" {
		return m.Kind, m.Text, true
	}
	if m.Role != "user" && m.Role != "system" {
		return "", "", false
	}
	t := strings.TrimSpace(m.Text)
	if !strings.HasPrefix(t, "{") {
		return "", "", false
	}
	var env struct {
		Type      string  `json:"type"`
		Message   *string `json:"message"`
		Reason    *string `json:"reason"`
		LastLogin *string `json:"last_login"`
	}
	if json.Unmarshal([]byte(t), &env) != nil || env.Type == "" {
		return "", "", false
	}
	for _, w := range []*string{env.Message, env.Reason, env.LastLogin} {
		if w != nil {
			return env.Type, *w, true
		}
	}
	return env.Type, "", true
}

// Usage is the tokens one model call took.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (FileCreated) EventType() Type         { return TypeFileCreated }
func (FileUpdated) EventType() Type         { return TypeFileUpdated }
func (FileDeleted) EventType() Type         { return TypeFileDeleted }
func (AgentCreated) EventType() Type        { return TypeAgentCreated }
func (AgentUpdated) EventType() Type        { return TypeAgentUpdated }
func (AgentDeleted) EventType() Type        { return TypeAgentDeleted }
func (CoreBlockAttached) EventType() Type   { return TypeCoreBlockAttached }
func (CoreBlockDetached) EventType() Type   { return TypeCoreBlockDetached }
func (AgentToolAttached) EventType() Type   { return TypeAgentToolAttached }
func (AgentToolDetached) EventType() Type   { return TypeAgentToolDetached }
func (AgentSourceAttached) EventType() Type { return TypeAgentSourceAttached }
func (AgentSourceDetached) EventType() Type { return TypeAgentSourceDetached }
func (BlockCreated) EventType() Type        { return TypeBlockCreated }
func (BlockUpdated) EventType() Type        { return TypeBlockUpdated }
func (BlockDeleted) EventType() Type        { return TypeBlockDeleted }
func (ToolCreated) EventType() Type         { return TypeToolCreated }
func (ToolUpdated) EventType() Type         { return TypeToolUpdated }
func (ToolDeleted) EventType() Type         { return TypeToolDeleted }
func (SourceCreated) EventType() Type       { return TypeSourceCreated }
func (SourceUpdated) EventType() Type       { return TypeSourceUpdated }
func (SourceDeleted) EventType() Type       { return TypeSourceDeleted }
func (JobCreated) EventType() Type          { return TypeJobCreated }
func (JobDeleted) EventType() Type          { return TypeJobDeleted }
func (MessageUpdated) EventType() Type      { return TypeMessageUpdated }
func (JobUpdated) EventType() Type          { return TypeJobUpdated }
func (PassageInserted) EventType() Type     { return TypePassageInserted }
func (PassageDeleted) EventType() Type      { return TypePassageDeleted }
func (MessageAppended) EventType() Type     { return TypeMessageAppended }
func (MessageReceived) EventType() Type     { return TypeMessageReceived }
func (InputTaken) EventType() Type          { return TypeInputTaken }
func (RunCancelled) EventType() Type        { return TypeRunCancelled }
func (RunFailed) EventType() Type           { return TypeRunFailed }
func (RunRequested) EventType() Type        { return TypeRunRequested }
func (LogCheckpointed) EventType() Type     { return TypeLogCheckpointed }
func (ConversationCreated) EventType() Type { return TypeConversationCreated }
func (ConversationUpdated) EventType() Type { return TypeConversationUpdated }
func (ConversationDeleted) EventType() Type { return TypeConversationDeleted }

package api

import (
	"encoding/json"
	"time"
)

// Block is a section of core memory, or a saved human/persona template.
type Block struct {
	ID           string          `json:"id"`
	Label        string          `json:"label"`
	Value        string          `json:"value"`
	Limit        int             `json:"limit"`
	Name         *string         `json:"name"` // 0.5 name of a template; same as TemplateName
	TemplateName *string         `json:"template_name"`
	IsTemplate   bool            `json:"is_template"`
	ReadOnly     bool            `json:"read_only"`
	Description  *string         `json:"description"`
	Metadata     json.RawMessage `json:"metadata"`
	Tags         []string        `json:"tags"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// Memory is an agent's core memory in the modern (deprecated) mirror shape.
type Memory struct {
	Blocks         []Block `json:"blocks"`
	FileBlocks     []Block `json:"file_blocks"`
	PromptTemplate string  `json:"prompt_template"`
	AgentType      string  `json:"agent_type"`
}

// Get returns the block with the given label.
func (m Memory) Get(label string) (Block, bool) {
	for _, b := range m.Blocks {
		if b.Label == label {
			return b, true
		}
	}
	return Block{}, false
}

// LLMConfig says which chat model an agent uses and how.
type LLMConfig struct {
	Model             string  `json:"model"`
	ModelEndpointType string  `json:"model_endpoint_type"`
	ModelEndpoint     *string `json:"model_endpoint"`
	ModelWrapper      *string `json:"model_wrapper"`
	ContextWindow     int     `json:"context_window"`
	Handle            *string `json:"handle"`
	// ProviderName and ProviderCategory name the provider serving the
	// model, as Letta's do: in an agent's config, the handle's provider and
	// "base" (a provider the server was started with).
	ProviderName             *string  `json:"provider_name"`
	ProviderCategory         *string  `json:"provider_category"`
	DisplayName              *string  `json:"display_name"`
	PutInnerThoughtsInKwargs *bool    `json:"put_inner_thoughts_in_kwargs"`
	Temperature              *float64 `json:"temperature"`
	MaxTokens                *int     `json:"max_tokens"`
	// ParallelToolCalls is set through model_settings or
	// parallel_tool_calls; an agent's config shows false until then.
	ParallelToolCalls *bool `json:"parallel_tool_calls"`
	// Set through model_settings (Letta's deprecated llm_config keys);
	// absent until set.
	ReasoningEffort    *string `json:"reasoning_effort,omitempty"`
	EnableReasoner     *bool   `json:"enable_reasoner,omitempty"`
	MaxReasoningTokens *int    `json:"max_reasoning_tokens,omitempty"`
	Strict             *bool   `json:"strict,omitempty"`

	// Letta's keys for what engram does not do: accepted, kept and shown
	// (null or false unless a client set them), never acted on.
	FrequencyPenalty  *float64 `json:"frequency_penalty"`
	Effort            *string  `json:"effort"`
	CompatibilityType *string  `json:"compatibility_type"`
	Verbosity         *string  `json:"verbosity"`
	Tier              *string  `json:"tier"`
	ResponseFormat    any      `json:"response_format"`
	ReturnLogprobs    bool     `json:"return_logprobs"`
	TopLogprobs       *int     `json:"top_logprobs"`
	ReturnTokenIDs    bool     `json:"return_token_ids"`
	ToolCallParser    *string  `json:"tool_call_parser"`
}

// EmbeddingConfig says which embedding model a passage or source uses.
type EmbeddingConfig struct {
	EmbeddingEndpointType string  `json:"embedding_endpoint_type"`
	EmbeddingEndpoint     *string `json:"embedding_endpoint"`
	EmbeddingModel        string  `json:"embedding_model"`
	EmbeddingDim          int     `json:"embedding_dim"`
	EmbeddingChunkSize    *int    `json:"embedding_chunk_size"`
	Handle                *string `json:"handle"`
	BatchSize             int     `json:"batch_size,omitempty"`
}

// Model is an entry of GET /v1/models/: an LLMConfig plus its listing names.
type Model struct {
	LLMConfig
	Name             string `json:"name"`
	DisplayName      string `json:"display_name"`
	ProviderType     string `json:"provider_type"`
	MaxContextWindow int    `json:"max_context_window"`
	ModelType        string `json:"model_type"`
}

// EmbeddingModel is an entry of GET /v1/models/embedding.
type EmbeddingModel struct {
	EmbeddingConfig
	Name         string `json:"name"`
	DisplayName  string `json:"display_name"`
	ProviderName string `json:"provider_name"`
	ProviderType string `json:"provider_type"`
	ModelType    string `json:"model_type"`
}

// AgentState is an agent as clients see it. Relationship lists are always
// filled (the SDKs require the keys).
type AgentState struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	AgentType       string           `json:"agent_type"`
	System          string           `json:"system"`
	Blocks          []Block          `json:"blocks"`
	Memory          Memory           `json:"memory"`
	Tools           []Tool           `json:"tools"`
	Sources         []Source         `json:"sources"`
	Tags            []string         `json:"tags"`
	LLMConfig       *LLMConfig       `json:"llm_config"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	Model           *string          `json:"model"`
	Embedding       *string          `json:"embedding"`
	Metadata        json.RawMessage  `json:"metadata"`
	MessageIDs      []string         `json:"message_ids"`
	ToolRules       json.RawMessage  `json:"tool_rules"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
	// ModelSettings are the model's settings in Letta's model_settings
	// shape, derived from llm_config as Letta derives them; null without
	// a model. CompactionSettings are what the client set, or null.
	ModelSettings      json.RawMessage `json:"model_settings"`
	CompactionSettings json.RawMessage `json:"compaction_settings"`
	// Secrets are the agent's tool environment variables with their
	// values masked (MaskedSecret); ToolExecEnvironmentVariables is the
	// same list under Letta's older name. Both absent when it has none.
	Secrets                      []AgentEnvironmentVariable `json:"secrets,omitempty"`
	ToolExecEnvironmentVariables []AgentEnvironmentVariable `json:"tool_exec_environment_variables,omitempty"`
}

// MaskedSecret is what the API shows for every secret's value: nothing of
// it, not even its length.
const MaskedSecret = "********"

// AgentEnvironmentVariable is one of an agent's tool environment variables
// (Letta's AgentEnvironmentVariable), its value masked.
type AgentEnvironmentVariable struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	AgentID string `json:"agent_id"`
}

// Tool is a function an agent can call.
type Tool struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Description     *string         `json:"description"`
	SourceCode      *string         `json:"source_code"`
	SourceType      *string         `json:"source_type"`
	JSONSchema      json.RawMessage `json:"json_schema"`
	Tags            []string        `json:"tags"`
	ToolType        string          `json:"tool_type"`
	ReturnCharLimit int             `json:"return_char_limit"`
	// TimeoutSeconds is engram's wall-clock limit per call; absent means the
	// server's default (30 s).
	TimeoutSeconds *float64 `json:"timeout_seconds,omitempty"`
	// DefaultRequiresApproval: agents given the tool get a requires_approval
	// rule for it.
	DefaultRequiresApproval *bool           `json:"default_requires_approval"`
	Metadata                json.RawMessage `json:"metadata_"` // Tool keeps the underscore
	CreatedAt               time.Time       `json:"created_at"`
	UpdatedAt               time.Time       `json:"updated_at"`
}

// Source is a data source of files (Letta's "folder").
type Source struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	Instructions    *string          `json:"instructions"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	Metadata        json.RawMessage  `json:"metadata"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

// FileMetadata is a file loaded into a source (Letta's folder file).
type FileMetadata struct {
	ID               string    `json:"id"`
	SourceID         string    `json:"source_id"`
	FileName         string    `json:"file_name"`
	OriginalFileName string    `json:"original_file_name"`
	FilePath         string    `json:"file_path"`
	FileType         string    `json:"file_type"`
	FileSize         int64     `json:"file_size"`
	ProcessingStatus string    `json:"processing_status"` // parsing | embedding | completed | error
	ErrorMessage     *string   `json:"error_message"`
	TotalChunks      *int      `json:"total_chunks"`
	ChunksEmbedded   *int      `json:"chunks_embedded"`
	Content          *string   `json:"content,omitempty"`
	Digest           string    `json:"digest,omitempty"` // engram: sha256 of the stored bytes
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// AgentFile is one file of an agent's sources, as GET /v1/agents/{id}/files
// lists it.
type AgentFile struct {
	ID         string  `json:"id"`
	FileID     string  `json:"file_id"`
	FileName   string  `json:"file_name"`
	FolderID   string  `json:"folder_id"`
	FolderName string  `json:"folder_name"`
	IsOpen     bool    `json:"is_open"`
	Status     string  `json:"processing_status"`
	Visible    *string `json:"visible_content"`
}

// FilesPage is Letta's NextFilesPage.
type FilesPage struct {
	Files      []AgentFile `json:"files"`
	NextCursor *string     `json:"next_cursor"`
	HasMore    bool        `json:"has_more"`
}

// Job statuses.
const (
	JobCreated   = "created"
	JobRunning   = "running"
	JobCompleted = "completed"
	JobFailed    = "failed"
)

// Job is background work, such as loading a file into a source.
type Job struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	JobType     string          `json:"job_type"`
	AgentID     *string         `json:"agent_id"`
	Metadata    json.RawMessage `json:"metadata"`
	CreatedAt   time.Time       `json:"created_at"`
	CompletedAt *time.Time      `json:"completed_at"`
}

// Passage is one entry of archival memory or of a source.
type Passage struct {
	ID              string           `json:"id"`
	Text            string           `json:"text"`
	Embedding       []float32        `json:"embedding"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	AgentID         *string          `json:"agent_id"`
	SourceID        *string          `json:"source_id"`
	FileID          *string          `json:"file_id"`
	Tags            []string         `json:"tags"`
	Metadata        json.RawMessage  `json:"metadata"`
	CreatedAt       time.Time        `json:"created_at"`
}

// ArchivalSearch is the answer of GET /v1/agents/{id}/archival-memory/search.
type ArchivalSearch struct {
	Results []ArchivalResult `json:"results"`
	Count   int              `json:"count"`
}

// ArchivalResult is one passage an archival search found.
type ArchivalResult struct {
	ID        string   `json:"id"`
	Content   string   `json:"content"`
	Timestamp string   `json:"timestamp"`
	Tags      []string `json:"tags"`
}

// ArchivalMemorySummary counts an agent's archival passages.
type ArchivalMemorySummary struct {
	Size int `json:"size"`
}

// RecallMemorySummary counts an agent's stored messages.
type RecallMemorySummary struct {
	Size int `json:"size"`
}

// Health is the answer of GET /v1/health/. A cluster member (engram) also
// says which node answers, its role and whether it has a quorum.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	// Node is the answering node's name (cluster members only).
	Node string `json:"node,omitempty"`
	// Role is "leader" on the node leading JetStream's meta layer,
	// "follower" on the others (cluster members only).
	Role string `json:"role,omitempty"`
	// StreamLeader: this node leads the event stream (appends go through it).
	StreamLeader bool `json:"stream_leader,omitempty"`
	// Quorum says whether writes can be decided: false on a member that
	// reaches no majority of the cluster (cluster members only).
	Quorum *bool `json:"quorum,omitempty"`
	// Applied is the last log sequence this node's read models hold.
	Applied uint64 `json:"applied,omitempty"`
}

// ClusterStatus is the answer of GET /v1/cluster (engram): the cluster as
// the node asked sees it.
type ClusterStatus struct {
	Clustered bool   `json:"clustered"`
	Node      string `json:"node"`   // the node answering
	Quorum    bool   `json:"quorum"` // the node answering has one
	// MetaLeader and StreamLeader name the nodes leading JetStream's meta
	// layer and the event stream; "" while there is none.
	MetaLeader   string `json:"meta_leader"`
	StreamLeader string `json:"stream_leader"`
	// Replicas are the event stream's copies, as its leader reports them.
	Replicas []ClusterReplica `json:"replicas"`
	// Nodes are the members this node hears (itself included), by name.
	Nodes []ClusterNode `json:"nodes"`
	// Owners maps each partition ("00".."3f") to the node that pulls its
	// agents' inputs; a partition nobody pulls is missing.
	Owners map[string]string `json:"partition_owners"`
}

// ClusterReplica is one copy of the event stream.
type ClusterReplica struct {
	Name    string `json:"name"`
	Leader  bool   `json:"leader"`
	Current bool   `json:"current"` // caught up with the leader
	Offline bool   `json:"offline"`
	Lag     uint64 `json:"lag"`       // operations behind the leader
	Active  string `json:"last_seen"` // since the leader last heard from it
}

// ClusterNode is one member as its heartbeats describe it.
type ClusterNode struct {
	Name         string  `json:"name"`
	Live         bool    `json:"live"`              // heard from lately and not leaving
	Leaving      bool    `json:"leaving,omitempty"` // stopping
	LastSeen     float64 `json:"last_seen_seconds"` // since its last heartbeat (0 for the node answering)
	Applied      uint64  `json:"applied"`           // last log sequence its read models hold
	Partitions   int     `json:"partitions"`        // partitions whose inputs it pulls
	MetaLeader   bool    `json:"meta_leader"`
	StreamLeader bool    `json:"stream_leader"`
	Quorum       bool    `json:"quorum"`
}

// ToolCall is a function call inside a tool_call_message.
type ToolCall struct {
	Name       string `json:"name"`
	Arguments  string `json:"arguments"`
	ToolCallID string `json:"tool_call_id"`
}

// Message types of the LettaMessage union.
const (
	SystemMessageType     = "system_message"
	UserMessageType       = "user_message"
	AssistantMessageType  = "assistant_message"
	ReasoningMessageType  = "reasoning_message"
	ToolCallMessageType   = "tool_call_message"
	ToolReturnMessageType = "tool_return_message"
	// ApprovalRequestMessageType is an assistant's tool calls that wait for
	// the client; ApprovalResponseMessageType the client's answer.
	ApprovalRequestMessageType  = "approval_request_message"
	ApprovalResponseMessageType = "approval_response_message"
)

// LettaMessage is one member of Letta's message union, discriminated by
// MessageType. Only the fields of that type are set.
type LettaMessage struct {
	ID          string    `json:"id"`
	Date        time.Time `json:"date"`
	MessageType string    `json:"message_type"`
	Name        *string   `json:"name,omitempty"`
	Otid        *string   `json:"otid,omitempty"`
	RunID       *string   `json:"run_id,omitempty"`
	StepID      *string   `json:"step_id,omitempty"`

	Content   *string `json:"content,omitempty"`   // system, user, assistant
	Reasoning *string `json:"reasoning,omitempty"` // reasoning
	// Source, on a reasoning message, is reasoner_model for the model's
	// native reasoning; absent for the MemGPT loop's inner thoughts.
	Source     *string    `json:"source,omitempty"`
	ToolCall   *ToolCall  `json:"tool_call,omitempty"` // tool_call
	ToolReturn *string    `json:"tool_return,omitempty"`
	Status     *string    `json:"status,omitempty"` // tool_return: success | error
	ToolCallID *string    `json:"tool_call_id,omitempty"`
	Stdout     []string   `json:"stdout,omitempty"`
	Stderr     []string   `json:"stderr,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	// Approvals, on an approval_response_message, are the client's answers.
	Approvals []Approval `json:"approvals,omitempty"`
}

// Approval is one answer to a tool call awaiting approval (Letta's
// ApprovalReturn or ToolReturn): type "approval" approves or denies a call
// the server runs; type "tool" is the return of a call the client ran.
type Approval struct {
	Type       string   `json:"type,omitempty"` // approval (the default) | tool
	ToolCallID string   `json:"tool_call_id"`
	Approve    *bool    `json:"approve,omitempty"`
	Reason     *string  `json:"reason,omitempty"`
	ToolReturn *string  `json:"tool_return,omitempty"`
	Status     *string  `json:"status,omitempty"` // success | error, on a tool return
	Stdout     []string `json:"stdout,omitempty"`
	Stderr     []string `json:"stderr,omitempty"`
}

// ClientTool is a tool the client runs itself, offered to the model for
// one send (client_tools).
type ClientTool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Run is the work that answers one send (Letta's Run): its status, created,
// running, completed or cancelled, and why it stopped.
type Run struct {
	ID              string          `json:"id"`
	AgentID         string          `json:"agent_id"`
	Status          string          `json:"status"`
	CreatedAt       time.Time       `json:"created_at"`
	CompletedAt     *time.Time      `json:"completed_at"`
	StopReason      *string         `json:"stop_reason"`
	Metadata        json.RawMessage `json:"metadata"`
	Background      bool            `json:"background"`
	ConversationID  *string         `json:"conversation_id"`
	TotalDurationNs *int64          `json:"total_duration_ns"`
}

// Step is one model call of a run, as Letta's runs API lists it.
type Step struct {
	ID               string    `json:"id"`
	RunID            string    `json:"run_id"`
	AgentID          string    `json:"agent_id"`
	Model            *string   `json:"model"`
	PromptTokens     int       `json:"prompt_tokens"`
	CompletionTokens int       `json:"completion_tokens"`
	TotalTokens      int       `json:"total_tokens"`
	StopReason       *string   `json:"stop_reason"`
	Status           string    `json:"status"`
	CreatedAt        time.Time `json:"created_at"` // engram: when the step was stored
}

// RunFilter narrows ListRuns.
type RunFilter struct {
	AgentIDs   []string // any of them; empty: every agent
	Statuses   []string // any of them; empty: every status
	StopReason string
	Active     bool // created or running only
}

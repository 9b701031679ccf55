package api

import (
	"encoding/json"
	"time"
)

// Ignored is a request field engram accepts for compatibility but does not
// act on; it is listed so that a truly unknown field can be refused.
type Ignored = json.RawMessage

// CreateBlock is the body of POST /v1/blocks/ and an entry of memory_blocks.
type CreateBlock struct {
	Label        string          `json:"label"`
	Value        string          `json:"value"`
	Limit        *int            `json:"limit,omitempty"`
	Name         *string         `json:"name,omitempty"`          // 0.5 alias of template_name
	TemplateName *string         `json:"template_name,omitempty"` // a template's name
	IsTemplate   *bool           `json:"is_template,omitempty"`
	Template     *bool           `json:"template,omitempty"` // 0.5 alias of is_template
	ReadOnly     *bool           `json:"read_only,omitempty"`
	Description  *string         `json:"description,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	OldMetadata  json.RawMessage `json:"metadata_,omitempty"` // 0.5 alias of metadata
	Tags         []string        `json:"tags,omitempty"`

	Hidden              Ignored `json:"hidden,omitempty"`
	ProjectID           Ignored `json:"project_id,omitempty"`
	TemplateID          Ignored `json:"template_id,omitempty"`
	BaseTemplateID      Ignored `json:"base_template_id,omitempty"`
	DeploymentID        Ignored `json:"deployment_id,omitempty"`
	EntityID            Ignored `json:"entity_id,omitempty"`
	PreserveOnMigration Ignored `json:"preserve_on_migration,omitempty"`
	UserID              Ignored `json:"user_id,omitempty"`
	ID                  Ignored `json:"id,omitempty"`
}

// UpdateBlock is the body of PATCH /v1/blocks/{id} and of an agent's
// core-memory block update. Absent and null fields are left unchanged.
type UpdateBlock struct {
	Label        *string         `json:"label,omitempty"`
	Value        *string         `json:"value,omitempty"`
	Limit        *int            `json:"limit,omitempty"`
	Name         *string         `json:"name,omitempty"`
	TemplateName *string         `json:"template_name,omitempty"`
	IsTemplate   *bool           `json:"is_template,omitempty"`
	ReadOnly     *bool           `json:"read_only,omitempty"`
	Description  *string         `json:"description,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	OldMetadata  json.RawMessage `json:"metadata_,omitempty"`
	Tags         *[]string       `json:"tags,omitempty"`

	Hidden              Ignored `json:"hidden,omitempty"`
	ProjectID           Ignored `json:"project_id,omitempty"`
	TemplateID          Ignored `json:"template_id,omitempty"`
	BaseTemplateID      Ignored `json:"base_template_id,omitempty"`
	DeploymentID        Ignored `json:"deployment_id,omitempty"`
	EntityID            Ignored `json:"entity_id,omitempty"`
	PreserveOnMigration Ignored `json:"preserve_on_migration,omitempty"`
	Template            Ignored `json:"template,omitempty"`
	UserID              Ignored `json:"user_id,omitempty"`
	ID                  Ignored `json:"id,omitempty"`
}

// OldMemory is the 0.5 memory object: blocks keyed by label.
type OldMemory struct {
	Memory         map[string]CreateBlock `json:"memory"`
	PromptTemplate *string                `json:"prompt_template,omitempty"`
}

// CreateAgent is the body of POST /v1/agents/.
type CreateAgent struct {
	Name             *string         `json:"name,omitempty"`
	Description      *string         `json:"description,omitempty"`
	System           *string         `json:"system,omitempty"`
	AgentType        *string         `json:"agent_type,omitempty"`
	Model            *string         `json:"model,omitempty"`
	Embedding        *string         `json:"embedding,omitempty"`
	LLMConfig        json.RawMessage `json:"llm_config,omitempty"`
	EmbeddingConfig  json.RawMessage `json:"embedding_config,omitempty"`
	MemoryBlocks     []CreateBlock   `json:"memory_blocks,omitempty"`
	Memory           *OldMemory      `json:"memory,omitempty"` // 0.5 shape
	BlockIDs         []string        `json:"block_ids,omitempty"`
	ToolIDs          []string        `json:"tool_ids,omitempty"`
	Tools            []string        `json:"tools,omitempty"` // tool names
	SourceIDs        []string        `json:"source_ids,omitempty"`
	FolderIDs        []string        `json:"folder_ids,omitempty"`
	IncludeBaseTools *bool           `json:"include_base_tools,omitempty"`
	Tags             []string        `json:"tags,omitempty"`
	Metadata         json.RawMessage `json:"metadata,omitempty"`
	OldMetadata      json.RawMessage `json:"metadata_,omitempty"`
	ToolRules        json.RawMessage `json:"tool_rules,omitempty"`
	// ModelSettings (Letta's model_settings: temperature,
	// max_output_tokens, parallel_tool_calls, reasoning, thinking) are
	// merged into the llm_config, as Letta merges them.
	ModelSettings      json.RawMessage `json:"model_settings,omitempty"`
	ContextWindowLimit *int            `json:"context_window_limit,omitempty"` // replaces llm_config.context_window
	ParallelToolCalls  *bool           `json:"parallel_tool_calls,omitempty"`  // sets llm_config.parallel_tool_calls
	MaxTokens          *int            `json:"max_tokens,omitempty"`           // sets llm_config.max_tokens
	CompactionSettings json.RawMessage `json:"compaction_settings,omitempty"`  // stored and echoed
	// InitialMessageSequence, when given, replaces the boot exchange a new
	// agent starts with; engram accepts only [] (no messages after the
	// system message).
	InitialMessageSequence json.RawMessage `json:"initial_message_sequence,omitempty"`

	IncludeBaseToolRules   Ignored `json:"include_base_tool_rules,omitempty"`
	EmbeddingChunkSize     Ignored `json:"embedding_chunk_size,omitempty"`
	MessageBufferAutoclear Ignored `json:"message_buffer_autoclear,omitempty"`
	EnableSleeptime        Ignored `json:"enable_sleeptime,omitempty"`
	Timezone               Ignored `json:"timezone,omitempty"`
	// Secrets (and the older name ToolExecEnvironmentVariables; Secrets
	// wins where both name a variable) are environment variables for this
	// agent's tools alone. They are stored sealed and shown masked.
	Secrets                      map[string]string `json:"secrets,omitempty"`
	IdentityIDs                  Ignored           `json:"identity_ids,omitempty"`
	MaxFilesOpen                 Ignored           `json:"max_files_open,omitempty"`
	PerFileViewWindowCharLimit   Ignored           `json:"per_file_view_window_char_limit,omitempty"`
	Reasoning                    Ignored           `json:"reasoning,omitempty"`
	EnableReasoner               Ignored           `json:"enable_reasoner,omitempty"`
	MaxReasoningTokens           Ignored           `json:"max_reasoning_tokens,omitempty"`
	ResponseFormat               Ignored           `json:"response_format,omitempty"`
	ToolExecEnvironmentVariables map[string]string `json:"tool_exec_environment_variables,omitempty"`
	Project                      Ignored           `json:"project,omitempty"`
	ProjectID                    Ignored           `json:"project_id,omitempty"`
	Template                     Ignored           `json:"template,omitempty"`
	TemplateID                   Ignored           `json:"template_id,omitempty"`
	BaseTemplateID               Ignored           `json:"base_template_id,omitempty"`
	FromTemplate                 Ignored           `json:"from_template,omitempty"`
	Hidden                       Ignored           `json:"hidden,omitempty"`
	MemoryVariables              Ignored           `json:"memory_variables,omitempty"`
	IncludeDefaultSource         Ignored           `json:"include_default_source,omitempty"`
	UserID                       Ignored           `json:"user_id,omitempty"`
}

// UpdateAgent is the body of PATCH /v1/agents/{id}. Absent and null fields
// are left unchanged; lists replace the current set.
type UpdateAgent struct {
	Name            *string         `json:"name,omitempty"`
	Description     *string         `json:"description,omitempty"`
	System          *string         `json:"system,omitempty"`
	Model           *string         `json:"model,omitempty"`
	Embedding       *string         `json:"embedding,omitempty"`
	LLMConfig       json.RawMessage `json:"llm_config,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
	Tags            *[]string       `json:"tags,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	OldMetadata     json.RawMessage `json:"metadata_,omitempty"`
	ToolIDs         *[]string       `json:"tool_ids,omitempty"`
	Tools           *[]string       `json:"tools,omitempty"` // tool names (0.5)
	BlockIDs        *[]string       `json:"block_ids,omitempty"`
	SourceIDs       *[]string       `json:"source_ids,omitempty"`
	FolderIDs       *[]string       `json:"folder_ids,omitempty"`
	MessageIDs      *[]string       `json:"message_ids,omitempty"`
	ToolRules       json.RawMessage `json:"tool_rules,omitempty"`
	// As in CreateAgent: merged into the llm_config, or stored.
	ModelSettings      json.RawMessage `json:"model_settings,omitempty"`
	ContextWindowLimit *int            `json:"context_window_limit,omitempty"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls,omitempty"`
	MaxTokens          *int            `json:"max_tokens,omitempty"`
	CompactionSettings json.RawMessage `json:"compaction_settings,omitempty"`

	ID       Ignored `json:"id,omitempty"` // 0.5 sent it in the body
	Timezone Ignored `json:"timezone,omitempty"`
	// Secrets, when set, replace the agent's tool environment variables
	// ({} removes them all); ToolExecEnvironmentVariables is the older
	// name (Secrets wins where both name a variable).
	Secrets                      map[string]string `json:"secrets,omitempty"`
	MessageBufferAutoclear       Ignored           `json:"message_buffer_autoclear,omitempty"`
	EnableSleeptime              Ignored           `json:"enable_sleeptime,omitempty"`
	MaxFilesOpen                 Ignored           `json:"max_files_open,omitempty"`
	PerFileViewWindowCharLimit   Ignored           `json:"per_file_view_window_char_limit,omitempty"`
	Hidden                       Ignored           `json:"hidden,omitempty"`
	IdentityIDs                  Ignored           `json:"identity_ids,omitempty"`
	ProjectID                    Ignored           `json:"project_id,omitempty"`
	TemplateID                   Ignored           `json:"template_id,omitempty"`
	BaseTemplateID               Ignored           `json:"base_template_id,omitempty"`
	LastRunCompletion            Ignored           `json:"last_run_completion,omitempty"`
	LastRunDurationMs            Ignored           `json:"last_run_duration_ms,omitempty"`
	LastStopReason               Ignored           `json:"last_stop_reason,omitempty"`
	ResponseFormat               Ignored           `json:"response_format,omitempty"`
	Reasoning                    Ignored           `json:"reasoning,omitempty"`
	ToolExecEnvironmentVariables map[string]string `json:"tool_exec_environment_variables,omitempty"`
	Memory                       Ignored           `json:"memory,omitempty"`
	UserID                       Ignored           `json:"user_id,omitempty"`
	AgentType                    Ignored           `json:"agent_type,omitempty"`
}

// CodeInput is the body of POST /v1/tools/generate-schema: source code whose
// tool schema is derived without creating a tool. SourceType is "python"
// (the default); engram derives no other.
type CodeInput struct {
	Code       string  `json:"code"`
	SourceType *string `json:"source_type,omitempty"`
}

// CreateTool is the body of POST and PUT /v1/tools/. The name comes from the
// source; a given name must match it.
type CreateTool struct {
	SourceCode      string          `json:"source_code"`
	Name            *string         `json:"name,omitempty"` // 0.5; must equal the def's name
	Description     *string         `json:"description,omitempty"`
	Tags            []string        `json:"tags,omitempty"`
	SourceType      *string         `json:"source_type,omitempty"`
	JSONSchema      json.RawMessage `json:"json_schema,omitempty"`
	ReturnCharLimit *int            `json:"return_char_limit,omitempty"`
	TimeoutSeconds  *float64        `json:"timeout_seconds,omitempty"` // engram: wall-clock limit per call, 0 < t <= 3600

	ArgsJSONSchema  Ignored `json:"args_json_schema,omitempty"`
	PipRequirements Ignored `json:"pip_requirements,omitempty"`
	NpmRequirements Ignored `json:"npm_requirements,omitempty"`
	// DefaultRequiresApproval makes each agent given the tool (at creation
	// or by attaching it) a requires_approval rule for it, as Letta does.
	DefaultRequiresApproval *bool   `json:"default_requires_approval,omitempty"`
	EnableParallelExecution Ignored `json:"enable_parallel_execution,omitempty"`
	Terminal                Ignored `json:"terminal,omitempty"`
	Module                  Ignored `json:"module,omitempty"`
	ID                      Ignored `json:"id,omitempty"`
	UserID                  Ignored `json:"user_id,omitempty"`
}

// UpdateTool is the body of PATCH /v1/tools/{id}. A new source re-derives
// the name and schema.
type UpdateTool struct {
	SourceCode      *string         `json:"source_code,omitempty"`
	Name            *string         `json:"name,omitempty"`
	Description     *string         `json:"description,omitempty"`
	Tags            *[]string       `json:"tags,omitempty"`
	SourceType      *string         `json:"source_type,omitempty"`
	JSONSchema      json.RawMessage `json:"json_schema,omitempty"`
	ReturnCharLimit *int            `json:"return_char_limit,omitempty"`
	TimeoutSeconds  *float64        `json:"timeout_seconds,omitempty"` // engram: 0 restores the server's default
	Metadata        json.RawMessage `json:"metadata_,omitempty"`

	ArgsJSONSchema          Ignored `json:"args_json_schema,omitempty"`
	PipRequirements         Ignored `json:"pip_requirements,omitempty"`
	NpmRequirements         Ignored `json:"npm_requirements,omitempty"`
	DefaultRequiresApproval *bool   `json:"default_requires_approval,omitempty"` // for agents given it from now on
	EnableParallelExecution Ignored `json:"enable_parallel_execution,omitempty"`
	ID                      Ignored `json:"id,omitempty"`
}

// CreateSource is the body of POST /v1/folders/ and /v1/sources/.
type CreateSource struct {
	Name               string          `json:"name"`
	Description        *string         `json:"description,omitempty"`
	Instructions       *string         `json:"instructions,omitempty"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	OldMetadata        json.RawMessage `json:"metadata_,omitempty"`
	Embedding          *string         `json:"embedding,omitempty"`
	EmbeddingChunkSize *int            `json:"embedding_chunk_size,omitempty"`
	EmbeddingConfig    json.RawMessage `json:"embedding_config,omitempty"`

	UserID Ignored `json:"user_id,omitempty"`
}

// UpdateSource is the body of PATCH /v1/folders/{id} and /v1/sources/{id}.
type UpdateSource struct {
	Name            *string         `json:"name,omitempty"`
	Description     *string         `json:"description,omitempty"`
	Instructions    *string         `json:"instructions,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	OldMetadata     json.RawMessage `json:"metadata_,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`

	ID Ignored `json:"id,omitempty"`
}

// CreatePassage is the body of POST /v1/agents/{id}/archival-memory.
type CreatePassage struct {
	Text      string   `json:"text"`
	Tags      []string `json:"tags,omitempty"`
	CreatedAt *string  `json:"created_at,omitempty"`
}

// Page selects a window of a list: items after or before a cursor id, in
// ascending or descending order, at most Limit of them (0: the default).
type Page struct {
	Before string
	After  string
	Limit  int
	Order  string // "asc" or "desc"; "" means the list's default
}

// AgentFilter narrows ListAgents.
type AgentFilter struct {
	Name        string
	Tags        []string
	MatchAllTag bool
	QueryText   string
	BlockID     string // agents whose core memory holds this block; the block must exist
	SourceID    string // agents this source is attached to; the source must exist
}

// ArchivalQuery is a search of an agent's archival memory (GET
// /v1/agents/{id}/archival-memory/search): the passages it owns and those of
// its attached sources, ranked.
type ArchivalQuery struct {
	Query    string
	Tags     []string
	TagMatch string // "any" (default) or "all"
	After    time.Time
	Before   time.Time
	Offset   int
	Limit    int // 0 means 10
}

// Upload is one file a client loads into a source (a part of POST
// /v1/sources/{id}/upload).
type Upload struct {
	Name string // the client's file name (a path is reduced to its base)
	MIME string // the client's content type; "" to detect
	Data []byte
}

// Refusal names a file that was not loaded and what was wrong with it, as a
// load job's metadata lists it.
type Refusal struct {
	Name  string `json:"file_name"`
	Error string `json:"error"`
}

// ToolFilter narrows a tool listing; a tool must pass every condition set.
type ToolFilter struct {
	Name         string   // exactly this name
	Names        []string // any of these names
	IDs          []string // any of these ids
	Search       string   // the name contains it, ignoring case
	Types        []string // any of these tool types
	ExcludeTypes []string // none of these tool types
	LettaOnly    bool     // only Letta's own tools (tool types letta_*)
}

// BlockFilter narrows ListBlocks; a block must pass every condition set.
type BlockFilter struct {
	Label             string
	TemplatesOnly     bool
	Name              string   // template name
	LabelSearch       string   // the label contains it, ignoring case
	ValueSearch       string   // the value contains it, ignoring case
	DescriptionSearch string   // the description contains it, ignoring case
	Tags              []string // any of them (all of them with MatchAllTags)
	MatchAllTags      bool
	// Agent counts: how many agents hold the block. A nil bound is unset;
	// AgentsEq keeps blocks whose count is any of its values.
	AgentsGT, AgentsLT *int
	AgentsEq           []int
}

// Package letta05 is the wire schema of Letta 0.5's REST API: the objects
// and request bodies its Python RESTClient (letta 0.5.x) sends and
// validates, field for field.
//
// The 0.5 client validates every object it receives with pydantic models
// that forbid unknown fields (AgentState, Tool, Passage, Source, Job,
// FileMetadata, Message, Organization), so each struct here declares exactly
// the fields of letta 0.5.5 and nothing more. Request bodies declare what
// 0.5.5 and 0.5.1 send; a field neither sends is refused.
package letta05

import (
	"encoding/json"
	"time"
)

// DefaultUserID is the user every 0.5 object names: engram has one user.
const DefaultUserID = "user-00000000-0000-4000-8000-000000000000"

// DefaultOrgID is the organization every 0.5 object names.
const DefaultOrgID = "org-00000000-0000-4000-8000-000000000000"

// DefaultOrgName is the name of DefaultOrgID.
const DefaultOrgName = "default_org"

// LLMConfig is 0.5's LLMConfig.
type LLMConfig struct {
	Model                    string  `json:"model"`
	ModelEndpointType        string  `json:"model_endpoint_type"`
	ModelEndpoint            *string `json:"model_endpoint"`
	ModelWrapper             *string `json:"model_wrapper"`
	ContextWindow            int     `json:"context_window"`
	PutInnerThoughtsInKwargs *bool   `json:"put_inner_thoughts_in_kwargs"`
}

// EmbeddingConfig is 0.5's EmbeddingConfig.
type EmbeddingConfig struct {
	EmbeddingEndpointType string  `json:"embedding_endpoint_type"`
	EmbeddingEndpoint     *string `json:"embedding_endpoint"`
	EmbeddingModel        string  `json:"embedding_model"`
	EmbeddingDim          int     `json:"embedding_dim"`
	EmbeddingChunkSize    *int    `json:"embedding_chunk_size"`
	AzureEndpoint         *string `json:"azure_endpoint"`
	AzureVersion          *string `json:"azure_version"`
	AzureDeployment       *string `json:"azure_deployment"`
}

// Block is 0.5's Block (also Human and Persona). "name" is the template
// name (pydantic's alias of template_name).
type Block struct {
	ID              string          `json:"id"`
	Value           string          `json:"value"`
	Limit           int             `json:"limit"`
	Name            *string         `json:"name"`
	IsTemplate      bool            `json:"is_template"`
	Label           string          `json:"label"`
	Description     *string         `json:"description"`
	Metadata        json.RawMessage `json:"metadata_"`
	OrganizationID  *string         `json:"organization_id"`
	CreatedByID     *string         `json:"created_by_id"`
	LastUpdatedByID *string         `json:"last_updated_by_id"`
}

// Memory is 0.5's Memory: the blocks keyed by label.
type Memory struct {
	Memory         map[string]Block `json:"memory"`
	PromptTemplate string           `json:"prompt_template"`
}

// AgentState is 0.5's AgentState: tools are names.
type AgentState struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	Metadata        json.RawMessage  `json:"metadata_"`
	UserID          *string          `json:"user_id"`
	CreatedAt       time.Time        `json:"created_at"`
	MessageIDs      []string         `json:"message_ids"`
	Memory          Memory           `json:"memory"`
	Tools           []string         `json:"tools"`
	ToolRules       json.RawMessage  `json:"tool_rules"`
	Tags            []string         `json:"tags"`
	System          string           `json:"system"`
	AgentType       string           `json:"agent_type"`
	LLMConfig       *LLMConfig       `json:"llm_config"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
}

// Tool is 0.5's Tool. SourceCode is required by the client: a built-in tool
// has "".
type Tool struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Description     *string         `json:"description"`
	SourceType      *string         `json:"source_type"`
	Module          *string         `json:"module"`
	OrganizationID  *string         `json:"organization_id"`
	Tags            []string        `json:"tags"`
	SourceCode      string          `json:"source_code"`
	JSONSchema      json.RawMessage `json:"json_schema"`
	CreatedByID     *string         `json:"created_by_id"`
	LastUpdatedByID *string         `json:"last_updated_by_id"`
}

// Passage is 0.5's Passage.
type Passage struct {
	ID              string           `json:"id"`
	UserID          *string          `json:"user_id"`
	AgentID         *string          `json:"agent_id"`
	SourceID        *string          `json:"source_id"`
	FileID          *string          `json:"file_id"`
	Metadata        json.RawMessage  `json:"metadata_"`
	Text            string           `json:"text"`
	Embedding       []float32        `json:"embedding"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	CreatedAt       time.Time        `json:"created_at"`
}

// Source is 0.5's Source.
type Source struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	OrganizationID  *string          `json:"organization_id"`
	Metadata        json.RawMessage  `json:"metadata_"`
	CreatedByID     *string          `json:"created_by_id"`
	LastUpdatedByID *string          `json:"last_updated_by_id"`
	CreatedAt       *time.Time       `json:"created_at"`
	UpdatedAt       *time.Time       `json:"updated_at"`
}

// Job is 0.5's Job.
type Job struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Metadata    json.RawMessage `json:"metadata_"`
	CreatedAt   time.Time       `json:"created_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	UserID      string          `json:"user_id"`
}

// FileMetadata is 0.5's FileMetadata.
type FileMetadata struct {
	ID                   string     `json:"id"`
	OrganizationID       *string    `json:"organization_id"`
	SourceID             string     `json:"source_id"`
	FileName             *string    `json:"file_name"`
	FilePath             *string    `json:"file_path"`
	FileType             *string    `json:"file_type"`
	FileSize             *int64     `json:"file_size"`
	FileCreationDate     *string    `json:"file_creation_date"`
	FileLastModifiedDate *string    `json:"file_last_modified_date"`
	CreatedAt            *time.Time `json:"created_at"`
	UpdatedAt            *time.Time `json:"updated_at"`
	IsDeleted            bool       `json:"is_deleted"`
}

// Organization is 0.5's Organization.
type Organization struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt *time.Time `json:"created_at"`
}

// ToolCallFunction is the function of a ToolCall.
type ToolCallFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolCall is a call inside a stored assistant Message (OpenAI's shape).
type ToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function ToolCallFunction `json:"function"`
}

// Message is 0.5's Message: a stored message as the model sees it.
type Message struct {
	ID         string     `json:"id"`
	Role       string     `json:"role"`
	Text       *string    `json:"text"`
	UserID     *string    `json:"user_id"`
	AgentID    *string    `json:"agent_id"`
	Model      *string    `json:"model"`
	Name       *string    `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ToolCalls  []ToolCall `json:"tool_calls"`
	ToolCallID *string    `json:"tool_call_id"`
}

// Message types of 0.5's LettaMessage union.
const (
	SystemMessageType     = "system_message"
	UserMessageType       = "user_message"
	InternalMonologueType = "internal_monologue"
	FunctionCallType      = "function_call"
	FunctionReturnType    = "function_return"
	AssistantMessageType  = "assistant_message"
)

// FunctionCall is the call of a function_call message.
type FunctionCall struct {
	Name           string `json:"name"`
	Arguments      string `json:"arguments"`
	FunctionCallID string `json:"function_call_id"`
}

// LettaMessage is one member of 0.5's message union, discriminated by
// MessageType; only the fields of that type are set. Dates are sent to the
// second, as 0.5 serialised them.
type LettaMessage struct {
	ID                string        `json:"id"`
	Date              string        `json:"date"`
	MessageType       string        `json:"message_type"`
	Message           *string       `json:"message,omitempty"`            // system, user
	InternalMonologue *string       `json:"internal_monologue,omitempty"` // internal_monologue
	FunctionCall      *FunctionCall `json:"function_call,omitempty"`      // function_call
	FunctionReturn    *string       `json:"function_return,omitempty"`    // function_return
	Status            *string       `json:"status,omitempty"`             // function_return: success | error
	FunctionCallID    *string       `json:"function_call_id,omitempty"`   // function_return
	AssistantMessage  *string       `json:"assistant_message,omitempty"`  // assistant_message
}

// Usage is 0.5's LettaUsageStatistics.
type Usage struct {
	CompletionTokens int `json:"completion_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
	StepCount        int `json:"step_count"`
}

// LettaResponse is what a 0.5 send returns: LettaMessages, or Messages when
// the request asked for message objects.
type LettaResponse struct {
	Messages any   `json:"messages"`
	Usage    Usage `json:"usage"`
}

// ArchivalMemorySummary and RecallMemorySummary count passages and messages.
type (
	ArchivalMemorySummary struct {
		Size int `json:"size"`
	}
	RecallMemorySummary struct {
		Size int `json:"size"`
	}
)

// Ignored is a request field accepted for compatibility and not acted on.
type Ignored = json.RawMessage

// CreateBlock is a block as 0.5 clients send it: in POST /v1/blocks and in
// an agent's memory. Either "name" or "template_name" names a template.
type CreateBlock struct {
	Value        *string         `json:"value"`
	Limit        *int            `json:"limit"`
	Name         *string         `json:"name"`
	TemplateName *string         `json:"template_name"`
	IsTemplate   *bool           `json:"is_template"`
	Template     *bool           `json:"template"` // 0.5.1
	Label        *string         `json:"label"`
	Description  *string         `json:"description"`
	Metadata     json.RawMessage `json:"metadata_"`

	ID              Ignored `json:"id"`
	UserID          Ignored `json:"user_id"`
	OrganizationID  Ignored `json:"organization_id"`
	CreatedByID     Ignored `json:"created_by_id"`
	LastUpdatedByID Ignored `json:"last_updated_by_id"`
}

// MemoryIn is a Memory in a request.
type MemoryIn struct {
	Memory         map[string]CreateBlock `json:"memory"`
	PromptTemplate *string                `json:"prompt_template"`
}

// CreateAgent is the body of POST /v1/agents/.
type CreateAgent struct {
	Name                   *string         `json:"name"`
	Description            *string         `json:"description"`
	Metadata               json.RawMessage `json:"metadata_"`
	UserID                 Ignored         `json:"user_id"`
	MessageIDs             Ignored         `json:"message_ids"`
	Memory                 *MemoryIn       `json:"memory"`
	Tools                  []string        `json:"tools"`
	ToolRules              json.RawMessage `json:"tool_rules"`
	Tags                   []string        `json:"tags"`
	System                 *string         `json:"system"`
	AgentType              *string         `json:"agent_type"`
	LLMConfig              json.RawMessage `json:"llm_config"`
	EmbeddingConfig        json.RawMessage `json:"embedding_config"`
	InitialMessageSequence Ignored         `json:"initial_message_sequence"`
}

// UpdateAgent is the body of PATCH /v1/agents/{id}.
type UpdateAgent struct {
	ID              Ignored         `json:"id"`
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	Metadata        json.RawMessage `json:"metadata_"`
	UserID          Ignored         `json:"user_id"`
	Tools           *[]string       `json:"tools"`
	Tags            *[]string       `json:"tags"`
	System          *string         `json:"system"`
	LLMConfig       json.RawMessage `json:"llm_config"`
	EmbeddingConfig json.RawMessage `json:"embedding_config"`
	MessageIDs      *[]string       `json:"message_ids"`
	Memory          *MemoryIn       `json:"memory"`
	ToolRules       json.RawMessage `json:"tool_rules"`
}

// UpdateBlock is the body of POST /v1/blocks/{id} (0.5's block update).
type UpdateBlock struct {
	ID           Ignored         `json:"id"`
	Value        *string         `json:"value"`
	Limit        *int            `json:"limit"`
	Name         *string         `json:"name"`
	TemplateName *string         `json:"template_name"`
	IsTemplate   *bool           `json:"is_template"`
	Template     *bool           `json:"template"`
	Label        *string         `json:"label"`
	Description  *string         `json:"description"`
	Metadata     json.RawMessage `json:"metadata_"`
	UserID       Ignored         `json:"user_id"`
}

// CreateTool is the body of POST /v1/tools/.
type CreateTool struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Tags        []string        `json:"tags"`
	Module      *string         `json:"module"`
	SourceCode  string          `json:"source_code"`
	SourceType  *string         `json:"source_type"`
	JSONSchema  json.RawMessage `json:"json_schema"`
	Terminal    Ignored         `json:"terminal"` // 0.5.1
	UserID      Ignored         `json:"user_id"`  // 0.5.1
	ID          Ignored         `json:"id"`       // 0.5.1: null, or an id engram does not take
}

// UpdateTool is the body of PATCH /v1/tools/{id}.
type UpdateTool struct {
	ID          Ignored         `json:"id"`
	Description *string         `json:"description"`
	Name        *string         `json:"name"`
	Tags        *[]string       `json:"tags"`
	Module      *string         `json:"module"`
	SourceCode  *string         `json:"source_code"`
	SourceType  *string         `json:"source_type"`
	JSONSchema  json.RawMessage `json:"json_schema"`
	Terminal    Ignored         `json:"terminal"` // 0.5.1
	UserID      Ignored         `json:"user_id"`  // 0.5.1
}

// CreateSource is the body of POST /v1/sources/.
type CreateSource struct {
	Name            string          `json:"name"`
	Description     *string         `json:"description"`
	Metadata        json.RawMessage `json:"metadata_"`
	EmbeddingConfig json.RawMessage `json:"embedding_config"`
	UserID          Ignored         `json:"user_id"` // 0.5.1
}

// UpdateSource is the body of PATCH /v1/sources/{id}.
type UpdateSource struct {
	ID              Ignored         `json:"id"`
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	Metadata        json.RawMessage `json:"metadata_"`
	EmbeddingConfig json.RawMessage `json:"embedding_config"`
	UserID          Ignored         `json:"user_id"` // 0.5.1
}

// CreateArchival is the body of POST /v1/agents/{id}/archival.
type CreateArchival struct {
	Text string `json:"text"`
}

// MessageCreate is one input message of a send.
type MessageCreate struct {
	Role string  `json:"role"`
	Text string  `json:"text"`
	Name *string `json:"name"`
}

// SendMessage is 0.5's LettaRequest.
type SendMessage struct {
	Messages                      []MessageCreate `json:"messages"`
	RunAsync                      *bool           `json:"run_async"`
	StreamSteps                   *bool           `json:"stream_steps"`
	StreamTokens                  *bool           `json:"stream_tokens"`
	ReturnMessageObject           *bool           `json:"return_message_object"`
	UseAssistantMessage           *bool           `json:"use_assistant_message"`
	AssistantMessageFunctionName  *string         `json:"assistant_message_function_name"`
	AssistantMessageFunctionKwarg *string         `json:"assistant_message_function_kwarg"`
	// 0.5.1 names
	AssistantMessageToolName  *string `json:"assistant_message_tool_name"`
	AssistantMessageToolKwarg *string `json:"assistant_message_tool_kwarg"`
}

// UpdateMessage is the body of PATCH /v1/agents/{id}/messages/{message_id}.
type UpdateMessage struct {
	ID         Ignored    `json:"id"`
	Role       *string    `json:"role"`
	Text       *string    `json:"text"`
	Name       *string    `json:"name"`
	ToolCalls  []ToolCall `json:"tool_calls"`
	ToolCallID *string    `json:"tool_call_id"`
}

// CreateOrg is the body of POST /v1/admin/orgs.
type CreateOrg struct {
	Name *string `json:"name"`
}

// Letta 0.5.1 named some fields differently and forbids 0.5.5's names, so
// its client is served at a base URL of its own with these shapes; every
// other object is the same as 0.5.5's.

// Block051 is 0.5.1's Block: "name" is the template name and "template" its
// flag.
type Block051 struct {
	ID          string          `json:"id"`
	Value       string          `json:"value"`
	Limit       int             `json:"limit"`
	Name        *string         `json:"name"`
	Template    bool            `json:"template"`
	Label       string          `json:"label"`
	Description *string         `json:"description"`
	Metadata    json.RawMessage `json:"metadata_"`
	UserID      *string         `json:"user_id"`
}

// Memory051 is 0.5.1's Memory.
type Memory051 struct {
	Memory         map[string]Block051 `json:"memory"`
	PromptTemplate string              `json:"prompt_template"`
}

// AgentState051 is 0.5.1's AgentState: no tags, no tool rules.
type AgentState051 struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	Metadata        json.RawMessage  `json:"metadata_"`
	UserID          *string          `json:"user_id"`
	CreatedAt       time.Time        `json:"created_at"`
	MessageIDs      []string         `json:"message_ids"`
	Memory          Memory051        `json:"memory"`
	Tools           []string         `json:"tools"`
	System          string           `json:"system"`
	AgentType       string           `json:"agent_type"`
	LLMConfig       *LLMConfig       `json:"llm_config"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
}

// Tool051 is 0.5.1's Tool: the user, no organization.
type Tool051 struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	SourceType  *string         `json:"source_type"`
	Module      *string         `json:"module"`
	UserID      *string         `json:"user_id"`
	Tags        []string        `json:"tags"`
	SourceCode  string          `json:"source_code"`
	JSONSchema  json.RawMessage `json:"json_schema"`
}

// Source051 is 0.5.1's Source.
type Source051 struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Description     *string          `json:"description"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	Metadata        json.RawMessage  `json:"metadata_"`
	CreatedAt       time.Time        `json:"created_at"`
	UserID          string           `json:"user_id"`
}

// FileMetadata051 is 0.5.1's FileMetadata.
type FileMetadata051 struct {
	ID                   string    `json:"id"`
	UserID               string    `json:"user_id"`
	SourceID             string    `json:"source_id"`
	FileName             *string   `json:"file_name"`
	FilePath             *string   `json:"file_path"`
	FileType             *string   `json:"file_type"`
	FileSize             *int64    `json:"file_size"`
	FileCreationDate     *string   `json:"file_creation_date"`
	FileLastModifiedDate *string   `json:"file_last_modified_date"`
	CreatedAt            time.Time `json:"created_at"`
}

// Dialect051 turns a 0.5.5 object (or a list of them) into 0.5.1's; other
// values are returned as they are.
func Dialect051(v any) any {
	switch x := v.(type) {
	case AgentState:
		return agent051(x)
	case []AgentState:
		return mapAll(x, agent051)
	case Block:
		return block051(x)
	case []Block:
		return mapAll(x, block051)
	case Memory:
		return memory051(x)
	case Tool:
		return tool051(x)
	case []Tool:
		return mapAll(x, tool051)
	case Source:
		return source051(x)
	case []Source:
		return mapAll(x, source051)
	case FileMetadata:
		return file051(x)
	case []FileMetadata:
		return mapAll(x, file051)
	}
	return v
}

func mapAll[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}

func defaultUser() *string { s := DefaultUserID; return &s }

func block051(b Block) Block051 {
	return Block051{
		ID: b.ID, Value: b.Value, Limit: b.Limit, Name: b.Name, Template: b.IsTemplate, Label: b.Label,
		Description: b.Description, Metadata: b.Metadata, UserID: defaultUser(),
	}
}

func memory051(m Memory) Memory051 {
	out := Memory051{Memory: make(map[string]Block051, len(m.Memory)), PromptTemplate: m.PromptTemplate}
	for k, b := range m.Memory {
		out.Memory[k] = block051(b)
	}
	return out
}

func agent051(a AgentState) AgentState051 {
	return AgentState051{
		ID: a.ID, Name: a.Name, Description: a.Description, Metadata: a.Metadata, UserID: a.UserID,
		CreatedAt: a.CreatedAt, MessageIDs: a.MessageIDs, Memory: memory051(a.Memory), Tools: a.Tools,
		System: a.System, AgentType: a.AgentType, LLMConfig: a.LLMConfig, EmbeddingConfig: a.EmbeddingConfig,
	}
}

func tool051(t Tool) Tool051 {
	schema := t.JSONSchema
	if len(schema) == 0 || string(schema) == "null" {
		schema = json.RawMessage("{}") // 0.5.1 requires an object
	}
	return Tool051{
		ID: t.ID, Name: t.Name, Description: t.Description, SourceType: t.SourceType, Module: t.Module,
		UserID: defaultUser(), Tags: t.Tags, SourceCode: t.SourceCode, JSONSchema: schema,
	}
}

func source051(s Source) Source051 {
	out := Source051{
		ID: s.ID, Name: s.Name, Description: s.Description, EmbeddingConfig: s.EmbeddingConfig,
		Metadata: s.Metadata, UserID: DefaultUserID,
	}
	if s.CreatedAt != nil {
		out.CreatedAt = *s.CreatedAt
	}
	return out
}

func file051(f FileMetadata) FileMetadata051 {
	out := FileMetadata051{
		ID: f.ID, UserID: DefaultUserID, SourceID: f.SourceID, FileName: f.FileName, FilePath: f.FilePath,
		FileType: f.FileType, FileSize: f.FileSize, FileCreationDate: f.FileCreationDate,
		FileLastModifiedDate: f.FileLastModifiedDate,
	}
	if f.CreatedAt != nil {
		out.CreatedAt = *f.CreatedAt
	}
	return out
}

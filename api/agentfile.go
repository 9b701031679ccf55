package api

import (
	"encoding/json"
	"time"
)

// AgentFileSchema is a Letta Agent File (.af), the AgentFileSchema of Letta's
// GET /v1/agents/{id}/export and POST /v1/agents/import: agents with their
// messages, and the blocks, tools and sources they refer to by ids that
// are local to the file. engram writes agents, blocks, tools, sources and
// messages; groups, files, MCP servers and skills are written empty and
// ignored when read.
type AgentFileSchema struct {
	Agents     []AgentFileAgent  `json:"agents"`
	Groups     []json.RawMessage `json:"groups"`
	Blocks     []AgentFileBlock  `json:"blocks"`
	Files      []json.RawMessage `json:"files"`
	Sources    []AgentFileSource `json:"sources"`
	Tools      []AgentFileTool   `json:"tools"`
	MCPServers []json.RawMessage `json:"mcp_servers"`
	Skills     []json.RawMessage `json:"skills,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	CreatedAt  *time.Time        `json:"created_at,omitempty"`
}

// AgentFileAgent is an agent of an agent file (Letta's agent_file
// AgentSchema).
type AgentFileAgent struct {
	ID                  string             `json:"id"`
	Name                string             `json:"name"`
	Description         *string            `json:"description"`
	System              *string            `json:"system"`
	AgentType           string             `json:"agent_type,omitempty"`
	LLMConfig           json.RawMessage    `json:"llm_config,omitempty"`
	EmbeddingConfig     json.RawMessage    `json:"embedding_config,omitempty"`
	Tags                []string           `json:"tags"`
	Metadata            json.RawMessage    `json:"metadata,omitempty"`
	ToolRules           json.RawMessage    `json:"tool_rules,omitempty"`
	ToolIDs             []string           `json:"tool_ids"`
	BlockIDs            []string           `json:"block_ids"`
	SourceIDs           []string           `json:"source_ids"`
	InContextMessageIDs []string           `json:"in_context_message_ids"`
	Messages            []AgentFileMessage `json:"messages"`
	FilesAgents         []json.RawMessage  `json:"files_agents"`
	GroupIDs            []string           `json:"group_ids"`
	IncludeBaseTools    *bool              `json:"include_base_tools,omitempty"`
}

// AgentFileBlock is a block of an agent file (Letta's BlockSchema).
type AgentFileBlock struct {
	ID           string          `json:"id"`
	Label        string          `json:"label"`
	Value        string          `json:"value"`
	Limit        *int            `json:"limit,omitempty"`
	TemplateName *string         `json:"template_name,omitempty"`
	IsTemplate   bool            `json:"is_template"`
	ReadOnly     bool            `json:"read_only"`
	Description  *string         `json:"description"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	Tags         []string        `json:"tags,omitempty"`
}

// AgentFileTool is a tool of an agent file (Letta's agent_file ToolSchema).
type AgentFileTool struct {
	ID              string          `json:"id"`
	Name            *string         `json:"name"`
	ToolType        string          `json:"tool_type,omitempty"`
	Description     *string         `json:"description"`
	SourceType      *string         `json:"source_type"`
	SourceCode      *string         `json:"source_code"`
	JSONSchema      json.RawMessage `json:"json_schema,omitempty"`
	Tags            []string        `json:"tags"`
	ReturnCharLimit *int            `json:"return_char_limit,omitempty"`
	Metadata        json.RawMessage `json:"metadata_,omitempty"`
}

// AgentFileSource is a source (folder) of an agent file (Letta's
// SourceSchema).
type AgentFileSource struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Description     *string         `json:"description"`
	Instructions    *string         `json:"instructions"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	EmbeddingConfig json.RawMessage `json:"embedding_config,omitempty"`
}

// AgentFileMessage is a stored message of an agent file (Letta's
// agent_file MessageSchema). Content is a string or a list of content
// parts; engram writes a list of one text part.
type AgentFileMessage struct {
	Type       string              `json:"type,omitempty"`
	ID         string              `json:"id"`
	Role       string              `json:"role"`
	Content    json.RawMessage     `json:"content"`
	Name       *string             `json:"name"`
	Otid       *string             `json:"otid,omitempty"`
	Model      *string             `json:"model"`
	AgentID    *string             `json:"agent_id,omitempty"`
	ToolCalls  []AgentFileToolCall `json:"tool_calls"`
	ToolCallID *string             `json:"tool_call_id"`
	CreatedAt  time.Time           `json:"created_at"`
}

// AgentFileToolCall is a model's function call (OpenAI's
// ChatCompletionMessageFunctionToolCall).
type AgentFileToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ImportAgentFile are the options of POST /v1/agents/import (Letta's
// Body_import_agent, less the file).
type ImportAgentFile struct {
	AppendCopySuffix bool    // append "_copy" to each agent's name (Letta's default)
	OverrideName     *string // the name of the (first) agent
	OverrideModel    *string // a model handle for every agent
	StripMessages    bool    // import no messages
}

// ImportedAgents is the answer of POST /v1/agents/import.
type ImportedAgents struct {
	AgentIDs []string `json:"agent_ids"`
}

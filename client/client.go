// Package client is engram's Go client: one Client interface, its REST
// implementation, and the types both share. The in-process implementation,
// which runs a node, is package client/local; this package does not link the
// node (no NATS server, no Bleve index), so a program that only talks to a
// server over HTTP stays small.
//
// The interface mirrors the Python client of Letta 0.5 (AbstractClient,
// LocalClient, RESTClient and create_client): each seed method becomes a Go
// method of the same name in Go spelling (get_archival_memory becomes
// GetArchivalMemory), takes a context first and returns the wire types of
// package api. NewREST is the seed's RESTClient; local.New its LocalClient
// and local.CreateClient its create_client.
//
// Errors carry the kinds of package fault on both implementations, so
// fault.Is(err, fault.NotFound) means the same whether the node runs in the
// process or behind a server. A REST error is also an *APIError holding the
// HTTP status and the server's detail text.
package client

import (
	"cmp"
	"context"
	"encoding/json"
	"iter"
	"net/http"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/ingest"
)

// Client is a connection to engram: agents, their memory, block templates,
// tools, sources, jobs and models.
//
// Implementations are safe for concurrent use. Every method that takes an id
// fails with an error of kind fault.NotFound when nothing has that id (and of
// kind fault.Unprocessable when the id is malformed); validation failures
// have kind fault.Invalid or fault.Unprocessable; a node or server that
// cannot be reached gives fault.Unavailable. The full listings (ListAgents,
// ListHumans, ListPersonas, ListBlocks, ListTools, ListSources, ListJobs)
// return every item, oldest first, fetching it a page at a time; an item
// deleted between two pages may end the listing with fault.NotFound.
//
// The seed's add_tool (a function as a tool) is local.Client.AddTool, which
// takes a Go function; it is not in this interface because a Go function cannot
// cross HTTP, so the REST implementation has no such method.
//
// Seed methods that arrive with later issues, and are not here yet:
// load_file_to_source and load_data (file ingestion); streaming
// send_message; save (a node stores every change as it happens, so it may
// never be needed). Seed arguments that name an agent or source either by id or by
// name take the id here; use GetAgentID or GetSourceID to turn a name into
// an id.
type Client interface {
	// AgentExists reports whether an agent with the id exists. A malformed
	// id names no agent.
	AgentExists(ctx context.Context, id string) (bool, error)
	// AgentExistsByName reports whether an agent with the name exists.
	AgentExistsByName(ctx context.Context, name string) (bool, error)
	// CreateAgent creates an agent. Zero options give the seed's defaults:
	// a random name, ChatMemory of the default persona and human, the base
	// tools, the server's default models and the seed's default metadata.
	CreateAgent(ctx context.Context, opts CreateAgentOptions) (*api.AgentState, error)
	// GetAgent returns an agent with its blocks, tools and sources.
	GetAgent(ctx context.Context, id string) (*api.AgentState, error)
	// GetAgentID returns the id of the oldest agent with the name, or an
	// error of kind fault.NotFound.
	GetAgentID(ctx context.Context, name string) (string, error)
	// ListAgents lists every agent, oldest first.
	ListAgents(ctx context.Context) ([]api.AgentState, error)
	// UpdateAgent changes the fields the request sets; lists replace the
	// current set.
	UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (*api.AgentState, error)
	// RenameAgent sets an agent's name.
	RenameAgent(ctx context.Context, id, newName string) (*api.AgentState, error)
	// DeleteAgent deletes an agent with its archival memory.
	DeleteAgent(ctx context.Context, id string) error

	// GetInContextMemory returns an agent's core memory.
	GetInContextMemory(ctx context.Context, agentID string) (*api.Memory, error)
	// UpdateInContextMemory sets the value of the core memory block labelled
	// section and returns the whole core memory. A value over the block's
	// character limit fails with fault.Invalid and the block keeps its old
	// value; an unknown section is fault.NotFound.
	UpdateInContextMemory(ctx context.Context, agentID, section, value string) (*api.Memory, error)
	// GetArchivalMemory lists an agent's archival passages oldest first:
	// those after the passage id after and before the passage id before
	// (either may be ""), at most limit of them (0 means 1000). With only
	// before, it returns the passages just before it.
	GetArchivalMemory(ctx context.Context, agentID, before, after string, limit int) ([]api.Passage, error)
	// InsertArchivalMemory stores text in an agent's archival memory and
	// returns the passages it became (one, as engram does not chunk).
	InsertArchivalMemory(ctx context.Context, agentID, text string) ([]api.Passage, error)
	// DeleteArchivalMemory deletes one archival passage of an agent.
	DeleteArchivalMemory(ctx context.Context, agentID, memoryID string) error
	// GetArchivalMemorySummary counts an agent's archival passages.
	GetArchivalMemorySummary(ctx context.Context, agentID string) (*api.ArchivalMemorySummary, error)
	// GetRecallMemorySummary counts an agent's stored messages.
	GetRecallMemorySummary(ctx context.Context, agentID string) (*api.RecallMemorySummary, error)
	// GetMessages returns an agent's message history oldest first. With
	// after, it returns the first limit stored messages after that message
	// id (and before before, if given); otherwise the last limit stored
	// messages before before (or of all). limit 0 means 1000. One stored
	// message may appear as several LettaMessages sharing its id; limit
	// counts stored messages.
	GetMessages(ctx context.Context, agentID, before, after string, limit int) ([]api.LettaMessage, error)
	// SendMessage gives the agent one message with the given role ("user"
	// or "system") and runs it until it stops; the response holds what the
	// agent produced, not the input.
	SendMessage(ctx context.Context, agentID, role, message string) (*api.LettaResponse, error)
	// UserMessage is SendMessage with role "user".
	UserMessage(ctx context.Context, agentID, message string) (*api.LettaResponse, error)
	// SendMessageStream is SendMessage as it happens: the iterator yields
	// each message the agent produces as its step is stored and, with
	// tokens, the model's reasoning as it is generated, in pieces:
	// reasoning_message items sharing one id per step, each holding a piece
	// of the text (the whole reasoning message then does not follow). A
	// failure ends the iteration with its error. Stopping the iteration
	// early stops waiting, not the agent: its run completes on the server.
	SendMessageStream(ctx context.Context, agentID, role, message string, tokens bool) iter.Seq2[api.LettaMessage, error]
	// GetInContextMessages returns the messages in the agent's context
	// window, oldest first.
	GetInContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error)
	// RunCommand runs a slash command (/memory, /pop [n], /retry,
	// /rethink <text>, /rewrite <text>, /summarize, /heartbeat,
	// /memorywarning) on the agent.
	RunCommand(ctx context.Context, agentID, command string) (*api.LettaResponse, error)

	// CreateHuman saves a human template: a block labelled "human", marked
	// as a template, named name, limited to 2000 characters.
	CreateHuman(ctx context.Context, name, text string) (*api.Block, error)
	// CreatePersona saves a persona template, as CreateHuman does a human.
	CreatePersona(ctx context.Context, name, text string) (*api.Block, error)
	// GetHuman returns a human template; any other block is fault.NotFound.
	GetHuman(ctx context.Context, id string) (*api.Block, error)
	// GetPersona returns a persona template; any other block is fault.NotFound.
	GetPersona(ctx context.Context, id string) (*api.Block, error)
	// GetHumanID returns the id of the oldest human template named name, or
	// an error of kind fault.NotFound.
	GetHumanID(ctx context.Context, name string) (string, error)
	// GetPersonaID returns the id of the oldest persona template named name,
	// or an error of kind fault.NotFound.
	GetPersonaID(ctx context.Context, name string) (string, error)
	// ListHumans lists the human templates, oldest first.
	ListHumans(ctx context.Context) ([]api.Block, error)
	// ListPersonas lists the persona templates, oldest first.
	ListPersonas(ctx context.Context) ([]api.Block, error)
	// UpdateHuman sets the text of a human template.
	UpdateHuman(ctx context.Context, id, text string) (*api.Block, error)
	// UpdatePersona sets the text of a persona template.
	UpdatePersona(ctx context.Context, id, text string) (*api.Block, error)
	// DeleteHuman deletes a human template; other blocks are fault.NotFound.
	DeleteHuman(ctx context.Context, id string) error
	// DeletePersona deletes a persona template; other blocks are fault.NotFound.
	DeletePersona(ctx context.Context, id string) error

	// CreateBlock saves a block template with a label and a name, limited
	// to 2000 characters, as the seed's create_block does.
	CreateBlock(ctx context.Context, label, name, text string) (*api.Block, error)
	// GetBlock returns any block: a template or part of an agent's memory.
	GetBlock(ctx context.Context, id string) (*api.Block, error)
	// GetBlockID returns the id of the oldest template with the name and
	// label, or an error of kind fault.NotFound.
	GetBlockID(ctx context.Context, name, label string) (string, error)
	// ListBlocks lists blocks with the label ("" for any), only templates
	// if templatesOnly, oldest first.
	ListBlocks(ctx context.Context, label string, templatesOnly bool) ([]api.Block, error)
	// UpdateBlock sets a block's template name and/or text; nil leaves the
	// field as it is.
	UpdateBlock(ctx context.Context, id string, name, text *string) (*api.Block, error)
	// DeleteBlock deletes a block; agents holding it lose it.
	DeleteBlock(ctx context.Context, id string) error
	// AttachBlock adds a block to an agent's core memory. An agent holds at
	// most one block per label; a second is fault.Invalid.
	AttachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error)
	// DetachBlock removes a block from an agent's core memory.
	DetachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error)

	// CreateTool creates a tool from the Python source of one function; the
	// server derives its name and JSON schema. If a tool of that name exists
	// it is updated in place (keeping its id), unless opts.Update is false,
	// which makes that an error of kind fault.Invalid.
	CreateTool(ctx context.Context, sourceCode string, opts CreateToolOptions) (*api.Tool, error)
	// GetTool returns a tool.
	GetTool(ctx context.Context, id string) (*api.Tool, error)
	// GetToolID returns the id of the tool named name, or "" and no error
	// when there is none (the seed returns None).
	GetToolID(ctx context.Context, name string) (string, error)
	// ListTools lists every tool, base tools included, oldest first.
	ListTools(ctx context.Context) ([]api.Tool, error)
	// UpdateTool changes a tool; new source re-derives its name and schema.
	UpdateTool(ctx context.Context, id string, opts UpdateToolOptions) (*api.Tool, error)
	// DeleteTool deletes a tool; agents that had it lose it.
	DeleteTool(ctx context.Context, id string) error
	// AddToolToAgent gives an agent a tool. Adding a tool it has is no error.
	AddToolToAgent(ctx context.Context, agentID, toolID string) error
	// RemoveToolFromAgent takes a tool from an agent; a tool it does not
	// have is fault.NotFound.
	RemoveToolFromAgent(ctx context.Context, agentID, toolID string) error

	// CreateSource creates a data source. Names are unique: a taken name is
	// fault.Invalid.
	CreateSource(ctx context.Context, name string) (*api.Source, error)
	// GetSource returns a source.
	GetSource(ctx context.Context, id string) (*api.Source, error)
	// GetSourceID returns the id of the source named name, or an error of
	// kind fault.NotFound.
	GetSourceID(ctx context.Context, name string) (string, error)
	// ListSources lists every source, oldest first.
	ListSources(ctx context.Context) ([]api.Source, error)
	// UpdateSource renames a source.
	UpdateSource(ctx context.Context, id, name string) (*api.Source, error)
	// DeleteSource deletes a source and detaches it from every agent.
	DeleteSource(ctx context.Context, id string) error
	// AttachSourceToAgent makes a source's passages available to an agent.
	// Attaching an attached source is no error.
	AttachSourceToAgent(ctx context.Context, agentID, sourceID string) error
	// DetachSourceFromAgent undoes AttachSourceToAgent; a source that is not
	// attached is fault.NotFound.
	DetachSourceFromAgent(ctx context.Context, agentID, sourceID string) error
	// ListAttachedSources lists the sources attached to an agent, in the
	// order they were attached.
	ListAttachedSources(ctx context.Context, agentID string) ([]api.Source, error)

	// LoadFileToSource loads the file at filename (read on this machine)
	// into a source: plain text, Markdown, JSON, HTML or PDF, split into
	// passages. It returns the loading job; with blocking, once the job is
	// completed or failed. A file over the size limit is fault.TooLarge and
	// one of an unsupported type fault.Unsupported; neither changes anything.
	LoadFileToSource(ctx context.Context, filename, sourceID string, blocking bool) (*api.Job, error)
	// LoadData loads every document a connector yields (see
	// ingest.FileConnector and ingest.DirectoryConnector) into the source
	// named sourceName, and waits until they are loaded. Documents that
	// cannot be loaded are listed in the report with the reason; the others
	// load. progress, when not nil, is called as the work advances.
	LoadData(ctx context.Context, conn ingest.Connector, sourceName string, progress func(LoadProgress)) (*LoadReport, error)
	// ListFilesFromSource lists every file loaded into a source, oldest
	// first, with its processing status.
	ListFilesFromSource(ctx context.Context, sourceID string) ([]api.FileMetadata, error)
	// DeleteFileFromSource removes a file and its passages from a source.
	DeleteFileFromSource(ctx context.Context, sourceID, fileID string) error
	// SearchArchivalMemory ranks the passages an agent's archival search
	// sees: its own and those of its attached sources.
	SearchArchivalMemory(ctx context.Context, agentID string, q api.ArchivalQuery) (*api.ArchivalSearch, error)
	// ListSourcePassages lists every passage of a source, oldest first.
	ListSourcePassages(ctx context.Context, sourceID string) ([]api.Passage, error)

	// GetJob returns a job (such as loading a file into a source).
	GetJob(ctx context.Context, id string) (*api.Job, error)
	// ListJobs lists every job, oldest first.
	ListJobs(ctx context.Context) ([]api.Job, error)

	// ListModels lists the chat models the node offers.
	ListModels(ctx context.Context) ([]api.Model, error)
	// ListEmbeddingModels lists the embedding models the node offers.
	ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error)

	// Close releases the client: a local client stops its node, REST
	// closes idle connections. It is safe to call more than once; no other method may
	// be called after it.
	Close() error
}

// CreateAgentOptions are the parameters of the seed's create_agent. The zero
// value asks for every default.
type CreateAgentOptions struct {
	Name            string               // "" gives a random name
	EmbeddingConfig *api.EmbeddingConfig // nil: the server's default embedding model
	LLMConfig       *api.LLMConfig       // nil: the server's default chat model
	// Memory is the agent's core memory. nil means the seed's default,
	// ChatMemory(agents.DefaultPersona, agents.DefaultHuman); a non-nil empty
	// Memory gives an agent without core memory blocks.
	Memory           *Memory
	System           string   // "" gives engram's default system prompt
	Tools            []string // names of tools to attach, beside the base tools
	IncludeBaseTools *bool    // nil means true
	// Metadata is stored with the agent. nil means the seed's default,
	// {"human:": "basic", "persona": "sam_pov"} (its odd key included); a
	// non-nil empty map stores none.
	Metadata    map[string]any
	Description string
	// AgentType is the agent's loop: "" gives memgpt_agent, the seed's
	// (Letta 0.5's) loop; letta_v1_agent runs modern Letta's.
	AgentType string
	// Secrets are environment variables for this agent's Python tools
	// alone (Letta's secrets): stored sealed, shown masked.
	Secrets map[string]string
}

// defaultMetadata is the seed's create_agent default, typo included.
var defaultMetadata = map[string]any{"human:": "basic", "persona": "sam_pov"}

// request turns the options into the body of POST /v1/agents/.
func (o CreateAgentOptions) request() (api.CreateAgent, error) {
	var req api.CreateAgent
	if o.Name != "" {
		req.Name = &o.Name
	}
	if o.Description != "" {
		req.Description = &o.Description
	}
	if o.System != "" {
		req.System = &o.System
	}
	typ := cmp.Or(o.AgentType, "memgpt_agent")
	req.AgentType = &typ
	var err error
	if o.LLMConfig != nil {
		if req.LLMConfig, err = json.Marshal(o.LLMConfig); err != nil {
			return req, invalidf("llm_config: %v", err)
		}
	}
	if o.EmbeddingConfig != nil {
		if req.EmbeddingConfig, err = json.Marshal(o.EmbeddingConfig); err != nil {
			return req, invalidf("embedding_config: %v", err)
		}
	}
	mem := ChatMemory(agents.DefaultPersona, agents.DefaultHuman)
	if o.Memory != nil {
		mem = *o.Memory
	}
	req.MemoryBlocks = append([]api.CreateBlock{}, mem.Blocks...)
	req.Tools = o.Tools
	req.IncludeBaseTools = o.IncludeBaseTools
	req.Secrets = o.Secrets
	meta := o.Metadata
	if meta == nil {
		meta = defaultMetadata
	}
	if req.Metadata, err = json.Marshal(meta); err != nil {
		return req, invalidf("metadata: %v", err)
	}
	return req, nil
}

// TemplateLimit is the character limit of the blocks that ChatMemory,
// CreateHuman, CreatePersona and CreateBlock make: the seed's default.
const TemplateLimit = 2000

// Memory is the core memory an agent is created with: blocks, in order.
type Memory struct {
	Blocks []api.CreateBlock
}

// ChatMemory is the seed's ChatMemory: a "persona" block and then a "human"
// block, each limited to TemplateLimit characters.
func ChatMemory(persona, human string) Memory {
	return BasicBlockMemory(
		NewBlock("persona", persona, TemplateLimit),
		NewBlock("human", human, TemplateLimit),
	)
}

// BasicBlockMemory is core memory made of the given blocks, in order. Labels
// must be distinct.
func BasicBlockMemory(blocks ...api.CreateBlock) Memory {
	return Memory{Blocks: append([]api.CreateBlock{}, blocks...)}
}

// NewBlock describes a core memory block. A limit of 0 leaves the limit to
// the server (100,000 characters on engram).
func NewBlock(label, value string, limit int) api.CreateBlock {
	b := api.CreateBlock{Label: label, Value: value}
	if limit != 0 {
		b.Limit = &limit
	}
	return b
}

// CreateToolOptions are the optional parameters of the seed's create_tool.
type CreateToolOptions struct {
	// Name, when set, must equal the name of the function in the source.
	Name string
	// Update says what to do when a tool of that name exists: nil or true
	// updates it, false fails with fault.Invalid.
	Update *bool
	Tags   []string
	// TimeoutSeconds is engram's wall-clock limit per call (0 < t <= 3600);
	// 0 means the server's default, 30 s.
	TimeoutSeconds float64
}

// UpdateToolOptions are the parameters of the seed's update_tool. Zero
// fields leave the tool as it is.
type UpdateToolOptions struct {
	Name       string   // a new name; with SourceCode it must match the function
	SourceCode string   // new Python source; re-derives name and schema
	Tags       []string // nil leaves the tags; non-nil (even empty) replaces them
	// TimeoutSeconds, when set, is the new wall-clock limit per call; 0
	// restores the server's default.
	TimeoutSeconds *float64
}

// request turns the options into the body of PATCH /v1/tools/{id}.
func (o UpdateToolOptions) request() api.UpdateTool {
	var req api.UpdateTool
	if o.Name != "" {
		req.Name = &o.Name
	}
	if o.SourceCode != "" {
		req.SourceCode = &o.SourceCode
	}
	if o.Tags != nil {
		tags := append([]string{}, o.Tags...)
		req.Tags = &tags
	}
	if o.TimeoutSeconds != nil {
		t := *o.TimeoutSeconds
		req.TimeoutSeconds = &t
	}
	return req
}

// Option configures NewREST or FromBackend. An option that does not apply
// to the implementation being built is ignored.
type Option func(*options)

type options struct {
	httpClient *http.Client
	pageSize   int // for tests: items per request of a full listing
}

func collectOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithHTTPClient sets the HTTP client a REST client uses. The default is a
// client of its own with no timeout: each call is bounded by its context.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

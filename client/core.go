package client

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
)

// Backend is one way to reach a node: a server over HTTP (NewREST), or the
// service of a node in the process (package client/local, which implements
// it outside this package so that a REST-only program does not link the
// node). Its methods are the node's operations one to one (the REST
// routes); FromBackend builds the seed's methods from them, so every client
// shares each rule that is not the transport's.
//
// Errors carry the kinds of package fault, as Client's do. Methods other
// than Close must be safe for concurrent use.
type Backend interface {
	CreateAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error)
	GetAgent(ctx context.Context, id string) (api.AgentState, error)
	ListAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error)
	UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error)
	DeleteAgent(ctx context.Context, id string) error

	CoreMemory(ctx context.Context, agentID string) (api.Memory, error)
	UpdateCoreBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error)
	AttachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error)
	DetachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error)
	AttachTool(ctx context.Context, agentID, toolID string) error
	DetachTool(ctx context.Context, agentID, toolID string) error
	AttachSource(ctx context.Context, agentID, sourceID string) error
	DetachSource(ctx context.Context, agentID, sourceID string) error
	AgentSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error)

	InsertPassage(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error)
	ListPassages(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error)
	DeletePassage(ctx context.Context, agentID, passageID string) error
	ArchivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error)
	SearchPassages(ctx context.Context, agentID string, q api.ArchivalQuery) (api.ArchivalSearch, error)
	RecallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error)
	ListMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error)
	Send(ctx context.Context, agentID string, req api.SendMessage) (api.LettaResponse, error)
	// Stream sends as Send does and hands emit each message as it comes;
	// emit returns false to stop receiving.
	Stream(ctx context.Context, agentID string, req api.SendMessage, tokens bool, emit func(api.LettaMessage) bool) error
	ContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error)
	RunCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error)

	CreateBlock(ctx context.Context, req api.CreateBlock) (api.Block, error)
	GetBlock(ctx context.Context, id string) (api.Block, error)
	ListBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error)
	UpdateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error)
	DeleteBlock(ctx context.Context, id string) error

	// CreateTool creates a tool, or updates the tool of the same name when
	// upsert is set; without upsert an existing name is fault.Invalid.
	CreateTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error)
	GetTool(ctx context.Context, id string) (api.Tool, error)
	ListTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error)
	UpdateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error)
	DeleteTool(ctx context.Context, id string) error

	CreateSource(ctx context.Context, req api.CreateSource) (api.Source, error)
	GetSource(ctx context.Context, id string) (api.Source, error)
	ListSources(ctx context.Context, name string, p api.Page) ([]api.Source, error)
	UpdateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error)
	DeleteSource(ctx context.Context, id string) error

	GetJob(ctx context.Context, id string) (api.Job, error)
	// LoadFiles stores files in a source and starts loading them; it
	// answers the jobs it started (in process: one; REST: one per file) and the
	// files refused up front (too large, unsupported) that no job covers.
	LoadFiles(ctx context.Context, sourceID string, files []api.Upload) ([]api.Job, []api.Refusal, error)
	ListFiles(ctx context.Context, sourceID string, p api.Page) ([]api.FileMetadata, error)
	DeleteFile(ctx context.Context, sourceID, fileID string) error
	SourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error)
	ListJobs(ctx context.Context, p api.Page) ([]api.Job, error)

	ListModels(ctx context.Context) ([]api.Model, error)
	ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error)

	// Close releases the backend; it is safe to call more than once.
	Close() error
}

// core implements every Client method over a backend. REST embeds it, and
// FromBackend returns it.
type core struct {
	b        Backend
	pageSize int // items per request of a full listing; 0 means listPage
}

var _ Client = core{}

// FromBackend returns the Client that runs the seed's methods over b. Of the
// options none applies outside tests. Closing the client closes b.
func FromBackend(b Backend, opts ...Option) Client {
	return core{b: b, pageSize: collectOptions(opts).pageSize}
}

// Close closes the backend.
func (c core) Close() error { return c.b.Close() }

// Defaults of the seed's methods.
const (
	defaultArchivalLimit = 1000 // get_archival_memory(limit=1000)
	defaultMessageLimit  = 1000 // get_messages(limit=1000)
	// listPage is how many items each request of a full listing asks for.
	listPage = 1000
)

func invalidf(format string, args ...any) error { return fault.E(fault.Invalid, format, args...) }

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// one returns a pointer to a copy of v, or nil with err.
func one[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// collect fetches every item of a list, oldest first, size at a time. It
// stops at the first empty page, as Letta's SDKs do, so a server that caps
// the page size below what was asked for still yields everything.
func collect[T any](size int, id func(T) string, fetch func(p api.Page) ([]T, error)) ([]T, error) {
	if size <= 0 {
		size = listPage
	}
	all := []T{}
	seen := map[string]bool{}
	p := api.Page{Order: "asc", Limit: size}
	for {
		items, err := fetch(p)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return all, nil
		}
		for _, it := range items {
			if seen[id(it)] {
				return nil, fault.E(fault.Internal, "the list repeated item %s: the server ignored the after cursor", id(it))
			}
			seen[id(it)] = true
		}
		all = append(all, items...)
		p.After = id(items[len(items)-1])
	}
}

// first fetches the oldest item of a list, if there is one.
func first[T any](fetch func(p api.Page) ([]T, error)) (T, bool, error) {
	var zero T
	items, err := fetch(api.Page{Order: "asc", Limit: 1})
	if err != nil || len(items) == 0 {
		return zero, false, err
	}
	return items[0], true, nil
}

func agentID(a api.AgentState) string { return a.ID }
func blockID(b api.Block) string      { return b.ID }
func toolID(t api.Tool) string        { return t.ID }
func sourceID(s api.Source) string    { return s.ID }
func jobID(j api.Job) string          { return j.ID }

// Agents

func (c core) AgentExists(ctx context.Context, id string) (bool, error) {
	_, err := c.b.GetAgent(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case fault.Is(err, fault.NotFound), fault.Is(err, fault.Unprocessable):
		return false, nil
	}
	return false, err
}

func (c core) AgentExistsByName(ctx context.Context, name string) (bool, error) {
	_, ok, err := first(func(p api.Page) ([]api.AgentState, error) {
		return c.b.ListAgents(ctx, api.AgentFilter{Name: name}, p)
	})
	return ok, err
}

func (c core) CreateAgent(ctx context.Context, opts CreateAgentOptions) (*api.AgentState, error) {
	req, err := opts.request()
	if err != nil {
		return nil, err
	}
	return one(c.b.CreateAgent(ctx, req))
}

func (c core) GetAgent(ctx context.Context, id string) (*api.AgentState, error) {
	return one(c.b.GetAgent(ctx, id))
}

func (c core) GetAgentID(ctx context.Context, name string) (string, error) {
	a, ok, err := first(func(p api.Page) ([]api.AgentState, error) {
		return c.b.ListAgents(ctx, api.AgentFilter{Name: name}, p)
	})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.E(fault.NotFound, "Agent with name %q not found", name)
	}
	return a.ID, nil
}

func (c core) ListAgents(ctx context.Context) ([]api.AgentState, error) {
	return collect(c.pageSize, agentID, func(p api.Page) ([]api.AgentState, error) {
		return c.b.ListAgents(ctx, api.AgentFilter{}, p)
	})
}

func (c core) UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (*api.AgentState, error) {
	return one(c.b.UpdateAgent(ctx, id, req))
}

func (c core) RenameAgent(ctx context.Context, id, newName string) (*api.AgentState, error) {
	return one(c.b.UpdateAgent(ctx, id, api.UpdateAgent{Name: &newName}))
}

func (c core) DeleteAgent(ctx context.Context, id string) error { return c.b.DeleteAgent(ctx, id) }

// Memory

func (c core) GetInContextMemory(ctx context.Context, agentID string) (*api.Memory, error) {
	return one(c.b.CoreMemory(ctx, agentID))
}

func (c core) UpdateInContextMemory(ctx context.Context, agentID, section, value string) (*api.Memory, error) {
	if _, err := c.b.UpdateCoreBlock(ctx, agentID, section, api.UpdateBlock{Value: &value}); err != nil {
		return nil, err
	}
	return one(c.b.CoreMemory(ctx, agentID))
}

func (c core) GetArchivalMemory(ctx context.Context, agentID, before, after string, limit int) ([]api.Passage, error) {
	if limit == 0 {
		limit = defaultArchivalLimit
	}
	return c.b.ListPassages(ctx, agentID, api.Page{Before: before, After: after, Limit: limit, Order: "asc"})
}

func (c core) InsertArchivalMemory(ctx context.Context, agentID, text string) ([]api.Passage, error) {
	return c.b.InsertPassage(ctx, agentID, api.CreatePassage{Text: text})
}

func (c core) DeleteArchivalMemory(ctx context.Context, agentID, memoryID string) error {
	return c.b.DeletePassage(ctx, agentID, memoryID)
}

func (c core) GetArchivalMemorySummary(ctx context.Context, agentID string) (*api.ArchivalMemorySummary, error) {
	return one(c.b.ArchivalSummary(ctx, agentID))
}

func (c core) GetRecallMemorySummary(ctx context.Context, agentID string) (*api.RecallMemorySummary, error) {
	return one(c.b.RecallSummary(ctx, agentID))
}

func (c core) GetMessages(ctx context.Context, agentID, before, after string, limit int) ([]api.LettaMessage, error) {
	if limit == 0 {
		limit = defaultMessageLimit
	}
	if after != "" {
		return c.b.ListMessages(ctx, agentID, api.Page{Before: before, After: after, Limit: limit, Order: "asc"})
	}
	// The newest limit messages older than before: in newest-first order
	// they are the ones that come after it.
	ms, err := c.b.ListMessages(ctx, agentID, api.Page{After: before, Limit: limit, Order: "desc"})
	if err != nil {
		return nil, err
	}
	return chronological(ms), nil
}

// chronological reverses a newest-first message list, keeping the
// LettaMessages of one stored message (which share its id) in their order.
func chronological(ms []api.LettaMessage) []api.LettaMessage {
	out := make([]api.LettaMessage, 0, len(ms))
	for end := len(ms); end > 0; {
		start := end - 1
		for start > 0 && ms[start-1].ID == ms[end-1].ID {
			start--
		}
		out = append(out, ms[start:end]...)
		end = start
	}
	return out
}

// Human and persona templates

const (
	labelHuman   = "human"
	labelPersona = "persona"
)

func (c core) createTemplate(ctx context.Context, label, name, text string) (*api.Block, error) {
	return one(c.b.CreateBlock(ctx, api.CreateBlock{
		Label: label, Value: text, Limit: ptr(TemplateLimit), TemplateName: &name, IsTemplate: ptr(true),
	}))
}

// template returns the block with the id if it is a template of the label.
func (c core) template(ctx context.Context, label, id string) (api.Block, error) {
	b, err := c.b.GetBlock(ctx, id)
	if err != nil {
		return b, err
	}
	if !b.IsTemplate || b.Label != label {
		return api.Block{}, fault.E(fault.NotFound, "No %s template with id %s", label, id)
	}
	return b, nil
}

func (c core) templateID(ctx context.Context, label, name string) (string, error) {
	b, ok, err := first(func(p api.Page) ([]api.Block, error) {
		return c.b.ListBlocks(ctx, api.BlockFilter{Label: label, TemplatesOnly: true, Name: name}, p)
	})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.E(fault.NotFound, "No %s template named %q", label, name)
	}
	return b.ID, nil
}

func (c core) updateTemplate(ctx context.Context, label, id, text string) (*api.Block, error) {
	if _, err := c.template(ctx, label, id); err != nil {
		return nil, err
	}
	return one(c.b.UpdateBlock(ctx, id, api.UpdateBlock{Value: &text}))
}

func (c core) deleteTemplate(ctx context.Context, label, id string) error {
	if _, err := c.template(ctx, label, id); err != nil {
		return err
	}
	return c.b.DeleteBlock(ctx, id)
}

func (c core) CreateHuman(ctx context.Context, name, text string) (*api.Block, error) {
	return c.createTemplate(ctx, labelHuman, name, text)
}

func (c core) CreatePersona(ctx context.Context, name, text string) (*api.Block, error) {
	return c.createTemplate(ctx, labelPersona, name, text)
}

func (c core) GetHuman(ctx context.Context, id string) (*api.Block, error) {
	return one(c.template(ctx, labelHuman, id))
}

func (c core) GetPersona(ctx context.Context, id string) (*api.Block, error) {
	return one(c.template(ctx, labelPersona, id))
}

func (c core) GetHumanID(ctx context.Context, name string) (string, error) {
	return c.templateID(ctx, labelHuman, name)
}

func (c core) GetPersonaID(ctx context.Context, name string) (string, error) {
	return c.templateID(ctx, labelPersona, name)
}

func (c core) ListHumans(ctx context.Context) ([]api.Block, error) {
	return c.ListBlocks(ctx, labelHuman, true)
}

func (c core) ListPersonas(ctx context.Context) ([]api.Block, error) {
	return c.ListBlocks(ctx, labelPersona, true)
}

func (c core) UpdateHuman(ctx context.Context, id, text string) (*api.Block, error) {
	return c.updateTemplate(ctx, labelHuman, id, text)
}

func (c core) UpdatePersona(ctx context.Context, id, text string) (*api.Block, error) {
	return c.updateTemplate(ctx, labelPersona, id, text)
}

func (c core) DeleteHuman(ctx context.Context, id string) error {
	return c.deleteTemplate(ctx, labelHuman, id)
}

func (c core) DeletePersona(ctx context.Context, id string) error {
	return c.deleteTemplate(ctx, labelPersona, id)
}

// Blocks

func (c core) CreateBlock(ctx context.Context, label, name, text string) (*api.Block, error) {
	return c.createTemplate(ctx, label, name, text)
}

func (c core) GetBlock(ctx context.Context, id string) (*api.Block, error) {
	return one(c.b.GetBlock(ctx, id))
}

func (c core) GetBlockID(ctx context.Context, name, label string) (string, error) {
	return c.templateID(ctx, label, name)
}

func (c core) ListBlocks(ctx context.Context, label string, templatesOnly bool) ([]api.Block, error) {
	return collect(c.pageSize, blockID, func(p api.Page) ([]api.Block, error) {
		return c.b.ListBlocks(ctx, api.BlockFilter{Label: label, TemplatesOnly: templatesOnly}, p)
	})
}

func (c core) UpdateBlock(ctx context.Context, id string, name, text *string) (*api.Block, error) {
	return one(c.b.UpdateBlock(ctx, id, api.UpdateBlock{TemplateName: name, Value: text}))
}

func (c core) DeleteBlock(ctx context.Context, id string) error { return c.b.DeleteBlock(ctx, id) }

func (c core) AttachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error) {
	return one(c.b.AttachBlock(ctx, agentID, blockID))
}

func (c core) DetachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error) {
	return one(c.b.DetachBlock(ctx, agentID, blockID))
}

// Tools

func (c core) CreateTool(ctx context.Context, sourceCode string, opts CreateToolOptions) (*api.Tool, error) {
	req := api.CreateTool{SourceCode: sourceCode, Tags: opts.Tags}
	if opts.Name != "" {
		req.Name = &opts.Name
	}
	if opts.TimeoutSeconds != 0 {
		req.TimeoutSeconds = &opts.TimeoutSeconds
	}
	upsert := opts.Update == nil || *opts.Update
	return one(c.b.CreateTool(ctx, req, upsert))
}

func (c core) GetTool(ctx context.Context, id string) (*api.Tool, error) {
	return one(c.b.GetTool(ctx, id))
}

func (c core) GetToolID(ctx context.Context, name string) (string, error) {
	t, ok, err := first(func(p api.Page) ([]api.Tool, error) { return c.b.ListTools(ctx, name, p) })
	if err != nil || !ok {
		return "", err
	}
	return t.ID, nil
}

func (c core) ListTools(ctx context.Context) ([]api.Tool, error) {
	return collect(c.pageSize, toolID, func(p api.Page) ([]api.Tool, error) { return c.b.ListTools(ctx, "", p) })
}

func (c core) UpdateTool(ctx context.Context, id string, opts UpdateToolOptions) (*api.Tool, error) {
	return one(c.b.UpdateTool(ctx, id, opts.request()))
}

func (c core) DeleteTool(ctx context.Context, id string) error { return c.b.DeleteTool(ctx, id) }

func (c core) AddToolToAgent(ctx context.Context, agentID, toolID string) error {
	return c.b.AttachTool(ctx, agentID, toolID)
}

func (c core) RemoveToolFromAgent(ctx context.Context, agentID, toolID string) error {
	return c.b.DetachTool(ctx, agentID, toolID)
}

// Sources

func (c core) CreateSource(ctx context.Context, name string) (*api.Source, error) {
	return one(c.b.CreateSource(ctx, api.CreateSource{Name: name}))
}

func (c core) GetSource(ctx context.Context, id string) (*api.Source, error) {
	return one(c.b.GetSource(ctx, id))
}

func (c core) GetSourceID(ctx context.Context, name string) (string, error) {
	s, ok, err := first(func(p api.Page) ([]api.Source, error) { return c.b.ListSources(ctx, name, p) })
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.E(fault.NotFound, "Source with name %q not found", name)
	}
	return s.ID, nil
}

func (c core) ListSources(ctx context.Context) ([]api.Source, error) {
	return collect(c.pageSize, sourceID, func(p api.Page) ([]api.Source, error) { return c.b.ListSources(ctx, "", p) })
}

func (c core) UpdateSource(ctx context.Context, id, name string) (*api.Source, error) {
	return one(c.b.UpdateSource(ctx, id, api.UpdateSource{Name: &name}))
}

func (c core) DeleteSource(ctx context.Context, id string) error { return c.b.DeleteSource(ctx, id) }

func (c core) AttachSourceToAgent(ctx context.Context, agentID, sourceID string) error {
	return c.b.AttachSource(ctx, agentID, sourceID)
}

func (c core) DetachSourceFromAgent(ctx context.Context, agentID, sourceID string) error {
	return c.b.DetachSource(ctx, agentID, sourceID)
}

func (c core) ListAttachedSources(ctx context.Context, agentID string) ([]api.Source, error) {
	return collect(c.pageSize, func(s api.Source) string { return s.ID }, func(p api.Page) ([]api.Source, error) {
		return c.b.AgentSources(ctx, agentID, p)
	})
}

// Jobs and models

func (c core) GetJob(ctx context.Context, id string) (*api.Job, error) {
	return one(c.b.GetJob(ctx, id))
}

func (c core) ListJobs(ctx context.Context) ([]api.Job, error) {
	return collect(c.pageSize, jobID, func(p api.Page) ([]api.Job, error) { return c.b.ListJobs(ctx, p) })
}

func (c core) ListModels(ctx context.Context) ([]api.Model, error) { return c.b.ListModels(ctx) }

func (c core) ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error) {
	return c.b.ListEmbeddingModels(ctx)
}

// Running agents

func (c core) SendMessage(ctx context.Context, agentID, role, message string) (*api.LettaResponse, error) {
	content, _ := json.Marshal(message)
	return one(c.b.Send(ctx, agentID, api.SendMessage{Messages: []api.MessageCreate{{Role: role, Content: content}}}))
}

func (c core) SendMessageStream(ctx context.Context, agentID, role, message string, tokens bool) iter.Seq2[api.LettaMessage, error] {
	content, _ := json.Marshal(message)
	req := api.SendMessage{Messages: []api.MessageCreate{{Role: role, Content: content}}}
	return func(yield func(api.LettaMessage, error) bool) {
		stopped := false
		err := c.b.Stream(ctx, agentID, req, tokens, func(m api.LettaMessage) bool {
			if !yield(m, nil) {
				stopped = true
			}
			return !stopped
		})
		if err != nil && !stopped {
			yield(api.LettaMessage{}, err)
		}
	}
}

func (c core) UserMessage(ctx context.Context, agentID, message string) (*api.LettaResponse, error) {
	return c.SendMessage(ctx, agentID, "user", message)
}

func (c core) GetInContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error) {
	return c.b.ContextMessages(ctx, agentID)
}

func (c core) RunCommand(ctx context.Context, agentID, command string) (*api.LettaResponse, error) {
	return one(c.b.RunCommand(ctx, agentID, command))
}

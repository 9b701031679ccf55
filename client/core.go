package client

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// backend is one way to reach a node: the service in the process, or a
// server over HTTP. Its methods are the node's operations one to one (the
// REST routes); core builds the seed's methods from them, so both clients
// share every rule that is not the transport's.
type backend interface {
	createAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error)
	getAgent(ctx context.Context, id string) (api.AgentState, error)
	listAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error)
	updateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error)
	deleteAgent(ctx context.Context, id string) error

	coreMemory(ctx context.Context, agentID string) (api.Memory, error)
	updateCoreBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error)
	attachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error)
	detachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error)
	attachTool(ctx context.Context, agentID, toolID string) error
	detachTool(ctx context.Context, agentID, toolID string) error
	attachSource(ctx context.Context, agentID, sourceID string) error
	detachSource(ctx context.Context, agentID, sourceID string) error
	agentSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error)

	insertPassage(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error)
	listPassages(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error)
	deletePassage(ctx context.Context, agentID, passageID string) error
	archivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error)
	searchPassages(ctx context.Context, agentID string, q service.ArchivalQuery) (api.ArchivalSearch, error)
	recallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error)
	listMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error)
	send(ctx context.Context, agentID string, req api.SendMessage) (api.LettaResponse, error)
	// stream sends as send does and hands emit each message as it comes;
	// emit returns false to stop receiving.
	stream(ctx context.Context, agentID string, req api.SendMessage, tokens bool, emit func(api.LettaMessage) bool) error
	contextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error)
	runCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error)

	createBlock(ctx context.Context, req api.CreateBlock) (api.Block, error)
	getBlock(ctx context.Context, id string) (api.Block, error)
	listBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error)
	updateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error)
	deleteBlock(ctx context.Context, id string) error

	// createTool creates a tool, or updates the tool of the same name when
	// upsert is set; without upsert an existing name is fault.Invalid.
	createTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error)
	getTool(ctx context.Context, id string) (api.Tool, error)
	listTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error)
	updateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error)
	deleteTool(ctx context.Context, id string) error

	createSource(ctx context.Context, req api.CreateSource) (api.Source, error)
	getSource(ctx context.Context, id string) (api.Source, error)
	listSources(ctx context.Context, name string, p api.Page) ([]api.Source, error)
	updateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error)
	deleteSource(ctx context.Context, id string) error

	getJob(ctx context.Context, id string) (api.Job, error)
	// loadFiles stores files in a source and starts loading them; it
	// answers the jobs it started (Local: one; REST: one per file) and the
	// files refused up front (too large, unsupported) that no job covers.
	loadFiles(ctx context.Context, sourceID string, files []service.Upload) ([]api.Job, []service.Refusal, error)
	listFiles(ctx context.Context, sourceID string, p api.Page) ([]api.FileMetadata, error)
	deleteFile(ctx context.Context, sourceID, fileID string) error
	sourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error)
	listJobs(ctx context.Context, p api.Page) ([]api.Job, error)

	listModels(ctx context.Context) ([]api.Model, error)
	listEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error)
}

// core implements every Client method but Close over a backend. Local and
// REST embed it.
type core struct {
	b        backend
	pageSize int // items per request of a full listing; 0 means listPage
}

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
	_, err := c.b.getAgent(ctx, id)
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
		return c.b.listAgents(ctx, api.AgentFilter{Name: name}, p)
	})
	return ok, err
}

func (c core) CreateAgent(ctx context.Context, opts CreateAgentOptions) (*api.AgentState, error) {
	req, err := opts.request()
	if err != nil {
		return nil, err
	}
	return one(c.b.createAgent(ctx, req))
}

func (c core) GetAgent(ctx context.Context, id string) (*api.AgentState, error) {
	return one(c.b.getAgent(ctx, id))
}

func (c core) GetAgentID(ctx context.Context, name string) (string, error) {
	a, ok, err := first(func(p api.Page) ([]api.AgentState, error) {
		return c.b.listAgents(ctx, api.AgentFilter{Name: name}, p)
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
		return c.b.listAgents(ctx, api.AgentFilter{}, p)
	})
}

func (c core) UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (*api.AgentState, error) {
	return one(c.b.updateAgent(ctx, id, req))
}

func (c core) RenameAgent(ctx context.Context, id, newName string) (*api.AgentState, error) {
	return one(c.b.updateAgent(ctx, id, api.UpdateAgent{Name: &newName}))
}

func (c core) DeleteAgent(ctx context.Context, id string) error { return c.b.deleteAgent(ctx, id) }

// Memory

func (c core) GetInContextMemory(ctx context.Context, agentID string) (*api.Memory, error) {
	return one(c.b.coreMemory(ctx, agentID))
}

func (c core) UpdateInContextMemory(ctx context.Context, agentID, section, value string) (*api.Memory, error) {
	if _, err := c.b.updateCoreBlock(ctx, agentID, section, api.UpdateBlock{Value: &value}); err != nil {
		return nil, err
	}
	return one(c.b.coreMemory(ctx, agentID))
}

func (c core) GetArchivalMemory(ctx context.Context, agentID, before, after string, limit int) ([]api.Passage, error) {
	if limit == 0 {
		limit = defaultArchivalLimit
	}
	return c.b.listPassages(ctx, agentID, api.Page{Before: before, After: after, Limit: limit, Order: "asc"})
}

func (c core) InsertArchivalMemory(ctx context.Context, agentID, text string) ([]api.Passage, error) {
	return c.b.insertPassage(ctx, agentID, api.CreatePassage{Text: text})
}

func (c core) DeleteArchivalMemory(ctx context.Context, agentID, memoryID string) error {
	return c.b.deletePassage(ctx, agentID, memoryID)
}

func (c core) GetArchivalMemorySummary(ctx context.Context, agentID string) (*api.ArchivalMemorySummary, error) {
	return one(c.b.archivalSummary(ctx, agentID))
}

func (c core) GetRecallMemorySummary(ctx context.Context, agentID string) (*api.RecallMemorySummary, error) {
	return one(c.b.recallSummary(ctx, agentID))
}

func (c core) GetMessages(ctx context.Context, agentID, before, after string, limit int) ([]api.LettaMessage, error) {
	if limit == 0 {
		limit = defaultMessageLimit
	}
	if after != "" {
		return c.b.listMessages(ctx, agentID, api.Page{Before: before, After: after, Limit: limit, Order: "asc"})
	}
	// The newest limit messages older than before: in newest-first order
	// they are the ones that come after it.
	ms, err := c.b.listMessages(ctx, agentID, api.Page{After: before, Limit: limit, Order: "desc"})
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
	return one(c.b.createBlock(ctx, api.CreateBlock{
		Label: label, Value: text, Limit: ptr(TemplateLimit), TemplateName: &name, IsTemplate: ptr(true),
	}))
}

// template returns the block with the id if it is a template of the label.
func (c core) template(ctx context.Context, label, id string) (api.Block, error) {
	b, err := c.b.getBlock(ctx, id)
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
		return c.b.listBlocks(ctx, api.BlockFilter{Label: label, TemplatesOnly: true, Name: name}, p)
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
	return one(c.b.updateBlock(ctx, id, api.UpdateBlock{Value: &text}))
}

func (c core) deleteTemplate(ctx context.Context, label, id string) error {
	if _, err := c.template(ctx, label, id); err != nil {
		return err
	}
	return c.b.deleteBlock(ctx, id)
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
	return one(c.b.getBlock(ctx, id))
}

func (c core) GetBlockID(ctx context.Context, name, label string) (string, error) {
	return c.templateID(ctx, label, name)
}

func (c core) ListBlocks(ctx context.Context, label string, templatesOnly bool) ([]api.Block, error) {
	return collect(c.pageSize, blockID, func(p api.Page) ([]api.Block, error) {
		return c.b.listBlocks(ctx, api.BlockFilter{Label: label, TemplatesOnly: templatesOnly}, p)
	})
}

func (c core) UpdateBlock(ctx context.Context, id string, name, text *string) (*api.Block, error) {
	return one(c.b.updateBlock(ctx, id, api.UpdateBlock{TemplateName: name, Value: text}))
}

func (c core) DeleteBlock(ctx context.Context, id string) error { return c.b.deleteBlock(ctx, id) }

func (c core) AttachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error) {
	return one(c.b.attachBlock(ctx, agentID, blockID))
}

func (c core) DetachBlock(ctx context.Context, agentID, blockID string) (*api.AgentState, error) {
	return one(c.b.detachBlock(ctx, agentID, blockID))
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
	return one(c.b.createTool(ctx, req, upsert))
}

func (c core) GetTool(ctx context.Context, id string) (*api.Tool, error) {
	return one(c.b.getTool(ctx, id))
}

func (c core) GetToolID(ctx context.Context, name string) (string, error) {
	t, ok, err := first(func(p api.Page) ([]api.Tool, error) { return c.b.listTools(ctx, name, p) })
	if err != nil || !ok {
		return "", err
	}
	return t.ID, nil
}

func (c core) ListTools(ctx context.Context) ([]api.Tool, error) {
	return collect(c.pageSize, toolID, func(p api.Page) ([]api.Tool, error) { return c.b.listTools(ctx, "", p) })
}

func (c core) UpdateTool(ctx context.Context, id string, opts UpdateToolOptions) (*api.Tool, error) {
	return one(c.b.updateTool(ctx, id, opts.request()))
}

func (c core) DeleteTool(ctx context.Context, id string) error { return c.b.deleteTool(ctx, id) }

func (c core) AddToolToAgent(ctx context.Context, agentID, toolID string) error {
	return c.b.attachTool(ctx, agentID, toolID)
}

func (c core) RemoveToolFromAgent(ctx context.Context, agentID, toolID string) error {
	return c.b.detachTool(ctx, agentID, toolID)
}

// Sources

func (c core) CreateSource(ctx context.Context, name string) (*api.Source, error) {
	return one(c.b.createSource(ctx, api.CreateSource{Name: name}))
}

func (c core) GetSource(ctx context.Context, id string) (*api.Source, error) {
	return one(c.b.getSource(ctx, id))
}

func (c core) GetSourceID(ctx context.Context, name string) (string, error) {
	s, ok, err := first(func(p api.Page) ([]api.Source, error) { return c.b.listSources(ctx, name, p) })
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.E(fault.NotFound, "Source with name %q not found", name)
	}
	return s.ID, nil
}

func (c core) ListSources(ctx context.Context) ([]api.Source, error) {
	return collect(c.pageSize, sourceID, func(p api.Page) ([]api.Source, error) { return c.b.listSources(ctx, "", p) })
}

func (c core) UpdateSource(ctx context.Context, id, name string) (*api.Source, error) {
	return one(c.b.updateSource(ctx, id, api.UpdateSource{Name: &name}))
}

func (c core) DeleteSource(ctx context.Context, id string) error { return c.b.deleteSource(ctx, id) }

func (c core) AttachSourceToAgent(ctx context.Context, agentID, sourceID string) error {
	return c.b.attachSource(ctx, agentID, sourceID)
}

func (c core) DetachSourceFromAgent(ctx context.Context, agentID, sourceID string) error {
	return c.b.detachSource(ctx, agentID, sourceID)
}

func (c core) ListAttachedSources(ctx context.Context, agentID string) ([]api.Source, error) {
	return collect(c.pageSize, func(s api.Source) string { return s.ID }, func(p api.Page) ([]api.Source, error) {
		return c.b.agentSources(ctx, agentID, p)
	})
}

// Jobs and models

func (c core) GetJob(ctx context.Context, id string) (*api.Job, error) {
	return one(c.b.getJob(ctx, id))
}

func (c core) ListJobs(ctx context.Context) ([]api.Job, error) {
	return collect(c.pageSize, jobID, func(p api.Page) ([]api.Job, error) { return c.b.listJobs(ctx, p) })
}

func (c core) ListModels(ctx context.Context) ([]api.Model, error) { return c.b.listModels(ctx) }

func (c core) ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error) {
	return c.b.listEmbeddingModels(ctx)
}

// Running agents

func (c core) SendMessage(ctx context.Context, agentID, role, message string) (*api.LettaResponse, error) {
	content, _ := json.Marshal(message)
	return one(c.b.send(ctx, agentID, api.SendMessage{Messages: []api.MessageCreate{{Role: role, Content: content}}}))
}

func (c core) SendMessageStream(ctx context.Context, agentID, role, message string, tokens bool) iter.Seq2[api.LettaMessage, error] {
	content, _ := json.Marshal(message)
	req := api.SendMessage{Messages: []api.MessageCreate{{Role: role, Content: content}}}
	return func(yield func(api.LettaMessage, error) bool) {
		stopped := false
		err := c.b.stream(ctx, agentID, req, tokens, func(m api.LettaMessage) bool {
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
	return c.b.contextMessages(ctx, agentID)
}

func (c core) RunCommand(ctx context.Context, agentID, command string) (*api.LettaResponse, error) {
	return one(c.b.runCommand(ctx, agentID, command))
}

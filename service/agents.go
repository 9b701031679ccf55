package service

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

func agentAgg(id string) events.Aggregate { return events.Aggregate{Kind: events.KindAgent, ID: id} }
func blockAgg(id string) events.Aggregate { return events.Aggregate{Kind: events.KindBlock, ID: id} }

// DefaultAgentType is the agent type of agents created without one, as
// Letta 0.16.8 chooses it: the modern loop. The Letta 0.5 surfaces and the
// Go client ask for memgpt_agent.
const DefaultAgentType = agents.LoopV1

func (s *Service) agentNotFound(id string) error { return notFound("Agent with ID %s not found", id) }

// lookupAgent finds a live agent; the id must be well formed.
func (s *Service) lookupAgent(st *projections.State, id string) (*projections.Agent, error) {
	if err := events.CheckID(events.PrefixAgent, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	a := st.Agents[events.AgentID(id)]
	if a == nil {
		return nil, s.agentNotFound(id)
	}
	return a, nil
}

// resolveModel turns a handle or an llm_config into the stored config.
func (s *Service) resolveModel(handle *string, raw json.RawMessage) (json.RawMessage, error) {
	if handle != nil && *handle != "" {
		if !strings.Contains(*handle, "/") {
			return nil, invalid("The model handle should be in the format provider/model-name, not %q", *handle)
		}
		for _, h := range []string{*handle, openAIProxyAlias(*handle)} {
			for _, m := range s.cfg.Models {
				if h != "" && m.Handle != nil && *m.Handle == h {
					return json.Marshal(m.LLMConfig)
				}
			}
		}
		return nil, notFound("Model %q is not configured on this server (see GET /v1/models/)", *handle)
	}
	return llmFrom(raw)
}

// openAIProxyAlias is the engram handle of a handle Letta gives a model
// behind an OpenAI-compatible base URL other than OpenAI's
// ("openai-proxy/<name>" names engram's "openai/<name>"); "" for others.
func openAIProxyAlias(handle string) string {
	if name, ok := strings.CutPrefix(handle, "openai-proxy/"); ok && name != "" {
		return "openai/" + name
	}
	return ""
}

func (s *Service) defaultModel() json.RawMessage {
	for _, m := range s.cfg.Models {
		if s.cfg.DefaultModel == "" || (m.Handle != nil && *m.Handle == s.cfg.DefaultModel) {
			b, _ := json.Marshal(m.LLMConfig)
			return b
		}
	}
	return nil
}

func (s *Service) resolveEmbedding(handle *string, raw json.RawMessage) (json.RawMessage, error) {
	if handle != nil && *handle != "" {
		for _, m := range s.cfg.EmbeddingModels {
			if m.Handle != nil && *m.Handle == *handle {
				return json.Marshal(m.EmbeddingConfig)
			}
		}
		return nil, notFound("Embedding model %q is not configured on this server (see GET /v1/models/embedding)", *handle)
	}
	return embeddingFrom(raw)
}

func (s *Service) defaultEmbedding() json.RawMessage {
	for _, m := range s.cfg.EmbeddingModels {
		if s.cfg.DefaultEmbed == "" || (m.Handle != nil && *m.Handle == s.cfg.DefaultEmbed) {
			b, _ := json.Marshal(m.EmbeddingConfig)
			return b
		}
	}
	return nil
}

// newBlocks validates the blocks an agent is created with, each with a new
// id; labels holds the labels the agent has already, and gains theirs.
func newBlocks(c *command, reqs []api.CreateBlock, labels map[string]bool) ([]*events.BlockCreated, error) {
	var out []*events.BlockCreated
	for _, b := range reqs {
		bc, err := newBlock(c.newID(events.PrefixBlock), b)
		if err != nil {
			return nil, err
		}
		if labels[bc.Label] {
			return nil, invalid("two memory blocks have the label %q", bc.Label)
		}
		labels[bc.Label] = true
		out = append(out, bc)
	}
	return out, nil
}

// addAgent decides a new agent and its new blocks, each expected not to
// exist yet.
func addAgent(st *projections.State, d *decision, c *command, e *events.AgentCreated, blocks []*events.BlockCreated) {
	e.OrganizationID = c.org
	for _, bc := range blocks {
		bc.OrganizationID = c.org
	}
	d.expectAt(st, agentAgg(string(e.ID)))
	d.add(c, agentAgg(string(e.ID)), e)
	for _, bc := range blocks {
		d.expectAt(st, blockAgg(string(bc.ID)))
		d.add(c, blockAgg(string(bc.ID)), bc)
		// The block's id is the command's own (newBlocks: c.newID), so its
		// creation may be stored in the agent's message.
		d.fresh = append(d.fresh, blockAgg(string(bc.ID)))
	}
}

// newBlock validates a block the client wants created.
func newBlock(id string, b api.CreateBlock) (*events.BlockCreated, error) {
	if err := checkLabel(b.Label); err != nil {
		return nil, err
	}
	limit := DefaultLimit
	if b.Limit != nil {
		limit = *b.Limit
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if err := checkValue(b.Label, b.Value, limit); err != nil {
		return nil, err
	}
	name := ""
	for _, n := range []*string{b.TemplateName, b.Name} {
		if n != nil && *n != "" {
			name = *n
			break
		}
	}
	if name != "" {
		if err := checkName("block template", name); err != nil {
			return nil, err
		}
	}
	meta, err := firstObject("metadata", b.Metadata, b.OldMetadata)
	if err != nil {
		return nil, err
	}
	if err := checkTags(b.Tags); err != nil {
		return nil, err
	}
	desc := ""
	if b.Description != nil {
		desc = *b.Description
		if err := checkText("description", desc, MaxDescLen); err != nil {
			return nil, err
		}
	}
	tmpl := false
	for _, t := range []*bool{b.IsTemplate, b.Template} {
		if t != nil {
			tmpl = tmpl || *t
		}
	}
	return &events.BlockCreated{
		ID: events.BlockID(id), Label: b.Label, Value: b.Value, Limit: limit, Name: name, IsTemplate: tmpl,
		ReadOnly: b.ReadOnly != nil && *b.ReadOnly, Description: desc, Metadata: meta, Tags: b.Tags,
	}, nil
}

// toolsByName resolves the tool names of a new agent, refusing unknown ones
// all at once as Letta does (400 "Tools not found by name: {...}", which
// Letta Code recognises), the names in the order given.
func toolsByName(st *projections.State, org string, names []string) ([]events.ToolID, error) {
	var (
		out     []events.ToolID
		missing []string
	)
	for _, n := range dedupe(names) {
		if t := toolNamed(st, org, n); t != nil {
			out = append(out, t.ID)
		} else {
			missing = append(missing, "'"+strings.ReplaceAll(n, "'", `\'`)+"'")
		}
	}
	if len(missing) > 0 {
		return nil, invalid("Tools not found by name: {%s}", strings.Join(missing, ", "))
	}
	return out, nil
}

// toolIDsByName resolves tool names to ids.
func toolIDsByName(st *projections.State, org string, names []string) ([]events.ToolID, error) {
	var out []events.ToolID
	for _, n := range names {
		t := toolNamed(st, org, n)
		if t == nil {
			return nil, notFound("Tool with name %q not found", n)
		}
		out = append(out, t.ID)
	}
	return out, nil
}

// toolNamed finds the tool org sees by a name: its own oldest of that name,
// else a shared base tool of that name.
func toolNamed(st *projections.State, org, name string) *projections.Tool {
	var best, shared *projections.Tool
	for _, t := range st.Tools {
		if t.Name != name {
			continue
		}
		if t.Org == org && (best == nil || t.Created < best.Created) {
			best = t
		}
		if sharedTool(t) && (shared == nil || t.Created < shared.Created) {
			shared = t
		}
	}
	if best == nil {
		return shared
	}
	return best
}

func checkToolIDs(st *projections.State, org string, ids []string) ([]events.ToolID, error) {
	if err := checkIDs(events.PrefixTool, ids); err != nil {
		return nil, err
	}
	out := make([]events.ToolID, 0, len(ids))
	for _, id := range ids {
		if t := st.Tools[events.ToolID(id)]; t == nil || !toolVisible(org, t) {
			return nil, notFound("Tool with id %s not found.", id)
		}
		out = append(out, events.ToolID(id))
	}
	return out, nil
}

func checkSourceIDs(st *projections.State, org string, ids []string) ([]events.SourceID, error) {
	if err := checkIDs(events.PrefixSource, ids); err != nil {
		return nil, err
	}
	out := make([]events.SourceID, 0, len(ids))
	for _, id := range ids {
		if src := st.Sources[events.SourceID(id)]; src == nil || src.Org != org {
			return nil, notFound("Source with id %s not found", id)
		}
		out = append(out, events.SourceID(id))
	}
	return out, nil
}

// CreateAgent creates an agent with its core memory blocks.
func (s *Service) CreateAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error) {
	c := s.command(ctx, "create_agent", "")
	agentID := c.idAt(events.PrefixAgent, 1) // what decide's first newID returns (keyed commands)
	err := s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		agentID = c.newID(events.PrefixAgent)
		name := ""
		if req.Name != nil {
			name = *req.Name
		} else {
			name = randomName(agentID)
		}
		if err := checkAgentName(name); err != nil {
			return err
		}
		e := &events.AgentCreated{ID: events.AgentID(agentID), Name: name, System: agents.DefaultSystemPrompt, AgentType: DefaultAgentType}
		if req.Description != nil {
			if err := checkText("description", *req.Description, MaxDescLen); err != nil {
				return err
			}
			e.Description = *req.Description
		}
		if req.System != nil && *req.System != "" {
			if err := checkText("system", *req.System, MaxSystemLen); err != nil {
				return err
			}
			e.System = *req.System
		}
		if req.AgentType != nil && *req.AgentType != "" {
			if !slices.Contains(AgentTypes, *req.AgentType) {
				return unprocessable("agent_type must be one of %s, not %q", strings.Join(AgentTypes, ", "), *req.AgentType)
			}
			e.AgentType = *req.AgentType
		}
		if (req.System == nil || *req.System == "") && e.AgentType == agents.LoopV1 {
			e.System = agents.DefaultSystemPromptV1
		}
		var err error
		if e.LLMConfig, err = s.resolveModel(req.Model, req.LLMConfig); err != nil {
			return err
		}
		if e.LLMConfig == nil {
			e.LLMConfig = s.defaultModel()
		}
		if e.LLMConfig, err = configureModel(e.LLMConfig, req.ModelSettings, req.ContextWindowLimit, req.MaxTokens, req.ParallelToolCalls); err != nil {
			return err
		}
		if e.AgentType == agents.LoopV1 && e.LLMConfig != nil {
			// The modern loop never asks for thoughts in the call, and says so
			// in the config, as Letta does.
			cfg := llmConfig(e.LLMConfig)
			no := false
			cfg.PutInnerThoughtsInKwargs = &no
			e.LLMConfig, _ = json.Marshal(cfg)
		}
		if e.CompactionSettings, err = object("compaction_settings", req.CompactionSettings); err != nil {
			return err
		}
		bootless := false
		if seq := bytes.TrimSpace(req.InitialMessageSequence); len(seq) > 0 && !bytes.Equal(seq, []byte("null")) {
			var msgs []json.RawMessage
			if json.Unmarshal(seq, &msgs) != nil {
				return unprocessable("initial_message_sequence must be a list of messages")
			}
			if len(msgs) > 0 {
				return invalid("initial_message_sequence with messages is not supported by engram; send [] for an agent that starts with its system message alone, or leave it out")
			}
			bootless = true
		}
		if e.AgentType == agents.LoopV1 {
			bootless = true // Letta's default for letta_v1_agent: no boot or login messages
		}
		if e.EmbeddingConfig, err = s.resolveEmbedding(req.Embedding, req.EmbeddingConfig); err != nil {
			return err
		}
		if e.EmbeddingConfig == nil {
			e.EmbeddingConfig = s.defaultEmbedding()
		}
		if e.Metadata, err = firstObject("metadata", req.Metadata, req.OldMetadata); err != nil {
			return err
		}
		if err := checkTags(req.Tags); err != nil {
			return err
		}
		e.Tags = dedupe(req.Tags)
		if len(req.ToolRules) > 0 && string(req.ToolRules) != "null" {
			if e.ToolRules, err = checkToolRules(req.ToolRules); err != nil {
				return err
			}
		}

		// Core memory: new blocks, then existing ones by id.
		blocks := req.MemoryBlocks
		if req.Memory != nil {
			labels := make([]string, 0, len(req.Memory.Memory))
			for l := range req.Memory.Memory {
				labels = append(labels, l)
			}
			slices.Sort(labels) // the 0.5 dict has no order; persona before human is conventional
			slices.SortStableFunc(labels, func(a, b string) int { return memoryRank(a) - memoryRank(b) })
			for _, l := range labels {
				b := req.Memory.Memory[l]
				if b.Label == "" {
					b.Label = l
				}
				blocks = append(blocks, b)
			}
		}
		labels := map[string]bool{}
		created, err := newBlocks(c, blocks, labels)
		if err != nil {
			return err
		}
		for _, bc := range created {
			e.BlockIDs = append(e.BlockIDs, bc.ID)
		}
		if err := checkIDs(events.PrefixBlock, req.BlockIDs); err != nil {
			return err
		}
		for _, id := range dedupe(req.BlockIDs) {
			b := st.Blocks[events.BlockID(id)]
			if b == nil || b.Org != c.org {
				return notFound("Block with id %s not found", id)
			}
			if labels[b.Label] {
				return invalid("two memory blocks have the label %q", b.Label)
			}
			labels[b.Label] = true
			e.BlockIDs = append(e.BlockIDs, b.ID)
		}

		// Tools: by id, by name, and the base tools.
		ids, err := checkToolIDs(st, c.org, req.ToolIDs)
		if err != nil {
			return err
		}
		named, err := toolsByName(st, c.org, req.Tools)
		if err != nil {
			return err
		}
		ids = append(ids, named...)
		if req.IncludeBaseTools == nil || *req.IncludeBaseTools {
			for _, name := range baseToolsOf(e.AgentType) {
				if t := toolNamed(st, c.org, name); t != nil {
					ids = append(ids, t.ID)
				}
			}
		}
		e.ToolIDs = dedupe(ids)
		e.ToolRules = withApprovalRules(st, e.ToolRules, e.ToolIDs)
		srcs, err := checkSourceIDs(st, c.org, append(slices.Clone(req.SourceIDs), req.FolderIDs...))
		if err != nil {
			return err
		}
		e.SourceIDs = dedupe(srcs)

		addAgent(st, d, c, e, created)
		if vars := mergeSecrets(req.ToolExecEnvironmentVariables, req.Secrets); len(vars) > 0 {
			set, err := s.sealSecrets(string(e.ID), vars)
			if err != nil {
				return err
			}
			d.add(c, agentAgg(string(e.ID)), set)
		}
		var mem []agents.Block
		for _, id := range e.BlockIDs {
			for _, bc := range created {
				if bc.ID == id {
					mem = append(mem, agents.Block{ID: string(id), Label: bc.Label, Value: bc.Value, Limit: bc.Limit})
				}
			}
			if b := st.Blocks[id]; b != nil {
				mem = append(mem, agents.Block{ID: string(id), Label: b.Label, Value: b.Value, Limit: b.Limit})
			}
		}
		boot := initialMessages(e.System, mem, c)
		if bootless {
			boot = boot[:1] // the system message alone
		}
		for _, m := range boot {
			m.ID = events.MessageID(c.newID(events.PrefixMessage))
			d.add(c, agentAgg(agentID), m)
		}
		return nil
	})
	if err != nil {
		return api.AgentState{}, err
	}
	return s.GetAgent(ctx, agentID)
}

// initialMessages is a new agent's first context, as Letta starts one: the
// system message, a boot exchange that shows the model how send_message
// works, and the user's first login.
func initialMessages(system string, blocks []agents.Block, c *command) []*events.MessageAppended {
	callID := "call_" + strings.ToLower(strings.TrimPrefix(c.newID("x"), "x-"))[:24]
	return []*events.MessageAppended{
		{Role: "system", Text: agents.CompileSystem(system, blocks, 4, 0, c.now)},
		{Role: "assistant", Text: "Bootup sequence complete. Persona activated. Testing messaging functionality.",
			ToolCalls: []events.ToolCall{{ID: callID, Name: agents.ToolSendMessage, Arguments: `{"message":"More human than human is our motto."}`}}},
		{Role: "tool", Name: agents.ToolSendMessage, ToolCallID: callID, Text: agents.FunctionResponse(true, "None", c.now)},
		{Role: "user", Kind: events.InputLogin, Text: agents.FirstLogin},
	}
}

func memoryRank(label string) int {
	switch label {
	case "persona":
		return 0
	case "human":
		return 1
	}
	return 2
}

var (
	adjectives = []string{"Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Jolly", "Kind", "Lively", "Nimble", "Quiet", "Swift", "Witty", "Bold", "Bright"}
	nouns      = []string{"Otter", "Falcon", "Maple", "Comet", "Harbor", "Lynx", "Meadow", "Pebble", "Raven", "Willow", "Badger", "Cedar", "Heron", "Quartz", "Tiger", "Violet"}
)

// randomName gives an agent created without a name an AdjectiveNoun name,
// chosen from its id so that replays and retries agree.
func randomName(id string) string {
	var h uint32
	for i := 0; i < len(id); i++ {
		h = h*31 + uint32(id[i])
	}
	return adjectives[h%uint32(len(adjectives))] + nouns[(h/16)%uint32(len(nouns))]
}

// GetAgent returns an agent with its blocks, tools and sources.
func (s *Service) GetAgent(ctx context.Context, id string) (api.AgentState, error) {
	var (
		out api.AgentState
		err error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, id); err == nil {
			out = agentView(st, a)
		}
	})
	return out, err
}

// GetAgentByName returns the oldest agent with the given name.
func (s *Service) GetAgentByName(ctx context.Context, name string) (api.AgentState, error) {
	var (
		out   api.AgentState
		found bool
	)
	s.read(func(st *projections.State) {
		var best *projections.Agent
		org := orgOf(ctx)
		for _, a := range st.Agents {
			if a.Name == name && a.Org == org && (best == nil || a.Created < best.Created) {
				best = a
			}
		}
		if best != nil {
			out, found = agentView(st, best), true
		}
	})
	if !found {
		return out, notFound("Agent with name %q not found", name)
	}
	return out, nil
}

// ListAgents lists agents, newest first unless the page says otherwise.
func (s *Service) ListAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error) {
	var (
		out []api.AgentState
		err error
	)
	s.read(func(st *projections.State) {
		org := orgOf(ctx)
		if f.BlockID != "" {
			var b *projections.Block
			if b, err = lookupBlock(st, f.BlockID); err == nil && b.Org != org {
				err = notFound("Block with id %s not found", f.BlockID)
			}
			if err != nil {
				return
			}
		}
		if f.SourceID != "" {
			var src *projections.Source
			if src, err = lookupSource(st, f.SourceID); err == nil && src.Org != org {
				err = notFound("Source with id %s not found", f.SourceID)
			}
			if err != nil {
				return
			}
		}
		list := make([]*projections.Agent, 0, len(st.Agents))
		for _, a := range st.Agents {
			if a.Org != org || f.Name != "" && a.Name != f.Name {
				continue
			}
			if f.BlockID != "" && !slices.Contains(a.BlockIDs, events.BlockID(f.BlockID)) {
				continue
			}
			if f.SourceID != "" && !slices.Contains(a.SourceIDs, events.SourceID(f.SourceID)) {
				continue
			}
			if f.QueryText != "" && !strings.Contains(strings.ToLower(a.Name), strings.ToLower(f.QueryText)) {
				continue
			}
			if len(f.Tags) > 0 && !tagsMatch(a.Tags, f.Tags, f.MatchAllTag) {
				continue
			}
			list = append(list, a)
		}
		slices.SortFunc(list, func(x, y *projections.Agent) int { return int(x.Created) - int(y.Created) })
		list, err = page(list, func(a *projections.Agent) string { return string(a.ID) }, p, "desc", 50, "Agent")
		if err != nil {
			return
		}
		out = make([]api.AgentState, len(list))
		for i, a := range list {
			out[i] = agentView(st, a)
		}
	})
	return out, err
}

func tagsMatch(have, want []string, all bool) bool {
	for _, w := range want {
		ok := slices.Contains(have, w)
		if all && !ok {
			return false
		}
		if !all && ok {
			return true
		}
	}
	return all
}

// UpdateAgent changes the fields the request sets.
func (s *Service) UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error) {
	c := s.command(ctx, "update_agent", id)
	err := s.exec(ctx, c, agentAgg(id), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, id)
		if err != nil {
			return err
		}
		e := &events.AgentUpdated{}
		if req.Name != nil {
			if err := checkAgentName(*req.Name); err != nil {
				return err
			}
			e.Name = req.Name
		}
		if req.Description != nil {
			if err := checkText("description", *req.Description, MaxDescLen); err != nil {
				return err
			}
			e.Description = req.Description
		}
		if req.System != nil {
			if err := checkText("system", *req.System, MaxSystemLen); err != nil {
				return err
			}
			e.System = req.System
		}
		if e.LLMConfig, err = s.resolveModel(req.Model, req.LLMConfig); err != nil {
			return err
		}
		base := cmp.Or(string(e.LLMConfig), string(a.LLMConfig))
		if cfg, err := configureModel(json.RawMessage(base), req.ModelSettings, req.ContextWindowLimit, req.MaxTokens, req.ParallelToolCalls); err != nil {
			return err
		} else if string(cfg) != base {
			e.LLMConfig = cfg
		}
		if e.CompactionSettings, err = object("compaction_settings", req.CompactionSettings); err != nil {
			return err
		}
		if e.EmbeddingConfig, err = s.resolveEmbedding(req.Embedding, req.EmbeddingConfig); err != nil {
			return err
		}
		if e.Metadata, err = firstObject("metadata", req.Metadata, req.OldMetadata); err != nil {
			return err
		}
		if req.Tags != nil {
			if err := checkTags(*req.Tags); err != nil {
				return err
			}
			tags := dedupe(*req.Tags)
			e.Tags = &tags
		}
		if req.ToolIDs != nil || req.Tools != nil {
			var ids []events.ToolID
			if req.ToolIDs != nil {
				if ids, err = checkToolIDs(st, c.org, *req.ToolIDs); err != nil {
					return err
				}
			}
			if req.Tools != nil {
				named, err := toolIDsByName(st, c.org, *req.Tools)
				if err != nil {
					return err
				}
				ids = append(ids, named...)
			}
			ids = dedupe(ids)
			e.ToolIDs = &ids
		}
		if req.SourceIDs != nil || req.FolderIDs != nil {
			var all []string
			for _, l := range []*[]string{req.SourceIDs, req.FolderIDs} {
				if l != nil {
					all = append(all, *l...)
				}
			}
			ids, err := checkSourceIDs(st, c.org, all)
			if err != nil {
				return err
			}
			ids = dedupe(ids)
			e.SourceIDs = &ids
		}
		if req.MessageIDs != nil {
			if err := checkIDs(events.PrefixMessage, *req.MessageIDs); err != nil {
				return err
			}
			ids := make([]events.MessageID, 0, len(*req.MessageIDs))
			for _, m := range *req.MessageIDs {
				if !slices.ContainsFunc(a.Messages, func(r projections.Ref) bool { return r.ID == m }) {
					return notFound("Message with id %s not found for agent %s", m, id)
				}
				ids = append(ids, events.MessageID(m))
			}
			e.MessageIDs = &ids
		}
		if len(req.ToolRules) > 0 && string(req.ToolRules) != "null" {
			if e.ToolRules, err = checkToolRules(req.ToolRules); err != nil {
				return err
			}
		}
		d.expectAt(st, agentAgg(id))
		d.add(c, agentAgg(id), e)
		if vars := mergeSecrets(req.ToolExecEnvironmentVariables, req.Secrets); vars != nil {
			set, err := s.sealSecrets(id, vars)
			if err != nil {
				return err
			}
			d.add(c, agentAgg(id), set)
		}
		if req.BlockIDs != nil {
			if err := s.replaceBlocks(st, c, d, a, *req.BlockIDs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return api.AgentState{}, err
	}
	return s.GetAgent(ctx, id)
}

// replaceBlocks turns a new block_ids list into attach and detach events.
func (s *Service) replaceBlocks(st *projections.State, c *command, d *decision, a *projections.Agent, ids []string) error {
	if err := checkIDs(events.PrefixBlock, ids); err != nil {
		return err
	}
	want := make([]events.BlockID, 0, len(ids))
	labels := map[string]bool{}
	for _, id := range dedupe(ids) {
		b := st.Blocks[events.BlockID(id)]
		if b == nil || b.Org != c.org {
			return notFound("Block with id %s not found", id)
		}
		if labels[b.Label] {
			return invalid("two memory blocks have the label %q", b.Label)
		}
		labels[b.Label] = true
		want = append(want, b.ID)
	}
	for _, id := range a.BlockIDs {
		if !slices.Contains(want, id) {
			d.add(c, agentAgg(string(a.ID)), &events.CoreBlockDetached{BlockID: id})
		}
	}
	for _, id := range want {
		if !slices.Contains(a.BlockIDs, id) {
			d.add(c, agentAgg(string(a.ID)), &events.CoreBlockAttached{BlockID: id})
		}
	}
	return nil
}

// RenameAgent sets an agent's name.
func (s *Service) RenameAgent(ctx context.Context, id, name string) (api.AgentState, error) {
	return s.UpdateAgent(ctx, id, api.UpdateAgent{Name: &name})
}

// DeleteAgent deletes an agent. Its history stays in the log.
func (s *Service) DeleteAgent(ctx context.Context, id string) error {
	c := s.command(ctx, "delete_agent", id)
	return s.exec(ctx, c, agentAgg(id), func(st *projections.State, d *decision) error {
		if _, err := s.lookupAgent(st, id); err != nil {
			return err
		}
		d.expectAt(st, agentAgg(id))
		d.add(c, agentAgg(id), &events.AgentDeleted{})
		return nil
	})
}

// agentOp is the shape of the attach/detach commands on an agent.
func (s *Service) agentOp(ctx context.Context, op, agentID, target string, decide func(st *projections.State, a *projections.Agent) (events.Event, error)) (api.AgentState, error) {
	c := s.command(ctx, op, agentID+"/"+target)
	err := s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		if a.Org != c.org {
			return s.agentNotFound(agentID)
		}
		ev, err := decide(st, a)
		if err != nil || ev == nil {
			if err == nil {
				return errNothing
			}
			return err
		}
		d.expectAt(st, agentAgg(agentID))
		d.add(c, agentAgg(agentID), ev)
		return nil
	})
	if err != nil {
		return api.AgentState{}, err
	}
	return s.GetAgent(ctx, agentID)
}

// AttachBlock adds an existing block to an agent's core memory. An agent
// holds at most one block per label.
func (s *Service) AttachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return s.agentOp(ctx, "attach_block", agentID, blockID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		b, err := lookupBlock(st, blockID)
		if err != nil {
			return nil, err
		}
		if b.Org != a.Org {
			return nil, notFound("Block with id %s not found", blockID)
		}
		if slices.Contains(a.BlockIDs, b.ID) {
			return nil, nil
		}
		for _, id := range a.BlockIDs {
			if other := st.Blocks[id]; other != nil && other.Label == b.Label {
				return nil, invalid("agent %s already has a block labelled %q (%s); detach it first", agentID, b.Label, id)
			}
		}
		return &events.CoreBlockAttached{BlockID: b.ID}, nil
	})
}

// DetachBlock removes a block from an agent's core memory.
func (s *Service) DetachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return s.agentOp(ctx, "detach_block", agentID, blockID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		if err := events.CheckID(events.PrefixBlock, blockID); err != nil {
			return nil, unprocessable("%v", err)
		}
		if !slices.Contains(a.BlockIDs, events.BlockID(blockID)) {
			return nil, notFound("Block %s is not attached to agent %s", blockID, agentID)
		}
		return &events.CoreBlockDetached{BlockID: events.BlockID(blockID)}, nil
	})
}

// AttachTool gives an agent a tool.
func (s *Service) AttachTool(ctx context.Context, agentID, toolID string) (api.AgentState, error) {
	return s.agentOp(ctx, "attach_tool", agentID, toolID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		ids, err := checkToolIDs(st, a.Org, []string{toolID})
		if err != nil {
			return nil, err
		}
		if slices.Contains(a.ToolIDs, ids[0]) {
			return nil, nil
		}
		e := &events.AgentToolAttached{ToolID: ids[0]}
		if rules := withApprovalRules(st, a.ToolRules, ids); !bytes.Equal(rules, a.ToolRules) {
			e.ToolRules = rules
		}
		return e, nil
	})
}

// DetachTool takes a tool from an agent.
func (s *Service) DetachTool(ctx context.Context, agentID, toolID string) (api.AgentState, error) {
	return s.agentOp(ctx, "detach_tool", agentID, toolID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		if err := events.CheckID(events.PrefixTool, toolID); err != nil {
			return nil, unprocessable("%v", err)
		}
		if !slices.Contains(a.ToolIDs, events.ToolID(toolID)) {
			return nil, notFound("Tool %s is not attached to agent %s", toolID, agentID)
		}
		return &events.AgentToolDetached{ToolID: events.ToolID(toolID)}, nil
	})
}

// ListAgentTools lists the tools an agent has.
func (s *Service) ListAgentTools(ctx context.Context, agentID string, p api.Page) ([]api.Tool, error) {
	a, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	return page(a.Tools, func(t api.Tool) string { return t.ID }, p, "asc", 100, "Tool")
}

// AttachSource makes a source's passages available to an agent.
func (s *Service) AttachSource(ctx context.Context, agentID, sourceID string) (api.AgentState, error) {
	return s.agentOp(ctx, "attach_source", agentID, sourceID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		ids, err := checkSourceIDs(st, a.Org, []string{sourceID})
		if err != nil {
			return nil, err
		}
		if slices.Contains(a.SourceIDs, ids[0]) {
			return nil, nil
		}
		return &events.AgentSourceAttached{SourceID: ids[0]}, nil
	})
}

// DetachSource undoes AttachSource.
func (s *Service) DetachSource(ctx context.Context, agentID, sourceID string) (api.AgentState, error) {
	return s.agentOp(ctx, "detach_source", agentID, sourceID, func(st *projections.State, a *projections.Agent) (events.Event, error) {
		if err := events.CheckID(events.PrefixSource, sourceID); err != nil {
			return nil, unprocessable("%v", err)
		}
		if !slices.Contains(a.SourceIDs, events.SourceID(sourceID)) {
			return nil, notFound("Source %s is not attached to agent %s", sourceID, agentID)
		}
		return &events.AgentSourceDetached{SourceID: events.SourceID(sourceID)}, nil
	})
}

// ListAttachedSources lists the sources attached to an agent.
func (s *Service) ListAttachedSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error) {
	a, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	return page(a.Sources, func(x api.Source) string { return x.ID }, p, "asc", 100, "Source")
}

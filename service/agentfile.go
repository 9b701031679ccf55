package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// ExportAgent writes an agent as a Letta Agent File: the agent with every
// stored message and its context window, its blocks, tools (with source)
// and sources. Ids in the file are local to it ("agent-0", "block-1"), as
// Letta writes them.
func (s *Service) ExportAgent(ctx context.Context, agentID string) (api.AgentFileSchema, error) {
	var (
		out  api.AgentFileSchema
		refs []projections.Ref
		err  error
		ids  = map[string]string{} // engram id → file id
	)
	local := func(prefix, id string, n int) string {
		ids[id] = fmt.Sprintf("%s-%d", prefix, n)
		return ids[id]
	}
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		fa := api.AgentFileAgent{
			ID: local("agent", string(a.ID), 0), Name: a.Name, Description: strp(a.Description), System: &a.System,
			AgentType: a.AgentType, LLMConfig: rawOr(a.LLMConfig, "null"), EmbeddingConfig: rawOr(a.EmbeddingConfig, "null"),
			Tags: nonNil(a.Tags), Metadata: rawOr(a.Metadata, "{}"), ToolRules: rawOr(a.ToolRules, "[]"),
			ToolIDs: []string{}, BlockIDs: []string{}, SourceIDs: []string{}, InContextMessageIDs: []string{},
			Messages: []api.AgentFileMessage{}, FilesAgents: []json.RawMessage{}, GroupIDs: []string{},
		}
		for _, id := range a.BlockIDs {
			b := st.Blocks[id]
			if b == nil {
				continue
			}
			limit := b.Limit
			fb := api.AgentFileBlock{
				ID: local("block", string(id), len(out.Blocks)), Label: b.Label, Value: b.Value, Limit: &limit,
				TemplateName: strp(b.Name), IsTemplate: b.IsTemplate, ReadOnly: b.ReadOnly, Description: strp(b.Description),
				Metadata: rawOr(b.Metadata, "{}"), Tags: nonNil(b.Tags),
			}
			out.Blocks = append(out.Blocks, fb)
			fa.BlockIDs = append(fa.BlockIDs, fb.ID)
		}
		for _, id := range a.ToolIDs {
			t := st.Tools[id]
			if t == nil {
				continue
			}
			name, limit := t.Name, t.ReturnCharLimit
			ft := api.AgentFileTool{
				ID: local("tool", string(id), len(out.Tools)), Name: &name, ToolType: t.ToolType, Description: strp(t.Description),
				SourceType: strp(t.SourceType), SourceCode: strp(t.SourceCode), JSONSchema: rawOr(t.JSONSchema, "null"),
				Tags: nonNil(t.Tags), ReturnCharLimit: &limit, Metadata: rawOr(t.Metadata, "{}"),
			}
			out.Tools = append(out.Tools, ft)
			fa.ToolIDs = append(fa.ToolIDs, ft.ID)
		}
		for _, id := range a.SourceIDs {
			src := st.Sources[id]
			if src == nil {
				continue
			}
			fs := api.AgentFileSource{
				ID: local("source", string(id), len(out.Sources)), Name: src.Name, Description: strp(src.Description),
				Instructions: strp(src.Instructions), Metadata: rawOr(src.Metadata, "{}"), EmbeddingConfig: rawOr(src.EmbeddingConfig, "null"),
			}
			out.Sources = append(out.Sources, fs)
			fa.SourceIDs = append(fa.SourceIDs, fs.ID)
		}
		refs = append(refs, a.Messages...)
		for i, r := range refs {
			local("message", r.ID, i)
		}
		for _, id := range a.MessageIDs {
			if fid, ok := ids[string(id)]; ok {
				fa.InContextMessageIDs = append(fa.InContextMessageIDs, fid)
			}
		}
		out.Agents = []api.AgentFileAgent{fa}
	})
	if err != nil {
		return api.AgentFileSchema{}, err
	}
	fa := &out.Agents[0]
	for _, r := range refs {
		env, err := s.load(ctx, r)
		if err != nil {
			return api.AgentFileSchema{}, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		m, ok := events.AsMessage(env.Event)
		if !ok {
			continue
		}
		content, _ := json.Marshal([]map[string]string{{"type": "text", "text": promptText(m, env.Time)}})
		fm := api.AgentFileMessage{
			Type: "message", ID: ids[r.ID], Role: m.Role, Content: content, Name: strp(m.Name), Otid: strp(m.Otid),
			Model: strp(m.Model), AgentID: &fa.ID, ToolCalls: []api.AgentFileToolCall{}, ToolCallID: strp(m.ToolCallID),
			CreatedAt: time.Unix(0, r.CreatedAt).UTC(),
		}
		for _, tc := range m.ToolCalls {
			c := api.AgentFileToolCall{ID: tc.ID, Type: "function"}
			c.Function.Name, c.Function.Arguments = tc.Name, tc.Arguments
			fm.ToolCalls = append(fm.ToolCalls, c)
		}
		fa.Messages = append(fa.Messages, fm)
	}
	now := s.cfg.Clock().UTC()
	out.CreatedAt = &now
	out.Metadata = map[string]string{"exported_by": "engram " + s.cfg.Version}
	out.Groups, out.Files, out.MCPServers, out.Skills = []json.RawMessage{}, []json.RawMessage{}, []json.RawMessage{}, []json.RawMessage{}
	out.Blocks, out.Tools, out.Sources = nonNil(out.Blocks), nonNil(out.Tools), nonNil(out.Sources)
	return out, nil
}

// messageText reads a Letta message's content: a string, or a list of
// parts whose texts are joined.
func messageText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type      string `json:"type"`
		Text      string `json:"text"`
		Reasoning string `json:"reasoning"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", unprocessable("message content must be a string or a list of parts")
	}
	var texts []string
	for _, p := range parts {
		switch {
		case p.Text != "":
			texts = append(texts, p.Text)
		case p.Reasoning != "":
			texts = append(texts, p.Reasoning)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// importChunk is how many messages one command of an import appends.
const importChunk = 200

// ImportAgent recreates the agents of a Letta Agent File. Tools are found
// by name among this server's (its base tools included) or created from
// their source; sources are found by name or created (their files are not
// imported); blocks are created anew. Each agent gets every message of the
// file, in order, and the file's context window. Messages keep their text,
// roles and tool calls, not their times or ids.
func (s *Service) ImportAgent(ctx context.Context, f api.AgentFileSchema, opts api.ImportAgentFile) (api.ImportedAgents, error) {
	blocks := map[string]api.AgentFileBlock{}
	for _, b := range f.Blocks {
		blocks[b.ID] = b
	}
	tools := map[string]api.AgentFileTool{}
	for _, t := range f.Tools {
		tools[t.ID] = t
	}
	sources := map[string]api.AgentFileSource{}
	for _, src := range f.Sources {
		sources[src.ID] = src
	}
	if len(f.Agents) == 0 {
		return api.ImportedAgents{}, unprocessable("the agent file has no agents")
	}
	// Check every reference before anything is written.
	for _, fa := range f.Agents {
		for _, id := range fa.BlockIDs {
			if _, ok := blocks[id]; !ok {
				return api.ImportedAgents{}, unprocessable("agent %s refers to block %s, which the file lacks", fa.ID, id)
			}
		}
		for _, id := range fa.ToolIDs {
			if _, ok := tools[id]; !ok {
				return api.ImportedAgents{}, unprocessable("agent %s refers to tool %s, which the file lacks", fa.ID, id)
			}
		}
		for _, id := range fa.SourceIDs {
			if _, ok := sources[id]; !ok {
				return api.ImportedAgents{}, unprocessable("agent %s refers to source %s, which the file lacks", fa.ID, id)
			}
		}
	}
	toolIDs := map[string]string{} // file id → engram id
	for _, id := range referenced(f.Agents, func(a api.AgentFileAgent) []string { return a.ToolIDs }) {
		ft := tools[id]
		name := ""
		if ft.Name != nil {
			name = *ft.Name
		}
		var existing *projections.Tool
		s.read(func(st *projections.State) {
			if t := toolNamed(st, orgOf(ctx), name); t != nil {
				cp := *t
				existing = &cp
			}
		})
		switch {
		case existing != nil:
			toolIDs[id] = string(existing.ID)
		case ft.SourceCode != nil && *ft.SourceCode != "":
			t, err := s.CreateTool(ctx, api.CreateTool{
				SourceCode: *ft.SourceCode, Name: ft.Name, Description: ft.Description, Tags: ft.Tags,
				SourceType: ft.SourceType, JSONSchema: nullToNil(ft.JSONSchema), ReturnCharLimit: ft.ReturnCharLimit,
			}, true)
			if err != nil {
				return api.ImportedAgents{}, fmt.Errorf("import tool %s (%s): %w", id, name, err)
			}
			toolIDs[id] = t.ID
		default:
			s.cfg.Logger.Warn("agent file: a tool this server does not have and whose source the file lacks is left out", "tool", name)
		}
	}
	sourceIDs := map[string]string{}
	for _, id := range referenced(f.Agents, func(a api.AgentFileAgent) []string { return a.SourceIDs }) {
		fs := sources[id]
		if src, err := s.GetSourceByName(ctx, fs.Name); err == nil {
			sourceIDs[id] = src.ID
			continue
		}
		src, err := s.CreateSource(ctx, api.CreateSource{Name: fs.Name, Description: fs.Description, Instructions: fs.Instructions,
			Metadata: nullToNil(fs.Metadata), EmbeddingConfig: nullToNil(fs.EmbeddingConfig)})
		if err != nil {
			return api.ImportedAgents{}, fmt.Errorf("import source %s (%s): %w", id, fs.Name, err)
		}
		sourceIDs[id] = src.ID
	}
	out := api.ImportedAgents{AgentIDs: []string{}}
	for i, fa := range f.Agents {
		name := fa.Name
		if i == 0 && opts.OverrideName != nil {
			name = *opts.OverrideName
		} else if opts.AppendCopySuffix {
			name += "_copy"
		}
		id, err := s.importAgent(ctx, fa, name, blocks, toolIDs, sourceIDs, opts)
		if err != nil {
			return out, err
		}
		out.AgentIDs = append(out.AgentIDs, id)
	}
	return out, nil
}

func referenced(agents []api.AgentFileAgent, of func(api.AgentFileAgent) []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range agents {
		for _, id := range of(a) {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if t := strings.TrimSpace(string(raw)); t == "" || t == "null" {
		return nil
	}
	return raw
}

func (s *Service) importAgent(ctx context.Context, fa api.AgentFileAgent, name string, blocks map[string]api.AgentFileBlock,
	toolIDs, sourceIDs map[string]string, opts api.ImportAgentFile) (string, error) {
	if err := checkAgentName(name); err != nil {
		return "", err
	}
	e := &events.AgentCreated{Name: name, System: deref(fa.System), AgentType: fa.AgentType, Tags: fa.Tags}
	if fa.Description != nil {
		e.Description = *fa.Description
	}
	if e.AgentType == "" {
		e.AgentType = DefaultAgentType
	}
	var err error
	if opts.OverrideModel != nil {
		if e.LLMConfig, err = s.resolveModel(opts.OverrideModel, nil); err != nil {
			return "", err
		}
	} else if e.LLMConfig, err = s.resolveModel(nil, nullToNil(fa.LLMConfig)); err != nil || e.LLMConfig == nil {
		e.LLMConfig = s.defaultModel()
	}
	if e.EmbeddingConfig, err = s.resolveEmbedding(nil, nullToNil(fa.EmbeddingConfig)); err != nil || e.EmbeddingConfig == nil {
		e.EmbeddingConfig = s.defaultEmbedding()
	}
	if e.Metadata, err = firstObject("metadata", nullToNil(fa.Metadata), nil); err != nil {
		return "", err
	}
	if rules := nullToNil(fa.ToolRules); rules != nil {
		if e.ToolRules, err = checkToolRules(rules); err != nil {
			return "", err
		}
	}
	for _, id := range fa.ToolIDs {
		if t, ok := toolIDs[id]; ok {
			e.ToolIDs = append(e.ToolIDs, events.ToolID(t))
		}
	}
	for _, id := range fa.SourceIDs {
		e.SourceIDs = append(e.SourceIDs, events.SourceID(sourceIDs[id]))
	}
	var msgs []*events.MessageAppended
	window := map[string]int{} // file message id → index in msgs
	if !opts.StripMessages {
		for _, fm := range fa.Messages {
			text, err := messageText(fm.Content)
			if err != nil {
				return "", err
			}
			m := &events.MessageAppended{Role: fm.Role, Text: text, Name: deref(fm.Name), ToolCallID: deref(fm.ToolCallID), Model: deref(fm.Model)}
			switch m.Role {
			case "system", "user", "assistant", "tool":
			case "function":
				m.Role = "tool"
			case "summary":
				m.Role = "user" // engram keeps a summary as a user-role system alert
			case "approval":
				continue // tool approvals have no place in engram's history
			default:
				return "", unprocessable("message %s has role %q", fm.ID, fm.Role)
			}
			for _, tc := range fm.ToolCalls {
				m.ToolCalls = append(m.ToolCalls, events.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			}
			window[fm.ID] = len(msgs)
			msgs = append(msgs, m)
		}
	}
	c := s.command(ctx, "import_agent", "")
	agentID := c.idAt(events.PrefixAgent, 1) // what decide's first newID returns (keyed commands)
	err = s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		agentID = c.newID(events.PrefixAgent)
		e.ID = events.AgentID(agentID)
		e.BlockIDs = nil
		reqs := make([]api.CreateBlock, 0, len(fa.BlockIDs))
		for _, id := range fa.BlockIDs {
			fb := blocks[id]
			reqs = append(reqs, api.CreateBlock{Label: fb.Label, Value: fb.Value, Limit: fb.Limit, Description: fb.Description, ReadOnly: &fb.ReadOnly,
				Metadata: nullToNil(fb.Metadata), Tags: fb.Tags})
		}
		created, err := newBlocks(c, reqs, map[string]bool{})
		if err != nil {
			return err
		}
		for _, bc := range created {
			e.BlockIDs = append(e.BlockIDs, bc.ID)
		}
		addAgent(st, d, c, e, created)
		return nil
	})
	if err != nil {
		return "", err
	}
	// Messages follow in commands of their own, a chunk at a time, and
	// the last sets the context window.
	ids := make([]events.MessageID, len(msgs))
	for start := 0; start < len(msgs) || start == 0; start += importChunk {
		end := min(start+importChunk, len(msgs))
		last := end == len(msgs)
		mc := s.command(ctx, "import_messages", fmt.Sprintf("%s#%d", agentID, start))
		err := s.exec(ctx, mc, agentAgg(agentID), func(st *projections.State, d *decision) error {
			d.expectAt(st, agentAgg(agentID))
			for i := start; i < end; i++ {
				cp := *msgs[i]
				cp.ID = events.MessageID(mc.newID(events.PrefixMessage))
				ids[i] = cp.ID
				d.add(mc, agentAgg(agentID), &cp)
			}
			if last {
				w := []events.MessageID{}
				for _, fid := range fa.InContextMessageIDs {
					if i, ok := window[fid]; ok {
						w = append(w, ids[i])
					}
				}
				d.add(mc, agentAgg(agentID), &events.AgentUpdated{MessageIDs: &w})
			}
			return nil
		})
		if err != nil {
			return agentID, err
		}
		if last {
			break
		}
	}
	return agentID, nil
}

package rest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/api/letta05"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// Prefix05 is where Letta 0.5's API is served: a 0.5 client (0.5.5) is
// pointed at http://HOST:PORT/letta-0.5 and calls Prefix05 + "/v1/...".
const Prefix05 = "/letta-0.5"

// Prefix051 serves the same routes in Letta 0.5.1's shapes, which differ
// from 0.5.5's in a few objects that each version's client validates
// strictly (letta05.Dialect051); a 0.5.1 client is pointed at
// http://HOST:PORT/letta-0.5.1.
const Prefix051 = "/letta-0.5.1"

// The Letta 0.5 surface is a translation over the same service as the
// modern one: each route reads 0.5's request, runs the service's command or
// query (often through the modern endpoint itself), and answers 0.5's
// objects, field for field (letta05). An agent made through one surface is
// seen through the other.

// routes05 registers Letta 0.5's routes under Prefix05, and under
// Prefix051 in 0.5.1's shapes.
func (h *handler) routes05() {
	h.oldRoutes(Prefix05, func(e endpoint) endpoint { return e })
	h.oldRoutes(Prefix051, func(e endpoint) endpoint {
		return func(r *http.Request) (any, error) {
			v, err := e(r)
			if err != nil {
				return nil, err
			}
			return letta05.Dialect051(v), nil
		}
	})
}

func (h *handler) oldRoutes(prefix string, shape func(endpoint) endpoint) {
	p := prefix + "/v1"
	v := func(method, path string, e endpoint) { h.handle(method+" "+p+path, shape(e)) }

	v("GET", "/health", h.health)
	v("GET", "/models", to05(h.listModels))
	v("GET", "/models/embedding", to05(h.listEmbeddingModels))

	// Agents.
	v("GET", "/agents", to05(h.listAgents))
	v("POST", "/agents", h.createAgent05)
	v("GET", "/agents/{agent_id}", to05(h.getAgent))
	v("PATCH", "/agents/{agent_id}", h.updateAgent05)
	v("DELETE", "/agents/{agent_id}", h.deleteAgent)
	v("GET", "/agents/{agent_id}/tools", to05(h.listAgentTools05))
	v("PATCH", "/agents/{agent_id}/add-tool/{tool_id}", to05(h.addTool))
	v("PATCH", "/agents/{agent_id}/remove-tool/{tool_id}", to05(h.removeTool))
	v("GET", "/agents/{agent_id}/sources", to05(h.listAgentSources05))

	// Memory.
	v("GET", "/agents/{agent_id}/memory", to05(h.getCoreMemory))
	v("PATCH", "/agents/{agent_id}/memory", h.updateMemory05)
	v("GET", "/agents/{agent_id}/memory/archival", h.archivalSummary)
	v("GET", "/agents/{agent_id}/memory/recall", h.recallSummary)
	v("GET", "/agents/{agent_id}/memory/messages", h.contextMessages05)
	v("GET", "/agents/{agent_id}/archival", h.listArchival05)
	v("POST", "/agents/{agent_id}/archival", h.insertArchival05)
	v("DELETE", "/agents/{agent_id}/archival/{memory_id}", h.deleteArchival)

	// Messages.
	v("GET", "/agents/{agent_id}/messages", h.listMessages05)
	h.handleFunc("POST "+p+"/agents/{agent_id}/messages", h.send05)
	v("PATCH", "/agents/{agent_id}/messages/{message_id}", h.updateMessage05)

	// Blocks (humans and personas are template blocks).
	v("GET", "/blocks", to05(h.listBlocks))
	v("POST", "/blocks", h.createBlock05)
	v("GET", "/blocks/{block_id}", to05(h.getBlock))
	v("POST", "/blocks/{block_id}", h.updateBlock05)
	v("PATCH", "/blocks/{block_id}", h.updateBlock05)
	v("DELETE", "/blocks/{block_id}", h.deleteBlock05)

	// Tools.
	v("GET", "/tools", to05(h.listTools05))
	v("POST", "/tools", h.createTool05)
	v("GET", "/tools/{tool_id}", to05(h.getTool))
	v("PATCH", "/tools/{tool_id}", h.updateTool05)
	v("DELETE", "/tools/{tool_id}", h.deleteTool)
	v("GET", "/tools/name/{tool_name}", h.toolIDByName)
	v("POST", "/tools/add-base-tools", to05(h.addBaseTools05))

	// Sources.
	v("GET", "/sources", to05(h.listSources))
	v("POST", "/sources", h.createSource05)
	v("GET", "/sources/{source_id}", to05(h.getSource))
	v("PATCH", "/sources/{source_id}", h.updateSource05)
	v("DELETE", "/sources/{source_id}", h.deleteSource)
	v("GET", "/sources/{first}/{second}", h.sourceByNameOrAgents)
	v("POST", "/sources/{source_id}/upload", to05(h.uploadJob))
	v("GET", "/sources/{source_id}/files", to05(h.listFiles))
	v("DELETE", "/sources/{source_id}/{file_id}", h.deleteFile)
	v("POST", "/sources/{source_id}/attach", to05(h.attachSourceOld))
	v("POST", "/sources/{source_id}/detach", to05(h.detachSourceOld))

	// Jobs.
	v("GET", "/jobs", to05(h.listJobs))
	v("GET", "/jobs/active", to05(h.listActiveJobs))
	v("GET", "/jobs/{job_id}", to05(h.getJob))
	v("DELETE", "/jobs/{job_id}", h.deleteJob05)

	// Organizations: engram has one.
	v("GET", "/admin/orgs", h.listOrgs05)
	v("POST", "/admin/orgs", h.createOrg05)
	v("DELETE", "/admin/orgs", h.deleteOrg05)
}

// to05 answers what e answers, as 0.5's objects.
func to05(e endpoint) endpoint {
	return func(r *http.Request) (any, error) {
		v, err := e(r)
		if err != nil {
			return nil, err
		}
		return view05(v), nil
	}
}

// view05 turns a modern view (or a list of them) into 0.5's object. Values
// with no 0.5 counterpart are returned as they are.
func view05(v any) any {
	switch x := v.(type) {
	case api.AgentState:
		return agent05(x)
	case []api.AgentState:
		return mapSlice(x, agent05)
	case api.Block:
		return block05(x)
	case []api.Block:
		return mapSlice(x, block05)
	case api.Memory:
		return memory05(x)
	case api.Tool:
		return tool05(x)
	case []api.Tool:
		return mapSlice(x, tool05)
	case api.Source:
		return source05(x)
	case []api.Source:
		return mapSlice(x, source05)
	case api.Passage:
		return passage05(x)
	case []api.Passage:
		return mapSlice(x, passage05)
	case api.Job:
		return job05(x)
	case []api.Job:
		return mapSlice(x, job05)
	case api.FileMetadata:
		return file05(x)
	case []api.FileMetadata:
		return mapSlice(x, file05)
	case []api.Model:
		return mapSlice(x, func(m api.Model) *letta05.LLMConfig { return llm05(&m.LLMConfig) })
	case []api.EmbeddingModel:
		return mapSlice(x, func(m api.EmbeddingModel) *letta05.EmbeddingConfig { return embedding05(&m.EmbeddingConfig) })
	}
	return v
}

// mapSlice maps a list; a nil list becomes an empty one (0.5 expects []).
func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}

func defaultUser() *string { s := letta05.DefaultUserID; return &s }
func defaultOrg() *string  { s := letta05.DefaultOrgID; return &s }

// object05 is a JSON object for 0.5's dict fields: the raw value when it is
// an object, {} otherwise.
func object05(raw json.RawMessage) json.RawMessage {
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, "{") {
		return raw
	}
	return json.RawMessage("{}")
}

// nullableObject05 is like object05, but keeps null for "no metadata".
func nullableObject05(raw json.RawMessage) json.RawMessage {
	t := strings.TrimSpace(string(raw))
	if strings.HasPrefix(t, "{") && t != "{}" {
		return raw
	}
	return json.RawMessage("null")
}

func llm05(c *api.LLMConfig) *letta05.LLMConfig {
	if c == nil {
		return nil
	}
	put := c.PutInnerThoughtsInKwargs
	if put == nil {
		t := true
		put = &t
	}
	return &letta05.LLMConfig{
		Model: c.Model, ModelEndpointType: c.ModelEndpointType, ModelEndpoint: c.ModelEndpoint,
		ModelWrapper: c.ModelWrapper, ContextWindow: c.ContextWindow, PutInnerThoughtsInKwargs: put,
	}
}

func embedding05(c *api.EmbeddingConfig) *letta05.EmbeddingConfig {
	if c == nil {
		return nil
	}
	return &letta05.EmbeddingConfig{
		EmbeddingEndpointType: c.EmbeddingEndpointType, EmbeddingEndpoint: c.EmbeddingEndpoint,
		EmbeddingModel: c.EmbeddingModel, EmbeddingDim: c.EmbeddingDim, EmbeddingChunkSize: c.EmbeddingChunkSize,
	}
}

func block05(b api.Block) letta05.Block {
	name := b.TemplateName
	if name == nil {
		name = b.Name
	}
	return letta05.Block{
		ID: b.ID, Value: b.Value, Limit: b.Limit, Name: name, IsTemplate: b.IsTemplate, Label: b.Label,
		Description: b.Description, Metadata: object05(b.Metadata), OrganizationID: defaultOrg(),
	}
}

func memory05(m api.Memory) letta05.Memory {
	out := letta05.Memory{Memory: make(map[string]letta05.Block, len(m.Blocks)), PromptTemplate: m.PromptTemplate}
	for _, b := range m.Blocks {
		out.Memory[b.Label] = block05(b)
	}
	return out
}

// agentTypes05 are the agent types 0.5 knows; any other is shown as
// memgpt_agent, the loop engram runs for it.
var agentTypes05 = map[string]bool{"memgpt_agent": true, "split_thread_agent": true, "o1_agent": true}

func agent05(a api.AgentState) letta05.AgentState {
	typ := a.AgentType
	if !agentTypes05[typ] {
		typ = "memgpt_agent"
	}
	tools := make([]string, len(a.Tools))
	for i, t := range a.Tools {
		tools[i] = t.Name
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return letta05.AgentState{
		ID: a.ID, Name: a.Name, Description: a.Description, Metadata: nullableObject05(a.Metadata),
		UserID: defaultUser(), CreatedAt: a.CreatedAt, MessageIDs: a.MessageIDs, Memory: memory05(a.Memory),
		Tools: tools, ToolRules: toolRules05(a.ToolRules), Tags: tags, System: a.System, AgentType: typ,
		LLMConfig: llm05(a.LLMConfig), EmbeddingConfig: embedding05(a.EmbeddingConfig),
	}
}

// toolRules05 shows an agent's tool rules in 0.5's three kinds (modern
// names are mapped: run_first is InitToolRule, exit_loop TerminalToolRule,
// constrain_child_tools ToolRule); rules 0.5 has no kind for are left out.
func toolRules05(raw json.RawMessage) json.RawMessage {
	var rules []struct {
		ToolName string   `json:"tool_name"`
		Type     string   `json:"type"`
		Children []string `json:"children"`
	}
	if json.Unmarshal(raw, &rules) != nil || len(rules) == 0 {
		return json.RawMessage("null")
	}
	type rule struct {
		ToolName string   `json:"tool_name"`
		Type     string   `json:"type"`
		Children []string `json:"children,omitempty"`
	}
	out := make([]rule, 0, len(rules))
	for _, r := range rules {
		switch r.Type {
		case "InitToolRule", "run_first":
			out = append(out, rule{ToolName: r.ToolName, Type: "InitToolRule"})
		case "TerminalToolRule", "exit_loop":
			out = append(out, rule{ToolName: r.ToolName, Type: "TerminalToolRule"})
		case "ToolRule", "constrain_child_tools":
			ch := r.Children
			if ch == nil {
				ch = []string{}
			}
			out = append(out, rule{ToolName: r.ToolName, Type: "ToolRule", Children: ch})
		}
	}
	b, _ := json.Marshal(out)
	return b
}

func tool05(t api.Tool) letta05.Tool {
	src := ""
	if t.SourceCode != nil {
		src = *t.SourceCode
	}
	tags := t.Tags
	if tags == nil {
		tags = []string{}
	}
	schema := t.JSONSchema
	if len(schema) == 0 {
		schema = json.RawMessage("null")
	}
	return letta05.Tool{
		ID: t.ID, Name: t.Name, Description: t.Description, SourceType: t.SourceType, OrganizationID: defaultOrg(),
		Tags: tags, SourceCode: src, JSONSchema: schema,
	}
}

func source05(s api.Source) letta05.Source {
	created, updated := s.CreatedAt, s.UpdatedAt
	return letta05.Source{
		ID: s.ID, Name: s.Name, Description: s.Description, EmbeddingConfig: embedding05(s.EmbeddingConfig),
		OrganizationID: defaultOrg(), Metadata: nullableObject05(s.Metadata), CreatedAt: &created, UpdatedAt: &updated,
	}
}

func passage05(p api.Passage) letta05.Passage {
	return letta05.Passage{
		ID: p.ID, UserID: defaultUser(), AgentID: p.AgentID, SourceID: p.SourceID, FileID: p.FileID,
		Metadata: object05(p.Metadata), Text: p.Text, Embedding: p.Embedding,
		EmbeddingConfig: embedding05(p.EmbeddingConfig), CreatedAt: p.CreatedAt,
	}
}

func job05(j api.Job) letta05.Job {
	return letta05.Job{
		ID: j.ID, Status: j.Status, Metadata: nullableObject05(j.Metadata), CreatedAt: j.CreatedAt,
		CompletedAt: j.CompletedAt, UserID: letta05.DefaultUserID,
	}
}

func file05(f api.FileMetadata) letta05.FileMetadata {
	created, updated := f.CreatedAt, f.UpdatedAt
	// 0.5 named a file by its own name; modern Letta prefixes the folder's.
	name, path, typ, size := f.OriginalFileName, f.FilePath, f.FileType, f.FileSize
	if name == "" {
		name = f.FileName
	}
	return letta05.FileMetadata{
		ID: f.ID, OrganizationID: defaultOrg(), SourceID: f.SourceID, FileName: &name, FilePath: &path,
		FileType: &typ, FileSize: &size, CreatedAt: &created, UpdatedAt: &updated,
	}
}

// message05 is a stored message as 0.5's Message.
func message05(m api.StoredMessage) letta05.Message {
	out := letta05.Message{
		ID: m.ID, Role: m.Role, Text: &m.Text, UserID: defaultUser(), AgentID: &m.AgentID,
		Model: strp05(m.Model), Name: strp05(m.Name), CreatedAt: m.CreatedAt, ToolCallID: strp05(m.ToolCallID),
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, letta05.ToolCall{
			ID: tc.ID, Type: "function", Function: letta05.ToolCallFunction{Name: tc.Name, Arguments: tc.Arguments},
		})
	}
	return out
}

func strp05(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// date05 is a message date as 0.5 sent it: to the second, with the offset.
func date05(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

// assistant05 says which tool call is the agent speaking (0.5's
// use_assistant_message): the tool's name and its message argument.
type assistant05 struct {
	on          bool
	name, kwarg string
}

// lettaMessage05 turns one modern LettaMessage into 0.5's; ok is false for
// a type 0.5 does not have.
func lettaMessage05(m api.LettaMessage, as assistant05) (letta05.LettaMessage, bool) {
	out := letta05.LettaMessage{ID: m.ID, Date: date05(m.Date)}
	switch m.MessageType {
	case api.SystemMessageType:
		out.MessageType, out.Message = letta05.SystemMessageType, m.Content
	case api.UserMessageType:
		out.MessageType, out.Message = letta05.UserMessageType, m.Content
	case api.ReasoningMessageType:
		out.MessageType, out.InternalMonologue = letta05.InternalMonologueType, m.Reasoning
	case api.AssistantMessageType:
		out.MessageType, out.AssistantMessage = letta05.AssistantMessageType, m.Content
	case api.ToolCallMessageType:
		if m.ToolCall == nil {
			return out, false
		}
		tc := *m.ToolCall
		if as.on && tc.Name == as.name {
			var args map[string]any
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
				if text, ok := args[as.kwarg].(string); ok {
					out.MessageType, out.AssistantMessage = letta05.AssistantMessageType, &text
					return out, true
				}
			}
		}
		out.MessageType = letta05.FunctionCallType
		out.FunctionCall = &letta05.FunctionCall{Name: tc.Name, Arguments: tc.Arguments, FunctionCallID: tc.ToolCallID}
	case api.ToolReturnMessageType:
		out.MessageType, out.FunctionReturn, out.Status, out.FunctionCallID = letta05.FunctionReturnType, m.ToolReturn, m.Status, m.ToolCallID
		if out.FunctionCallID == nil {
			empty := ""
			out.FunctionCallID = &empty
		}
	default:
		return out, false
	}
	return out, true
}

// lettaMessages05 turns a list of modern LettaMessages into 0.5's. A
// send_message call shown from its assistant view has lost its call id; it
// takes the id of the function return that answers it.
func lettaMessages05(ms []api.LettaMessage, as assistant05) []letta05.LettaMessage {
	out := make([]letta05.LettaMessage, 0, len(ms))
	for _, m := range ms {
		if v, ok := lettaMessage05(m, as); ok {
			out = append(out, v)
		}
	}
	for i, v := range out {
		if v.FunctionCall == nil || v.FunctionCall.FunctionCallID != "" {
			continue
		}
		for _, w := range out[i+1:] {
			if w.MessageType == letta05.FunctionReturnType && w.FunctionCallID != nil {
				v.FunctionCall.FunctionCallID = *w.FunctionCallID
				break
			}
			if w.MessageType == letta05.FunctionCallType {
				break
			}
		}
	}
	return out
}

// Requests.

func (h *handler) createAgent05(r *http.Request) (any, error) {
	var req letta05.CreateAgent
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Name != nil && *req.Name != "" && !validAgentName05(*req.Name) {
		return nil, unprocessable("name must be 1 to 50 letters, digits, spaces, hyphens or underscores")
	}
	no := false
	c := api.CreateAgent{
		Name: req.Name, Description: req.Description, System: req.System, LLMConfig: req.LLMConfig,
		EmbeddingConfig: req.EmbeddingConfig, Tools: req.Tools, IncludeBaseTools: &no, Tags: req.Tags,
		OldMetadata: req.Metadata, ToolRules: req.ToolRules,
	}
	if req.Tools == nil {
		c.IncludeBaseTools = nil // 0.5's server default: the base tools
	}
	if req.AgentType != nil && *req.AgentType != "" && !agentTypes05[*req.AgentType] {
		return nil, unprocessable("agent_type must be one of memgpt_agent, split_thread_agent, o1_agent, not %q", *req.AgentType)
	}
	memgpt := "memgpt_agent" // the one loop engram runs for 0.5 agents, whatever they ask for
	c.AgentType = &memgpt
	if req.Memory != nil {
		m, err := memoryIn05(*req.Memory)
		if err != nil {
			return nil, err
		}
		c.Memory = m
	}
	a, err := h.svc.CreateAgent(r.Context(), c)
	if err != nil {
		return nil, err
	}
	return agent05(a), nil
}

func validAgentName05(name string) bool {
	if len(name) > 50 {
		return false
	}
	for _, c := range name {
		if !(c == ' ' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func memoryIn05(m letta05.MemoryIn) (*api.OldMemory, error) {
	out := &api.OldMemory{Memory: make(map[string]api.CreateBlock, len(m.Memory)), PromptTemplate: m.PromptTemplate}
	for label, b := range m.Memory {
		if b.Value == nil {
			return nil, unprocessable("memory block %q needs a value", label)
		}
		cb := api.CreateBlock{Label: label, Value: *b.Value, Limit: b.Limit, Description: b.Description, OldMetadata: b.Metadata}
		if b.Label != nil && *b.Label != "" {
			cb.Label = *b.Label
		}
		out.Memory[label] = cb
	}
	return out, nil
}

func (h *handler) updateAgent05(r *http.Request) (any, error) {
	var req letta05.UpdateAgent
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := r.PathValue("agent_id")
	ctx := r.Context()
	u := api.UpdateAgent{
		Name: req.Name, Description: req.Description, System: req.System, LLMConfig: req.LLMConfig,
		EmbeddingConfig: req.EmbeddingConfig, Tags: req.Tags, OldMetadata: req.Metadata, Tools: req.Tools,
		MessageIDs: req.MessageIDs, ToolRules: req.ToolRules,
	}
	if req.Name != nil && !validAgentName05(*req.Name) {
		return nil, unprocessable("name must be 1 to 50 letters, digits, spaces, hyphens or underscores")
	}
	a, err := h.svc.UpdateAgent(ctx, id, u)
	if err != nil {
		return nil, err
	}
	if req.Memory != nil {
		// 0.5 sends the whole memory: blocks whose value changed are
		// updated; labels the agent does not have are refused.
		for label, b := range req.Memory.Memory {
			if b.Value == nil {
				continue
			}
			cur, ok := a.Memory.Get(label)
			if !ok {
				return nil, fault.E(fault.NotFound, "No block with label '%s' found for agent '%s'", label, id)
			}
			if cur.Value == *b.Value && (b.Limit == nil || *b.Limit == cur.Limit) {
				continue
			}
			if _, err := h.svc.UpdateAgentBlock(ctx, id, label, api.UpdateBlock{Value: b.Value, Limit: b.Limit}); err != nil {
				return nil, err
			}
		}
		if a, err = h.svc.GetAgent(ctx, id); err != nil {
			return nil, err
		}
	}
	return agent05(a), nil
}

// updateMemory05 is the modern handler's: 0.5's PATCH …/memory maps labels
// to new values.
func (h *handler) updateMemory05(r *http.Request) (any, error) {
	if _, err := h.updateOldMemory(r); err != nil {
		return nil, err
	}
	m, err := h.svc.GetCoreMemory(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	return memory05(m), nil
}

func (h *handler) listAgentTools05(r *http.Request) (any, error) {
	a, err := h.svc.GetAgent(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	return a.Tools, nil
}

func (h *handler) listAgentSources05(r *http.Request) (any, error) {
	a, err := h.svc.GetAgent(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	return a.Sources, nil
}

// listArchival05 serves 0.5's archival listing: the agent's passages and
// those of its attached sources (0.5 copied a source's passages into the
// agent on attach; engram shares them, and lists them the same), oldest
// first; before and after are passage ids, limit defaults to 1000 (0.5's
// client default).
func (h *handler) listArchival05(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	if p.Limit <= 0 {
		p.Limit = 1000
	}
	ctx := r.Context()
	id := r.PathValue("agent_id")
	a, err := h.svc.GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	all, err := everyPassage(func(p api.Page) ([]api.Passage, error) { return h.svc.ListArchival(ctx, id, p) })
	if err != nil {
		return nil, err
	}
	for _, src := range a.Sources {
		ps, err := everyPassage(func(p api.Page) ([]api.Passage, error) { return h.svc.ListSourcePassages(ctx, src.ID, p) })
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	slices.SortStableFunc(all, func(x, y api.Passage) int { return x.CreatedAt.Compare(y.CreatedAt) })
	start, end := 0, len(all)
	for i, ps := range all {
		if p.After != "" && ps.ID == p.After {
			start = i + 1
		}
		if p.Before != "" && ps.ID == p.Before {
			end = i
		}
	}
	if start > end {
		start = end
	}
	all = all[start:end]
	if len(all) > p.Limit {
		all = all[:p.Limit]
	}
	return mapSlice(all, passage05), nil
}

// everyPassage reads a passage list to its end, a page at a time.
func everyPassage(list func(api.Page) ([]api.Passage, error)) ([]api.Passage, error) {
	var out []api.Passage
	p := api.Page{Order: "asc", Limit: service.MaxPageLimit}
	for {
		page, err := list(p)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < p.Limit {
			return out, nil
		}
		p.After = page[len(page)-1].ID
	}
}

func (h *handler) insertArchival05(r *http.Request) (any, error) {
	var req letta05.CreateArchival
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	out, err := h.svc.InsertArchival(r.Context(), r.PathValue("agent_id"), api.CreatePassage{Text: req.Text})
	if err != nil {
		return nil, err
	}
	return mapSlice(out, passage05), nil
}

func (h *handler) contextMessages05(r *http.Request) (any, error) {
	ms, err := h.svc.ContextStoredMessages(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	return mapSlice(ms, message05), nil
}

// listMessages05 serves 0.5's history: the newest limit messages (default
// 10) before the cursor, newest first; Message objects with msg_object,
// else LettaMessages (tool calls as function_call unless
// use_assistant_message).
func (h *handler) listMessages05(r *http.Request) (any, error) {
	q := queryOf(r)
	p := api.Page{Before: q.str("before"), After: q.str("after"), Limit: 10, Order: "desc"}
	if n := q.intp("limit"); n != nil {
		if *n < 1 {
			q.fail(unprocessable("query parameter limit must be a positive integer"))
		}
		p.Limit = *n
	}
	objects := q.boolean("msg_object", false)
	as := assistant05{on: q.boolean("use_assistant_message", false), name: "send_message", kwarg: "message"}
	if s := q.str("assistant_message_function_name"); s != "" {
		as.name = s
	}
	if s := q.str("assistant_message_function_kwarg"); s != "" {
		as.kwarg = s
	}
	if q.err != nil {
		return nil, q.err
	}
	id := r.PathValue("agent_id")
	if objects {
		ms, err := h.svc.ListStoredMessages(r.Context(), id, p)
		if err != nil {
			return nil, err
		}
		return mapSlice(ms, message05), nil
	}
	ms, err := h.svc.ListMessages(r.Context(), id, p)
	if err != nil {
		return nil, err
	}
	// The service names send_message an assistant message; 0.5 shows it as
	// a function call unless asked.
	for i, m := range ms {
		if m.MessageType == api.AssistantMessageType && m.Content != nil {
			args, _ := json.Marshal(map[string]string{"message": *m.Content})
			ms[i].MessageType, ms[i].Content = api.ToolCallMessageType, nil
			ms[i].ToolCall = &api.ToolCall{Name: "send_message", Arguments: string(args)}
		}
	}
	return lettaMessages05(ms, as), nil
}

func (h *handler) updateMessage05(r *http.Request) (any, error) {
	var req letta05.UpdateMessage
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	u := api.MessageUpdate{Role: req.Role, Text: req.Text, Name: req.Name, ToolCallID: req.ToolCallID}
	if req.ToolCalls != nil {
		calls := make([]api.StoredToolCall, len(req.ToolCalls))
		for i, tc := range req.ToolCalls {
			calls[i] = api.StoredToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
		}
		u.ToolCalls = &calls
	}
	m, err := h.svc.UpdateMessage(r.Context(), r.PathValue("agent_id"), r.PathValue("message_id"), u)
	if err != nil {
		return nil, err
	}
	return message05(m), nil
}

func (h *handler) createBlock05(r *http.Request) (any, error) {
	var req letta05.CreateBlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Label == nil || *req.Label == "" {
		return nil, unprocessable("label is required")
	}
	if req.Value == nil {
		return nil, unprocessable("value is required")
	}
	name := req.TemplateName
	if name == nil {
		name = req.Name
	}
	isTemplate := true // 0.5's BlockCreate default
	if req.IsTemplate != nil {
		isTemplate = *req.IsTemplate
	} else if req.Template != nil {
		isTemplate = *req.Template // 0.5.1
	}
	b, err := h.svc.CreateBlock(r.Context(), api.CreateBlock{
		Label: *req.Label, Value: *req.Value, Limit: req.Limit, TemplateName: name, IsTemplate: &isTemplate,
		Description: req.Description, OldMetadata: req.Metadata,
	})
	if err != nil {
		return nil, err
	}
	return block05(b), nil
}

func (h *handler) updateBlock05(r *http.Request) (any, error) {
	var req letta05.UpdateBlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	name := req.TemplateName
	if name == nil {
		name = req.Name
	}
	// 0.5's clients send every field of the block, defaults included
	// (template false, 0.5.1 even copies the name into the label), so an
	// update changes what 0.5's server meant to change: the value, the
	// limit, a given name, description and metadata. Whether the block is a
	// template and its label stay as they are.
	b, err := h.svc.UpdateBlock(r.Context(), r.PathValue("block_id"), api.UpdateBlock{
		Value: req.Value, Limit: req.Limit, TemplateName: name, Description: req.Description,
		OldMetadata: nonEmptyObject(req.Metadata),
	})
	if err != nil {
		return nil, err
	}
	return block05(b), nil
}

// nonEmptyObject keeps a metadata object only when it says something: {}
// and null are what 0.5's clients send when nothing was set.
func nonEmptyObject(raw json.RawMessage) json.RawMessage {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" || t == "{}" {
		return nil
	}
	return raw
}

// deleteBlock05 answers the block as it was (0.5's client returns it).
func (h *handler) deleteBlock05(r *http.Request) (any, error) {
	id := r.PathValue("block_id")
	b, err := h.svc.GetBlock(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if err := h.svc.DeleteBlock(r.Context(), id); err != nil {
		return nil, err
	}
	return block05(b), nil
}

// listTools05 pages by cursor (the id after which to start) and limit.
func (h *handler) listTools05(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	if p.Order == "" {
		p.Order = "asc"
	}
	return h.svc.ListToolsMatching(r.Context(), api.ToolFilter{}, p)
}

// createTool05 creates a tool, or updates the one of the same name (0.5's
// create_or_update). Letta's own tools are never replaced: the 0.5 client
// uploads the source of core_memory_append and core_memory_replace on every
// create_agent, and engram runs its own implementation of them.
func (h *handler) createTool05(r *http.Request) (any, error) {
	var req letta05.CreateTool
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.SourceCode) == "" {
		return nil, unprocessable("source_code is required")
	}
	if req.Name != nil && *req.Name != "" {
		if t, err := h.svc.GetToolByName(r.Context(), *req.Name); err == nil && t.ToolType != "custom" {
			return tool05(t), nil
		}
	}
	t, err := h.svc.CreateTool(r.Context(), api.CreateTool{
		SourceCode: req.SourceCode, Name: req.Name, Description: req.Description, Tags: req.Tags,
		SourceType: req.SourceType, JSONSchema: req.JSONSchema,
	}, true)
	if err != nil {
		return nil, err
	}
	return tool05(t), nil
}

func (h *handler) updateTool05(r *http.Request) (any, error) {
	var req letta05.UpdateTool
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	t, err := h.svc.UpdateTool(r.Context(), r.PathValue("tool_id"), api.UpdateTool{
		SourceCode: req.SourceCode, Name: req.Name, Description: req.Description, Tags: req.Tags,
		SourceType: req.SourceType, JSONSchema: req.JSONSchema,
	})
	if err != nil {
		return nil, err
	}
	return tool05(t), nil
}

// addBaseTools05 answers Letta's own tools, which engram always has.
func (h *handler) addBaseTools05(r *http.Request) (any, error) {
	return h.svc.ListToolsMatching(r.Context(), api.ToolFilter{LettaOnly: true}, api.Page{Order: "asc", Limit: 1000})
}

func (h *handler) createSource05(r *http.Request) (any, error) {
	var req letta05.CreateSource
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	s, err := h.svc.CreateSource(r.Context(), api.CreateSource{
		Name: req.Name, Description: req.Description, OldMetadata: req.Metadata, EmbeddingConfig: req.EmbeddingConfig,
	})
	if err != nil {
		return nil, err
	}
	return source05(s), nil
}

func (h *handler) updateSource05(r *http.Request) (any, error) {
	var req letta05.UpdateSource
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	s, err := h.svc.UpdateSource(r.Context(), r.PathValue("source_id"), api.UpdateSource{
		Name: req.Name, Description: req.Description, OldMetadata: req.Metadata, EmbeddingConfig: req.EmbeddingConfig,
	})
	if err != nil {
		return nil, err
	}
	return source05(s), nil
}

func (h *handler) deleteJob05(r *http.Request) (any, error) {
	j, err := h.svc.DeleteJob(r.Context(), r.PathValue("job_id"))
	if err != nil {
		return nil, err
	}
	return job05(j), nil
}

// engram has one organization (tenancy is not built); 0.5's admin routes
// show it and refuse to make or remove others.

func defaultOrganization() letta05.Organization {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return letta05.Organization{ID: letta05.DefaultOrgID, Name: letta05.DefaultOrgName, CreatedAt: &t}
}

func (h *handler) listOrgs05(r *http.Request) (any, error) {
	return []letta05.Organization{defaultOrganization()}, nil
}

func (h *handler) createOrg05(r *http.Request) (any, error) {
	var req letta05.CreateOrg
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return nil, invalid("engram serves one organization (%s); creating others is not supported", letta05.DefaultOrgID)
}

func (h *handler) deleteOrg05(r *http.Request) (any, error) {
	q := queryOf(r)
	id := q.str("org_id")
	if q.err != nil {
		return nil, q.err
	}
	if id != letta05.DefaultOrgID {
		return nil, fault.E(fault.NotFound, "Organization with id %s not found", id)
	}
	return nil, invalid("the organization %s is engram's only one and cannot be deleted", id)
}

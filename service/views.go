package service

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// The read models are turned into wire objects here, under the read lock;
// the results share no memory with the state.

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func rawOr(r json.RawMessage, def string) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage(def)
	}
	return append(json.RawMessage(nil), r...)
}

func nonNil[T any](xs []T) []T {
	if len(xs) == 0 { // an empty slice copied by append would be nil
		return []T{}
	}
	return append([]T(nil), xs...)
}

func blockView(b *projections.Block) api.Block {
	return api.Block{
		ID: string(b.ID), Label: b.Label, Value: b.Value, Limit: b.Limit,
		Name: strp(b.Name), TemplateName: strp(b.Name), IsTemplate: b.IsTemplate, ReadOnly: b.ReadOnly,
		Description: strp(b.Description), Metadata: rawOr(b.Metadata, "{}"), Tags: nonNil(b.Tags),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
	}
}

func toolView(t *projections.Tool) api.Tool {
	src, typ := strp(t.SourceCode), strp(t.SourceType)
	out := api.Tool{
		ID: string(t.ID), Name: t.Name, Description: strp(t.Description), SourceCode: src, SourceType: typ,
		JSONSchema: rawOr(t.JSONSchema, "null"), Tags: nonNil(t.Tags), ToolType: t.ToolType,
		ReturnCharLimit: t.ReturnCharLimit, Metadata: rawOr(t.Metadata, "{}"),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if t.TimeoutSeconds > 0 {
		v := t.TimeoutSeconds
		out.TimeoutSeconds = &v
	}
	if t.DefaultRequiresApproval {
		out.DefaultRequiresApproval = &t.DefaultRequiresApproval
	}
	return out
}

func sourceView(s *projections.Source) api.Source {
	return api.Source{
		ID: string(s.ID), Name: s.Name, Description: strp(s.Description), Instructions: strp(s.Instructions),
		EmbeddingConfig: embeddingConfig(s.EmbeddingConfig), Metadata: rawOr(s.Metadata, "{}"),
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func jobView(j *projections.Job) api.Job {
	v := api.Job{
		ID: string(j.ID), Status: j.Status, JobType: j.JobType, AgentID: strp(string(j.AgentID)),
		Metadata: rawOr(j.Metadata, "{}"), CreatedAt: j.CreatedAt,
	}
	if j.Error != "" {
		var m map[string]any
		if json.Unmarshal(v.Metadata, &m) == nil {
			m["error"] = j.Error
			v.Metadata, _ = json.Marshal(m)
		}
	}
	if !j.CompletedAt.IsZero() {
		t := j.CompletedAt
		v.CompletedAt = &t
	}
	return v
}

func llmConfig(raw json.RawMessage) *api.LLMConfig {
	if len(raw) == 0 {
		return nil
	}
	var c api.LLMConfig
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return &c
}

// llmDefaults fills the keys of an agent's llm_config that Letta always
// shows: the provider (the handle's, "base"), parallel_tool_calls false
// until set.
func llmDefaults(c *api.LLMConfig) {
	if c.ProviderName == nil {
		p := c.ModelEndpointType
		if c.Handle != nil {
			if before, _, ok := strings.Cut(*c.Handle, "/"); ok {
				p = before
			}
		}
		c.ProviderName = &p
	}
	if c.ProviderCategory == nil {
		base := "base"
		c.ProviderCategory = &base
	}
	if c.ParallelToolCalls == nil {
		no := false
		c.ParallelToolCalls = &no
	}
}

func embeddingConfig(raw json.RawMessage) *api.EmbeddingConfig {
	if len(raw) == 0 {
		return nil
	}
	var c api.EmbeddingConfig
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return &c
}

func agentBlocks(st *projections.State, a *projections.Agent) []api.Block {
	out := make([]api.Block, 0, len(a.BlockIDs))
	for _, id := range a.BlockIDs {
		if b := st.Blocks[id]; b != nil {
			out = append(out, blockView(b))
		}
	}
	return out
}

func agentView(st *projections.State, a *projections.Agent) api.AgentState {
	blocks := agentBlocks(st, a)
	tools := make([]api.Tool, 0, len(a.ToolIDs))
	for _, id := range a.ToolIDs {
		if t := st.Tools[id]; t != nil {
			tools = append(tools, toolView(t))
		}
	}
	sources := make([]api.Source, 0, len(a.SourceIDs))
	for _, id := range a.SourceIDs {
		if s := st.Sources[id]; s != nil {
			sources = append(sources, sourceView(s))
		}
	}
	msgIDs := make([]string, len(a.MessageIDs))
	for i, id := range a.MessageIDs {
		msgIDs[i] = string(id)
	}
	v := api.AgentState{
		ID: string(a.ID), Name: a.Name, Description: strp(a.Description), AgentType: a.AgentType,
		System: a.System, Blocks: blocks,
		Memory: api.Memory{Blocks: blocks, FileBlocks: []api.Block{}, PromptTemplate: promptTemplate, AgentType: a.AgentType},
		Tools:  tools, Sources: sources, Tags: nonNil(a.Tags),
		LLMConfig: llmConfig(a.LLMConfig), EmbeddingConfig: embeddingConfig(a.EmbeddingConfig),
		Metadata: rawOr(a.Metadata, "{}"), MessageIDs: msgIDs, ToolRules: rawOr(a.ToolRules, "[]"),
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	v.ModelSettings, v.CompactionSettings = modelSettingsView(v.LLMConfig), rawOr(a.CompactionSettings, "null")
	v.Secrets = secretsView(a)
	v.ToolExecEnvironmentVariables = v.Secrets
	if v.LLMConfig != nil {
		v.Model = v.LLMConfig.Handle
		llmDefaults(v.LLMConfig)
	}
	if v.EmbeddingConfig != nil {
		v.Embedding = v.EmbeddingConfig.Handle
	}
	return v
}

// promptTemplate is how core memory is rendered into the system prompt,
// reported for compatibility with clients that read it.
const promptTemplate = `{% for block in memory.values() %}<{{ block.label }} characters="{{ block.value|length }}/{{ block.limit }}">
{{ block.value }}
</{{ block.label }}>{% if not loop.last %}
{% endif %}{% endfor %}`

func passageView(env events.Envelope) (api.Passage, bool) {
	e, ok := env.Event.(*events.PassageInserted)
	if !ok {
		return api.Passage{}, false
	}
	at := env.Time
	if e.CreatedAt != nil {
		at = *e.CreatedAt
	}
	return api.Passage{
		ID: string(e.ID), Text: e.Text, Embedding: e.Embedding, EmbeddingConfig: embeddingConfig(e.EmbeddingConfig),
		AgentID: strp(string(e.AgentID)), SourceID: strp(string(e.SourceID)), FileID: strp(string(e.FileID)),
		Tags: nonNil(e.Tags), Metadata: rawOr(e.Metadata, "{}"), CreatedAt: at,
	}, true
}

// promptText is a stored message's text as the model reads it: a wrapped
// message (a client's input, a heartbeat, an alert) rendered in its
// envelope with the time it was stored at; any other as stored.
func promptText(m *events.MessageAppended, at time.Time) string {
	if m.Kind != "" {
		return agents.Render(m.Kind, m.Text, at)
	}
	return m.Text
}

// modelText is a stored message's text as an agent's loop shows it to the
// model. The MemGPT loop reads promptText. The modern loop reads inputs as
// their words alone, as Letta 0.16 sends them (create_input_messages does
// not wrap them), and an assistant's answer (Reply) as its content.
func modelText(m *events.MessageAppended, at time.Time, loop string) string {
	if m.Role == "assistant" && m.Reply != "" {
		if m.Text == "" {
			return m.Reply
		}
		return m.Text + "\n" + m.Reply
	}
	if loop == agents.LoopV1 {
		if _, words, ok := m.Words(); ok {
			return words
		}
	}
	return promptText(m, at)
}

// shownText is the text Letta's listings show for a user- or system-role
// message: what a client sent, for its input; the envelope the model read,
// for the runtime's own (login, heartbeat, system alerts), as Letta shows
// them.
func shownText(m *events.MessageAppended, at time.Time) string {
	if kind, words, ok := m.Words(); ok && kind == events.InputUser {
		return words
	}
	return promptText(m, at)
}

// messageViews expands one stored message into the LettaMessages clients
// see. They all share the stored message's id.
func messageViews(env events.Envelope) []api.LettaMessage {
	e, ok := events.AsMessage(env.Event)
	if !ok {
		return nil
	}
	base := api.LettaMessage{
		ID: string(e.ID), Date: env.Time.UTC().Truncate(time.Second),
		Name: strp(e.Name), Otid: strp(e.Otid), RunID: strp(e.RunID), StepID: strp(e.StepID),
	}
	text := e.Text
	switch e.Role {
	case "system":
		m := base
		text = promptText(e, env.Time)
		m.MessageType, m.Content = api.SystemMessageType, &text
		return []api.LettaMessage{m}
	case "user":
		m := base
		text = shownText(e, env.Time)
		m.MessageType, m.Content = api.UserMessageType, &text
		return []api.LettaMessage{m}
	case "approval":
		m := base
		m.MessageType = api.ApprovalResponseMessageType
		if in, ok := env.Event.(*events.MessageReceived); ok {
			for _, a := range in.Approvals {
				v := api.Approval{Type: "approval", ToolCallID: a.ToolCallID, Approve: a.Approve, Reason: strp(a.Reason)}
				if a.Return != nil {
					status := a.Status
					v.Type, v.Approve, v.ToolReturn, v.Status = "tool", nil, a.Return, &status
				}
				m.Approvals = append(m.Approvals, v)
			}
		}
		return []api.LettaMessage{m}
	case "tool":
		m := base
		status := "success"
		var env struct {
			Status string `json:"status"`
		}
		if json.Unmarshal([]byte(text), &env) == nil && env.Status == "Failed" {
			status = "error"
		}
		m.MessageType, m.ToolReturn, m.Status, m.ToolCallID = api.ToolReturnMessageType, &text, &status, strp(e.ToolCallID)
		m.Stdout, m.Stderr = e.Stdout, e.Stderr
		return []api.LettaMessage{m}
	}
	var out []api.LettaMessage
	if e.Reasoning != "" { // native reasoning first, as the model produced it
		m := base
		r, src := e.Reasoning, "reasoner_model"
		m.MessageType, m.Reasoning, m.Source = api.ReasoningMessageType, &r, &src
		out = append(out, m)
	}
	if text != "" {
		m := base
		m.MessageType, m.Reasoning = api.ReasoningMessageType, &text
		out = append(out, m)
	}
	if e.Reply != "" { // the modern loop's answer
		m := base
		reply := e.Reply
		m.MessageType, m.Content = api.AssistantMessageType, &reply
		out = append(out, m)
	}
	if e.StopReason == agents.StopRequiresApproval && len(e.ToolCalls) > 0 {
		// The calls wait for the client: one request names them all.
		m := base
		for _, tc := range e.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, api.ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID})
		}
		m.MessageType, m.ToolCall = api.ApprovalRequestMessageType, &m.ToolCalls[0]
		return append(out, m)
	}
	for _, tc := range e.ToolCalls {
		m := base
		if tc.Name == "send_message" {
			var args struct {
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
				msg := args.Message
				m.MessageType, m.Content = api.AssistantMessageType, &msg
				out = append(out, m)
				continue
			}
		}
		call := api.ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
		m.MessageType, m.ToolCall, m.ToolCalls = api.ToolCallMessageType, &call, []api.ToolCall{call}
		out = append(out, m)
	}
	return out
}

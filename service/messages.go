package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// A send runs in three phases. The user's message is appended first, so an
// accepted message is never lost. Then each step of the heartbeat chain
// calls the model and commits everything it produced (its input, the
// model's turn, the function's return, memory edits, archival inserts) as
// one atomic batch. A step that fails leaves nothing behind; a process that
// dies mid-step leaves the user's message unanswered, and the next send (or
// Resume) runs it.

// Input is one message a client sends.
type Input struct {
	Role string // user or system
	Text string
	Name string
	Otid string
}

// SendOptions tunes one send.
type SendOptions struct {
	MaxSteps            int                    // 0: the service default
	UseAssistantMessage bool                   // show send_message as assistant_message
	OnMessage           func(api.LettaMessage) // called for each message as its step commits
	OnDelta             func(agents.Delta)     // token deltas while the model generates
	// Key makes the send idempotent: a send with a key already used on this
	// agent runs nothing and answers with what the first one produced. The
	// REST API takes it from Idempotency-Key or the message's otid.
	Key string
}

// Inputs converts a SendMessage body into inputs, refusing malformed ones.
func Inputs(req api.SendMessage) ([]Input, error) {
	hasInput := len(req.Input) > 0 && string(req.Input) != "null"
	if hasInput && len(req.Messages) > 0 {
		return nil, unprocessable("Cannot specify both messages and input")
	}
	if hasInput {
		text, err := contentText(req.Input)
		if err != nil {
			return nil, err
		}
		return []Input{{Role: "user", Text: text}}, nil
	}
	if req.Messages == nil {
		return nil, unprocessable("Either messages or input must be provided")
	}
	if len(req.Messages) == 0 {
		return nil, unprocessable("Messages must not be empty")
	}
	var out []Input
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "system" {
			return nil, unprocessable("messages[%d].role must be user or system, not %q", i, m.Role)
		}
		var text string
		switch {
		case len(m.Content) > 0 && string(m.Content) != "null":
			t, err := contentText(m.Content)
			if err != nil {
				return nil, unprocessable("messages[%d].content: %v", i, fault.Message(err))
			}
			text = t
		case m.Text != nil:
			text = *m.Text
		}
		if strings.TrimSpace(text) == "" {
			return nil, unprocessable("messages[%d] has no text", i)
		}
		if err := checkText("message", text, MaxTextLen); err != nil {
			return nil, err
		}
		in := Input{Role: m.Role, Text: text}
		if m.Name != nil {
			in.Name = *m.Name
		}
		if m.Otid != nil {
			in.Otid = *m.Otid
		}
		out = append(out, in)
	}
	return out, nil
}

// contentText reads a message content: a string or a list of text parts.
func contentText(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", unprocessable("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "" && p.Type != "text" {
			return "", unprocessable("content part type %q is not supported (text only)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func (s *Service) mailbox(agentID string) *sync.Mutex {
	m, _ := s.mailboxes.LoadOrStore(agentID, new(sync.Mutex))
	return m.(*sync.Mutex)
}

// SendMessage gives an agent messages and runs it until it stops: the
// heartbeat chain ends, the step limit is reached, or a step fails. One
// agent processes one send at a time, in arrival order.
func (s *Service) SendMessage(ctx context.Context, agentID string, inputs []Input, opts SendOptions) (api.LettaResponse, error) {
	mb := s.mailbox(agentID)
	mb.Lock()
	defer mb.Unlock()
	if _, err := s.GetAgent(ctx, agentID); err != nil {
		return api.LettaResponse{}, err
	}
	if opts.Key != "" {
		resp, ok, err := s.replaySend(ctx, agentID, opts.Key, opts.UseAssistantMessage)
		if err != nil {
			return resp, err
		}
		if ok && resp.Usage.StepCount > 0 {
			return resp, nil
		}
		if ok { // accepted before, never answered (a failed or interrupted step): answer it now
			model, name, window, err := s.modelFor(agentID)
			if err != nil {
				return api.LettaResponse{}, err
			}
			return s.run(ctx, agentID, model, name, window, opts)
		}
		if len(inputs) > 0 && inputs[0].Otid == "" {
			inputs[0].Otid = opts.Key
		}
	}
	model, name, window, err := s.modelFor(agentID)
	if err != nil {
		return api.LettaResponse{}, err
	}
	if _, err := s.appendInputs(ctx, agentID, inputs); err != nil {
		return api.LettaResponse{}, err
	}
	return s.run(ctx, agentID, model, name, window, opts)
}

// replayWindow is how many recent messages a retried send is looked for in.
const replayWindow = 500

// replaySend finds an earlier send with the same key and rebuilds its
// response from the log: what the agent produced after that input, up to
// the next input from a client.
func (s *Service) replaySend(ctx context.Context, agentID, key string, useAssistant bool) (api.LettaResponse, bool, error) {
	var refs []projections.Ref
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			refs = append(refs, a.Messages[max(0, len(a.Messages)-replayWindow):]...)
		}
	})
	start := -1
	var envs []events.Envelope
	for i := len(refs) - 1; i >= 0 && start < 0; i-- {
		env, err := s.log.Load(ctx, refs[i].Seq)
		if err != nil {
			return api.LettaResponse{}, false, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		envs = append(envs, env)
		if m, ok := events.AsMessage(env.Event); ok && m.Otid == key && (m.Role == "user" || m.Role == "system") {
			start = i
		}
	}
	if start < 0 {
		return api.LettaResponse{}, false, nil
	}
	slices.Reverse(envs) // oldest first: the keyed input, then what followed
	resp := api.LettaResponse{
		Messages:   []api.LettaMessage{},
		StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{}},
	}
	for _, env := range envs[1:] {
		m, ok := events.AsMessage(env.Event)
		if !ok {
			continue
		}
		if m.Otid != "" || (m.Role == "user" && strings.Contains(m.Text, `"type": "user_message"`)) {
			break // the next client input
		}
		if m.Role == "assistant" {
			resp.Usage.StepCount++
		}
		if m.Role == "user" || m.Role == "system" {
			continue
		}
		for _, v := range messageViews(env) {
			if !useAssistant && v.MessageType == api.AssistantMessageType {
				v = asToolCall(m, v)
			}
			resp.Messages = append(resp.Messages, v)
		}
	}
	return resp, true, nil
}

// modelFor finds the model an agent runs on, or says what to configure.
func (s *Service) modelFor(agentID string) (agents.Model, string, int, error) {
	var cfg *api.LLMConfig
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			cfg = llmConfig(a.LLMConfig)
		}
	})
	if cfg == nil {
		return nil, "", 0, invalid("agent %s has no model: set one with PATCH /v1/agents/%s {\"model\": \"provider/name\"}, and start the server with a provider configured (OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY)", agentID, agentID)
	}
	handle := cfg.ModelEndpointType + "/" + cfg.Model
	if cfg.Handle != nil && *cfg.Handle != "" {
		handle = *cfg.Handle
	}
	if s.cfg.Providers == nil {
		return nil, "", 0, invalid("no model provider is configured on this server: start it with OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY set (agent %s uses %s)", agentID, handle)
	}
	m, name, err := s.cfg.Providers.Lookup(handle)
	if err != nil {
		return nil, "", 0, invalid("agent %s uses model %s, which this server cannot run: %v", agentID, handle, err)
	}
	return m, name, cfg.ContextWindow, nil
}

// appendInputs stores the client's messages before anything runs.
func (s *Service) appendInputs(ctx context.Context, agentID string, inputs []Input) ([]string, error) {
	c := s.command(ctx, "send_message", agentID)
	var ids []string
	err := s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		if _, err := s.lookupAgent(st, agentID); err != nil {
			return err
		}
		ids = ids[:0]
		d.expectAt(st, agentAgg(agentID))
		for _, in := range inputs {
			text := agents.UserMessage(in.Text, c.now)
			role := "user"
			if in.Role == "system" {
				role, text = "system", agents.SystemAlert(in.Text, c.now)
			}
			id := c.newID(events.PrefixMessage)
			ids = append(ids, id)
			d.add(c, agentAgg(agentID), &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: role, Text: text, Name: in.Name, Otid: in.Otid}})
		}
		return nil
	})
	return ids, err
}

// stepContext is what a step reads, loaded from the projection and the log.
type stepContext struct {
	state   agents.State
	version events.Seq
	blocks  map[string]projections.Version // block id → version
	msgs    int                            // messages in context, system included
	warned  bool                           // the context already holds a memory-pressure warning
}

func (s *Service) loadContext(ctx context.Context, agentID string) (stepContext, error) {
	var (
		sc        stepContext
		refs      []projections.Ref
		err       error
		prompt    string
		recall    int
		archival  int
		blocks    []agents.Block
		toolDefs  []agents.Tool
		limits    = map[string]int{}
		llm       *api.LLMConfig
		updatedAt time.Time
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			err = s.agentNotFound(agentID)
			return
		}
		sc.version = a.Version.Seq
		sc.blocks = map[string]projections.Version{}
		prompt, recall, archival, updatedAt = a.System, len(a.Messages), len(a.Passages), a.UpdatedAt
		llm = llmConfig(a.LLMConfig)
		for _, id := range a.BlockIDs {
			if b := st.Blocks[id]; b != nil {
				blocks = append(blocks, agents.Block{ID: string(b.ID), Label: b.Label, Value: b.Value, Limit: b.Limit})
				sc.blocks[string(b.ID)] = b.Version
			}
		}
		for _, id := range a.ToolIDs {
			t := st.Tools[id]
			if t == nil {
				continue
			}
			var schema struct {
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
			}
			json.Unmarshal(t.JSONSchema, &schema)
			if len(schema.Parameters) == 0 {
				schema.Parameters = json.RawMessage(`{"type":"object","properties":{},"required":[]}`)
			}
			toolDefs = append(toolDefs, agents.Tool{Name: t.Name, Description: schema.Description, Parameters: schema.Parameters})
			limits[t.Name] = t.ReturnCharLimit
		}
		byID := make(map[string]projections.Ref, len(a.Messages))
		for _, r := range a.Messages {
			byID[r.ID] = r
		}
		for _, id := range a.MessageIDs {
			if r, ok := byID[string(id)]; ok {
				refs = append(refs, r)
			}
		}
	})
	if err != nil {
		return sc, err
	}
	var msgs []agents.Message
	for i, r := range refs {
		env, err := s.log.Load(ctx, r.Seq)
		if err != nil {
			return sc, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		e, ok := events.AsMessage(env.Event)
		if !ok || (i == 0 && e.Role == "system") {
			continue // the stored system message is compiled afresh below
		}
		if e.Role == "user" && strings.Contains(e.Text, "will soon reach its maximum length") {
			sc.warned = true
		}
		m := agents.Message{Role: e.Role, Content: e.Text, Name: e.Name, ToolCallID: e.ToolCallID}
		for _, tc := range e.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, agents.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		msgs = append(msgs, m)
	}
	sc.msgs = len(refs)
	sc.state = agents.State{
		System:     agents.CompileSystem(prompt, blocks, recall, archival, updatedAt),
		Blocks:     blocks,
		Context:    msgs,
		Tools:      toolDefs,
		ToolLimits: limits,
	}
	if llm != nil {
		sc.state.ContextWindow = llm.ContextWindow
		sc.state.Temperature = llm.Temperature
		sc.state.InnerThoughts = llm.PutInnerThoughtsInKwargs == nil || *llm.PutInnerThoughtsInKwargs
		if llm.Model == "gpt-4" && llm.PutInnerThoughtsInKwargs == nil {
			sc.state.InnerThoughts = false
		}
	}
	return sc, nil
}

// run steps the agent until the chain ends.
func (s *Service) run(ctx context.Context, agentID string, model agents.Model, name string, window int, opts SendOptions) (api.LettaResponse, error) {
	return s.runFrom(ctx, agentID, model, name, window, nil, opts)
}

// runFrom is run with a first chained input (a heartbeat, a warning).
func (s *Service) runFrom(ctx context.Context, agentID string, model agents.Model, name string, window int, first *string, opts SendOptions) (api.LettaResponse, error) {
	maxSteps := opts.MaxSteps
	if maxSteps <= 0 {
		maxSteps = s.cfg.MaxSteps
	}
	resp := api.LettaResponse{
		Messages:   []api.LettaMessage{},
		StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{}},
	}
	next := first // the chained input of the next step
	for step := 0; ; step++ {
		if step >= maxSteps {
			resp.StopReason.StopReason = "max_steps"
			return resp, nil
		}
		out, input, err := s.step(ctx, agentID, model, name, next, opts)
		if err != nil {
			return resp, err
		}
		resp.Usage.StepCount++
		resp.Usage.PromptTokens += out.usage.PromptTokens
		resp.Usage.CompletionTokens += out.usage.CompletionTokens
		resp.Usage.TotalTokens += out.usage.TotalTokens
		for _, m := range out.messages {
			resp.Messages = append(resp.Messages, m)
			if opts.OnMessage != nil {
				opts.OnMessage(m)
			}
		}
		_ = input
		switch {
		case out.Warning:
			t := agents.SystemAlert(agents.MemoryWarning, s.cfg.Clock())
			next = &t
		case out.Failed:
			t := agents.Heartbeat(agents.HeartbeatFailed, s.cfg.Clock())
			next = &t
		case out.Heartbeat:
			t := agents.Heartbeat(agents.HeartbeatRequested, s.cfg.Clock())
			next = &t
		default:
			return resp, nil
		}
	}
}

type stepResult struct {
	agents.Output
	messages []api.LettaMessage
	usage    agents.Usage
}

// step runs one model call and commits its events atomically. A conflict
// with a concurrent write reloads and runs the step again.
func (s *Service) step(ctx context.Context, agentID string, model agents.Model, name string, input *string, opts SendOptions) (stepResult, *string, error) {
	for attempt := 0; ; attempt++ {
		sc, err := s.loadContext(ctx, agentID)
		if err != nil {
			return stepResult{}, nil, err
		}
		now := s.cfg.Clock().UTC()
		if input != nil {
			sc.state.Context = append(sc.state.Context, agents.Message{Role: "user", Content: *input})
		}
		sc.state.Model = name
		sc.state.Stream = opts.OnDelta
		if w := sc.state.ContextWindow; w > 0 && attempt < 3 && s.contextTokens(sc.state) > w {
			// The window is already full: summarize before asking the model.
			if err := s.summarize(ctx, agentID, model, name); err != nil {
				return stepResult{}, nil, err
			}
			continue
		}
		out, err := agents.Step(ctx, model, sc.state, env{s: s, agentID: agentID, now: now})
		if errors.Is(err, agents.ErrContextOverflow) && attempt < 3 {
			if serr := s.summarize(ctx, agentID, model, name); serr != nil {
				return stepResult{}, nil, serr
			}
			continue // the step again, on the shorter context
		}
		if errors.Is(err, agents.ErrContextOverflow) {
			return stepResult{}, nil, fault.Wrap(fault.Invalid, err, "the conversation no longer fits the model's context window even after summarizing")
		}
		if err != nil {
			if ctx.Err() != nil {
				return stepResult{}, nil, fault.Wrap(fault.Unavailable, err, "request cancelled")
			}
			return stepResult{}, nil, fault.Wrap(fault.Unavailable, err, "the model provider failed: %v; nothing was stored for this step, send again to retry", err)
		}
		c := s.command(ctx, "step", agentID)
		c.id = events.NewID("step", now) // each step is its own command
		c.derived = false
		var d decision
		agg := agentAgg(agentID)
		d.expect = append(d.expect, events.Expectation{Aggregate: agg, Version: sc.version})
		var stored []*events.MessageAppended
		add := func(m *events.MessageAppended) {
			m.ID = events.MessageID(c.newID(events.PrefixMessage))
			stored = append(stored, m)
			d.add(c, agg, m)
		}
		if input != nil {
			add(&events.MessageAppended{Role: "user", Text: *input})
		}
		am := &events.MessageAppended{Role: "assistant", Text: out.Assistant.Content, Model: name}
		for _, tc := range out.Assistant.ToolCalls {
			am.ToolCalls = append(am.ToolCalls, events.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		add(am)
		if out.Tool != nil {
			fn := ""
			if len(am.ToolCalls) > 0 {
				fn = am.ToolCalls[0].Name
			}
			add(&events.MessageAppended{Role: "tool", Text: out.Tool.Content, Name: fn, ToolCallID: out.Tool.ToolCallID})
		}
		for _, b := range out.Edits {
			v := b.Value
			d.expect = append(d.expect, events.Expectation{Aggregate: blockAgg(b.ID), Version: sc.blocks[b.ID].Seq})
			d.add(c, blockAgg(b.ID), &events.BlockUpdated{Value: &v})
		}
		var embedding json.RawMessage
		s.read(func(st *projections.State) {
			if a := st.Agents[events.AgentID(agentID)]; a != nil {
				embedding = a.EmbeddingConfig
			}
		})
		for _, text := range out.Inserts {
			d.add(c, agg, &events.PassageInserted{ID: events.PassageID(c.newID(events.PrefixPassage)), AgentID: events.AgentID(agentID), Text: text, EmbeddingConfig: embedding})
		}
		if err := checkSize(d.evs); err != nil {
			return stepResult{}, nil, err
		}
		seq, err := s.log.Append(ctx, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs})
		var ce *events.ConflictError
		if errors.As(err, &ce) && attempt < 3 {
			s.conflicts.Add(1)
			if err := s.proj.WaitFor(ctx, ce.Latest); err != nil {
				return stepResult{}, nil, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
			}
			continue
		}
		if err != nil {
			return stepResult{}, nil, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the step was not stored")
		}
		if err := s.proj.WaitFor(ctx, seq); err != nil {
			return stepResult{}, nil, fault.Wrap(fault.Unavailable, err, "the step was stored but is not yet visible")
		}
		res := stepResult{Output: out, usage: out.Usage}
		res.Warning = out.Warning && !sc.warned // once per summarization period
		for _, m := range stored {
			if m.Role == "user" {
				continue // inputs are not echoed
			}
			env := events.Envelope{Time: now, Event: m}
			for _, v := range messageViews(env) {
				if !opts.UseAssistantMessage && v.MessageType == api.AssistantMessageType {
					v = asToolCall(m, v)
				}
				res.messages = append(res.messages, v)
			}
		}
		return res, input, nil
	}
}

// asToolCall shows a send_message call as the tool call it is.
func asToolCall(m *events.MessageAppended, v api.LettaMessage) api.LettaMessage {
	for _, tc := range m.ToolCalls {
		call := api.ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
		v.MessageType, v.Content, v.ToolCall, v.ToolCalls = api.ToolCallMessageType, nil, &call, []api.ToolCall{call}
	}
	return v
}

// env gives a step read access to the agent's memories.
type env struct {
	s       *Service
	agentID string
	now     time.Time
}

func (e env) Now() time.Time { return e.now }

func (e env) RunTool(ctx context.Context, name string, args map[string]any) (string, error) {
	return "", fmt.Errorf("tool %s cannot run on this server yet: custom tool execution is not built", name)
}

// SearchArchival matches passages containing every word of the query (case
// does not matter), oldest first. Ranked search arrives with the search index.
func (e env) SearchArchival(ctx context.Context, query string, page int) ([]string, int, error) {
	var refs []projections.Ref
	e.s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(e.agentID)]; a != nil {
			refs = append(refs, a.Passages...)
		}
	})
	var hits []string
	for _, r := range refs {
		env, err := e.s.log.Load(ctx, r.Seq)
		if err != nil {
			return nil, 0, err
		}
		if p, ok := env.Event.(*events.PassageInserted); ok && containsWords(p.Text, query) {
			hits = append(hits, fmt.Sprintf("timestamp: %s, memory: %s", agents.LocalTime(e.now), p.Text))
		}
	}
	return pageOf(hits, page), len(hits), nil
}

// SearchConversation matches user and assistant messages containing the
// query (case does not matter).
func (e env) SearchConversation(ctx context.Context, query string, page int) ([]string, int, error) {
	return e.searchMessages(ctx, page, func(m *events.MessageAppended, _ time.Time) bool {
		return strings.Contains(strings.ToLower(messageText(m)), strings.ToLower(query))
	})
}

// SearchConversationDate matches user and assistant messages from start's
// day through end's day.
func (e env) SearchConversationDate(ctx context.Context, start, end time.Time, page int) ([]string, int, error) {
	end = end.AddDate(0, 0, 1)
	return e.searchMessages(ctx, page, func(_ *events.MessageAppended, at time.Time) bool {
		return !at.Before(start) && at.Before(end)
	})
}

func (e env) searchMessages(ctx context.Context, page int, match func(*events.MessageAppended, time.Time) bool) ([]string, int, error) {
	var refs []projections.Ref
	e.s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(e.agentID)]; a != nil {
			refs = append(refs, a.Messages...)
		}
	})
	var hits []string
	for _, r := range refs {
		env, err := e.s.log.Load(ctx, r.Seq)
		if err != nil {
			return nil, 0, err
		}
		m, ok := events.AsMessage(env.Event)
		if !ok || (m.Role != "user" && m.Role != "assistant") || !match(m, env.Time) {
			continue
		}
		hits = append(hits, fmt.Sprintf("timestamp: %s, %s - %s", env.Time.UTC().Format("2006-01-02 15:04:05.000000+00:00"), m.Role, messageText(m)))
	}
	return pageOf(hits, page), len(hits), nil
}

// messageText is what a search sees of a message: the user's words (not
// the envelope), or the assistant's thoughts and what it said.
func messageText(m *events.MessageAppended) string {
	text := m.Text
	var env struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	if m.Role == "user" && json.Unmarshal([]byte(text), &env) == nil && env.Type == "user_message" {
		text = env.Message
	}
	for _, tc := range m.ToolCalls {
		if tc.Name == agents.ToolSendMessage {
			var args struct {
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
				text += " " + args.Message
			}
		}
	}
	return strings.TrimSpace(text)
}

func containsWords(text, query string) bool {
	text = strings.ToLower(text)
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

func pageOf(hits []string, page int) []string {
	start := page * agents.RetrievalPageSize
	if page < 0 || start >= len(hits) {
		return nil
	}
	return hits[start:min(start+agents.RetrievalPageSize, len(hits))]
}

// Pending lists agents whose newest message is input nothing has answered
// yet: the process stopped between accepting a message and committing the
// step that answers it.
func (s *Service) Pending(ctx context.Context) ([]string, error) {
	type last struct {
		id  string
		seq events.Seq
	}
	var cands []last
	s.read(func(st *projections.State) {
		for _, a := range st.Agents {
			if n := len(a.Messages); n > 4 { // past the initial messages
				cands = append(cands, last{string(a.ID), a.Messages[n-1].Seq})
			}
		}
	})
	var out []string
	for _, c := range cands {
		env, err := s.log.Load(ctx, c.seq)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		if m, ok := events.AsMessage(env.Event); ok && (m.Role == "user" || m.Role == "system") {
			out = append(out, c.id)
		}
	}
	return out, nil
}

// Resume runs an agent on input it has not answered yet, as SendMessage
// would have. It does nothing if there is none.
func (s *Service) Resume(ctx context.Context, agentID string) (api.LettaResponse, error) {
	mb := s.mailbox(agentID)
	mb.Lock()
	defer mb.Unlock()
	pending, err := s.Pending(ctx)
	if err != nil || !slices.Contains(pending, agentID) {
		return api.LettaResponse{}, err
	}
	model, name, window, err := s.modelFor(agentID)
	if err != nil {
		return api.LettaResponse{}, err
	}
	return s.run(ctx, agentID, model, name, window, SendOptions{UseAssistantMessage: true})
}

// contextTokens estimates the tokens a step's request takes: the system
// message, every message, and the tool schemas.
func (s *Service) contextTokens(st agents.State) int {
	n := s.tokensOf(agents.Message{Content: st.System})
	for _, m := range st.Context {
		n += s.tokensOf(m)
	}
	for _, t := range st.Tools {
		n += s.tokensOf(agents.Message{Content: t.Name + t.Description + string(t.Parameters)})
	}
	return n
}

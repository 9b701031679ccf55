package service

import (
	"context"
	"encoding/json"
	"errors"
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

// SendMessage gives an agent messages and waits while the agent answers
// them: the heartbeat chain ends, the step limit is reached, or a step
// fails. The messages are appended first, so an accepted message is never
// lost; the node that owns the agent's partition runs it (Process) and
// reports each message as its step commits. One agent answers one send at
// a time, in arrival order.
func (s *Service) SendMessage(ctx context.Context, agentID string, inputs []Input, opts SendOptions) (api.LettaResponse, error) {
	if _, err := s.GetAgent(ctx, agentID); err != nil {
		return api.LettaResponse{}, err
	}
	if opts.Key != "" {
		resp, seq, ok, err := s.replaySend(ctx, agentID, opts.Key, opts.UseAssistantMessage)
		if err != nil {
			return resp, err
		}
		if ok && resp.Usage.StepCount > 0 {
			return resp, nil
		}
		if ok { // accepted before, never answered (a failed or interrupted run): answer it now
			return s.Process(ctx, agentID, seq, opts)
		}
		if len(inputs) > 0 && inputs[0].Otid == "" {
			inputs[0].Otid = opts.Key
		}
	}
	if _, _, err := s.modelFor(agentID); err != nil {
		return api.LettaResponse{}, err
	}
	c := s.command(ctx, "send_message", agentID)
	ids := make([]string, len(inputs))
	for i := range inputs {
		ids[i] = c.newID(events.PrefixMessage)
	}
	if s.cfg.Runs == nil { // no workers: run here
		seq, err := s.appendInputs(ctx, c, agentID, inputs, ids, opts)
		if err != nil {
			return api.LettaResponse{}, err
		}
		return s.Process(ctx, agentID, seq, opts)
	}
	// Watch the run before the input exists, so that no report is missed.
	reports := make(chan runReport, 256)
	done := make(chan struct{}) // closed when this call returns: reports are dropped after it
	defer close(done)
	stop, err := s.cfg.Runs.WatchRun(ids[len(ids)-1], func(b []byte) {
		var r runReport
		if json.Unmarshal(b, &r) == nil {
			select {
			case reports <- r:
			case <-done:
			}
		}
	})
	if err != nil {
		return api.LettaResponse{}, fault.Wrap(fault.Unavailable, err, "cannot watch the run")
	}
	defer stop()
	if _, err := s.appendInputs(ctx, c, agentID, inputs, ids, opts); err != nil {
		return api.LettaResponse{}, err
	}
	resp := api.LettaResponse{Messages: []api.LettaMessage{}}
	for {
		select {
		case <-ctx.Done():
			return resp, fault.Wrap(fault.Unavailable, ctx.Err(), "stopped waiting for the agent; the message was accepted and will be answered")
		case r := <-reports:
			switch {
			case r.Delta != nil:
				if opts.OnDelta != nil {
					opts.OnDelta(*r.Delta)
				}
			case r.Message != nil:
				m := *r.Message
				if !opts.UseAssistantMessage && m.MessageType == api.AssistantMessageType {
					m = assistantAsCall(m)
				}
				resp.Messages = append(resp.Messages, m)
				if opts.OnMessage != nil {
					opts.OnMessage(m)
				}
			case r.Error != nil:
				return resp, &fault.Error{Kind: faultKind(r.Error.Kind), Msg: r.Error.Detail}
			case r.Done != nil:
				resp.StopReason, resp.Usage = r.Done.StopReason, r.Done.Usage
				return resp, nil
			}
		}
	}
}

// RunBus carries a run's progress from the node that runs an agent to the
// caller waiting for it.
type RunBus interface {
	// PublishRun sends one report about the run answering inputID.
	PublishRun(inputID string, data []byte) error
	// WatchRun delivers every report about the run answering inputID to fn
	// until stop is called; it is subscribed when it returns.
	WatchRun(inputID string, fn func([]byte)) (stop func(), err error)
}

// runReport is one report of a run: a message, the end, or a failure.
type runReport struct {
	Delta   *agents.Delta      `json:"delta,omitempty"`
	Message *api.LettaMessage  `json:"message,omitempty"`
	Done    *api.LettaResponse `json:"done,omitempty"`
	Error   *struct {
		Detail string `json:"detail"`
		Kind   string `json:"kind"`
	} `json:"error,omitempty"`
}

func faultKind(name string) fault.Kind {
	for k := fault.Internal; k <= fault.Unprocessable; k++ {
		if k.String() == name {
			return k
		}
	}
	return fault.Internal
}

// assistantAsCall shows a send_message reply as the tool call it is.
func assistantAsCall(m api.LettaMessage) api.LettaMessage {
	args, _ := json.Marshal(map[string]string{"message": derefString(m.Content)})
	call := api.ToolCall{Name: agents.ToolSendMessage, Arguments: string(args)}
	m.MessageType, m.Content, m.ToolCall, m.ToolCalls = api.ToolCallMessageType, nil, &call, []api.ToolCall{call}
	return m
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Process runs an agent on the client input at seq, unless a run already
// took it: every input received up to seq and not yet taken, and the inputs
// sent together with it, join the context in one step. The node that owns
// the agent's partition calls it for each input it is delivered; reports
// go to the run bus (when there is one) under each taken input's id.
func (s *Service) Process(ctx context.Context, agentID string, seq events.Seq, opts SendOptions) (api.LettaResponse, error) {
	// The input may reach this worker before the projection has it.
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		return api.LettaResponse{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	mb := s.mailbox(agentID)
	mb.Lock()
	defer mb.Unlock()
	take, err := s.untaken(ctx, agentID, seq)
	if err != nil || len(take) == 0 {
		return api.LettaResponse{Messages: []api.LettaMessage{}}, err
	}
	defer s.cfg.Metrics.RunStarted()()
	report := func(r runReport) {
		if s.cfg.Runs == nil {
			return
		}
		b, _ := json.Marshal(r)
		for _, in := range take {
			s.cfg.Runs.PublishRun(string(in.id), b)
		}
	}
	fail := func(err error) (api.LettaResponse, error) {
		report(runReport{Error: &struct {
			Detail string `json:"detail"`
			Kind   string `json:"kind"`
		}{fault.Message(err), fault.KindOf(err).String()}})
		return api.LettaResponse{}, err
	}
	model, name, err := s.modelFor(agentID)
	if err != nil {
		return fail(err)
	}
	if slices.ContainsFunc(take, func(t taken) bool { return t.stream }) || opts.OnDelta != nil {
		// Someone wants the tokens as they come.
		localDelta := opts.OnDelta
		opts.OnDelta = func(d agents.Delta) {
			report(runReport{Delta: &d})
			if localDelta != nil && s.cfg.Runs == nil {
				localDelta(d)
			}
		}
	}
	local := opts.OnMessage
	opts.OnMessage = func(m api.LettaMessage) {
		report(runReport{Message: &m})
		if local != nil && s.cfg.Runs == nil {
			local(m)
		}
	}
	opts.UseAssistantMessage = true // reports carry the assistant form; callers convert
	resp, err := s.runFrom(ctx, agentID, model, name, nil, take, opts)
	if err != nil {
		return fail(err)
	}
	report(runReport{Done: &api.LettaResponse{StopReason: resp.StopReason, Usage: resp.Usage}})
	return resp, nil
}

// taken is a client input a run takes into the context.
type taken struct {
	id     events.MessageID
	msg    agents.Message
	stream bool // the sender asked for tokens as they are generated
}

// untaken lists the inputs a run for the input at seq takes: those received
// up to seq and not taken yet, then those sent in the same command after it.
func (s *Service) untaken(ctx context.Context, agentID string, seq events.Seq) ([]taken, error) {
	var refs []projections.Ref
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil || seq <= a.Taken {
			return
		}
		for i := len(a.Messages) - 1; i >= 0 && a.Messages[i].Seq > a.Taken; i-- {
			if a.Messages[i].Input {
				refs = append(refs, a.Messages[i])
			}
		}
	})
	slices.Reverse(refs)
	var (
		out     []taken
		command string
	)
	for _, r := range refs {
		env, err := s.load(ctx, r)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		if r.Seq == seq {
			command = env.Command
		}
		if r.Seq > seq && env.Command != command {
			break
		}
		m, ok := events.AsMessage(env.Event)
		if !ok {
			continue
		}
		out = append(out, taken{id: m.ID, msg: agents.Message{Role: m.Role, Content: m.Text, Name: m.Name}, stream: m.StreamTokens})
	}
	if command == "" {
		return nil, nil // seq is not an untaken input
	}
	return out, nil
}

// replayWindow is how many recent messages a retried send is looked for in.
const replayWindow = 500

// replaySend finds an earlier send with the same key and rebuilds its
// response from the log: what the agent produced after that input, up to
// the next input from a client.
func (s *Service) replaySend(ctx context.Context, agentID, key string, useAssistant bool) (api.LettaResponse, events.Seq, bool, error) {
	var refs []projections.Ref
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			refs = append(refs, a.Messages[max(0, len(a.Messages)-replayWindow):]...)
		}
	})
	start := -1
	var envs []events.Envelope
	for i := len(refs) - 1; i >= 0 && start < 0; i-- {
		env, err := s.load(ctx, refs[i])
		if err != nil {
			return api.LettaResponse{}, 0, false, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		envs = append(envs, env)
		if m, ok := events.AsMessage(env.Event); ok && m.Otid == key && (m.Role == "user" || m.Role == "system") {
			start = i
		}
	}
	if start < 0 {
		return api.LettaResponse{}, 0, false, nil
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
	return resp, refs[start].Seq, true, nil
}

// modelFor finds the model an agent runs on, or says what to configure.
func (s *Service) modelFor(agentID string) (agents.Model, string, error) {
	var cfg *api.LLMConfig
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			cfg = llmConfig(a.LLMConfig)
		}
	})
	if cfg == nil {
		return nil, "", invalid("agent %s has no model: set one with PATCH /v1/agents/%s {\"model\": \"provider/name\"}, and start the server with a provider configured (OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY)", agentID, agentID)
	}
	handle := cfg.ModelEndpointType + "/" + cfg.Model
	if cfg.Handle != nil && *cfg.Handle != "" {
		handle = *cfg.Handle
	}
	if s.cfg.Providers == nil {
		return nil, "", invalid("no model provider is configured on this server: start it with OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY set (agent %s uses %s)", agentID, handle)
	}
	m, name, err := s.cfg.Providers.Lookup(handle)
	if err != nil {
		return nil, "", invalid("agent %s uses model %s, which this server cannot run: %v", agentID, handle, err)
	}
	return m, name, nil
}

// appendInputs stores the client's messages before anything runs.
// It returns the sequence of the last one.
func (s *Service) appendInputs(ctx context.Context, c *command, agentID string, inputs []Input, ids []string, opts SendOptions) (events.Seq, error) {
	err := s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		if _, err := s.lookupAgent(st, agentID); err != nil {
			return err
		}
		d.expectAt(st, agentAgg(agentID))
		for i, in := range inputs {
			text := agents.UserMessage(in.Text, c.now)
			role := "user"
			if in.Role == "system" {
				role, text = "system", agents.SystemAlert(in.Text, c.now)
			}
			id := ids[i]
			d.add(c, agentAgg(agentID), &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: role, Text: text, Name: in.Name, Otid: in.Otid, StreamTokens: opts.OnDelta != nil}})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var seq events.Seq
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			for i := len(a.Messages) - 1; i >= 0; i-- {
				if a.Messages[i].ID == ids[len(ids)-1] {
					seq = a.Messages[i].Seq
					break
				}
			}
		}
	})
	return seq, nil
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
		prompt, recall, archival, updatedAt = a.System, len(a.Messages), archivalCount(st, a), a.UpdatedAt
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
		refs = windowRefs(a)
	})
	if err != nil {
		return sc, err
	}
	var msgs []agents.Message
	for i, r := range refs {
		env, err := s.load(ctx, r)
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
// runFrom steps the agent until the chain ends. The first step takes the
// client inputs in take into the context, or a chained input (a heartbeat,
// a warning) given as first.
func (s *Service) runFrom(ctx context.Context, agentID string, model agents.Model, name string, first *string, take []taken, opts SendOptions) (api.LettaResponse, error) {
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
		out, err := s.step(ctx, agentID, model, name, next, take, opts)
		take = nil
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
func (s *Service) step(ctx context.Context, agentID string, model agents.Model, name string, input *string, take []taken, opts SendOptions) (stepResult, error) {
	for attempt := 0; ; attempt++ {
		sc, err := s.loadContext(ctx, agentID)
		if err != nil {
			return stepResult{}, err
		}
		now := s.cfg.Clock().UTC()
		for _, in := range take {
			sc.state.Context = append(sc.state.Context, in.msg)
		}
		if input != nil {
			sc.state.Context = append(sc.state.Context, agents.Message{Role: "user", Content: *input})
		}
		sc.state.Model = name
		sc.state.Stream = opts.OnDelta
		if w := sc.state.ContextWindow; w > 0 && attempt < 3 && s.contextTokens(sc.state) > w {
			// The window is already full: summarize before asking the model.
			if err := s.summarize(ctx, agentID, model, name); err != nil {
				return stepResult{}, err
			}
			continue
		}
		out, err := agents.Step(ctx, model, sc.state, env{s: s, agentID: agentID, now: now})
		if err == nil {
			s.cfg.Metrics.ModelCall(name, out.ModelTime, out.Usage.PromptTokens, out.Usage.CompletionTokens)
			if len(out.Assistant.ToolCalls) > 0 {
				s.cfg.Metrics.Tool(out.Failed, out.ToolTime)
			}
		} else if !errors.Is(err, agents.ErrContextOverflow) && ctx.Err() == nil {
			s.cfg.Metrics.ModelError(name)
		}
		if errors.Is(err, agents.ErrContextOverflow) && attempt < 3 {
			if serr := s.summarize(ctx, agentID, model, name); serr != nil {
				return stepResult{}, serr
			}
			continue // the step again, on the shorter context
		}
		if errors.Is(err, agents.ErrContextOverflow) {
			return stepResult{}, fault.Wrap(fault.Invalid, err, "the conversation no longer fits the model's context window even after summarizing")
		}
		if err != nil {
			if ctx.Err() != nil {
				return stepResult{}, fault.Wrap(fault.Unavailable, err, "request cancelled")
			}
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the model provider failed: %v; nothing was stored for this step, send again to retry", err)
		}
		c := s.command(ctx, "step", agentID)
		c.id = events.NewID("step", now) // each step is its own command
		c.derived = false
		var d decision
		agg := agentAgg(agentID)
		d.expect = append(d.expect, events.Expectation{Aggregate: agg, Version: sc.version})
		if len(take) > 0 {
			ids := make([]events.MessageID, len(take))
			for i, in := range take {
				ids[i] = in.id
			}
			d.add(c, agg, &events.InputTaken{IDs: ids})
		}
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
			add(&events.MessageAppended{Role: "tool", Text: out.Tool.Content, Name: fn, ToolCallID: out.Tool.ToolCallID, Stdout: out.Stdout, Stderr: out.Stderr})
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
		vecs, err := s.embed(ctx, embedding, out.Inserts)
		if err != nil {
			// The passage is kept, found by its words until re-embedded.
			s.cfg.Logger.Warn("embedding an archival insert failed; stored without a vector", "agent", agentID, "err", err)
			vecs = nil
		}
		for i, text := range out.Inserts {
			p := &events.PassageInserted{ID: events.PassageID(c.newID(events.PrefixPassage)), AgentID: events.AgentID(agentID), Text: text, EmbeddingConfig: embedding}
			if vecs != nil {
				p.Embedding = vecs[i]
			}
			d.add(c, agg, p)
		}
		if err := checkSize(d.evs); err != nil {
			return stepResult{}, err
		}
		if s.cfg.BeforeStepCommit != nil {
			s.cfg.BeforeStepCommit()
		}
		seq, err := s.log.Append(ctx, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs})
		for tries := 0; tries < 10 && err != nil; tries++ {
			// New client inputs queue on the agent while it runs; they do not
			// change what this step saw, so the step stands: append it again
			// at the agent's new version instead of asking the model again.
			var ce *events.ConflictError
			if !errors.As(err, &ce) || ce.Aggregate != agg {
				break
			}
			if werr := s.proj.WaitFor(ctx, ce.Latest); werr != nil {
				break
			}
			var state, now events.Seq
			s.read(func(st *projections.State) {
				if a := st.Agents[events.AgentID(agentID)]; a != nil {
					state, now = a.StateSeq, a.Version.Seq
				}
			})
			if state > sc.version || now == 0 {
				break // something the step depends on changed
			}
			d.expect[0].Version = now
			seq, err = s.log.Append(ctx, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs})
		}
		var ce *events.ConflictError
		if errors.As(err, &ce) && attempt < 3 {
			s.conflicts.Add(1)
			if err := s.proj.WaitFor(ctx, ce.Latest); err != nil {
				return stepResult{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
			}
			continue
		}
		if err != nil {
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the step was not stored")
		}
		if err := s.proj.WaitFor(ctx, seq); err != nil {
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the step was stored but is not yet visible")
		}
		s.cfg.Metrics.Step(name)
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
		return res, nil
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

// Untaken maps each agent with client input no run has taken to the
// sequence of its newest such input: what a crash left unanswered (or a
// run that failed).
func (s *Service) Untaken() map[string]events.Seq {
	out := map[string]events.Seq{}
	s.read(func(st *projections.State) {
		for id, a := range st.Agents {
			for i := len(a.Messages) - 1; i >= 0 && a.Messages[i].Seq > a.Taken; i-- {
				if a.Messages[i].Input {
					out[string(id)] = a.Messages[i].Seq
					break
				}
			}
		}
	})
	return out
}

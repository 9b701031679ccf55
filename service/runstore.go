package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/memo"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/search"
)

// The commands and queries an agent's run issues. Package runner runs
// agents: it asks here what waits, what a step reads and which tool to run,
// calls the model and the tools itself, and stores what happened with the
// commands below, which decide the events. Nothing here calls a model or
// runs a tool.

// Waiting is a client input, or a run request, that no run has taken.
type Waiting struct {
	ID      events.MessageID
	Seq     events.Seq
	Command string         // the command that stored it: a send's inputs share one
	Message agents.Message // the input as the model reads it (empty for a request)
	// MaxSteps, on a send's first input, is the most steps its client
	// allows (0: the default).
	MaxSteps int
	// Request, when set, is a run asked for without a client message
	// (RunRequested): taken like an input, adding nothing to the context.
	Request *events.RunRequested
	// Approvals, on a client's answer to calls awaiting approval, are its
	// answers (the input adds nothing to the context: the returns do).
	Approvals []events.Approval
	// ClientTools, on a send's first input, are the tools the client runs
	// itself, offered to the model for the send's run.
	ClientTools []events.ClientTool
	// Scope, on a send's first input, is the conversation the send went to
	// and the model it asked for: what its run runs in.
	Scope Scope
}

// Scope is what a run runs in besides its agent.
type Scope struct {
	// Conversation is the conversation the send went to, whose context
	// window the run reads and writes; "" for the agent's default one (its
	// own window). A run whose conversation was deleted cannot step.
	Conversation events.ConversationID
	// Model is the model handle the send asked for (override_model); ""
	// for the conversation's, or else the agent's.
	Model string
}

// EachWaiting hands fn, oldest first, the agent's inputs and run requests
// that no run has taken, received up to upTo, until fn returns false.
func (s *Service) EachWaiting(ctx context.Context, agentID string, upTo events.Seq, fn func(Waiting) bool) error {
	var (
		pending []projections.Ref
		loop    string
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			pending = append(pending, a.Pending...)
			loop = loopOf(a.AgentType)
		}
	})
	for _, r := range pending {
		if r.Seq > upTo {
			return nil
		}
		env, err := s.load(ctx, r)
		if err != nil {
			return fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		w := Waiting{Seq: r.Seq, Command: env.Command}
		if req, ok := env.Event.(*events.RunRequested); ok {
			w.ID, w.Request = req.ID, req
		} else if m, ok := events.AsMessage(env.Event); ok {
			w.ID = m.ID
			w.Message = agents.Message{Role: m.Role, Content: modelText(m, env.Time, loop), Name: m.Name}
			if in, ok := env.Event.(*events.MessageReceived); ok {
				w.MaxSteps, w.Approvals, w.ClientTools = in.MaxSteps, in.Approvals, in.ClientTools
				w.Scope = Scope{Conversation: in.ConversationID, Model: in.OverrideModel}
			}
		} else {
			continue
		}
		if !fn(w) {
			return nil
		}
	}
	return nil
}

// StillWaiting reports whether the input id still waits for a run.
func (s *Service) StillWaiting(agentID string, id events.MessageID) bool {
	var yes bool
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			yes = slices.ContainsFunc(a.Pending, func(r projections.Ref) bool { return r.ID == string(id) })
		}
	})
	return yes
}

// Untaken maps each agent with client input no run has taken, or with a
// run that goes on after a stored step, to the sequence of its newest such
// input: what a crash left unanswered (or a run that failed).
func (s *Service) Untaken() map[string]events.Seq {
	out := map[string]events.Seq{}
	s.read(func(st *projections.State) {
		for id, a := range st.Agents {
			if n := len(a.Pending); n > 0 {
				out[string(id)] = a.Pending[n-1].Seq
			} else if r := goingOn(st, a); r != nil && len(r.Inputs) > 0 {
				out[string(id)] = r.Inputs[len(r.Inputs)-1].Seq
			}
		}
	})
	return out
}

// goingOn finds the agent's run that took its inputs and stored steps but
// not its last: nil when none.
func goingOn(st *projections.State, a *projections.Agent) *projections.Run {
	for i := len(a.Runs) - 1; i >= 0; i-- {
		if r := st.Runs[a.Runs[i]]; r != nil && r.Status == projections.RunRunning && r.Then != nil {
			return r
		}
	}
	return nil
}

// Unfinished is a run that stored steps, but not its last, and that no
// run in this process goes on with: its node stopped or died after a
// step. Continue it from Then (Loop continues it on the node that owns the
// agent now).
type Unfinished struct {
	Run    string
	Inputs []events.MessageID // the run's inputs; its reports go under their ids
	Steps  int                // the steps it stored
	Usage  events.Usage       // what they cost
	Then   events.RunThen
	// MaxSteps, ClientTools and Scope are the send's (its first input's).
	MaxSteps    int
	ClientTools []events.ClientTool
	Scope       Scope
}

// UnfinishedRun finds the agent's run that goes on after a stored step,
// or nil when none does.
func (s *Service) UnfinishedRun(ctx context.Context, agentID string) (*Unfinished, error) {
	var (
		u     *Unfinished
		first projections.Ref
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			return
		}
		r := goingOn(st, a)
		if r == nil || len(r.Inputs) == 0 {
			return
		}
		u = &Unfinished{Run: r.ID, Steps: r.Steps, Usage: r.Usage, Then: *r.Then}
		for _, in := range r.Inputs {
			u.Inputs = append(u.Inputs, events.MessageID(in.ID))
		}
		first = r.Inputs[0]
	})
	if u == nil {
		return nil, nil
	}
	env, err := s.load(ctx, first)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "cannot read the log")
	}
	if in, ok := env.Event.(*events.MessageReceived); ok {
		u.MaxSteps, u.ClientTools = in.MaxSteps, in.ClientTools
		u.Scope = Scope{Conversation: in.ConversationID, Model: in.OverrideModel}
	}
	return u, nil
}

// RunProgress is how many steps the run stored (-1 for a run the read
// models do not know), and whether it goes on after the last (it took its
// inputs, has not ended, and its last step says how it goes on).
func (s *Service) RunProgress(run string) (steps int, goesOn bool) {
	steps = -1
	s.read(func(st *projections.State) {
		if r := st.Runs[run]; r != nil {
			steps, goesOn = r.Steps, r.Status == projections.RunRunning && r.Then != nil
		}
	})
	return steps, goesOn
}

// RunOf names the run that answers the send whose first input is inputID:
// every message the run stores carries it (MessageAppended.RunID).
func RunOf(inputID string) string { return events.DerivedID("run", inputID) }

// RunCancelled reports whether a client cancelled the run.
func (s *Service) RunCancelled(run string) bool { return s.cancelled(run) }

// ModelFor finds the model a run of an agent in scope runs on (runConfig),
// and the provider's name for it, or says what to configure.
func (s *Service) ModelFor(agentID string, in Scope) (agents.Model, string, error) {
	return s.modelFor(agentID, in)
}

// runConfig is the llm_config a run of agent a in scope uses, as Letta
// 0.16.8 picks it: the send's override_model; else the conversation's
// model, with the conversation's model_settings and at most the agent's
// context window; else the agent's own (nil when it has none). A handle
// no longer configured is not found.
func (s *Service) runConfig(st *projections.State, a *projections.Agent, in Scope) (*api.LLMConfig, error) {
	handle, fromConv := in.Model, false
	var c *projections.Conversation
	if in.Conversation != "" {
		if c = st.Conversations[in.Conversation]; c != nil && c.AgentID != a.ID {
			c = nil
		}
	}
	if handle == "" && c != nil && c.Model != "" {
		handle, fromConv = c.Model, true
	}
	if handle == "" {
		return runLLMConfig(a.LLMConfig), nil
	}
	raw, err := s.resolveModel(&handle, nil)
	if err != nil {
		return nil, err
	}
	cfg := llmConfig(raw)
	if cfg == nil {
		return nil, fault.E(fault.Internal, "model %s has no usable llm_config", handle)
	}
	if fromConv {
		if own := runLLMConfig(a.LLMConfig); own != nil && own.ContextWindow > 0 && (cfg.ContextWindow == 0 || own.ContextWindow < cfg.ContextWindow) {
			cfg.ContextWindow = own.ContextWindow
		}
		if err := applyModelSettings(cfg, c.ModelSettings); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// runLLMConfig is llmConfig(raw), remembered by raw's text: a send reads
// its agent's config three times (the send's checks, the run's model, the
// step's context), the same at every send. Each call returns its own copy,
// which the caller may change (runConfig sets fields of it); the fields
// that are pointers are shared with the memo, so they must be replaced,
// never written through.
func runLLMConfig(raw json.RawMessage) *api.LLMConfig {
	if len(raw) == 0 {
		return nil
	}
	c := runLLMConfigs.Get(string(raw), func() (*api.LLMConfig, int) {
		return llmConfig(raw), 2 * len(raw)
	})
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// runLLMConfigs remembers runLLMConfig's configs (nil: raw is no config).
var runLLMConfigs memo.Cache[*api.LLMConfig]

// checkOverride refuses a send's override_model that names no model this
// server has (404, as an unknown handle elsewhere).
func (s *Service) checkOverride(opts SendOptions) error {
	if opts.OverrideModel == "" {
		return nil
	}
	_, err := s.resolveModel(&opts.OverrideModel, nil)
	return err
}

// StepContext is what a step reads: the agent's state for the model, and
// the versions its decision rests on.
type StepContext struct {
	State   agents.State
	Version events.Seq                     // the agent's
	Blocks  map[string]projections.Version // block id → version
	// Conversation is the conversation whose context window this is; ""
	// for the agent's own (its default conversation).
	Conversation events.ConversationID
	// Window lists the context window's message ids, the system message's
	// first; State.Context holds the messages after it.
	Window []events.MessageID
	Stored int  // messages the agent has stored in all (recall memory)
	Warned bool // the context already holds a memory-pressure warning
	// Embedding is the agent's embedding config (its archival inserts').
	Embedding json.RawMessage
	// Awaiting are the tool calls of the agent's last step that wait for
	// the client (none ran), in order; nil when none waits.
	Awaiting []agents.ToolCall
}

// StepContext reads the agent's context for the next step of a run in
// scope: the context window of the run's conversation (the agent's own for
// the default one) under a system message compiled from the agent's
// memory, which every conversation shares.
func (s *Service) StepContext(ctx context.Context, agentID string, in Scope) (StepContext, error) {
	var (
		sc          StepContext
		refs        []projections.Ref
		err         error
		prompt      string
		archival    int
		blocks      []agents.Block
		toolDefs    []agents.Tool
		limits      map[string]int
		llm         *api.LLMConfig
		updatedAt   time.Time
		loop        string
		rules       json.RawMessage
		awaiting    events.MessageID
		awaitingRef projections.Ref
		isolated    []events.BlockID // the conversation's own blocks
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			err = s.agentNotFound(agentID)
			return
		}
		sc.Version = a.Version.Seq
		sc.Blocks = make(map[string]projections.Version, len(a.BlockIDs))
		window := a.MessageIDs
		awaiting = a.Awaiting
		if in.Conversation != "" {
			c := st.Conversations[in.Conversation]
			if c == nil || c.AgentID != a.ID {
				err = fault.E(fault.NotFound, "Conversation with ID %s not found: it was deleted, and the run cannot go on", in.Conversation)
				return
			}
			sc.Conversation, window, awaiting = c.ID, c.MessageIDs, c.Awaiting
			isolated = c.IsolatedBlockIDs
		}
		sc.Window, sc.Stored, sc.Embedding = append([]events.MessageID(nil), window...), len(a.Messages), a.EmbeddingConfig
		prompt, archival, updatedAt = a.System, archivalCount(st, a), a.UpdatedAt
		if llm, err = s.runConfig(st, a, in); err != nil {
			return
		}
		loop, rules = loopOf(a.AgentType), a.ToolRules
		blocks = make([]agents.Block, 0, len(a.BlockIDs))
		for _, id := range a.BlockIDs {
			if b := st.Blocks[id]; b != nil {
				// A conversation's own copy of a block replaces the
				// agent's of the same label (isolated_block_labels).
				for _, cid := range isolated {
					if cb := st.Blocks[cid]; cb != nil && cb.Label == b.Label {
						b = cb
					}
				}
				blocks = append(blocks, agents.Block{ID: string(b.ID), Label: b.Label, Value: b.Value, Limit: b.Limit})
				sc.Blocks[string(b.ID)] = b.Version
			}
		}
		toolDefs, limits = make([]agents.Tool, 0, len(a.ToolIDs)), make(map[string]int, len(a.ToolIDs))
		for _, id := range a.ToolIDs {
			t := st.Tools[id]
			if t == nil {
				continue
			}
			toolDefs = append(toolDefs, agents.ToolOf(t.Name, t.JSONSchema))
			limits[t.Name] = t.ReturnCharLimit
		}
		refs = refsOf(a, window)
		for i := len(a.Messages) - 1; awaiting != "" && i >= 0; i-- { // the newest are last
			if a.Messages[i].ID == string(awaiting) {
				awaitingRef = a.Messages[i]
				break
			}
		}
	})
	if err != nil {
		return sc, err
	}
	if awaiting != "" {
		env, err := s.load(ctx, awaitingRef)
		if err != nil {
			return sc, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", awaiting)
		}
		if e, ok := events.AsMessage(env.Event); ok {
			for _, tc := range e.ToolCalls {
				sc.Awaiting = append(sc.Awaiting, agents.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
			}
		}
	}
	// The messages the last step read from this window are read again as
	// it read them (windowCache); the rest are loaded and converted.
	key := windowKey{agentID, string(sc.Conversation)}
	last := s.windows.get(key)
	kept, read := last.shared(refs, loop), last
	if kept < len(refs) || len(refs) < last.len() || last == nil {
		read = &readWindow{loop: loop, entries: make([]windowEntry, len(refs))}
		if last != nil {
			copy(read.entries, last.entries[:kept])
		}
	}
	msgs := make([]agents.Message, 0, len(refs))
	for i, r := range refs {
		if i >= kept {
			entry, err := s.windowEntry(ctx, i, r, loop)
			if err != nil {
				return sc, err
			}
			read.entries[i] = entry
		}
		if entry := &read.entries[i]; entry.shown {
			sc.Warned = sc.Warned || entry.warned
			msgs = append(msgs, entry.msg)
		}
	}
	if read != last {
		s.windows.put(key, read)
	}
	sc.State = agents.State{
		System:     agents.CompileSystem(prompt, blocks, sc.Stored, archival, updatedAt),
		Blocks:     blocks,
		Context:    msgs,
		Tools:      toolDefs,
		ToolLimits: limits,
		Loop:       loop,
	}
	if llm != nil {
		sc.State.ContextWindow = llm.ContextWindow
		sc.State.Temperature = llm.Temperature
		sc.State.InnerThoughts = llm.PutInnerThoughtsInKwargs == nil || *llm.PutInnerThoughtsInKwargs
		if llm.Model == "gpt-4" && llm.PutInnerThoughtsInKwargs == nil {
			sc.State.InnerThoughts = false
		}
		// As Letta: parallel calls only when the config allows them and no
		// tool rule needs the calls one at a time.
		sc.State.ParallelToolCalls = llm.ParallelToolCalls != nil && *llm.ParallelToolCalls && noRules(rules)
		// Native reasoning as Letta asks for it: extended thinking with at
		// least 1,024 tokens when enable_reasoner is set; a reasoning model's
		// effort (the provider decides which models take either).
		if llm.EnableReasoner != nil && *llm.EnableReasoner {
			sc.State.Reasoning.Budget = max(deref(llm.MaxReasoningTokens), 1024)
		}
		if e := deref(llm.ReasoningEffort); e != "none" {
			sc.State.Reasoning.Effort = e
		}
	}
	if loop == agents.LoopV1 {
		sc.State.InnerThoughts = false
	}
	sc.State.Deferred = approvalTools(rules)
	// Rules were checked when stored (checkToolRules); the model is told
	// them as Letta tells it, in a section of the system message.
	if sc.State.ToolRules, _ = agents.ParseToolRules(rules); len(sc.State.ToolRules) > 0 {
		if p := sc.State.ToolRules.Prompt(); p != "" {
			sc.State.System += "\n\n<tool_usage_rules>\n" + agents.ToolRulesDescription + "\n\n" + p + "\n</tool_usage_rules>"
		}
	}
	return sc, nil
}

// windowEntry loads the message at place i of a window, r, and converts it
// as loop shows it to the model (StepContext).
func (s *Service) windowEntry(ctx context.Context, i int, r projections.Ref, loop string) (windowEntry, error) {
	entry := windowEntry{ref: r}
	env, err := s.load(ctx, r)
	if err != nil {
		return entry, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
	}
	e, ok := events.AsMessage(env.Event)
	if !ok || (i == 0 && e.Role == "system") {
		return entry, nil // the stored system message is compiled afresh
	}
	if e.Role == "approval" {
		return entry, nil // the model reads the returns it led to, not the answer
	}
	if kind, words, _ := e.Words(); kind == events.InputMemoryWarning || (kind == events.InputSystemAlert && words == agents.MemoryWarning) {
		entry.warned = true // the second: as logs before kinds stored it
	}
	// Every step that reads the window shares the entry's slices: they are
	// made to size, so that an append to one copies.
	m := agents.Message{Role: e.Role, Content: modelText(e, env.Time, loop), Name: e.Name, ToolCallID: e.ToolCallID}
	if len(e.ToolCalls) > 0 {
		m.ToolCalls = make([]agents.ToolCall, len(e.ToolCalls))
		for i, tc := range e.ToolCalls {
			m.ToolCalls[i] = agents.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
		}
	}
	if len(e.Thinking) > 0 {
		m.Thinking = make([]agents.Thinking, len(e.Thinking))
		for i, th := range e.Thinking {
			m.Thinking[i] = agents.Thinking(th)
		}
	}
	entry.msg, entry.shown = m, true
	return entry, nil
}

// approvalTools names the tools whose calls need a person's approval: the
// agent's requires_approval tool rules'.
func approvalTools(rules json.RawMessage) map[string]bool {
	var rs []struct {
		Type     string `json:"type"`
		ToolName string `json:"tool_name"`
	}
	json.Unmarshal(rules, &rs)
	var out map[string]bool
	for _, r := range rs {
		if r.Type == "requires_approval" && r.ToolName != "" {
			if out == nil {
				out = map[string]bool{}
			}
			out[r.ToolName] = true
		}
	}
	return out
}

// Chained is an input the runtime gives the agent itself: its kind
// (events.InputHeartbeat, ...) and its words. The step that takes it renders
// it with the step's time and stores it so.
type Chained struct{ Kind, Words string }

// Step is what one step of a run did, for CommitStep to store.
type Step struct {
	Context StepContext        // what the step read
	Take    []events.MessageID // the inputs it takes into the context (its run's first step)
	Input   *Chained           // the chained input it took, if any
	Output  agents.Output      // the model's turn and what the tools did
	Model   string             // the provider's model name
	Run     string             // the run its messages belong to
	Ends    bool               // the run ends with this step
	// Then, on a step after which the run goes on, is how it goes on; it
	// is stored with the step, so that another node can continue the run.
	Then *events.RunThen
	Last bool      // the run may take no further step
	Now  time.Time // the time the chained input was rendered with
	// Resolves says the step made no model call: it stores the returns of
	// the calls that waited for the client (Output.Returns, and what the
	// approved calls did to memory), after the client's answer (Take).
	Resolves bool
}

// CommitStep stores a step atomically: the inputs it took, its chained
// input, the model's turn, the tools' returns, memory edits and archival
// inserts. Client inputs queued meanwhile do not void it; any other change
// to what it read is a conflict (an error wrapping events.ErrConflict,
// returned once the projection holds the change): decide the step again.
// It returns the messages stored, as a run reports them (assistant form),
// and the sequence the step is stored at, once it is stored (on disk, by
// default) — not yet in the projections: wait for it (WaitApplied) before
// reading them. So a run reports its last step to the callers waiting while
// the projections apply it, who wait for it themselves (read-your-writes).
func (s *Service) CommitStep(ctx context.Context, agentID string, st Step) ([]api.LettaMessage, events.Seq, error) {
	c := s.command(ctx, "step", agentID)
	c.id = events.NewID("step", st.Now) // each step is its own command
	c.derived = false
	c.now = st.Now
	var d decision
	agg := agentAgg(agentID)
	d.expect = append(d.expect, events.Expectation{Aggregate: agg, Version: st.Context.Version})
	if len(st.Take) > 0 {
		d.add(c, agg, &events.InputTaken{IDs: st.Take})
	}
	var stored []*events.MessageAppended
	add := func(m *events.MessageAppended) {
		m.ID = events.MessageID(c.newID(events.PrefixMessage))
		m.RunID = st.Run
		stored = append(stored, m)
		d.add(c, agg, m)
	}
	if st.Input != nil {
		add(&events.MessageAppended{Role: "user", Kind: st.Input.Kind, Text: st.Input.Words})
	}
	out := st.Output
	if st.Resolves {
		for _, r := range out.Returns {
			add(&events.MessageAppended{Role: "tool", Text: r.Content, Name: r.Name, ToolCallID: r.ToolCallID})
		}
		return s.commitStep(ctx, agentID, st, c, &d, stored)
	}
	am := &events.MessageAppended{Role: "assistant", Text: out.Assistant.Content, Reasoning: out.Reasoning, Thinking: thinkingEvents(out.Thinking), Model: st.Model,
		Usage: &events.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}}
	if st.Context.State.Loop == agents.LoopV1 {
		am.Text, am.Reply = "", out.Reply // the content is the answer
	}
	switch {
	case out.Awaiting:
		am.StopReason = agents.StopRequiresApproval // the calls wait for the client
	case st.Run != "" && st.Ends:
		am.StopReason = "end_turn"
		if out.StopReason == agents.StopToolRule || out.StopReason == agents.StopMaxSteps {
			am.StopReason = out.StopReason // a tool rule ended the turn
		}
	case st.Run != "" && st.Last:
		am.StopReason = "max_steps"
	}
	if st.Run != "" && !st.Ends && !out.Awaiting && am.StopReason == "" {
		am.Then = st.Then
	}
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
	for i, r := range out.Returns { // the modern loop's: one a call
		ret := &events.MessageAppended{Role: "tool", Text: r.Content, Name: r.Name, ToolCallID: r.ToolCallID}
		if i == len(out.Returns)-1 {
			ret.Stdout, ret.Stderr = out.Stdout, out.Stderr
		}
		add(ret)
	}
	return s.commitStep(ctx, agentID, st, c, &d, stored)
}

// commitStep adds a step's memory edits and archival inserts to its
// decision and appends it (CommitStep).
func (s *Service) commitStep(ctx context.Context, agentID string, st Step, c *command, d *decision, stored []*events.MessageAppended) ([]api.LettaMessage, events.Seq, error) {
	out, agg := st.Output, agentAgg(agentID)
	for _, b := range out.Edits {
		v := b.Value
		d.expect = append(d.expect, events.Expectation{Aggregate: blockAgg(b.ID), Version: st.Context.Blocks[b.ID].Seq})
		d.add(c, blockAgg(b.ID), &events.BlockUpdated{Value: &v})
	}
	vecs, err := s.embed(ctx, st.Context.Embedding, out.Inserts)
	if err != nil {
		// The passage is kept, found by its words until re-embedded.
		s.cfg.Logger.Warn("embedding an archival insert failed; stored without a vector", "agent", agentID, "err", err)
		vecs = nil
	}
	for i, text := range out.Inserts {
		p := &events.PassageInserted{ID: events.PassageID(c.newID(events.PrefixPassage)), AgentID: events.AgentID(agentID), Text: text, EmbeddingConfig: st.Context.Embedding}
		if vecs != nil {
			p.Embedding = vecs[i]
		}
		d.add(c, agg, p)
	}
	if err := checkSize(d.evs); err != nil {
		return nil, 0, err
	}
	seq, err := s.appendStanding(ctx, agentID, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs}, st.Context.Version)
	var ce *events.ConflictError
	if errors.As(err, &ce) {
		if werr := s.afterConflict(ctx, ce, 0); werr != nil {
			return nil, 0, werr
		}
		return nil, 0, err // decide the step again
	}
	if err != nil {
		return nil, 0, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the step was not stored")
	}
	var msgs []api.LettaMessage
	for _, m := range stored {
		if m.Role == "user" {
			continue // inputs are not echoed
		}
		msgs = append(msgs, messageViews(events.Envelope{Time: c.now, Event: m})...)
	}
	return msgs, seq, nil
}

// Summary is a summary of the oldest part of a context window, for
// CommitSummary to store in its place.
type Summary struct {
	Context StepContext        // what the summary was written from
	Before  []events.MessageID // the window's messages kept before the summary (the system message)
	Kept    []events.MessageID // the newest messages, kept after it
	Text    string             // the summary as the model reads it (agents.SummaryText)
	Now     time.Time
	// Run is the run that summarizes a conversation's window (its
	// overflow): the summary is stored as its message, in that
	// conversation. "" for the agent's own window.
	Run string
}

// CommitSummary replaces the summarized part of a context window (the
// agent's own, or its conversation's: Summary.Context.Conversation) with
// its summary, a system alert stored in recall memory. A change to the
// agent meanwhile other than queued inputs is a conflict (fault.Conflict).
func (s *Service) CommitSummary(ctx context.Context, agentID string, sum Summary) error {
	c := s.command(ctx, "summarize", agentID)
	c.id, c.derived, c.now = events.NewID("summary", sum.Now), false, sum.Now
	summaryID := events.MessageID(c.newID(events.PrefixMessage))
	window := append(append(append([]events.MessageID{}, sum.Before...), summaryID), sum.Kept...)
	var d decision
	d.expect = []events.Expectation{{Aggregate: agentAgg(agentID), Version: sum.Context.Version}}
	if conv := sum.Context.Conversation; conv != "" {
		// A conversation's window: the summary is a message of the run
		// (so it joins that window), and the window is the conversation's.
		if sum.Run == "" {
			return fault.E(fault.Internal, "a summary of conversation %s needs the run that writes it", conv)
		}
		d.add(c, agentAgg(agentID), &events.MessageAppended{ID: summaryID, Role: "user", Kind: events.InputSystemAlert, Text: sum.Text, RunID: sum.Run})
		d.add(c, agentAgg(agentID), &events.ConversationWindowSet{ConversationID: conv, MessageIDs: window})
	} else {
		d.add(c, agentAgg(agentID), &events.MessageAppended{ID: summaryID, Role: "user", Kind: events.InputSystemAlert, Text: sum.Text})
		d.add(c, agentAgg(agentID), &events.AgentUpdated{MessageIDs: &window})
	}
	seq, err := s.appendStanding(ctx, agentID, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs}, sum.Context.Version)
	if err != nil {
		if errors.Is(err, events.ErrConflict) {
			return fault.Wrap(fault.Conflict, err, "the agent changed while summarizing; retry")
		}
		return fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	return s.proj.WaitFor(ctx, seq)
}

// TakeRequests takes the run requests among ids out of the agent's queue
// without a step: a resend whose send was answered, a summary, or a request
// whose run failed (it is not run again). Client inputs among ids stay.
func (s *Service) TakeRequests(ctx context.Context, agentID string, ids []events.MessageID) error {
	if len(ids) == 0 {
		return nil
	}
	c := s.command(context.WithValue(ctx, keyCommand, ""), "take_requests", agentID)
	return s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		take := slices.DeleteFunc(slices.Clone(ids), func(id events.MessageID) bool {
			return !slices.ContainsFunc(a.Pending, func(r projections.Ref) bool { return r.ID == string(id) })
		})
		if len(take) == 0 {
			return errNothing
		}
		d.add(c, agentAgg(agentID), &events.InputTaken{IDs: take})
		return nil
	})
}

// FailRun records that a run under way ended on a failed step: its inputs
// are taken, so no run takes them again. A run that had not begun waits
// for its retry, and records nothing. It is best effort: the failure is
// logged, and a failure to record it too.
func (s *Service) FailRun(ctx context.Context, agentID, run string, cause error) {
	s.failRun(ctx, agentID, run, cause)
}

// RewindToLastUser cuts the agent's context window after its last user
// message (/retry), so that the next step answers it again.
func (s *Service) RewindToLastUser(ctx context.Context, agentID string) error {
	return s.rewindow(ctx, agentID, func(ids []events.MessageID, msgs []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error) {
		for i := len(msgs) - 1; i > 0; i-- {
			if msgs[i] != nil && msgs[i].Role == "user" {
				return ids[:i+1], nil, nil
			}
		}
		return nil, nil, invalid("there is no user message to retry")
	})
}

// AgentTool finds the tool named name among the agent's, and for a tool
// that takes the agent's state, that state (id, name and memory blocks).
func (s *Service) AgentTool(agentID, name string) (projections.Tool, json.RawMessage, error) {
	var (
		tool  *projections.Tool
		state json.RawMessage
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			return
		}
		for _, id := range a.ToolIDs {
			if t := st.Tools[id]; t != nil && t.Name == name {
				tool = t
			}
		}
		if tool != nil && tool.AgentState {
			blocks := map[string]any{}
			for _, id := range a.BlockIDs {
				if b := st.Blocks[id]; b != nil {
					blocks[b.Label] = map[string]any{"label": b.Label, "value": b.Value, "limit": b.Limit}
				}
			}
			state, _ = json.Marshal(map[string]any{"id": a.ID, "name": a.Name, "memory": blocks})
		}
	})
	if tool == nil {
		return projections.Tool{}, nil, fmt.Errorf("tool %s is not attached to this agent", name)
	}
	return *tool, state, nil
}

// Hit is one passage or message an agent's own search found.
type Hit struct {
	Text string
	Role string
	Time time.Time
}

// RecallArchival ranks the passages an agent sees for its own
// archival_memory_search: one page and the total.
func (s *Service) RecallArchival(ctx context.Context, agentID, query string, offset, limit int) ([]Hit, int, error) {
	hits, total, err := s.searchArchival(ctx, agentID, ArchivalQuery{Query: query, Offset: offset, Limit: limit})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = Hit{Text: h.Text, Time: h.Time}
	}
	return out, total, nil
}

// RecallMessages ranks or lists an agent's own user and assistant messages
// for its conversation_search tools (q's text, times, offset and limit).
func (s *Service) RecallMessages(ctx context.Context, agentID string, q search.Query) ([]Hit, int, error) {
	q.Owners, q.Kind, q.Roles = []string{agentID}, search.KindMessage, []string{"user", "assistant"}
	res, err := s.searchIndex(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Hit, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = Hit{Text: h.Text, Role: h.Role, Time: h.Time}
	}
	return out, res.Total, nil
}

// WaitApplied waits until the projections hold the event at seq (an input
// may reach its run before the projections have it).
func (s *Service) WaitApplied(ctx context.Context, seq events.Seq) error {
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		return fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	return nil
}

// Applied is how far the read models have applied the log: a run's last
// report carries it, so that a caller on another node reads the run's
// messages once its own read models reach it.
func (s *Service) Applied() events.Seq { return s.proj.Applied() }

// Durable returns once the event at seq is on disk (runner.Store).
func (s *Service) Durable(ctx context.Context, seq events.Seq) error { return s.proj.Settle(ctx, seq) }

// thinkingEvents is a reply's reasoning blocks as stored.
func thinkingEvents(ts []agents.Thinking) []events.Thinking {
	var out []events.Thinking
	for _, t := range ts {
		out = append(out, events.Thinking(t))
	}
	return out
}

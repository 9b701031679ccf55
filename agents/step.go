package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engram-dev/engram/memo"
)

// RetrievalPageSize is how many results a search tool returns per page.
const RetrievalPageSize = 5

// Env is what a step may consult besides the model: searches over the
// agent's memories, custom tools, and the clock. Implementations must be
// safe for the duration of one step; they must not write anything (writes
// are returned in Output and committed by the caller).
type Env interface {
	// SearchArchival returns one page of archival passages matching query,
	// formatted for the model, and the total number of matches.
	SearchArchival(ctx context.Context, query string, page int) ([]string, int, error)
	// SearchConversation does the same over recall memory.
	SearchConversation(ctx context.Context, query string, page int) ([]string, int, error)
	// SearchConversationDate returns messages from start up to and including end's day.
	SearchConversationDate(ctx context.Context, start, end time.Time, page int) ([]string, int, error)
	// RunTool runs a tool that is not a base tool and returns its result
	// text and what it printed; an error is reported to the model as a
	// failed function (an error with an Output method keeps what the tool
	// printed before it failed).
	RunTool(ctx context.Context, name string, args map[string]any) (ToolOutput, error)
	Now() time.Time
}

// State is what one step reads.
type State struct {
	System        string    // the system prompt (memory is compiled in by the caller)
	Blocks        []Block   // core memory; Step edits a copy
	Context       []Message // in-context messages after the system message
	Tools         []Tool    // tools offered to the model
	ToolLimits    map[string]int
	Model         string // provider model name
	ContextWindow int
	Temperature   *float64
	Reasoning     Reasoning // native reasoning asked of the model (the agent's enable_reasoner, reasoning_effort)
	InnerThoughts bool      // ask for inner thoughts as a tool argument (Letta's put_inner_thoughts_in_kwargs)
	Stream        func(Delta)
	// Loop is the agent's loop: LoopMemGPT ("" too) or LoopV1.
	Loop string
	// ParallelToolCalls lets the model of a LoopV1 step call several tools
	// in one reply (the MemGPT loop runs one call a step).
	ParallelToolCalls bool
	// ToolRules govern the step's tool calls, in both loops (see
	// ToolRules); the
	// caller keeps the turn's history: TurnCalls, the tools called in the
	// turn's earlier steps without breaking a rule (Output.Calls, step
	// after step), LastOutput the last one's output (Output.LastOutput),
	// and Final says this step is the last the turn may take.
	ToolRules  ToolRules
	TurnCalls  []string
	LastOutput string
	Final      bool
	// Deferred names the tools whose calls wait for the client in a LoopV1
	// step: the client's own tools and those that need approval (see
	// Resolve).
	Deferred map[string]bool
}

// ToolOutput is what a custom tool returned and printed.
type ToolOutput struct {
	Return         string
	Stdout, Stderr []string
}

// Output is what one step produced. Nothing in it is stored yet.
type Output struct {
	Assistant Message  // the model's turn (content = inner thoughts; LoopV1: its plain content)
	Tool      *Message // the function's return, when the model called one (LoopMemGPT)
	// Returns are the returns of the calls of a LoopV1 step, one a call, in
	// the order of Assistant.ToolCalls; Name is the function's.
	Returns []Message
	// Reply, in a LoopV1 step, is the model's plain content: its answer to
	// the user. Reasoning is its native reasoning, in either loop, where the
	// provider gives it.
	Reply     string
	Reasoning string
	// Thinking is the reasoning as the provider wants it back with the
	// reply (Response.Thinking): stored with the model's turn.
	Thinking []Thinking
	// Continue says that the turn goes on, as the tool rules decide it
	// (ToolRules.Decide for LoopV1: the model called tools; for the MemGPT
	// loop ToolRules.DecideHeartbeat: it asked for a heartbeat or the call
	// failed), or a rule keeps it going.
	Continue bool
	// ContinueReason, when a rule keeps the turn going, is the text the
	// model is given before the next step (Letta sends it as a heartbeat);
	// StopReason, when the turn ends, is why (StopEndTurn, StopToolRule,
	// StopMaxSteps).
	ContinueReason string
	StopReason     string
	// Calls are the tools the step called without breaking a rule, in
	// order, and LastOutput the output of the last call that ran: the
	// caller adds them to the turn's history (State.TurnCalls,
	// State.LastOutput).
	Calls      []string
	LastOutput string
	// Awaiting, in a LoopV1 step, says that the reply's tool calls wait for
	// the client (a deferred tool is among them): none ran, and the run
	// stops (StopRequiresApproval).
	Awaiting  bool
	Edits     []Block  // blocks whose value the step changed, with their new value
	Inserts   []string // archival passages to store
	Heartbeat bool     // the model asked to continue
	Failed    bool     // the function failed; the chain continues
	Warning   bool     // the context is filling up
	Usage     Usage
	Sent      []string // what send_message delivered to the user
	Stdout    []string // what a custom tool printed
	Stderr    []string
	// ModelTime is how long the model call took; ToolTime how long the tool
	// call ran (zero when there was none). Measured, never stored.
	ModelTime time.Duration
	ToolTime  time.Duration
}

const innerThoughtsParam = "inner_thoughts"

// Step makes one model call and runs the one tool call it asks for. It
// returns ErrContextOverflow (wrapped) when the context does not fit, so the
// caller can summarize and retry, and ErrProvider for provider failures.
//
// A LoopV1 state runs a step of the modern loop instead: every tool call of
// the reply runs, and Output.Continue says whether the loop goes on.
func Step(ctx context.Context, m Model, st State, env Env) (Output, error) {
	if st.Loop == LoopV1 {
		return stepV1(ctx, m, st, env)
	}
	now := env.Now()
	req := Request{Model: st.Model, Temperature: st.Temperature, Stream: st.Stream, Reasoning: st.Reasoning}
	req.Messages = make([]Message, 0, 1+len(st.Context))
	req.Messages = append(req.Messages, Message{Role: "system", Content: st.System})
	for _, msg := range st.Context {
		if st.InnerThoughts && msg.Role == "assistant" && len(msg.ToolCalls) > 0 {
			msg = withInnerThoughts(msg)
		}
		req.Messages = append(req.Messages, msg)
	}
	names, valid := st.offer(&req, func(t Tool) Tool {
		if st.InnerThoughts {
			t.Parameters = addInnerThoughts(t.Parameters)
		}
		return t
	})
	began := time.Now()
	resp, err := m.Complete(ctx, req)
	if err != nil {
		return Output{}, err
	}
	if resp.Content == "" && len(resp.ToolCalls) == 0 {
		return Output{}, fmt.Errorf("%w: the model returned an empty reply", ErrProvider)
	}
	out := Output{Usage: resp.Usage, ModelTime: time.Since(began), Reasoning: resp.Reasoning, Thinking: resp.Thinking}
	if st.ContextWindow > 0 && float64(resp.Usage.TotalTokens) > 0.75*float64(st.ContextWindow) {
		out.Warning = true
	}
	out.Assistant = Message{Role: "assistant", Content: resp.Content}
	out.LastOutput = st.LastOutput
	if len(resp.ToolCalls) == 0 {
		c := st.ToolRules.Decide("", false, names, st.TurnCalls, st.Final)
		out.Continue, out.ContinueReason, out.StopReason = c.Continue, c.Reason, c.StopReason
		return out, nil
	}
	call := resp.ToolCalls[0] // one call per step; the rest are dropped
	if call.ID == "" {
		call.ID = "call_" + strconv.FormatInt(now.UnixNano(), 36)
	}
	if len(call.ID) > 29 {
		call.ID = call.ID[:29]
	}
	// decide sets what the rules make of the call (see
	// ToolRules.DecideHeartbeat); a failed call asks for a heartbeat, as
	// Letta 0.5's loop does.
	decide := func(heartbeat, violated bool) {
		history := st.TurnCalls
		if !violated {
			history = append(slices.Clone(history), call.Name)
		}
		c := st.ToolRules.DecideHeartbeat(call.Name, heartbeat, violated, names, history, st.Final)
		out.Continue, out.ContinueReason, out.StopReason = c.Continue, c.Reason, c.StopReason
	}
	fail := func(msg string) (Output, error) {
		out.Failed = true
		out.Tool = &Message{Role: "tool", ToolCallID: call.ID, Content: FunctionResponse(false, msg, now)}
		decide(true, false)
		return out, nil
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args == nil {
		out.Assistant.ToolCalls = []ToolCall{call}
		return fail(fmt.Sprintf("Error parsing JSON for function '%s' arguments: %s", call.Name, call.Arguments))
	}
	if th, ok := args[innerThoughtsParam].(string); ok {
		if out.Assistant.Content == "" {
			out.Assistant.Content = th
		}
		delete(args, innerThoughtsParam)
	}
	heartbeat := heartbeatOf(args)
	// Store the arguments as the tool receives them, without the thoughts.
	stored, _ := json.Marshal(args)
	call.Arguments = string(stored)
	out.Assistant.ToolCalls = []ToolCall{call}
	delete(args, "request_heartbeat")
	if !offered(st.Tools, call.Name) {
		return fail("No function named " + call.Name)
	}
	if !slices.Contains(valid, call.Name) {
		out.Failed = true
		out.Tool = &Message{Role: "tool", ToolCallID: call.ID, Content: FunctionResponse(false, st.ToolRules.Violation(call.Name, valid, st.TurnCalls), now)}
		decide(heartbeat, true)
		return out, nil
	}
	if pre := st.ToolRules.Prefill(call.Name, st.TurnCalls); pre != nil {
		var shown map[string]any // the arguments as stored, request_heartbeat kept
		json.Unmarshal([]byte(call.Arguments), &shown)
		for k, v := range pre { // prefilled values override the model's
			args[k] = v
			shown[k] = v
		}
		stored, _ := json.Marshal(shown)
		call.Arguments = string(stored)
		out.Assistant.ToolCalls = []ToolCall{call}
	}
	if st.Deferred[call.Name] {
		// A person approves the call first (Resolve); it does not run now.
		out.Awaiting = true
		return out, nil
	}
	return st.runCall(ctx, call, args, heartbeat, names, env, out), nil
}

// heartbeatOf reads a MemGPT call's request_heartbeat argument.
func heartbeatOf(args map[string]any) bool {
	switch v := args["request_heartbeat"].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return false
}

// runCall runs a MemGPT step's one call, allowed by the rules, with its
// arguments (request_heartbeat taken out: heartbeat), and decides how the
// turn goes on (ToolRules.DecideHeartbeat): Step's call, or one a person
// approved (Resolve). A failed call asks for a heartbeat, as Letta 0.5's
// loop does.
func (st State) runCall(ctx context.Context, call ToolCall, args map[string]any, heartbeat bool, names []string, env Env, out Output) Output {
	now := env.Now()
	decide := func(heartbeat bool) {
		c := st.ToolRules.DecideHeartbeat(call.Name, heartbeat, false, names, append(slices.Clone(st.TurnCalls), call.Name), st.Final)
		out.Continue, out.ContinueReason, out.StopReason = c.Continue, c.Reason, c.StopReason
	}
	out.Calls = []string{call.Name}
	blocks := append([]Block(nil), st.Blocks...)
	toolBegan := time.Now()
	result, err := runTool(ctx, call.Name, args, blocks, env, &out)
	out.ToolTime = time.Since(toolBegan)
	if err != nil {
		out.Failed = true
		out.Tool = &Message{Role: "tool", ToolCallID: call.ID, Content: FunctionResponse(false, fmt.Sprintf("Error calling function %s: %v", call.Name, err), now)}
		decide(true)
		return out
	}
	limit := FunctionReturnLimit
	if l, ok := st.ToolLimits[call.Name]; ok && l > 0 {
		limit = l
	}
	switch call.Name {
	case ToolConversationSearch, ToolConversationSearchDate, ToolArchivalMemorySearch:
	default:
		result = Truncate(result, limit)
	}
	out.Edits = edited(st.Blocks, blocks)
	out.Tool = &Message{Role: "tool", ToolCallID: call.ID, Content: FunctionResponse(true, result, now)}
	out.Heartbeat = heartbeat
	out.LastOutput = result
	decide(heartbeat)
	return out
}

func offered(tools []Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// runTool runs one tool. Base tools are implemented here; others go to env.
func runTool(ctx context.Context, name string, args map[string]any, blocks []Block, env Env, out *Output) (string, error) {
	str := func(k string) (string, error) {
		v, ok := args[k]
		if !ok {
			return "", fmt.Errorf("%s() missing required argument: '%s'", name, k)
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("argument '%s' must be a string", k)
		}
		return s, nil
	}
	page := func() (int, error) {
		switch v := args["page"].(type) {
		case nil:
			return 0, nil
		case float64:
			return int(v), nil
		case string:
			if v == "" || strings.EqualFold(v, "none") {
				return 0, nil
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, errors.New("'page' argument must be an integer")
			}
			return n, nil
		}
		return 0, errors.New("'page' argument must be an integer")
	}
	block := func(label string) (*Block, error) {
		b, labels := labelled(blocks, label)
		if b == nil {
			return nil, fmt.Errorf("Block field %s does not exist (available sections = %s)", label, labels)
		}
		return b, nil
	}
	setValue := func(b *Block, v string) error {
		if n := utf8.RuneCountInString(v); n > b.Limit {
			return fmt.Errorf("Edit failed: Exceeds %d character limit (requested %d). The %s section was not changed; shorten the text or move details to archival memory", b.Limit, n, b.Label)
		}
		b.Value = v
		return nil
	}
	switch name {
	case ToolSendMessage:
		msg, err := str("message")
		if err != nil {
			return "", err
		}
		out.Sent = append(out.Sent, msg)
		return "None", nil
	case ToolPauseHeartbeats:
		m, _ := args["minutes"].(float64)
		minutes := min(int(m), 360)
		return fmt.Sprintf("Pausing timed heartbeats for %d min", minutes), nil
	case ToolCoreMemoryAppend:
		label, err := str("name")
		if err != nil {
			return "", err
		}
		content, err := str("content")
		if err != nil {
			return "", err
		}
		b, err := block(label)
		if err != nil {
			return "", err
		}
		return "None", setValue(b, b.Value+"\n"+content)
	case ToolCoreMemoryReplace:
		label, err := str("name")
		if err != nil {
			return "", err
		}
		old, err := str("old_content")
		if err != nil {
			return "", err
		}
		repl, err := str("new_content")
		if err != nil {
			return "", err
		}
		b, err := block(label)
		if err != nil {
			return "", err
		}
		if old == "" || !strings.Contains(b.Value, old) {
			return "", fmt.Errorf("Old content '%s' not found in memory block '%s'", old, label)
		}
		return "None", setValue(b, strings.ReplaceAll(b.Value, old, repl))
	case ToolArchivalMemoryInsert:
		content, err := str("content")
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(content) == "" {
			return "", errors.New("content must not be empty")
		}
		out.Inserts = append(out.Inserts, content)
		return "None", nil
	case ToolArchivalMemorySearch, ToolConversationSearch:
		q, err := str("query")
		if err != nil {
			return "", err
		}
		p, err := page()
		if err != nil {
			return "", err
		}
		search := env.SearchArchival
		if name == ToolConversationSearch {
			search = env.SearchConversation
		}
		results, total, err := search(ctx, q, p)
		if err != nil {
			return "", err
		}
		return formatResults(results, total, p), nil
	case ToolConversationSearchDate:
		s, err := str("start_date")
		if err != nil {
			return "", err
		}
		e, err := str("end_date")
		if err != nil {
			return "", err
		}
		start, err1 := time.Parse("2006-01-02", s)
		end, err2 := time.Parse("2006-01-02", e)
		if err1 != nil || err2 != nil {
			return "", errors.New("dates must be in the format 'YYYY-MM-DD'")
		}
		p, err := page()
		if err != nil {
			return "", err
		}
		results, total, err := env.SearchConversationDate(ctx, start, end, p)
		if err != nil {
			return "", err
		}
		return formatResults(results, total, p), nil
	}
	res, err := env.RunTool(ctx, name, args)
	out.Stdout, out.Stderr = res.Stdout, res.Stderr
	if o, ok := err.(interface{ Output() ([]string, []string) }); ok {
		out.Stdout, out.Stderr = o.Output()
	}
	return res.Return, err
}

// labelled finds the block with a label, or lists the labels there are.
func labelled(blocks []Block, label string) (*Block, string) {
	for i := range blocks {
		if blocks[i].Label == label {
			return &blocks[i], ""
		}
	}
	labels := make([]string, len(blocks))
	for i, b := range blocks {
		labels[i] = b.Label
	}
	return nil, strings.Join(labels, ", ")
}

func formatResults(results []string, total, page int) string {
	if len(results) == 0 {
		return "No results found."
	}
	pages := (total+RetrievalPageSize-1)/RetrievalPageSize - 1
	return fmt.Sprintf("Showing %d of %d results (page %d/%d): %s", len(results), total, page, pages, dumps(results))
}

// addInnerThoughts puts an inner_thoughts string first in a tool's schema
// (withThoughtParam), remembered by the schema's text.
func addInnerThoughts(params json.RawMessage) json.RawMessage {
	return thoughtParams.GetBytes(params, func() (json.RawMessage, int) {
		v := slices.Clip(withThoughtParam(params)) // clipped, so that an append copies
		return v, len(v)
	})
}

// withThoughtParam is addInnerThoughts, computed.
func withThoughtParam(params json.RawMessage) json.RawMessage {
	var schema struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	if json.Unmarshal(params, &schema) != nil {
		return params
	}
	props := strings.TrimSpace(string(schema.Properties))
	thought := `"inner_thoughts":{"type":"string","description":"Deep inner monologue private to you only."}`
	if props == "" || props == "null" || props == "{}" {
		props = "{" + thought + "}"
	} else {
		props = "{" + thought + "," + strings.TrimPrefix(props, "{")
	}
	req, _ := json.Marshal(append([]string{innerThoughtsParam}, schema.Required...))
	return json.RawMessage(`{"type":"object","properties":` + props + `,"required":` + string(req) + `}`)
}

// withInnerThoughts moves an assistant message's thoughts back into its
// call's arguments, as the model produced them.
func withInnerThoughts(m Message) Message {
	calls := append([]ToolCall(nil), m.ToolCalls...)
	for i, c := range calls {
		// Every step renders the whole context again: remember the answer.
		var buf [512]byte // the key, built without an allocation when it fits
		key := append(append(append(buf[:0], m.Content...), 0), c.Arguments...)
		calls[i].Arguments = thoughtArgs.GetBytes(key, func() (string, int) {
			var args map[string]any
			if json.Unmarshal([]byte(c.Arguments), &args) != nil || args == nil {
				return c.Arguments, len(c.Arguments)
			}
			args[innerThoughtsParam] = m.Content
			b, _ := json.Marshal(args)
			return string(b), len(b)
		})
	}
	m.ToolCalls, m.Content = calls, ""
	return m
}

// thoughtArgs and thoughtParams remember withInnerThoughts' arguments and
// addInnerThoughts' schemas: pure functions of their text, computed again
// for every tool and past call at every step.
var (
	thoughtArgs   memo.Cache[string]
	thoughtParams memo.Cache[json.RawMessage] // shared: read, never changed
)

// offer puts in req the tools the rules allow the model now, each shaped
// for the loop, and the tool choice (required when a rule forces a call).
// It returns every tool's name and the allowed ones', which judge the
// reply's calls.
func (st State) offer(req *Request, shape func(Tool) Tool) (names, valid []string) {
	names = make([]string, len(st.Tools))
	for i, t := range st.Tools {
		names[i] = t.Name
	}
	valid = st.ToolRules.Allowed(names, st.TurnCalls, st.LastOutput)
	if len(valid) > 0 {
		req.Tools = make([]Tool, 0, len(valid))
	}
	for _, t := range st.Tools {
		if slices.Contains(valid, t.Name) {
			req.Tools = append(req.Tools, shape(t))
		}
	}
	if len(req.Tools) > 0 {
		req.ToolChoice = "auto"
		if st.ToolRules.ForceToolCall(st.TurnCalls) {
			req.ToolChoice = "required"
		}
	}
	return names, valid
}

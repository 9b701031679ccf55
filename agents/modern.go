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
)

// The loops an agent may run (State.Loop), named by Letta's agent types.
const (
	// LoopMemGPT is Letta 0.5's loop (agent type memgpt_agent): the model
	// thinks in its reply, speaks through send_message, calls one tool a
	// step and asks for a heartbeat to go on.
	LoopMemGPT = "memgpt_agent"
	// LoopV1 is modern Letta's loop (agent type letta_v1_agent): the
	// model's plain content is its answer and ends the turn; it calls tools
	// natively, several in one reply if it likes, and the loop goes on after
	// every reply with a tool call; its native reasoning is kept apart.
	LoopV1 = "letta_v1_agent"
)

// Names of the tools modern Letta adds, as Letta 0.16 spells them.
const (
	ToolMemoryInsert  = "memory_insert"
	ToolMemoryReplace = "memory_replace"
	ToolMemoryRethink = "memory_rethink"
	ToolWebSearch     = "web_search"
	ToolFetchWebpage  = "fetch_webpage"
)

// V1BaseTools are the tools a letta_v1_agent gets with include_base_tools,
// as Letta 0.16.8 chooses them (calculate_base_tools(is_v2=True) without
// send_message): the archival tools are deprecated there and attached
// only when asked for.
var V1BaseTools = []string{ToolConversationSearch, ToolMemoryInsert, ToolMemoryReplace}

// ModernTools are the tools of modern Letta's loop that engram provides
// beside BaseTools: the line-based memory tools and the built-in web tools
// (which answer that no search provider is configured: engram makes no
// network calls for an agent).
func ModernTools() []BaseTool {
	memory := []string{"memory", "letta-base"}
	builtin := []string{"letta-builtin"}
	label := `"label":{"type":"string","description":"The label of the memory block to edit, such as persona or human."}`
	return []BaseTool{
		{ToolMemoryInsert, "Insert text into a memory block, after a given line.", memory, "letta_sleeptime_core",
			schema(ToolMemoryInsert, "Insert text into a memory block, after a given line.", label+`,`+
				`"new_string":{"type":"string","description":"The text to insert, without line numbers."},`+
				`"insert_line":{"type":"integer","description":"The line after which to insert (0 for the start). -1, the default, appends at the end."}`,
				"label", "new_string")},
		{ToolMemoryReplace, "Replace one exact, unique piece of text in a memory block. An empty new_string deletes it.", memory, "letta_sleeptime_core",
			schema(ToolMemoryReplace, "Replace one exact, unique piece of text in a memory block. An empty new_string deletes it.", label+`,`+
				`"old_string":{"type":"string","description":"The text to replace, exactly as it appears (whitespace included), without line numbers."},`+
				`"new_string":{"type":"string","description":"The text to put in its place, without line numbers."}`,
				"label", "old_string", "new_string")},
		{ToolMemoryRethink, "Rewrite a memory block as a whole, to reorganise it.", memory, "letta_sleeptime_core",
			schema(ToolMemoryRethink, "Rewrite a memory block as a whole, to reorganise it.", label+`,`+
				`"new_memory":{"type":"string","description":"The block's new text, in full."}`,
				"label", "new_memory")},
		{ToolWebSearch, "Search the web (needs a search provider configured on the server).", builtin, "letta_builtin",
			schema(ToolWebSearch, "Search the web (needs a search provider configured on the server).",
				`"query":{"type":"string","description":"What to search for."},`+
					`"num_results":{"type":"integer","description":"How many results to return, 1 to 100. Default 10."}`,
				"query")},
		{ToolFetchWebpage, "Fetch a web page as text (needs web access configured on the server).", builtin, "letta_builtin",
			schema(ToolFetchWebpage, "Fetch a web page as text (needs web access configured on the server).",
				`"url":{"type":"string","description":"The page's URL."}`,
				"url")},
	}
}

// ServerTools are every tool the server provides: BaseTools, then
// ModernTools.
func ServerTools() []BaseTool { return append(BaseTools(), ModernTools()...) }

// v1ConversationSearch is conversation_search as Letta 0.16 offers it: all
// arguments optional, a result limit instead of pages, dates inside.
var v1ConversationSearch = Tool{
	Name:        ToolConversationSearch,
	Description: "Search earlier messages of the conversation by words, by date, or both.",
	Parameters: json.RawMessage(`{"type":"object","properties":{` +
		`"query":{"type":"string","description":"Words to look for. Leave it out to list messages by date alone."},` +
		`"roles":{"type":"array","items":{"type":"string","enum":["assistant","user","tool"]},"description":"Only messages of these roles."},` +
		`"limit":{"type":"integer","description":"The most results to return. Default 5."},` +
		`"start_date":{"type":"string","description":"First day to include, YYYY-MM-DD (or YYYY-MM-DDTHH:MM)."},` +
		`"end_date":{"type":"string","description":"Last day to include, YYYY-MM-DD (or YYYY-MM-DDTHH:MM)."}` +
		`},"required":[]}`),
}

// errWebNotConfigured is what the built-in web tools answer the model.
const errWebNotConfigured = "is not configured on this server: it has no web search provider, and engram makes no network requests for agents"

// stepV1 is one step of the modern loop: one model call, then every tool
// call of the reply, in order. A reply without a tool call ends the turn
// (Output.Continue false); one with calls goes on, whether they succeeded
// or not, as Letta's letta_v1_agent does, unless the tool rules
// (State.ToolRules) decide otherwise: they choose the tools offered, refuse
// a call they do not allow (the model is told why), prefill arguments, and
// end or continue the turn (ToolRules.Decide).
func stepV1(ctx context.Context, m Model, st State, env Env) (Output, error) {
	now := env.Now()
	req := Request{Model: st.Model, Temperature: st.Temperature, ParallelToolCalls: st.ParallelToolCalls, Reasoning: st.Reasoning}
	if st.Stream != nil {
		req.Stream = func(d Delta) { // the content is the answer here
			d.Reply, d.Content = d.Content, ""
			st.Stream(d)
		}
	}
	req.Messages = make([]Message, 0, 1+len(st.Context))
	req.Messages = append(req.Messages, Message{Role: "system", Content: st.System})
	req.Messages = append(req.Messages, st.Context...)
	// The model is offered the tools the rules allow now, as Letta offers
	// them, and must call one when a rule says so.
	names, valid := st.offer(&req, func(t Tool) Tool {
		if t.Name == ToolConversationSearch {
			t.Parameters = v1ConversationSearch.Parameters
		}
		t.Parameters = withoutParam(t.Parameters, "request_heartbeat")
		return t
	})
	began := time.Now()
	resp, err := m.Complete(ctx, req)
	if err != nil {
		return Output{}, err
	}
	out := Output{Usage: resp.Usage, ModelTime: time.Since(began), Reply: resp.Content, Reasoning: resp.Reasoning, Thinking: resp.Thinking}
	out.Assistant = Message{Role: "assistant", Content: resp.Content}
	if len(resp.ToolCalls) == 0 {
		c := st.ToolRules.Decide("", false, names, st.TurnCalls, st.Final)
		out.Continue, out.ContinueReason, out.StopReason = c.Continue, c.Reason, c.StopReason
		return out, nil
	}
	if awaits(st, resp.ToolCalls) {
		// The client answers the calls first (Resolve); none runs now.
		for i, call := range resp.ToolCalls {
			out.Assistant.ToolCalls = append(out.Assistant.ToolCalls, callID(call, i, now))
		}
		out.Awaiting = true
		return out, nil
	}
	history := slices.Clone(st.TurnCalls)
	out.LastOutput = st.LastOutput
	var decisions []Continuation
	blocks := append([]Block(nil), st.Blocks...)
	toolBegan := time.Now()
	for i, call := range resp.ToolCalls {
		if call.ID == "" {
			call.ID = "call_" + strconv.FormatInt(now.UnixNano(), 36) + "_" + strconv.Itoa(i)
		}
		if len(call.ID) > 40 {
			call.ID = call.ID[:40]
		}
		ret := func(ok bool, msg string) {
			if !ok {
				out.Failed = true
			}
			out.Returns = append(out.Returns, Message{Role: "tool", Name: call.Name, ToolCallID: call.ID, Content: FunctionResponse(ok, msg, now)})
		}
		var args map[string]any
		if strings.TrimSpace(call.Arguments) == "" {
			call.Arguments = "{}"
		}
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args == nil {
			out.Assistant.ToolCalls = append(out.Assistant.ToolCalls, call)
			ret(false, fmt.Sprintf("Error parsing JSON for function '%s' arguments: %s", call.Name, call.Arguments))
			decisions = append(decisions, Continuation{Continue: true}) // the model sees the error next
			continue
		}
		delete(args, "request_heartbeat")
		delete(args, innerThoughtsParam)
		stored, _ := json.Marshal(args)
		call.Arguments = string(stored)
		out.Assistant.ToolCalls = append(out.Assistant.ToolCalls, call)
		if !offered(st.Tools, call.Name) || !slices.Contains(valid, call.Name) {
			ret(false, st.ToolRules.Violation(call.Name, valid, history))
			decisions = append(decisions, st.ToolRules.Decide(call.Name, true, names, history, st.Final))
			continue
		}
		if pre := st.ToolRules.Prefill(call.Name, history); pre != nil {
			for k, v := range pre { // prefilled values override the model's
				args[k] = v
			}
			stored, _ := json.Marshal(args)
			call.Arguments = string(stored)
			out.Assistant.ToolCalls[len(out.Assistant.ToolCalls)-1] = call
		}
		history = append(history, call.Name)
		out.Calls = append(out.Calls, call.Name)
		decisions = append(decisions, st.ToolRules.Decide(call.Name, false, names, history, st.Final))
		result, err := runV1Call(ctx, st, call.Name, args, blocks, env, &out)
		if err != nil {
			ret(false, result)
			out.LastOutput = result
			continue
		}
		out.LastOutput = result
		result = truncateReturn(st, call.Name, result)
		ret(true, result)
	}
	out.ToolTime = time.Since(toolBegan)
	out.Continue, out.ContinueReason, out.StopReason = aggregate(decisions)
	out.Edits = edited(st.Blocks, blocks)
	return out, nil
}

// aggregate combines the rules' decisions on a step's calls as Letta's
// letta_v1_agent does: the turn goes on when any call says so, the last
// stop reason given stands, and a step of several calls goes on unless one
// ended the turn by a terminal rule or by max_steps.
func aggregate(ds []Continuation) (cont bool, reason, stop string) {
	for _, d := range ds {
		cont = cont || d.Continue
		if d.Reason != "" {
			reason = d.Reason
		}
		if d.StopReason != "" {
			stop = d.StopReason
		}
	}
	if len(ds) > 1 && stop != StopToolRule && stop != StopMaxSteps {
		cont, stop = true, ""
	}
	if cont {
		stop = ""
	} else {
		reason = ""
	}
	return cont, reason, stop
}

// runV1Call runs one call of the modern loop on blocks (a copy of the
// state's) and adds what it stored and printed to out. On failure the
// result is the text the model reads for it.
func runV1Call(ctx context.Context, st State, name string, args map[string]any, blocks []Block, env Env, out *Output) (string, error) {
	var sub Output
	result, err := runV1Tool(ctx, name, args, blocks, env, &sub)
	out.Inserts = append(out.Inserts, sub.Inserts...)
	out.Sent = append(out.Sent, sub.Sent...)
	out.Stdout = append(out.Stdout, sub.Stdout...)
	out.Stderr = append(out.Stderr, sub.Stderr...)
	if err != nil {
		return fmt.Sprintf("Error executing function %s: %v", name, err), err
	}
	return result, nil
}

// truncateReturn cuts a tool's result to its return limit, as Letta does;
// the searches page their own results and are kept whole.
func truncateReturn(st State, name, result string) string {
	switch name {
	case ToolConversationSearch, ToolConversationSearchDate, ToolArchivalMemorySearch:
		return result
	}
	limit := FunctionReturnLimit
	if l, ok := st.ToolLimits[name]; ok && l > 0 {
		limit = l
	}
	return Truncate(result, limit)
}

// edited lists the blocks whose value a step changed, with their new value.
func edited(before, after []Block) []Block {
	var out []Block
	for i := range after {
		if after[i].Value != before[i].Value {
			out = append(out, after[i])
		}
	}
	return out
}

// runV1Tool runs one tool of the modern loop: its own tools here, the
// others as the MemGPT loop runs them.
func runV1Tool(ctx context.Context, name string, args map[string]any, blocks []Block, env Env, out *Output) (string, error) {
	str := func(k string, required bool) (string, error) {
		v, ok := args[k]
		if !ok || v == nil {
			if required {
				return "", fmt.Errorf("%s() missing required argument: '%s'", name, k)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("argument '%s' must be a string", k)
		}
		return s, nil
	}
	block := func() (*Block, error) {
		label, err := str("label", true)
		if err != nil {
			return nil, err
		}
		b, labels := labelled(blocks, label)
		if b == nil {
			return nil, fmt.Errorf("no memory block with label '%s' (available: %s)", label, labels)
		}
		return b, nil
	}
	set := func(b *Block, v string) (string, error) {
		if n := len([]rune(v)); b.Limit > 0 && n > b.Limit {
			return "", fmt.Errorf("Edit failed: Exceeds %d character limit (requested %d). The %s block was not changed", b.Limit, n, b.Label)
		}
		b.Value = v
		return v, nil
	}
	switch name {
	case ToolWebSearch, ToolFetchWebpage:
		return "", errors.New(name + " " + errWebNotConfigured)
	case ToolMemoryReplace:
		b, err := block()
		if err != nil {
			return "", err
		}
		old, err := str("old_string", true)
		if err != nil {
			return "", err
		}
		repl, err := str("new_string", true)
		if err != nil {
			return "", err
		}
		if lineNumbered(old) || lineNumbered(repl) {
			return "", errors.New("old_string or new_string contains a line number prefix, which is not allowed. Do not include line numbers when calling memory tools (line numbers are for display purposes only).")
		}
		switch n := strings.Count(b.Value, old); {
		case old == "" || n == 0:
			return "", fmt.Errorf("No replacement was performed, old_string `%s` did not appear verbatim in memory block with label `%s`.", old, b.Label)
		case n > 1:
			var lines []int
			for i, l := range strings.Split(b.Value, "\n") {
				if strings.Contains(l, old) {
					lines = append(lines, i+1)
				}
			}
			return "", fmt.Errorf("No replacement was performed. Multiple occurrences of old_string `%s` in lines %v. Please ensure it is unique.", old, lines)
		}
		return set(b, strings.Replace(b.Value, old, repl, 1))
	case ToolMemoryInsert:
		b, err := block()
		if err != nil {
			return "", err
		}
		text, err := str("new_string", true)
		if err != nil {
			return "", err
		}
		if lineNumbered(text) {
			return "", errors.New("new_string contains a line number prefix, which is not allowed. Do not include line numbers when calling memory tools (line numbers are for display purposes only).")
		}
		at := -1
		switch v := args["insert_line"].(type) {
		case nil:
		case float64:
			at = int(v)
		default:
			return "", errors.New("argument 'insert_line' must be an integer")
		}
		lines := strings.Split(b.Value, "\n")
		if at == -1 {
			at = len(lines)
		} else if at < 0 || at > len(lines) {
			return "", fmt.Errorf("Invalid `insert_line` parameter: %d. It should be within the range of lines of the memory block: [0, %d], or -1 to append to the end of the memory block.", at, len(lines))
		}
		merged := append(append(append([]string{}, lines[:at]...), strings.Split(text, "\n")...), lines[at:]...)
		return set(b, strings.Join(merged, "\n"))
	case ToolMemoryRethink:
		b, err := block()
		if err != nil {
			return "", err
		}
		text, err := str("new_memory", true)
		if err != nil {
			return "", err
		}
		return set(b, text)
	case ToolConversationSearch:
		return conversationSearchV1(ctx, args, env)
	}
	// The archival tools and custom tools run as in the MemGPT loop.
	return runTool(ctx, name, args, blocks, env, out)
}

// conversationSearchV1 answers Letta 0.16's conversation_search: by words,
// by dates, or both (the dates then narrow the words' results).
func conversationSearchV1(ctx context.Context, args map[string]any, env Env) (string, error) {
	query, _ := args["query"].(string)
	limit := RetrievalPageSize
	if v, ok := args["limit"].(float64); ok && v > 0 {
		limit = min(int(v), 100)
	}
	day := func(k string) (time.Time, bool, error) {
		s, _ := args[k].(string)
		if s == "" {
			return time.Time{}, false, nil
		}
		for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", time.RFC3339} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, true, nil
			}
		}
		return time.Time{}, false, fmt.Errorf("Invalid %s format: %s. Use ISO 8601 format (YYYY-MM-DD or YYYY-MM-DDTHH:MM)", k, s)
	}
	start, hasStart, err := day("start_date")
	if err != nil {
		return "", err
	}
	end, hasEnd, err := day("end_date")
	if err != nil {
		return "", err
	}
	var results []string
	if strings.TrimSpace(query) != "" || (!hasStart && !hasEnd) {
		for page := 0; len(results) < limit && page < 20; page++ {
			rs, total, err := env.SearchConversation(ctx, query, page)
			if err != nil {
				return "", err
			}
			results = append(results, rs...)
			if len(rs) == 0 || (page+1)*RetrievalPageSize >= total {
				break
			}
		}
	} else {
		if !hasStart {
			start = time.Unix(0, 0).UTC()
		}
		if !hasEnd {
			end = env.Now()
		}
		for page := 0; len(results) < limit && page < 20; page++ {
			rs, total, err := env.SearchConversationDate(ctx, start, end, page)
			if err != nil {
				return "", err
			}
			results = append(results, rs...)
			if len(rs) == 0 || (page+1)*RetrievalPageSize >= total {
				break
			}
		}
	}
	if len(results) > limit {
		results = results[:limit]
	}
	if len(results) == 0 {
		return dumps(map[string]any{"message": "No results found.", "results": []string{}}), nil
	}
	return dumps(map[string]any{"message": fmt.Sprintf("Showing %d results:", len(results)), "results": results}), nil
}

// lineNumbered reports whether text carries the line numbers memory is
// shown with ("3→ ..."), which an edit must not include.
func lineNumbered(text string) bool {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimLeft(l, " \t")
		i := 0
		for i < len(l) && l[i] >= '0' && l[i] <= '9' {
			i++
		}
		if i > 0 && strings.HasPrefix(l[i:], "→") {
			return true
		}
	}
	return false
}

// pyList writes names as Python prints a list of strings.
func pyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// withoutParam removes one property from an object schema.
func withoutParam(params json.RawMessage, name string) json.RawMessage {
	var schema map[string]json.RawMessage
	if json.Unmarshal(params, &schema) != nil {
		return params
	}
	var props map[string]json.RawMessage
	if json.Unmarshal(schema["properties"], &props) != nil {
		return params
	}
	if _, ok := props[name]; !ok {
		return params
	}
	delete(props, name)
	schema["properties"], _ = json.Marshal(props)
	var req []string
	if json.Unmarshal(schema["required"], &req) == nil {
		keep := req[:0]
		for _, r := range req {
			if r != name {
				keep = append(keep, r)
			}
		}
		schema["required"], _ = json.Marshal(keep)
	}
	out, _ := json.Marshal(schema)
	return out
}

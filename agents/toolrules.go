package agents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Tool rules govern which tools an agent may call and when its turn ends,
// as Letta 0.16.8's tool rules do (letta/schemas/tool_rule.py, evaluated
// by its ToolRulesSolver). Everything here is a pure function of the rules,
// the tools offered and the calls made so far in the turn; the caller keeps
// that history.

// Rule types, as Letta names them (its ToolRuleType).
const (
	RuleInit               = "run_first"             // the turn's first call must be one of the init tools
	RuleTerminal           = "exit_loop"             // calling the tool ends the turn
	RuleContinue           = "continue_loop"         // calling the tool continues the turn
	RuleConditional        = "conditional"           // the tool's output chooses the next tool
	RuleChild              = "constrain_child_tools" // after the tool, only its children
	RuleMaxCountPerStep    = "max_count_per_step"    // at most max_count_limit calls of the tool in a turn
	RuleParent             = "parent_last_tool"      // the children only right after the tool
	RuleRequiredBeforeExit = "required_before_exit"  // the turn cannot end before the tool was called
	RuleRequiresApproval   = "requires_approval"     // a person approves each call
)

// ruleAliases are the type names Letta 0.5 used for the kinds it had.
var ruleAliases = map[string]string{
	"InitToolRule":     RuleInit,
	"TerminalToolRule": RuleTerminal,
	"ToolRule":         RuleChild,
}

// ToolRule is one rule in Letta's shape; which fields count depends on
// Type.
type ToolRule struct {
	ToolName string `json:"tool_name"`
	Type     string `json:"type"`
	// PromptTemplate is accepted and ignored, as Letta 0.16.8 ignores it.
	PromptTemplate *string `json:"prompt_template,omitempty"`
	// Children: RuleChild, the tools that may follow; RuleParent, the tools
	// that may only follow this one.
	Children []string `json:"children,omitempty"`
	// ChildArgNodes (RuleChild) prefill arguments of children.
	ChildArgNodes []ToolCallNode `json:"child_arg_nodes,omitempty"`
	// DefaultChild, ChildOutputMapping and RequireOutputMapping are a
	// RuleConditional's: the tool whose name the output maps to is the only
	// one allowed next; with no match, DefaultChild, or (with
	// RequireOutputMapping) none, or else any.
	DefaultChild         *string           `json:"default_child,omitempty"`
	ChildOutputMapping   map[string]string `json:"child_output_mapping,omitempty"`
	RequireOutputMapping bool              `json:"require_output_mapping,omitempty"`
	// MaxCountLimit is a RuleMaxCountPerStep's limit.
	MaxCountLimit *int `json:"max_count_limit,omitempty"`
	// Args (RuleInit) prefill the tool's arguments.
	Args map[string]any `json:"args,omitempty"`
}

// ToolCallNode is a child of a RuleChild with prefilled arguments.
type ToolCallNode struct {
	Name string         `json:"name"`
	Args map[string]any `json:"args,omitempty"`
}

// ParseToolRules reads and checks an agent's tool_rules: a JSON list of
// rules (null or empty: none). Letta 0.5's type names are read as the
// modern ones. The error says what is wrong with which rule.
func ParseToolRules(raw json.RawMessage) ([]ToolRule, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("tool_rules must be a list of rules")
	}
	rules := make([]ToolRule, 0, len(items))
	for i, item := range items {
		var r ToolRule
		dec := json.NewDecoder(bytes.NewReader(item))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("tool_rules[%d]: %s", i, ruleDecodeError(err))
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("tool_rules[%d] (%s on %q): %w", i, r.Type, r.ToolName, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func ruleDecodeError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		if typ.Field == "" {
			return "a rule must be an object"
		}
		return fmt.Sprintf("field %q has the wrong type (%s)", typ.Field, typ.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return err.Error()
}

// check validates one rule and normalises its type name.
func (r *ToolRule) check() error {
	if t, ok := ruleAliases[r.Type]; ok {
		r.Type = t
	}
	if strings.TrimSpace(r.ToolName) == "" {
		return fmt.Errorf("tool_name is required")
	}
	switch r.Type {
	case RuleInit, RuleTerminal, RuleContinue, RuleRequiredBeforeExit, RuleRequiresApproval:
	case RuleChild:
		if r.Children == nil {
			return fmt.Errorf("children is required")
		}
		for _, n := range r.ChildArgNodes {
			if !slices.Contains(r.Children, n.Name) {
				return fmt.Errorf("child_arg_nodes names %q, which is not in children %s", n.Name, pyList(r.Children))
			}
		}
	case RuleParent:
		if r.Children == nil {
			return fmt.Errorf("children is required")
		}
	case RuleConditional:
		if len(r.ChildOutputMapping) == 0 {
			return fmt.Errorf("child_output_mapping must map at least one output to a tool")
		}
	case RuleMaxCountPerStep:
		if r.MaxCountLimit == nil {
			return fmt.Errorf("max_count_limit is required")
		}
		if *r.MaxCountLimit < 0 {
			return fmt.Errorf("max_count_limit must not be negative")
		}
	case "":
		return fmt.Errorf("type is required (one of %s)", strings.Join(ruleTypes, ", "))
	default:
		return fmt.Errorf("unknown type (want one of %s)", strings.Join(ruleTypes, ", "))
	}
	return nil
}

var ruleTypes = []string{RuleInit, RuleTerminal, RuleContinue, RuleConditional, RuleChild,
	RuleMaxCountPerStep, RuleParent, RuleRequiredBeforeExit, RuleRequiresApproval}

// ToolRules are an agent's rules, evaluated against the calls of one turn.
type ToolRules []ToolRule

func (rs ToolRules) of(types ...string) []ToolRule {
	var out []ToolRule
	for _, r := range rs {
		if slices.Contains(types, r.Type) {
			out = append(out, r)
		}
	}
	return out
}

// Allowed returns the tools that may be called next, in the order of
// available, given the turn's calls so far (history, oldest first) and the
// output of the last one (the message its return carries).
//
// As Letta's solver: before the first call, init rules (if any) allow
// their tools alone; after it, every child, parent, conditional and
// max-count rule allows a set and the tools allowed are in all of them.
// When that leaves nothing, every available tool is allowed, as Letta's
// letta_v1_agent falls back.
func (rs ToolRules) Allowed(available, history []string, lastOutput string) []string {
	if len(history) == 0 {
		if inits := rs.of(RuleInit); len(inits) > 0 {
			var out []string
			for _, r := range inits {
				if !slices.Contains(out, r.ToolName) {
					out = append(out, r.ToolName)
				}
			}
			return out
		}
	}
	last := ""
	if len(history) > 0 {
		last = history[len(history)-1]
	}
	allowed := slices.Clone(available)
	for _, r := range rs {
		var keep func(string) bool
		switch r.Type {
		case RuleChild:
			if last == r.ToolName {
				keep = func(t string) bool { return slices.Contains(r.Children, t) }
			}
		case RuleParent:
			if last == r.ToolName {
				keep = func(t string) bool { return slices.Contains(r.Children, t) }
			} else {
				keep = func(t string) bool { return !slices.Contains(r.Children, t) }
			}
		case RuleConditional:
			if last == r.ToolName {
				next, free := r.conditionalChild(lastOutput)
				if !free {
					keep = func(t string) bool { return t == next }
				}
			}
		case RuleMaxCountPerStep:
			n := 0
			for _, h := range history {
				if h == r.ToolName {
					n++
				}
			}
			if n >= *r.MaxCountLimit {
				keep = func(t string) bool { return t != r.ToolName }
			}
		}
		if keep != nil {
			allowed = slices.DeleteFunc(allowed, func(t string) bool { return !keep(t) })
		}
	}
	if len(allowed) == 0 {
		return slices.Clone(available)
	}
	return allowed
}

// conditionalChild is the tool a conditional rule allows after output: the
// one its mapping names for the output, else the default child; free is
// true when the rule allows every tool (no match, no default, not
// required). With require_output_mapping and no match it allows none
// (next is "").
func (r ToolRule) conditionalChild(output string) (next string, free bool) {
	keys := make([]string, 0, len(r.ChildOutputMapping))
	for k := range r.ChildOutputMapping {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if outputMatches(output, k) {
			return r.ChildOutputMapping[k], false
		}
	}
	if r.RequireOutputMapping {
		return "", false
	}
	if r.DefaultChild != nil && *r.DefaultChild != "" {
		return *r.DefaultChild, false
	}
	return "", true
}

// outputMatches compares a tool's output with a mapping key: equal text,
// or the same truth value for "true"/"false" in any case (a Python tool
// returning True prints "True").
func outputMatches(output, key string) bool {
	output = strings.TrimSpace(output)
	if output == key {
		return true
	}
	lk := strings.ToLower(key)
	return (lk == "true" || lk == "false") && strings.ToLower(output) == lk
}

// ForceToolCall reports whether the model must call a tool in the next
// step (tool_choice "required"): before the first call when there are init
// rules, and right after a tool that a child, parent or conditional rule
// governs.
func (rs ToolRules) ForceToolCall(history []string) bool {
	if len(history) == 0 {
		return len(rs.of(RuleInit)) > 0
	}
	last := history[len(history)-1]
	for _, r := range rs.of(RuleChild, RuleParent, RuleConditional) {
		if r.ToolName == last {
			return true
		}
	}
	return false
}

// RequiresApproval reports whether a call of tool needs a person's approval.
func (rs ToolRules) RequiresApproval(tool string) bool {
	return slices.ContainsFunc(rs.of(RuleRequiresApproval), func(r ToolRule) bool { return r.ToolName == tool })
}

// Uncalled returns the required-before-exit tools, among those available,
// that the turn has not called yet.
func (rs ToolRules) Uncalled(available, history []string) []string {
	var out []string
	for _, r := range rs.of(RuleRequiredBeforeExit) {
		if slices.Contains(available, r.ToolName) && !slices.Contains(history, r.ToolName) && !slices.Contains(out, r.ToolName) {
			out = append(out, r.ToolName)
		}
	}
	return out
}

// NonUserPrefix opens a message the runtime adds to the conversation that
// the user did not write, as Letta's NON_USER_MSG_PREFIX.
const NonUserPrefix = "[This is an automated system message hidden from the user] "

// Stop reasons a rule can give a turn, as Letta names them.
const (
	StopEndTurn  = "end_turn"
	StopToolRule = "tool_rule"
	StopMaxSteps = "max_steps"
)

// Continuation is what the rules decide after one tool call (or an answer
// without one): whether the turn goes on, the reason the model is given
// when it does (a heartbeat's text, "" for none), and the stop reason when
// it does not.
type Continuation struct {
	Continue   bool
	Reason     string
	StopReason string
}

// Decide is Letta's letta_v1_agent continuation rule. tool is the tool
// just called ("" for an answer without a call), violated says the call
// broke a rule (it did not run), history holds the turn's calls including
// this one, and final says the step was the last max_steps allows.
//
//   - No call: the turn ends (end_turn), unless required-before-exit tools
//     are uncalled and steps remain; then it goes on with a reason naming
//     them.
//   - A call that broke a rule: the turn goes on (the model sees the error).
//   - A call: a terminal rule ends the turn (tool_rule); otherwise it goes
//     on, with a reason when a child or continue rule asks for it; on the
//     final step it ends (max_steps); with required tools uncalled it goes
//     on.
func (rs ToolRules) Decide(tool string, violated bool, available, history []string, final bool) Continuation {
	if tool == "" {
		if uncalled := rs.Uncalled(available, history); len(uncalled) > 0 && !final {
			return Continuation{Continue: true, Reason: NonUserPrefix + "ToolRuleViolated: You must call " + strings.Join(uncalled, ", ") + " at least once to exit the loop."}
		}
		return Continuation{StopReason: StopEndTurn}
	}
	if violated {
		return Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: tool rule violation."}
	}
	c := Continuation{Continue: true}
	switch {
	case slices.ContainsFunc(rs.of(RuleTerminal), func(r ToolRule) bool { return r.ToolName == tool }):
		c = Continuation{StopReason: StopToolRule}
	case slices.ContainsFunc(rs.of(RuleChild, RuleConditional, RuleMaxCountPerStep), func(r ToolRule) bool { return r.ToolName == tool }):
		c.Reason = NonUserPrefix + "Continuing: child tool rule."
	case slices.ContainsFunc(rs.of(RuleContinue), func(r ToolRule) bool { return r.ToolName == tool }):
		c.Reason = NonUserPrefix + "Continuing: continue tool rule."
	}
	if final {
		return Continuation{StopReason: StopMaxSteps}
	}
	if uncalled := rs.Uncalled(available, history); len(uncalled) > 0 {
		return Continuation{Continue: true, Reason: NonUserPrefix + "Continuing, user expects these tools: [" + strings.Join(uncalled, ", ") + "] to be called still."}
	}
	return c
}

// DecideHeartbeat is Letta's continuation rule for the MemGPT loop
// (memgpt_agent, its LettaAgentV2), after one call: the call's
// request_heartbeat decides, unless a rule does. A call that broke a rule
// goes on; a terminal tool ends the turn (with stop reason tool_rule when
// it asked for a heartbeat); a child, conditional, max-count or continue
// rule on the tool goes on; the final step ends it (max_steps); a turn that
// would end with required-before-exit tools uncalled goes on.
func (rs ToolRules) DecideHeartbeat(tool string, heartbeat, violated bool, available, history []string, final bool) Continuation {
	c := Continuation{Continue: heartbeat}
	if violated {
		c = Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: tool rule violation."}
	} else {
		switch {
		case slices.ContainsFunc(rs.of(RuleTerminal), func(r ToolRule) bool { return r.ToolName == tool }):
			if c.Continue {
				c.StopReason = StopToolRule
			}
			c.Continue = false
		case slices.ContainsFunc(rs.of(RuleChild, RuleConditional, RuleMaxCountPerStep), func(r ToolRule) bool { return r.ToolName == tool }):
			c = Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: child tool rule."}
		case slices.ContainsFunc(rs.of(RuleContinue), func(r ToolRule) bool { return r.ToolName == tool }):
			c = Continuation{Continue: true, Reason: NonUserPrefix + "Continuing: continue tool rule."}
		}
	}
	if final {
		return Continuation{StopReason: StopMaxSteps}
	}
	if uncalled := rs.Uncalled(available, history); !c.Continue && len(uncalled) > 0 {
		return Continuation{Continue: true, Reason: NonUserPrefix + "Continuing, user expects these tools: [" + strings.Join(uncalled, ", ") + "] to be called still."}
	}
	if !c.Continue && c.StopReason == "" {
		c.StopReason = StopEndTurn
	}
	return c
}

// Violation is the error the model is given when it calls a tool the
// rules do not allow (valid: the tools they allow): Letta's
// ToolConstraintError, with the rules that bear on the call (on the tool
// or on the previous one) as hints.
func (rs ToolRules) Violation(tool string, valid, history []string) string {
	prev := ""
	if len(history) > 0 {
		prev = history[len(history)-1]
	}
	var hints []string
	for _, r := range rs.promptOrder() {
		if r.ToolName == tool || (prev != "" && r.ToolName == prev) {
			if p := r.prompt(); p != "" {
				hints = append(hints, "\t- "+p)
			}
		}
	}
	msg := fmt.Sprintf("[ToolConstraintError] Cannot call %s, valid tools include: %s.", tool, pyList(valid))
	if len(hints) > 0 {
		msg += "\n** Hint: Possible rules that were violated:\n" + strings.Join(hints, "\n")
	}
	return msg
}

// promptOrder lists the rules in the order Letta renders them: init,
// continue, child-based (child, conditional, max-count), parent, terminal.
func (rs ToolRules) promptOrder() []ToolRule {
	var out []ToolRule
	out = append(out, rs.of(RuleInit)...)
	out = append(out, rs.of(RuleContinue)...)
	out = append(out, rs.of(RuleChild, RuleConditional, RuleMaxCountPerStep)...)
	out = append(out, rs.of(RuleParent)...)
	out = append(out, rs.of(RuleTerminal)...)
	return out
}

// prompt renders one rule for the model as Letta does; "" for a kind Letta
// does not render.
func (r ToolRule) prompt() string {
	switch r.Type {
	case RuleChild:
		return fmt.Sprintf("<tool_rule>\nAfter using %s, you must use one of these tools: %s\n</tool_rule>", r.ToolName, strings.Join(r.Children, ", "))
	case RuleParent:
		return fmt.Sprintf("<tool_rule>\n%s can only be used after %s\n</tool_rule>", strings.Join(r.Children, ", "), r.ToolName)
	case RuleConditional:
		return fmt.Sprintf("<tool_rule>\n%s will determine which tool to use next based on its output\n</tool_rule>", r.ToolName)
	case RuleTerminal:
		return fmt.Sprintf("<tool_rule>\n%s ends your response (yields control) when called\n</tool_rule>", r.ToolName)
	case RuleContinue:
		return fmt.Sprintf("<tool_rule>\n%s requires continuing your response when called\n</tool_rule>", r.ToolName)
	case RuleMaxCountPerStep:
		return fmt.Sprintf("<tool_rule>\n%s: at most %d use(s) per response\n</tool_rule>", r.ToolName, *r.MaxCountLimit)
	case RuleRequiredBeforeExit:
		return fmt.Sprintf("<tool_rule>%s must be called before ending the conversation</tool_rule>", r.ToolName)
	}
	return ""
}

// ToolRulesDescription describes the block Prompt renders, as Letta's
// tool_usage_rules block is described.
const ToolRulesDescription = "The following constraints define rules for tool usage and guide desired behavior. These rules must be followed to ensure proper tool execution and workflow. A single response may contain multiple tool calls."

// Prompt renders the rules the model is told about (Letta's
// tool_usage_rules block), one per line; "" when none renders.
func (rs ToolRules) Prompt() string {
	var lines []string
	for _, r := range rs.promptOrder() {
		if p := r.prompt(); p != "" {
			lines = append(lines, p)
		}
	}
	return strings.Join(lines, "\n")
}

// Prefill returns the arguments the rules prefill for a call of tool, given
// the turn's calls so far: an init rule's args before the first call, and
// the child_arg_nodes of a child rule on the previous tool. Nil for none.
// Prefilled values override the model's.
func (rs ToolRules) Prefill(tool string, history []string) map[string]any {
	out := map[string]any{}
	if len(history) == 0 {
		for _, r := range rs.of(RuleInit) {
			if r.ToolName == tool {
				for k, v := range r.Args {
					out[k] = v
				}
			}
		}
	} else {
		last := history[len(history)-1]
		for _, r := range rs.of(RuleChild) {
			if r.ToolName != last {
				continue
			}
			for _, n := range r.ChildArgNodes {
				if n.Name == tool {
					for k, v := range n.Args {
						out[k] = v
					}
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

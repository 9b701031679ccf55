package service

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Limits on what a client may store. Events must stay well under the log's
// 1 MiB message limit.
const (
	MaxNameLen       = 100       // characters in an agent, block-template, tool or source name
	MaxLabelLen      = 100       // characters in a block label
	MaxTextLen       = 200_000   // characters in one block value or passage
	MaxBlockLimit    = 200_000   // the largest character limit a block may have
	DefaultLimit     = 100_000   // a block's limit when the client gives none (Letta's modern default)
	MaxSystemLen     = 200_000   // characters in a system prompt
	MaxSourceLen     = 200_000   // bytes of tool source code
	MaxDescLen       = 10_000    // characters in a description
	MaxMetadataBytes = 64 << 10  // bytes of a metadata object
	MaxTags          = 100       // tags on one object
	MaxListIDs       = 1000      // ids in one list field
	MaxOtidLen       = 255       // bytes of a message's otid (it names the send's command, as an Idempotency-Key does)
	maxEventBytes    = 900 << 10 // a decided event larger than this is refused
)

var (
	agentNameRE = regexp.MustCompile(`^[\p{L}\p{N}_ '\-.]+$`)
	labelRE     = regexp.MustCompile(`^[A-Za-z0-9_\-/.]+$`)
)

func invalid(format string, args ...any) error { return fault.E(fault.Invalid, format, args...) }

func unprocessable(format string, args ...any) error {
	return fault.E(fault.Unprocessable, format, args...)
}

func notFound(format string, args ...any) error { return fault.E(fault.NotFound, format, args...) }

func checkName(what, name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return invalid("%s name must not be empty", what)
	case n > MaxNameLen:
		return invalid("%s name is %d characters long; the limit is %d", what, n, MaxNameLen)
	case !utf8.ValidString(name):
		return invalid("%s name is not valid UTF-8", what)
	}
	return nil
}

func checkAgentName(name string) error {
	if err := checkName("agent", name); err != nil {
		return err
	}
	if !agentNameRE.MatchString(name) {
		return invalid("agent name %q may contain only letters, digits, spaces, '_', '-', '.' and \"'\"", name)
	}
	return nil
}

func checkLabel(label string) error {
	n := utf8.RuneCountInString(label)
	switch {
	case n == 0:
		return invalid("block label must not be empty")
	case n > MaxLabelLen:
		return invalid("block label is %d characters long; the limit is %d", n, MaxLabelLen)
	case !labelRE.MatchString(label):
		return invalid("block label %q may contain only letters, digits, '_', '-', '/' and '.'", label)
	}
	return nil
}

func checkText(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid("%s is %d characters long; the limit is %d", what, n, max)
	}
	return nil
}

// checkValue enforces a block's character limit, counting code points as
// Letta does.
func checkValue(label, value string, limit int) error {
	if !utf8.ValidString(value) {
		return invalid("value of block %q is not valid UTF-8", label)
	}
	if n := utf8.RuneCountInString(value); n > limit {
		return invalid("Edit failed: Exceeds %d character limit (requested %d) for block %q; the block was not changed", limit, n, label)
	}
	return nil
}

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxBlockLimit {
		return invalid("block limit %d is out of range 1..%d", limit, MaxBlockLimit)
	}
	return nil
}

// object validates a JSON object field (metadata): absent and null give
// nil; anything but an object is refused.
func object(field string, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if len(raw) > MaxMetadataBytes {
		return nil, invalid("%s is %d bytes; the limit is %d", field, len(raw), MaxMetadataBytes)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, unprocessable("%s must be a JSON object", field)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, unprocessable("%s must be a JSON object", field)
	}
	return buf.Bytes(), nil
}

// firstObject picks the modern field, else its 0.5 alias.
func firstObject(field string, modern, old json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(modern)) > 0 && !bytes.Equal(bytes.TrimSpace(modern), []byte("null")) {
		return object(field, modern)
	}
	return object(field, old)
}

func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return invalid("%d tags; the limit is %d", len(tags), MaxTags)
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > MaxNameLen {
			return invalid("tag %q must be 1..%d characters", t, MaxNameLen)
		}
	}
	return nil
}

func checkIDs(prefix string, ids []string) error {
	if len(ids) > MaxListIDs {
		return invalid("%d ids; the limit is %d", len(ids), MaxListIDs)
	}
	for _, id := range ids {
		if err := events.CheckID(prefix, id); err != nil {
			return unprocessable("%v", err)
		}
	}
	return nil
}

func dedupe[T comparable](xs []T) []T {
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// llmFrom validates a client-given llm_config. Unknown keys are dropped.
func llmFrom(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var c api.LLMConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, unprocessable("llm_config: %v", jsonProblem(err))
	}
	if c.Model == "" || c.ModelEndpointType == "" {
		return nil, unprocessable("llm_config needs model and model_endpoint_type")
	}
	if c.ContextWindow <= 0 {
		return nil, unprocessable("llm_config.context_window must be positive")
	}
	if c.Handle == nil {
		h := c.ModelEndpointType + "/" + c.Model
		c.Handle = &h
	}
	if alias := openAIProxyAlias(*c.Handle); alias != "" {
		c.Handle = &alias // Letta's name for it; engram runs it as this
	}
	return json.Marshal(c)
}

// embeddingFrom validates a client-given embedding_config.
func embeddingFrom(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var c api.EmbeddingConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, unprocessable("embedding_config: %v", jsonProblem(err))
	}
	if c.EmbeddingModel == "" || c.EmbeddingEndpointType == "" {
		return nil, unprocessable("embedding_config needs embedding_model and embedding_endpoint_type")
	}
	if c.EmbeddingDim <= 0 || c.EmbeddingDim > 8192 {
		return nil, unprocessable("embedding_config.embedding_dim must be in 1..8192")
	}
	if c.Handle == nil {
		h := c.EmbeddingEndpointType + "/" + c.EmbeddingModel
		c.Handle = &h
	}
	return json.Marshal(c)
}

// checkSize refuses a decision holding an event the log cannot store, so an
// oversized request is a 400, not an append failure.
func checkSize(evs []events.Envelope) error {
	for _, env := range evs {
		b, err := events.Encode(env)
		if err != nil {
			return fault.Wrap(fault.Internal, err, "encode %s", env.Event.EventType())
		}
		if len(b) > maxEventBytes {
			return invalid("the change is too large to store: %d bytes encoded, the limit is %d", len(b), maxEventBytes)
		}
	}
	return nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		te = e
		return "field " + te.Field + " must be " + te.Type.String()
	}
	return "malformed JSON"
}

// checkToolRules checks an agent's tool_rules (agents.ParseToolRules) and
// returns them as stored: Letta 0.5's type names read as the modern ones,
// unset fields left out. A bad rule is 400 with what is wrong with it.
func checkToolRules(raw json.RawMessage) (json.RawMessage, error) {
	rules, err := agents.ParseToolRules(raw)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if rules == nil {
		rules = []agents.ToolRule{}
	}
	return json.Marshal(rules)
}

// withApprovalRules adds to an agent's tool rules a requires_approval rule
// for each of tools that requires approval by default and has none, as
// Letta does when an agent is given such a tool. rules come back unchanged
// when nothing is added.
func withApprovalRules(st *projections.State, rules json.RawMessage, tools []events.ToolID) json.RawMessage {
	rs, _ := agents.ParseToolRules(rules) // checked when stored
	parsed := agents.ToolRules(rs)
	added := false
	for _, id := range tools {
		t := st.Tools[id]
		if t == nil || !t.DefaultRequiresApproval || parsed.RequiresApproval(t.Name) {
			continue
		}
		parsed = append(parsed, agents.ToolRule{ToolName: t.Name, Type: agents.RuleRequiresApproval})
		added = true
	}
	if !added {
		return rules
	}
	out, _ := json.Marshal(parsed)
	return out
}

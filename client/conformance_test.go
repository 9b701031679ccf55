package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/node"
)

// The models every test node offers.
var (
	testModels = []api.Model{{
		LLMConfig: api.LLMConfig{
			Model: "gpt-4o-mini", ModelEndpointType: "openai", ModelEndpoint: ptr("https://api.openai.com/v1"),
			ContextWindow: 128000, Handle: ptr("openai/gpt-4o-mini"),
		},
		Name: "gpt-4o-mini", DisplayName: "GPT-4o mini", ProviderType: "openai", MaxContextWindow: 128000, ModelType: "llm",
	}}
	testEmbeddingModels = []api.EmbeddingModel{{
		EmbeddingConfig: api.EmbeddingConfig{
			EmbeddingEndpointType: "openai", EmbeddingEndpoint: ptr("https://api.openai.com/v1"),
			EmbeddingModel: "text-embedding-3-small", EmbeddingDim: 1536, EmbeddingChunkSize: ptr(300),
			Handle: ptr("openai/text-embedding-3-small"),
		},
		Name: "text-embedding-3-small", DisplayName: "text-embedding-3-small", ProviderName: "openai",
		ProviderType: "openai", ModelType: "embedding",
	}}
)

// testNodeConfig makes a node fast to run in tests (no fsync) and gives it
// the test models.
func testNodeConfig(c *node.Config) {
	c.SyncAlways = false
	c.Service.Models = testModels
	c.Service.EmbeddingModels = testEmbeddingModels
	c.Service.Providers = scripts
}

// RunConformance checks that a Client behaves as the interface says.
// newClient must return a new client over a node of its own, configured by
// testNodeConfig, and close it when the test ends. Each case gets its own
// client and runs in parallel with the others.
func RunConformance(t *testing.T, newClient func(t *testing.T) client.Client) {
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, c client.Client)
	}{
		{"CreateAgentDefaults", testCreateAgentDefaults},
		{"CreateAgentOptions", testCreateAgentOptions},
		{"AgentLifecycle", testAgentLifecycle},
		{"CoreMemory", testCoreMemory},
		{"AttachDetachBlock", testAttachDetachBlock},
		{"ArchivalMemory", testArchivalMemory},
		{"RecallMemory", testRecallMemory},
		{"HumansAndPersonas", testTemplates},
		{"Blocks", testBlocks},
		{"Tools", testTools},
		{"Sources", testSources},
		{"Files", testFiles},
		{"JobsAndModels", testJobsAndModels},
		{"UnknownIDs", testUnknownIDs},
		{"RunAgent", testRunAgent},
		{"StreamMessages", testStreamMessages},
		{"RunCustomTool", testRunCustomTool},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, t.Context(), newClient(t))
		})
	}
}

// Helpers.

func ptr[T any](v T) *T { return &v }

// must turns a (value, error) result into the value, failing the test on an
// error: must(c.GetAgent(ctx, id))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

// wantKind checks that err has kind k.
func wantKind(t *testing.T, what string, err error, k fault.Kind) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error; want one of kind %v", what, k)
	case !fault.Is(err, k):
		t.Errorf("%s: error %q has kind %v; want %v", what, err, fault.KindOf(err), k)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func agentIDs(as []api.AgentState) []string {
	return ids(as, func(a api.AgentState) string { return a.ID })
}

func blockIDs(bs []api.Block) []string {
	return ids(bs, func(b api.Block) string { return b.ID })
}

func blockLabels(bs []api.Block) []string {
	return ids(bs, func(b api.Block) string { return b.Label })
}

func toolNames(ts []api.Tool) []string {
	return ids(ts, func(t api.Tool) string { return t.Name })
}

func sourceIDs(ss []api.Source) []string {
	return ids(ss, func(s api.Source) string { return s.ID })
}

func passageTexts(ps []api.Passage) []string {
	return ids(ps, func(p api.Passage) string { return p.Text })
}

// serverToolNames names every tool the server provides, in the order it
// creates them.
func serverToolNames() []string {
	var out []string
	for _, bt := range agents.ServerTools() {
		out = append(out, bt.Name)
	}
	return out
}

func baseToolNames() []string {
	var out []string
	for _, bt := range agents.BaseTools() {
		out = append(out, bt.Name)
	}
	return out
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// jsonObject decodes a metadata object.
func jsonObject(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}

// schema is the part of a tool's json_schema the tests look at.
type schema struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Parameters  struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	} `json:"parameters"`
}

func schemaOf(t *testing.T, tool *api.Tool) schema {
	t.Helper()
	var s schema
	if err := json.Unmarshal(tool.JSONSchema, &s); err != nil {
		t.Fatalf("decode json_schema %s: %v", tool.JSONSchema, err)
	}
	return s
}

func propertyNames(s schema) []string {
	var out []string
	for k := range s.Parameters.Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// unknownID is a well-formed id that names nothing.
func unknownID(prefix string) string { return events.NewID(prefix, time.Now()) }

const diceSource = `def roll_dice(sides: int, times: int = 1) -> str:
    """
    Roll dice.

    Args:
        sides (int): How many sides each die has.
        times (int): How many dice to roll.

    Returns:
        str: The numbers rolled.
    """
    import random
    return str([random.randint(1, sides) for _ in range(times)])
`

const diceSourceV2 = `def roll_dice(sides: int, times: int = 1) -> str:
    """
    Roll some fair dice.

    Args:
        sides (int): How many sides each die has.
        times (int): How many dice to roll.
    """
    import random
    return str([random.randint(1, sides) for _ in range(times)])
`

const diceSourceBonus = `def roll_dice(sides: int, bonus: int, times: int = 1) -> str:
    """
    Roll dice and add a bonus.

    Args:
        sides (int): How many sides each die has.
        bonus (int): What to add to each roll.
        times (int): How many dice to roll.
    """
    import random
    return str([random.randint(1, sides) + bonus for _ in range(times)])
`

const coinSource = `def flip_coin() -> str:
    """
    Flip a coin.
    """
    import random
    return random.choice(["heads", "tails"])
`

// Agents.

func testCreateAgentDefaults(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "sam"}))(t)
	if a.ID == "" || a.Name != "sam" {
		t.Errorf("agent id %q name %q; want an id and name sam", a.ID, a.Name)
	}
	type block struct {
		Label, Value string
		Limit        int
	}
	var got []block
	for _, b := range a.Blocks {
		got = append(got, block{b.Label, b.Value, b.Limit})
	}
	diff(t, "default memory blocks", []block{
		{"persona", agents.DefaultPersona, 2000},
		{"human", agents.DefaultHuman, 2000},
	}, got)
	diff(t, "memory.blocks", blockIDs(a.Blocks), blockIDs(a.Memory.Blocks))
	for _, b := range a.Blocks {
		if b.IsTemplate {
			t.Errorf("core memory block %s is a template", b.Label)
		}
	}
	diff(t, "tools", baseToolNames(), toolNames(a.Tools))
	diff(t, "metadata", map[string]any{"human:": "basic", "persona": "sam_pov"}, jsonObject(t, a.Metadata))
	if a.System != agents.DefaultSystemPrompt {
		t.Errorf("system = %.40q…; want the default system prompt", a.System)
	}
	if a.LLMConfig == nil || a.LLMConfig.Handle == nil || *a.LLMConfig.Handle != "openai/gpt-4o-mini" {
		t.Errorf("llm_config = %+v; want the node's default model", a.LLMConfig)
	}
	if a.EmbeddingConfig == nil || a.EmbeddingConfig.Handle == nil || *a.EmbeddingConfig.Handle != "openai/text-embedding-3-small" {
		t.Errorf("embedding_config = %+v; want the node's default embedding model", a.EmbeddingConfig)
	}

	// No name: a random one.
	anon := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	if anon.Name == "" || anon.ID == a.ID {
		t.Errorf("unnamed agent: id %q name %q", anon.ID, anon.Name)
	}
}

func testCreateAgentOptions(t *testing.T, ctx context.Context, c client.Client) {
	tool := must(c.CreateTool(ctx, diceSource, client.CreateToolOptions{}))(t)
	mem := client.BasicBlockMemory(client.NewBlock("notes", "likes tea", 500), client.NewBlock("goals", "learn Go", 0))
	llm := api.LLMConfig{Model: "gpt-4o", ModelEndpointType: "openai", ContextWindow: 8192}
	emb := api.EmbeddingConfig{EmbeddingEndpointType: "openai", EmbeddingModel: "text-embedding-3-large", EmbeddingDim: 3072}
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{
		Name: "custom", LLMConfig: &llm, EmbeddingConfig: &emb, Memory: &mem,
		System: "Be brief.", Tools: []string{tool.Name}, IncludeBaseTools: ptr(false),
		Metadata: map[string]any{"team": "blue", "level": 3.0}, Description: "a test agent",
	}))(t)
	diff(t, "labels", []string{"notes", "goals"}, blockLabels(a.Blocks))
	if a.Blocks[0].Limit != 500 || a.Blocks[0].Value != "likes tea" || a.Blocks[1].Value != "learn Go" {
		t.Errorf("blocks = %+v", a.Blocks)
	}
	diff(t, "tools", []string{"roll_dice"}, toolNames(a.Tools))
	diff(t, "metadata", map[string]any{"team": "blue", "level": 3.0}, jsonObject(t, a.Metadata))
	if a.System != "Be brief." || a.Description == nil || *a.Description != "a test agent" {
		t.Errorf("system %q description %v", a.System, a.Description)
	}
	if a.LLMConfig == nil || a.LLMConfig.Model != "gpt-4o" || a.LLMConfig.ContextWindow != 8192 ||
		a.LLMConfig.Handle == nil || *a.LLMConfig.Handle != "openai/gpt-4o" {
		t.Errorf("llm_config = %+v", a.LLMConfig)
	}
	if a.EmbeddingConfig == nil || a.EmbeddingConfig.EmbeddingModel != "text-embedding-3-large" || a.EmbeddingConfig.EmbeddingDim != 3072 {
		t.Errorf("embedding_config = %+v", a.EmbeddingConfig)
	}

	chat := client.ChatMemory("I am Ada's helper.", "Name: Ada")
	b := must(c.CreateAgent(ctx, client.CreateAgentOptions{Memory: &chat, Metadata: map[string]any{}}))(t)
	diff(t, "ChatMemory labels", []string{"persona", "human"}, blockLabels(b.Blocks))
	if b.Blocks[0].Value != "I am Ada's helper." || b.Blocks[1].Value != "Name: Ada" || b.Blocks[0].Limit != 2000 || b.Blocks[1].Limit != 2000 {
		t.Errorf("ChatMemory blocks = %+v", b.Blocks)
	}
	diff(t, "empty metadata", map[string]any{}, jsonObject(t, b.Metadata))

	// Secrets are taken and shown masked.
	sec := must(c.CreateAgent(ctx, client.CreateAgentOptions{Secrets: map[string]string{"API_TOKEN": "tok-7f1d"}}))(t)
	if len(sec.Secrets) != 1 || sec.Secrets[0].Key != "API_TOKEN" || sec.Secrets[0].Value != api.MaskedSecret {
		t.Errorf("secrets = %+v, want API_TOKEN masked", sec.Secrets)
	}

	none := must(c.CreateAgent(ctx, client.CreateAgentOptions{Memory: &client.Memory{}}))(t)
	if len(none.Blocks) != 0 {
		t.Errorf("empty Memory gave blocks %v", blockLabels(none.Blocks))
	}

	_, err := c.CreateAgent(ctx, client.CreateAgentOptions{Name: "bad/name"})
	wantKind(t, "agent name with a slash", err, fault.Invalid)
	_, err = c.CreateAgent(ctx, client.CreateAgentOptions{Tools: []string{"no_such_tool"}})
	wantKind(t, "unknown tool name", err, fault.Invalid) // 400 "Tools not found by name", as Letta
	dup := client.BasicBlockMemory(client.NewBlock("x", "1", 0), client.NewBlock("x", "2", 0))
	_, err = c.CreateAgent(ctx, client.CreateAgentOptions{Memory: &dup})
	wantKind(t, "two blocks with one label", err, fault.Invalid)
	big := client.ChatMemory(strings.Repeat("p", 2001), "h")
	_, err = c.CreateAgent(ctx, client.CreateAgentOptions{Memory: &big})
	wantKind(t, "persona over its limit", err, fault.Invalid)
}

func testAgentLifecycle(t *testing.T, ctx context.Context, c client.Client) {
	a1 := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "alpha"}))(t)
	a2 := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "beta"}))(t)

	got := must(c.GetAgent(ctx, a1.ID))(t)
	if got.ID != a1.ID || got.Name != "alpha" {
		t.Errorf("GetAgent = %s %q", got.ID, got.Name)
	}
	diff(t, "GetAgent blocks", blockIDs(a1.Blocks), blockIDs(got.Blocks))
	if id := must(c.GetAgentID(ctx, "beta"))(t); id != a2.ID {
		t.Errorf("GetAgentID(beta) = %q; want %q", id, a2.ID)
	}
	_, err := c.GetAgentID(ctx, "nobody")
	wantKind(t, "GetAgentID of a missing name", err, fault.NotFound)

	for _, tc := range []struct {
		what string
		got  func() (bool, error)
		want bool
	}{
		{"AgentExists(alpha)", func() (bool, error) { return c.AgentExists(ctx, a1.ID) }, true},
		{"AgentExists(unknown)", func() (bool, error) { return c.AgentExists(ctx, unknownID(events.PrefixAgent)) }, false},
		{"AgentExists(malformed)", func() (bool, error) { return c.AgentExists(ctx, "agent-nope") }, false},
		{"AgentExistsByName(alpha)", func() (bool, error) { return c.AgentExistsByName(ctx, "alpha") }, true},
		{"AgentExistsByName(nobody)", func() (bool, error) { return c.AgentExistsByName(ctx, "nobody") }, false},
	} {
		ok, err := tc.got()
		if err != nil || ok != tc.want {
			t.Errorf("%s = %v, %v; want %v, nil", tc.what, ok, err, tc.want)
		}
	}

	diff(t, "ListAgents", []string{a1.ID, a2.ID}, agentIDs(must(c.ListAgents(ctx))(t)))

	renamed := must(c.RenameAgent(ctx, a1.ID, "gamma"))(t)
	if renamed.Name != "gamma" || renamed.ID != a1.ID {
		t.Errorf("RenameAgent = %s %q", renamed.ID, renamed.Name)
	}
	if id := must(c.GetAgentID(ctx, "gamma"))(t); id != a1.ID {
		t.Errorf("GetAgentID(gamma) = %q; want %q", id, a1.ID)
	}
	if ok := must(c.AgentExistsByName(ctx, "alpha"))(t); ok {
		t.Error("the old name still exists after RenameAgent")
	}
	_, err = c.RenameAgent(ctx, a1.ID, "")
	wantKind(t, "RenameAgent to an empty name", err, fault.Invalid)

	tags := []string{"x", "y"}
	up := must(c.UpdateAgent(ctx, a2.ID, api.UpdateAgent{Description: ptr("updated"), Tags: &tags, System: ptr("New system.")}))(t)
	if up.Description == nil || *up.Description != "updated" || up.System != "New system." || up.Name != "beta" {
		t.Errorf("UpdateAgent = description %v system %q name %q", up.Description, up.System, up.Name)
	}
	diff(t, "tags", tags, must(c.GetAgent(ctx, a2.ID))(t).Tags)
	_, err = c.UpdateAgent(ctx, a2.ID, api.UpdateAgent{Name: ptr("bad/name")})
	wantKind(t, "UpdateAgent with a bad name", err, fault.Invalid)

	noErr(t, "DeleteAgent", c.DeleteAgent(ctx, a1.ID))
	if ok := must(c.AgentExists(ctx, a1.ID))(t); ok {
		t.Error("AgentExists after DeleteAgent = true")
	}
	if ok := must(c.AgentExistsByName(ctx, "gamma"))(t); ok {
		t.Error("AgentExistsByName after DeleteAgent = true")
	}
	_, err = c.GetAgent(ctx, a1.ID)
	wantKind(t, "GetAgent after DeleteAgent", err, fault.NotFound)
	wantKind(t, "DeleteAgent twice", c.DeleteAgent(ctx, a1.ID), fault.NotFound)
	diff(t, "ListAgents after delete", []string{a2.ID}, agentIDs(must(c.ListAgents(ctx))(t)))
}

// Memory.

func testCoreMemory(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	m := must(c.GetInContextMemory(ctx, a.ID))(t)
	diff(t, "labels", []string{"persona", "human"}, blockLabels(m.Blocks))
	if h, _ := m.Get("human"); h.Value != agents.DefaultHuman {
		t.Errorf("human = %q", h.Value)
	}

	m = must(c.UpdateInContextMemory(ctx, a.ID, "human", "First name: Ada"))(t)
	if h, _ := m.Get("human"); h.Value != "First name: Ada" {
		t.Errorf("UpdateInContextMemory returned human %q", h.Value)
	}
	if p, _ := m.Get("persona"); p.Value != agents.DefaultPersona {
		t.Errorf("persona changed to %q", p.Value)
	}
	m = must(c.GetInContextMemory(ctx, a.ID))(t)
	if h, _ := m.Get("human"); h.Value != "First name: Ada" {
		t.Errorf("GetInContextMemory after update: human %q", h.Value)
	}

	full := strings.Repeat("é", 2000) // the limit counts characters, not bytes
	m = must(c.UpdateInContextMemory(ctx, a.ID, "human", full))(t)
	if h, _ := m.Get("human"); h.Value != full {
		t.Errorf("a value of exactly the limit was not stored")
	}
	_, err := c.UpdateInContextMemory(ctx, a.ID, "human", full+"x")
	wantKind(t, "UpdateInContextMemory over the limit", err, fault.Invalid)
	m = must(c.GetInContextMemory(ctx, a.ID))(t)
	if h, _ := m.Get("human"); h.Value != full {
		t.Errorf("after a refused update, human = %.20q…; want the old value", h.Value)
	}
	_, err = c.UpdateInContextMemory(ctx, a.ID, "nosuch", "v")
	wantKind(t, "UpdateInContextMemory of an unknown section", err, fault.NotFound)
}

func testAttachDetachBlock(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	b := must(c.CreateBlock(ctx, "notes", "my-notes", "remember the milk"))(t)

	s := must(c.AttachBlock(ctx, a.ID, b.ID))(t)
	diff(t, "labels after attach", []string{"persona", "human", "notes"}, blockLabels(s.Blocks))
	m := must(c.GetInContextMemory(ctx, a.ID))(t)
	if n, ok := m.Get("notes"); !ok || n.ID != b.ID || n.Value != "remember the milk" {
		t.Errorf("notes in memory = %+v, %v", n, ok)
	}
	must(c.AttachBlock(ctx, a.ID, b.ID))(t) // again: no change, no error
	diff(t, "labels after a second attach", []string{"persona", "human", "notes"}, blockLabels(must(c.GetAgent(ctx, a.ID))(t).Blocks))

	// The agent's memory and the block are one thing.
	must(c.UpdateInContextMemory(ctx, a.ID, "notes", "remember the tea"))(t)
	if v := must(c.GetBlock(ctx, b.ID))(t).Value; v != "remember the tea" {
		t.Errorf("block after a memory update = %q", v)
	}

	h := must(c.CreateHuman(ctx, "other", "Name: Bo"))(t)
	_, err := c.AttachBlock(ctx, a.ID, h.ID)
	wantKind(t, "AttachBlock of a second human", err, fault.Invalid)

	s = must(c.DetachBlock(ctx, a.ID, b.ID))(t)
	diff(t, "labels after detach", []string{"persona", "human"}, blockLabels(s.Blocks))
	_, err = c.DetachBlock(ctx, a.ID, b.ID)
	wantKind(t, "DetachBlock twice", err, fault.NotFound)
	if v := must(c.GetBlock(ctx, b.ID))(t).Value; v != "remember the tea" {
		t.Errorf("block after detach = %q", v)
	}
}

func testArchivalMemory(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	var ps []api.Passage
	for _, text := range []string{"first", "second", "third"} {
		got := must(c.InsertArchivalMemory(ctx, a.ID, text))(t)
		if len(got) != 1 || got[0].Text != text || got[0].ID == "" || got[0].AgentID == nil || *got[0].AgentID != a.ID {
			t.Fatalf("InsertArchivalMemory(%q) = %+v", text, got)
		}
		ps = append(ps, got[0])
	}
	p1, p2, p3 := ps[0].ID, ps[1].ID, ps[2].ID
	for _, tc := range []struct {
		name          string
		before, after string
		limit         int
		want          []string
	}{
		{"all", "", "", 0, []string{"first", "second", "third"}},
		{"after", "", p1, 0, []string{"second", "third"}},
		{"before", p3, "", 0, []string{"first", "second"}},
		{"limit", "", "", 1, []string{"first"}},
		{"before with limit", p3, "", 1, []string{"second"}},
		{"after with limit", "", p1, 1, []string{"second"}},
		{"between", p3, p1, 0, []string{"second"}},
		{"after the last", "", p3, 0, []string{}},
	} {
		got := must(c.GetArchivalMemory(ctx, a.ID, tc.before, tc.after, tc.limit))(t)
		diff(t, "GetArchivalMemory "+tc.name, tc.want, passageTexts(got))
	}
	_, err := c.GetArchivalMemory(ctx, a.ID, "", unknownID(events.PrefixPassage), 0)
	wantKind(t, "GetArchivalMemory after an unknown passage", err, fault.NotFound)

	if n := must(c.GetArchivalMemorySummary(ctx, a.ID))(t).Size; n != 3 {
		t.Errorf("archival size = %d; want 3", n)
	}
	noErr(t, "DeleteArchivalMemory", c.DeleteArchivalMemory(ctx, a.ID, p2))
	if n := must(c.GetArchivalMemorySummary(ctx, a.ID))(t).Size; n != 2 {
		t.Errorf("archival size after delete = %d; want 2", n)
	}
	diff(t, "passages after delete", []string{"first", "third"}, passageTexts(must(c.GetArchivalMemory(ctx, a.ID, "", "", 0))(t)))
	wantKind(t, "DeleteArchivalMemory twice", c.DeleteArchivalMemory(ctx, a.ID, p2), fault.NotFound)

	// A passage belongs to one agent.
	other := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	wantKind(t, "DeleteArchivalMemory of another agent's passage", c.DeleteArchivalMemory(ctx, other.ID, p1), fault.NotFound)
	if n := must(c.GetArchivalMemorySummary(ctx, other.ID))(t).Size; n != 0 {
		t.Errorf("other agent's archival size = %d", n)
	}
	_, err = c.InsertArchivalMemory(ctx, a.ID, "  ")
	wantKind(t, "InsertArchivalMemory of blank text", err, fault.Invalid)
}

func testRecallMemory(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	// A new agent starts as Letta's do: the system message, a boot exchange
	// through send_message, and the user's first login.
	if n := must(c.GetRecallMemorySummary(ctx, a.ID))(t).Size; n != 4 {
		t.Errorf("recall size of a new agent = %d, want 4", n)
	}
	wantTypes := []string{api.SystemMessageType, api.ReasoningMessageType, api.AssistantMessageType, api.ToolReturnMessageType, api.UserMessageType}
	for _, limit := range []int{0, 10} {
		ms := must(c.GetMessages(ctx, a.ID, "", "", limit))(t)
		var types []string
		for _, m := range ms {
			types = append(types, m.MessageType)
		}
		diff(t, fmt.Sprintf("GetMessages(limit %d) types", limit), wantTypes, types)
	}
	ms := must(c.GetMessages(ctx, a.ID, "", "", 0))(t)
	if len(ms) == 5 && (ms[0].Content == nil || !strings.Contains(*ms[0].Content, "<persona characters=")) {
		t.Errorf("the system message does not hold the core memory: %v", ms[0].Content)
	}
	// Paging by stored message: after the boot assistant message comes its return.
	if len(ms) == 5 {
		next := must(c.GetMessages(ctx, a.ID, "", ms[1].ID, 1))(t)
		if len(next) != 1 || next[0].MessageType != api.ToolReturnMessageType {
			t.Errorf("GetMessages after the boot message = %+v", next)
		}
	}
	_, err := c.GetMessages(ctx, a.ID, "", unknownID(events.PrefixMessage), 0)
	wantKind(t, "GetMessages after an unknown message", err, fault.NotFound)
}

// Templates and blocks.

// templateAPI is the human or the persona half of the template methods.
type templateAPI struct {
	label  string
	create func(ctx context.Context, name, text string) (*api.Block, error)
	get    func(ctx context.Context, id string) (*api.Block, error)
	getID  func(ctx context.Context, name string) (string, error)
	list   func(ctx context.Context) ([]api.Block, error)
	update func(ctx context.Context, id, text string) (*api.Block, error)
	delete func(ctx context.Context, id string) error
}

func testTemplates(t *testing.T, ctx context.Context, c client.Client) {
	humans := templateAPI{"human", c.CreateHuman, c.GetHuman, c.GetHumanID, c.ListHumans, c.UpdateHuman, c.DeleteHuman}
	personas := templateAPI{"persona", c.CreatePersona, c.GetPersona, c.GetPersonaID, c.ListPersonas, c.UpdatePersona, c.DeletePersona}
	// An agent's own human and persona blocks are not templates.
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	for _, tc := range []struct{ this, other templateAPI }{{humans, personas}, {personas, humans}} {
		t.Run(tc.this.label, func(t *testing.T) {
			ta := tc.this
			b := must(ta.create(ctx, "ada", "Name: Ada"))(t)
			if b.Label != ta.label || b.Value != "Name: Ada" || !b.IsTemplate || b.Limit != 2000 ||
				b.TemplateName == nil || *b.TemplateName != "ada" {
				t.Errorf("created %+v", b)
			}
			if got := must(ta.get(ctx, b.ID))(t); got.ID != b.ID || got.Value != "Name: Ada" {
				t.Errorf("get = %+v", got)
			}
			if id := must(ta.getID(ctx, "ada"))(t); id != b.ID {
				t.Errorf("getID(ada) = %q; want %q", id, b.ID)
			}
			_, err := ta.getID(ctx, "nobody")
			wantKind(t, "getID of a missing name", err, fault.NotFound)

			o := must(tc.other.create(ctx, "ada", "Other: Ada"))(t)
			diff(t, "list", []string{b.ID}, blockIDs(must(ta.list(ctx))(t)))
			if id := must(ta.getID(ctx, "ada"))(t); id != b.ID {
				t.Errorf("getID(ada) with a namesake of the other label = %q; want %q", id, b.ID)
			}

			up := must(ta.update(ctx, b.ID, "Name: Ada L."))(t)
			if up.Value != "Name: Ada L." || up.ID != b.ID {
				t.Errorf("update = %+v", up)
			}
			if got := must(ta.get(ctx, b.ID))(t); got.Value != "Name: Ada L." {
				t.Errorf("get after update = %q", got.Value)
			}
			_, err = ta.update(ctx, b.ID, strings.Repeat("x", 2001))
			wantKind(t, "update over the limit", err, fault.Invalid)

			// The other label's template, and an agent's block, are not ours.
			own, _ := a.Memory.Get(ta.label)
			for _, id := range []string{o.ID, own.ID} {
				_, err = ta.get(ctx, id)
				wantKind(t, "get of a block that is not a "+ta.label+" template", err, fault.NotFound)
				_, err = ta.update(ctx, id, "changed")
				wantKind(t, "update of a block that is not a "+ta.label+" template", err, fault.NotFound)
				wantKind(t, "delete of a block that is not a "+ta.label+" template", ta.delete(ctx, id), fault.NotFound)
			}
			if v := must(c.GetBlock(ctx, o.ID))(t).Value; v != "Other: Ada" {
				t.Errorf("the other template changed to %q", v)
			}

			noErr(t, "delete", ta.delete(ctx, b.ID))
			_, err = ta.get(ctx, b.ID)
			wantKind(t, "get after delete", err, fault.NotFound)
			wantKind(t, "delete twice", ta.delete(ctx, b.ID), fault.NotFound)
			diff(t, "list after delete", []string{}, blockIDs(must(ta.list(ctx))(t)))
			noErr(t, "delete the other", tc.other.delete(ctx, o.ID))
		})
	}
}

func testBlocks(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	b := must(c.CreateBlock(ctx, "notes", "todo", "buy milk"))(t)
	if b.Label != "notes" || b.Value != "buy milk" || b.Limit != 2000 || !b.IsTemplate ||
		b.TemplateName == nil || *b.TemplateName != "todo" {
		t.Errorf("CreateBlock = %+v", b)
	}
	if got := must(c.GetBlock(ctx, b.ID))(t); got.ID != b.ID || got.Value != "buy milk" {
		t.Errorf("GetBlock = %+v", got)
	}
	human, _ := a.Memory.Get("human")
	if got := must(c.GetBlock(ctx, human.ID))(t); got.Value != agents.DefaultHuman || got.IsTemplate {
		t.Errorf("GetBlock of an agent's block = %+v", got)
	}

	if id := must(c.GetBlockID(ctx, "todo", "notes"))(t); id != b.ID {
		t.Errorf("GetBlockID(todo, notes) = %q; want %q", id, b.ID)
	}
	for _, nl := range [][2]string{{"todo", "human"}, {"nope", "notes"}} {
		_, err := c.GetBlockID(ctx, nl[0], nl[1])
		wantKind(t, "GetBlockID"+strings.Join(nl[:], ","), err, fault.NotFound)
	}

	persona, _ := a.Memory.Get("persona")
	for _, tc := range []struct {
		label         string
		templatesOnly bool
		want          []string
	}{
		{"notes", true, []string{b.ID}},
		{"", true, []string{b.ID}},
		{"", false, []string{persona.ID, human.ID, b.ID}},
		{"human", false, []string{human.ID}},
		{"human", true, []string{}},
	} {
		got := must(c.ListBlocks(ctx, tc.label, tc.templatesOnly))(t)
		diff(t, "ListBlocks("+tc.label+")", tc.want, blockIDs(got))
	}

	up := must(c.UpdateBlock(ctx, b.ID, nil, ptr("buy tea")))(t)
	if up.Value != "buy tea" || up.TemplateName == nil || *up.TemplateName != "todo" {
		t.Errorf("UpdateBlock(text) = %+v", up)
	}
	up = must(c.UpdateBlock(ctx, b.ID, ptr("errands"), nil))(t)
	if up.Value != "buy tea" || up.TemplateName == nil || *up.TemplateName != "errands" {
		t.Errorf("UpdateBlock(name) = %+v", up)
	}
	if id := must(c.GetBlockID(ctx, "errands", "notes"))(t); id != b.ID {
		t.Errorf("GetBlockID after rename = %q", id)
	}
	_, err := c.UpdateBlock(ctx, b.ID, nil, ptr(strings.Repeat("x", 2001)))
	wantKind(t, "UpdateBlock over the limit", err, fault.Invalid)
	if v := must(c.GetBlock(ctx, b.ID))(t).Value; v != "buy tea" {
		t.Errorf("after a refused update the block is %q", v)
	}
	_, err = c.CreateBlock(ctx, "bad label!", "x", "y")
	wantKind(t, "CreateBlock with a bad label", err, fault.Invalid)

	noErr(t, "DeleteBlock", c.DeleteBlock(ctx, b.ID))
	_, err = c.GetBlock(ctx, b.ID)
	wantKind(t, "GetBlock after delete", err, fault.NotFound)
	wantKind(t, "DeleteBlock twice", c.DeleteBlock(ctx, b.ID), fault.NotFound)

	// Deleting a block takes it out of the agent's memory.
	noErr(t, "DeleteBlock of an agent's block", c.DeleteBlock(ctx, human.ID))
	diff(t, "agent labels", []string{"persona"}, blockLabels(must(c.GetInContextMemory(ctx, a.ID))(t).Blocks))
}

// Tools.

func testTools(t *testing.T, ctx context.Context, c client.Client) {
	diff(t, "server tools", serverToolNames(), toolNames(must(c.ListTools(ctx))(t)))

	tool := must(c.CreateTool(ctx, diceSource, client.CreateToolOptions{Tags: []string{"games"}}))(t)
	if tool.Name != "roll_dice" || tool.SourceCode == nil || *tool.SourceCode != diceSource {
		t.Errorf("CreateTool = name %q source %v", tool.Name, tool.SourceCode)
	}
	diff(t, "tags", []string{"games"}, tool.Tags)
	s := schemaOf(t, tool)
	if s.Name != "roll_dice" || s.Description != "Roll dice." || s.Parameters.Type != "object" {
		t.Errorf("json_schema = %s", tool.JSONSchema)
	}
	diff(t, "schema properties", []string{"request_heartbeat", "sides", "times"}, propertyNames(s))
	diff(t, "schema required", []string{"sides", "request_heartbeat"}, s.Parameters.Required)

	got := must(c.GetTool(ctx, tool.ID))(t)
	if got.ID != tool.ID || got.Name != "roll_dice" || string(got.JSONSchema) != string(tool.JSONSchema) {
		t.Errorf("GetTool = %+v", got)
	}
	if id := must(c.GetToolID(ctx, "roll_dice"))(t); id != tool.ID {
		t.Errorf("GetToolID(roll_dice) = %q; want %q", id, tool.ID)
	}
	if id, err := c.GetToolID(ctx, "no_such_tool"); id != "" || err != nil {
		t.Errorf("GetToolID of a missing tool = %q, %v; want \"\", nil", id, err)
	}
	diff(t, "ListTools", append(serverToolNames(), "roll_dice"), toolNames(must(c.ListTools(ctx))(t)))

	// Create again: an update in place.
	again := must(c.CreateTool(ctx, diceSourceV2, client.CreateToolOptions{}))(t)
	if again.ID != tool.ID || schemaOf(t, again).Description != "Roll some fair dice." {
		t.Errorf("CreateTool of an existing name: id %s (want %s), schema %s", again.ID, tool.ID, again.JSONSchema)
	}
	diff(t, "tags after upsert", []string{"games"}, again.Tags)
	_, err := c.CreateTool(ctx, diceSource, client.CreateToolOptions{Update: ptr(false)})
	wantKind(t, "CreateTool update=false of an existing name", err, fault.Invalid)
	if d := schemaOf(t, must(c.GetTool(ctx, tool.ID))(t)).Description; d != "Roll some fair dice." {
		t.Errorf("a refused create changed the tool: description %q", d)
	}
	coin := must(c.CreateTool(ctx, coinSource, client.CreateToolOptions{Update: ptr(false)}))(t)
	if coin.Name != "flip_coin" || coin.ID == tool.ID {
		t.Errorf("CreateTool update=false of a new name = %s %q", coin.ID, coin.Name)
	}
	_, err = c.CreateTool(ctx, diceSource, client.CreateToolOptions{Name: "other_name"})
	wantKind(t, "CreateTool with a name that is not the function's", err, fault.Invalid)
	_, err = c.CreateTool(ctx, "this is not python", client.CreateToolOptions{})
	wantKind(t, "CreateTool of bad source", err, fault.Invalid)

	up := must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{Tags: []string{"a", "b"}}))(t)
	diff(t, "tags after UpdateTool", []string{"a", "b"}, up.Tags)
	if up.Name != "roll_dice" {
		t.Errorf("UpdateTool of tags renamed the tool to %q", up.Name)
	}
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{SourceCode: diceSourceBonus}))(t)
	diff(t, "properties after new source", []string{"bonus", "request_heartbeat", "sides", "times"}, propertyNames(schemaOf(t, up)))
	if up.SourceCode == nil || *up.SourceCode != diceSourceBonus {
		t.Errorf("source after UpdateTool = %v", up.SourceCode)
	}
	diff(t, "tags after a source update", []string{"a", "b"}, up.Tags)
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{Name: "roll"}))(t)
	if up.Name != "roll" {
		t.Errorf("UpdateTool(name) = %q", up.Name)
	}
	if id := must(c.GetToolID(ctx, "roll"))(t); id != tool.ID {
		t.Errorf("GetToolID after rename = %q", id)
	}
	if id := must(c.GetToolID(ctx, "roll_dice"))(t); id != "" {
		t.Errorf("GetToolID of the old name = %q", id)
	}
	_, err = c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{Name: "flip_coin"})
	wantKind(t, "UpdateTool to a taken name", err, fault.Invalid)

	// New source with another function renames the tool, keeping its id.
	renamed := strings.Replace(diceSourceBonus, "def roll_dice(", "def roll_bonus(", 1)
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{SourceCode: renamed}))(t)
	if up.ID != tool.ID || up.Name != "roll_bonus" || schemaOf(t, up).Name != "roll_bonus" {
		t.Errorf("UpdateTool(source of roll_bonus) = id %s name %q schema %s", up.ID, up.Name, up.JSONSchema)
	}
	if id := must(c.GetToolID(ctx, "roll_bonus"))(t); id != tool.ID {
		t.Errorf("GetToolID(roll_bonus) = %q", id)
	}
	_, err = c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{SourceCode: coinSource})
	wantKind(t, "UpdateTool to source of a taken name", err, fault.Invalid)
	_, err = c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{SourceCode: "def roll(sides):\n    return sides\n"})
	wantKind(t, "UpdateTool to source without annotations", err, fault.Invalid)
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{Name: "roll"}))(t)

	// Timeouts: default (absent), set, restored.
	if up.TimeoutSeconds != nil {
		t.Errorf("default timeout_seconds = %v, want absent", *up.TimeoutSeconds)
	}
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{TimeoutSeconds: ptr(2.5)}))(t)
	if up.TimeoutSeconds == nil || *up.TimeoutSeconds != 2.5 {
		t.Errorf("timeout_seconds after update = %v", up.TimeoutSeconds)
	}
	up = must(c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{TimeoutSeconds: ptr(0.0)}))(t)
	if up.TimeoutSeconds != nil {
		t.Errorf("timeout_seconds after restoring the default = %v", *up.TimeoutSeconds)
	}
	_, err = c.UpdateTool(ctx, tool.ID, client.UpdateToolOptions{TimeoutSeconds: ptr(-1.0)})
	wantKind(t, "UpdateTool with a negative timeout", err, fault.Invalid)
	slow := must(c.CreateTool(ctx, strings.Replace(coinSource, "flip_coin", "flip_slowly", 1), client.CreateToolOptions{TimeoutSeconds: 90}))(t)
	if slow.TimeoutSeconds == nil || *slow.TimeoutSeconds != 90 {
		t.Errorf("CreateTool timeout_seconds = %v", slow.TimeoutSeconds)
	}
	noErr(t, "DeleteTool(flip_slowly)", c.DeleteTool(ctx, slow.ID))

	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{IncludeBaseTools: ptr(false)}))(t)
	if len(a.Tools) != 0 {
		t.Errorf("IncludeBaseTools=false gave tools %v", toolNames(a.Tools))
	}
	noErr(t, "AddToolToAgent", c.AddToolToAgent(ctx, a.ID, tool.ID))
	noErr(t, "AddToolToAgent twice", c.AddToolToAgent(ctx, a.ID, tool.ID))
	noErr(t, "AddToolToAgent(coin)", c.AddToolToAgent(ctx, a.ID, coin.ID))
	diff(t, "agent tools", []string{"roll", "flip_coin"}, toolNames(must(c.GetAgent(ctx, a.ID))(t).Tools))
	noErr(t, "RemoveToolFromAgent", c.RemoveToolFromAgent(ctx, a.ID, coin.ID))
	diff(t, "agent tools after remove", []string{"roll"}, toolNames(must(c.GetAgent(ctx, a.ID))(t).Tools))
	wantKind(t, "RemoveToolFromAgent twice", c.RemoveToolFromAgent(ctx, a.ID, coin.ID), fault.NotFound)

	noErr(t, "DeleteTool", c.DeleteTool(ctx, tool.ID))
	_, err = c.GetTool(ctx, tool.ID)
	wantKind(t, "GetTool after delete", err, fault.NotFound)
	wantKind(t, "DeleteTool twice", c.DeleteTool(ctx, tool.ID), fault.NotFound)
	diff(t, "agent tools after DeleteTool", []string{}, toolNames(must(c.GetAgent(ctx, a.ID))(t).Tools))
	diff(t, "ListTools after delete", append(serverToolNames(), "flip_coin"), toolNames(must(c.ListTools(ctx))(t)))
}

// Sources.

func testSources(t *testing.T, ctx context.Context, c client.Client) {
	if ss := must(c.ListSources(ctx))(t); len(ss) != 0 {
		t.Errorf("ListSources on a new node = %v", sourceIDs(ss))
	}
	s := must(c.CreateSource(ctx, "docs"))(t)
	if s.Name != "docs" || s.ID == "" {
		t.Errorf("CreateSource = %+v", s)
	}
	if s.EmbeddingConfig == nil || s.EmbeddingConfig.Handle == nil || *s.EmbeddingConfig.Handle != "openai/text-embedding-3-small" {
		t.Errorf("source embedding_config = %+v; want the node's default", s.EmbeddingConfig)
	}
	if got := must(c.GetSource(ctx, s.ID))(t); got.ID != s.ID || got.Name != "docs" {
		t.Errorf("GetSource = %+v", got)
	}
	if id := must(c.GetSourceID(ctx, "docs"))(t); id != s.ID {
		t.Errorf("GetSourceID(docs) = %q; want %q", id, s.ID)
	}
	_, err := c.GetSourceID(ctx, "nope")
	wantKind(t, "GetSourceID of a missing name", err, fault.NotFound)
	_, err = c.CreateSource(ctx, "docs")
	wantKind(t, "CreateSource of a taken name", err, fault.Invalid)
	_, err = c.CreateSource(ctx, "")
	wantKind(t, "CreateSource without a name", err, fault.Invalid)

	s2 := must(c.CreateSource(ctx, "notes"))(t)
	diff(t, "ListSources", []string{s.ID, s2.ID}, sourceIDs(must(c.ListSources(ctx))(t)))

	if up := must(c.UpdateSource(ctx, s.ID, "manuals"))(t); up.Name != "manuals" || up.ID != s.ID {
		t.Errorf("UpdateSource = %+v", up)
	}
	if id := must(c.GetSourceID(ctx, "manuals"))(t); id != s.ID {
		t.Errorf("GetSourceID after rename = %q", id)
	}
	_, err = c.UpdateSource(ctx, s.ID, "notes")
	wantKind(t, "UpdateSource to a taken name", err, fault.Invalid)

	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	diff(t, "attached on a new agent", []string{}, sourceIDs(must(c.ListAttachedSources(ctx, a.ID))(t)))
	noErr(t, "AttachSourceToAgent", c.AttachSourceToAgent(ctx, a.ID, s.ID))
	noErr(t, "AttachSourceToAgent twice", c.AttachSourceToAgent(ctx, a.ID, s.ID))
	noErr(t, "AttachSourceToAgent(notes)", c.AttachSourceToAgent(ctx, a.ID, s2.ID))
	diff(t, "attached", []string{s.ID, s2.ID}, sourceIDs(must(c.ListAttachedSources(ctx, a.ID))(t)))
	diff(t, "agent sources", []string{s.ID, s2.ID}, sourceIDs(must(c.GetAgent(ctx, a.ID))(t).Sources))
	noErr(t, "DetachSourceFromAgent", c.DetachSourceFromAgent(ctx, a.ID, s2.ID))
	diff(t, "attached after detach", []string{s.ID}, sourceIDs(must(c.ListAttachedSources(ctx, a.ID))(t)))
	wantKind(t, "DetachSourceFromAgent twice", c.DetachSourceFromAgent(ctx, a.ID, s2.ID), fault.NotFound)

	noErr(t, "DeleteSource", c.DeleteSource(ctx, s.ID))
	_, err = c.GetSource(ctx, s.ID)
	wantKind(t, "GetSource after delete", err, fault.NotFound)
	wantKind(t, "DeleteSource twice", c.DeleteSource(ctx, s.ID), fault.NotFound)
	diff(t, "attached after DeleteSource", []string{}, sourceIDs(must(c.ListAttachedSources(ctx, a.ID))(t)))
	diff(t, "ListSources after delete", []string{s2.ID}, sourceIDs(must(c.ListSources(ctx))(t)))
}

// Jobs and models.

func testJobsAndModels(t *testing.T, ctx context.Context, c client.Client) {
	jobs := must(c.ListJobs(ctx))(t)
	if jobs == nil || len(jobs) != 0 {
		t.Errorf("ListJobs on a new node = %#v; want an empty list", jobs)
	}
	_, err := c.GetJob(ctx, unknownID(events.PrefixJob))
	wantKind(t, "GetJob of an unknown id", err, fault.NotFound)
	_, err = c.GetJob(ctx, "job-nope")
	wantKind(t, "GetJob of a malformed id", err, fault.Unprocessable)

	diff(t, "ListModels", testModels, must(c.ListModels(ctx))(t))
	diff(t, "ListEmbeddingModels", testEmbeddingModels, must(c.ListEmbeddingModels(ctx))(t))
}

// Errors.

func testUnknownIDs(t *testing.T, ctx context.Context, c client.Client) {
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{}))(t)
	b := must(c.CreateBlock(ctx, "notes", "n", "v"))(t)
	tool := must(c.CreateTool(ctx, coinSource, client.CreateToolOptions{}))(t)
	src := must(c.CreateSource(ctx, "docs"))(t)
	var (
		agent   = unknownID(events.PrefixAgent)
		block   = unknownID(events.PrefixBlock)
		toolID  = unknownID(events.PrefixTool)
		source  = unknownID(events.PrefixSource)
		passage = unknownID(events.PrefixPassage)
	)
	calls := []struct {
		name string
		call func() error
	}{
		{"GetAgent", func() error { _, err := c.GetAgent(ctx, agent); return err }},
		{"UpdateAgent", func() error { _, err := c.UpdateAgent(ctx, agent, api.UpdateAgent{Description: ptr("d")}); return err }},
		{"RenameAgent", func() error { _, err := c.RenameAgent(ctx, agent, "x"); return err }},
		{"DeleteAgent", func() error { return c.DeleteAgent(ctx, agent) }},
		{"GetInContextMemory", func() error { _, err := c.GetInContextMemory(ctx, agent); return err }},
		{"UpdateInContextMemory", func() error { _, err := c.UpdateInContextMemory(ctx, agent, "human", "x"); return err }},
		{"GetArchivalMemory", func() error { _, err := c.GetArchivalMemory(ctx, agent, "", "", 0); return err }},
		{"InsertArchivalMemory", func() error { _, err := c.InsertArchivalMemory(ctx, agent, "x"); return err }},
		{"DeleteArchivalMemory(agent)", func() error { return c.DeleteArchivalMemory(ctx, agent, passage) }},
		{"DeleteArchivalMemory(passage)", func() error { return c.DeleteArchivalMemory(ctx, a.ID, passage) }},
		{"GetArchivalMemorySummary", func() error { _, err := c.GetArchivalMemorySummary(ctx, agent); return err }},
		{"GetRecallMemorySummary", func() error { _, err := c.GetRecallMemorySummary(ctx, agent); return err }},
		{"GetMessages", func() error { _, err := c.GetMessages(ctx, agent, "", "", 0); return err }},
		{"GetHuman", func() error { _, err := c.GetHuman(ctx, block); return err }},
		{"GetPersona", func() error { _, err := c.GetPersona(ctx, block); return err }},
		{"UpdateHuman", func() error { _, err := c.UpdateHuman(ctx, block, "x"); return err }},
		{"UpdatePersona", func() error { _, err := c.UpdatePersona(ctx, block, "x"); return err }},
		{"DeleteHuman", func() error { return c.DeleteHuman(ctx, block) }},
		{"DeletePersona", func() error { return c.DeletePersona(ctx, block) }},
		{"GetBlock", func() error { _, err := c.GetBlock(ctx, block); return err }},
		{"UpdateBlock", func() error { _, err := c.UpdateBlock(ctx, block, nil, ptr("x")); return err }},
		{"DeleteBlock", func() error { return c.DeleteBlock(ctx, block) }},
		{"AttachBlock(agent)", func() error { _, err := c.AttachBlock(ctx, agent, b.ID); return err }},
		{"AttachBlock(block)", func() error { _, err := c.AttachBlock(ctx, a.ID, block); return err }},
		{"DetachBlock(agent)", func() error { _, err := c.DetachBlock(ctx, agent, b.ID); return err }},
		{"DetachBlock(block)", func() error { _, err := c.DetachBlock(ctx, a.ID, block); return err }},
		{"GetTool", func() error { _, err := c.GetTool(ctx, toolID); return err }},
		{"UpdateTool", func() error {
			_, err := c.UpdateTool(ctx, toolID, client.UpdateToolOptions{Tags: []string{"x"}})
			return err
		}},
		{"DeleteTool", func() error { return c.DeleteTool(ctx, toolID) }},
		{"AddToolToAgent(agent)", func() error { return c.AddToolToAgent(ctx, agent, tool.ID) }},
		{"AddToolToAgent(tool)", func() error { return c.AddToolToAgent(ctx, a.ID, toolID) }},
		{"RemoveToolFromAgent(agent)", func() error { return c.RemoveToolFromAgent(ctx, agent, tool.ID) }},
		{"RemoveToolFromAgent(tool)", func() error { return c.RemoveToolFromAgent(ctx, a.ID, toolID) }},
		{"GetSource", func() error { _, err := c.GetSource(ctx, source); return err }},
		{"UpdateSource", func() error { _, err := c.UpdateSource(ctx, source, "x"); return err }},
		{"DeleteSource", func() error { return c.DeleteSource(ctx, source) }},
		{"AttachSourceToAgent(agent)", func() error { return c.AttachSourceToAgent(ctx, agent, src.ID) }},
		{"AttachSourceToAgent(source)", func() error { return c.AttachSourceToAgent(ctx, a.ID, source) }},
		{"DetachSourceFromAgent(agent)", func() error { return c.DetachSourceFromAgent(ctx, agent, src.ID) }},
		{"DetachSourceFromAgent(source)", func() error { return c.DetachSourceFromAgent(ctx, a.ID, source) }},
		{"ListAttachedSources", func() error { _, err := c.ListAttachedSources(ctx, agent); return err }},
		{"GetJob", func() error { _, err := c.GetJob(ctx, unknownID(events.PrefixJob)); return err }},
	}
	for _, tc := range calls {
		wantKind(t, tc.name, tc.call(), fault.NotFound)
	}

	// Malformed ids are refused alike by both implementations.
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"GetAgent", func() error { _, err := c.GetAgent(ctx, "agent-nope"); return err }},
		{"GetBlock", func() error { _, err := c.GetBlock(ctx, "nope"); return err }},
		{"GetTool", func() error { _, err := c.GetTool(ctx, "tool-1"); return err }},
		{"GetSource", func() error { _, err := c.GetSource(ctx, "source-x"); return err }},
		{"GetAgent(empty)", func() error { _, err := c.GetAgent(ctx, ""); return err }},
		{"DeleteAgent(empty)", func() error { return c.DeleteAgent(ctx, "") }},
	} {
		wantKind(t, tc.name+" of a malformed id", tc.call(), fault.Unprocessable)
	}

	// The failed calls changed nothing.
	if got := must(c.GetAgent(ctx, a.ID))(t); len(got.Blocks) != 2 || len(got.Sources) != 0 {
		t.Errorf("agent after failed calls: blocks %v sources %v", blockLabels(got.Blocks), sourceIDs(got.Sources))
	}
}

package rest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/google/go-cmp/cmp"
)

func intp(n int) *int { return &n }

func wantIDs(t *testing.T, got, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestSystemRoutes(t *testing.T) {
	x := newHarness(t, Config{Version: "1.2.3"})
	x.run([]step{
		{name: "health", method: "GET", path: "/v1/health/", check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Health](t, b); got != (api.Health{Status: "ok", Version: "1.2.3"}) {
				t.Errorf("health = %+v", got)
			}
		}},
		{name: "models", method: "GET", path: "/v1/models/", check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.Model](t, b)
			if len(got) != 1 || *got[0].Handle != "openai/gpt-4o-mini" || got[0].Model != "gpt-4o-mini" {
				t.Errorf("models = %+v", got)
			}
		}},
		{name: "embedding models", method: "GET", path: "/v1/models/embedding", check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.EmbeddingModel](t, b)
			if len(got) != 1 || got[0].EmbeddingDim != 1536 {
				t.Errorf("embedding models = %+v", got)
			}
		}},
	})
}

func TestAgentRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	alpha := x.agent(api.CreateAgent{Name: strp("alpha"), Tags: []string{"a", "b"}})
	beta := x.agent(api.CreateAgent{Name: strp("beta"), Tags: []string{"b"}})
	doomed := x.agent(api.CreateAgent{Name: strp("doomed")})
	var gamma api.AgentState
	x.run([]step{
		{name: "create", method: "POST", path: "/v1/agents/", body: map[string]any{
			"name": "gamma", "model": "openai/gpt-4o-mini", "tags": []string{"c"},
			"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada", "limit": 100}, {"label": "persona", "value": "I am Sam"}},
		}, check: func(t *testing.T, b []byte) {
			gamma = decodeAs[api.AgentState](t, b)
			if gamma.Name != "gamma" || len(gamma.Blocks) != 2 || gamma.LLMConfig == nil || gamma.LLMConfig.Model != "gpt-4o-mini" {
				t.Errorf("created %+v", gamma)
			}
		}},
		{name: "list newest first", method: "GET", path: "/v1/agents/", check: func(t *testing.T, b []byte) {
			got := agentIDs(decodeAs[[]api.AgentState](t, b))
			wantIDs(t, got, []string{gamma.ID, doomed.ID, beta.ID, alpha.ID})
		}},
		{name: "list oldest first with limit", method: "GET", path: "/v1/agents/?order=asc&limit=2", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{alpha.ID, beta.ID})
		}},
		{name: "list after cursor", method: "GET", path: "/v1/agents/?order=asc&after=" + beta.ID + "&before=&limit=", check: func(t *testing.T, b []byte) {
			got := agentIDs(decodeAs[[]api.AgentState](t, b))
			wantIDs(t, got, []string{doomed.ID, gamma.ID})
		}},
		{name: "list by name", method: "GET", path: "/v1/agents/?name=beta", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{beta.ID})
		}},
		{name: "list by any tag", method: "GET", path: "/v1/agents/?tags=a&tags=b&order=asc", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{alpha.ID, beta.ID})
		}},
		{name: "list by all tags", method: "GET", path: "/v1/agents/?tags=a&tags=b&match_all_tags=true", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{alpha.ID})
		}},
		{name: "list by query text", method: "GET", path: "/v1/agents/?query_text=ALP", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{alpha.ID})
		}},
		{name: "get", method: "GET", path: "/v1/agents/" + alpha.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.AgentState](t, b); got.ID != alpha.ID || got.Name != "alpha" {
				t.Errorf("got %+v", got)
			}
		}},
		{name: "update", method: "PATCH", path: "/v1/agents/" + alpha.ID, body: map[string]any{"name": "alpha two", "description": "first", "tags": []string{"z"}}, check: func(t *testing.T, b []byte) {
			got := decodeAs[api.AgentState](t, b)
			if got.Name != "alpha two" || got.Description == nil || *got.Description != "first" || !slices.Equal(got.Tags, []string{"z"}) {
				t.Errorf("updated %+v", got)
			}
		}},
		{name: "delete", method: "DELETE", path: "/v1/agents/" + doomed.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[message](t, b); got.Message != "Agent id="+doomed.ID+" successfully deleted" {
				t.Errorf("message = %q", got.Message)
			}
		}},
		{name: "deleted is gone", method: "GET", path: "/v1/agents/" + doomed.ID, want: 404},
	})
}

func TestCoreMemoryRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{MemoryBlocks: []api.CreateBlock{
		{Label: "human", Value: "Name: Ada", Limit: intp(50)}, {Label: "persona", Value: "I am Sam"},
	}})
	notes := x.block(api.CreateBlock{Label: "notes", Value: "none yet"})
	base := "/v1/agents/" + a.ID
	x.run([]step{
		{name: "core memory", method: "GET", path: base + "/core-memory", check: func(t *testing.T, b []byte) {
			m := decodeAs[api.Memory](t, b)
			if h, ok := m.Get("human"); !ok || h.Value != "Name: Ada" || len(m.Blocks) != 2 {
				t.Errorf("memory %+v", m)
			}
		}},
		{name: "list blocks", method: "GET", path: base + "/core-memory/blocks", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), blockIDs(a.Blocks))
		}},
		{name: "get block by label", method: "GET", path: base + "/core-memory/blocks/human", check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Block](t, b); got.Label != "human" || got.Value != "Name: Ada" || got.Limit != 50 {
				t.Errorf("block %+v", got)
			}
		}},
		{name: "update block by label", method: "PATCH", path: base + "/core-memory/blocks/human", body: map[string]any{"value": "Name: Bob"}, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Block](t, b); got.Value != "Name: Bob" {
				t.Errorf("block %+v", got)
			}
		}},
		{name: "attach block", method: "PATCH", path: base + "/core-memory/blocks/attach/" + notes.ID, check: func(t *testing.T, b []byte) {
			got := decodeAs[api.AgentState](t, b)
			if len(got.Blocks) != 3 || got.Blocks[2].ID != notes.ID {
				t.Errorf("after attach: %v", blockIDs(got.Blocks))
			}
		}},
		{name: "detach block", method: "PATCH", path: base + "/core-memory/blocks/detach/" + notes.ID, check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[api.AgentState](t, b).Blocks), blockIDs(a.Blocks))
		}},
		{name: "0.5 get memory", method: "GET", path: base + "/memory", check: func(t *testing.T, b []byte) {
			got := decodeAs[oldMemory](t, b)
			if len(got.Memory) != 2 || got.Memory["human"].Value != "Name: Bob" || got.Memory["persona"].Value != "I am Sam" || got.PromptTemplate == "" {
				t.Errorf("0.5 memory %+v", got)
			}
		}},
		{name: "0.5 update memory", method: "PATCH", path: base + "/memory", body: `{"human": "Name: Carol", "persona": null}`, check: func(t *testing.T, b []byte) {
			got := decodeAs[oldMemory](t, b)
			if got.Memory["human"].Value != "Name: Carol" || got.Memory["persona"].Value != "I am Sam" {
				t.Errorf("0.5 memory %+v", got)
			}
		}},
		{name: "0.5 update memory, several labels", method: "PATCH", path: base + "/memory/", body: `{"human": "Name: Dan", "persona": "I am Max"}`, check: func(t *testing.T, b []byte) {
			got := decodeAs[oldMemory](t, b)
			if got.Memory["human"].Value != "Name: Dan" || got.Memory["persona"].Value != "I am Max" {
				t.Errorf("0.5 memory %+v", got)
			}
		}},
	})
}

func TestAgentToolRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{IncludeBaseTools: new(bool)})
	tool := x.tool("roll_dice")
	base := "/v1/agents/" + a.ID
	toolsAre := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			got := decodeAs[[]api.Tool](t, b)
			wantIDs(t, toolIDs(got), append([]string{}, want...))
		}
	}
	x.run([]step{
		{name: "none yet", method: "GET", path: base + "/tools", check: toolsAre()},
		{name: "attach", method: "PATCH", path: base + "/tools/attach/" + tool.ID, check: isNull},
		{name: "attached", method: "GET", path: base + "/tools", check: toolsAre(tool.ID)},
		{name: "detach", method: "PATCH", path: base + "/tools/detach/" + tool.ID, check: isNull},
		{name: "detached", method: "GET", path: base + "/tools", check: toolsAre()},
		{name: "0.5 add-tool", method: "PATCH", path: base + "/add-tool/" + tool.ID, check: func(t *testing.T, b []byte) {
			wantIDs(t, toolIDs(decodeAs[api.AgentState](t, b).Tools), []string{tool.ID})
		}},
		{name: "0.5 remove-tool", method: "PATCH", path: base + "/remove-tool/" + tool.ID, check: func(t *testing.T, b []byte) {
			wantIDs(t, toolIDs(decodeAs[api.AgentState](t, b).Tools), []string{})
		}},
	})
}

func TestAgentSourceRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{})
	src := x.source("docs")
	base := "/v1/agents/" + a.ID
	sourcesAre := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			wantIDs(t, sourceIDs(decodeAs[[]api.Source](t, b)), append([]string{}, want...))
		}
	}
	isSource := func(t *testing.T, b []byte) {
		if got := decodeAs[api.Source](t, b); got.ID != src.ID {
			t.Errorf("source %+v", got)
		}
	}
	x.run([]step{
		{name: "none yet", method: "GET", path: base + "/folders", check: sourcesAre()},
		{name: "attach folder", method: "PATCH", path: base + "/folders/attach/" + src.ID, check: isNull},
		{name: "list folders", method: "GET", path: base + "/folders", check: sourcesAre(src.ID)},
		{name: "0.5 list sources", method: "GET", path: base + "/sources", check: sourcesAre(src.ID)},
		{name: "folder agents", method: "GET", path: "/v1/folders/" + src.ID + "/agents", check: func(t *testing.T, b []byte) {
			wantIDs(t, decodeAs[[]string](t, b), []string{a.ID})
		}},
		{name: "detach folder", method: "PATCH", path: base + "/folders/detach/" + src.ID, check: isNull},
		{name: "detached", method: "GET", path: base + "/folders", check: sourcesAre()},
		{name: "0.5 attach", method: "POST", path: "/v1/sources/" + src.ID + "/attach?agent_id=" + a.ID, check: isSource},
		{name: "0.5 attached", method: "GET", path: base + "/sources", check: sourcesAre(src.ID)},
		{name: "0.5 detach", method: "POST", path: "/v1/sources/" + src.ID + "/detach?agent_id=" + a.ID, check: isSource},
		{name: "0.5 detached", method: "GET", path: base + "/sources", check: sourcesAre()},
		{name: "0.5 attach needs agent_id", method: "POST", path: "/v1/sources/" + src.ID + "/attach?agent_id=", want: 422},
	})

	// The agents of a folder: ids, newest first, paged.
	var holders []string
	for range 3 {
		holders = append(holders, x.agent(api.CreateAgent{SourceIDs: []string{src.ID}}).ID)
	}
	agentsAre := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			wantIDs(t, decodeAs[[]string](t, b), append([]string{}, want...))
		}
	}
	x.run([]step{
		{name: "folder agents, newest first", method: "GET", path: "/v1/folders/" + src.ID + "/agents/", check: agentsAre(holders[2], holders[1], holders[0])},
		{name: "folder agents, paged", method: "GET", path: "/v1/folders/" + src.ID + "/agents?order=asc&limit=1&after=" + holders[0], check: agentsAre(holders[1])},
		{name: "folder agents, limit", method: "GET", path: "/v1/folders/" + src.ID + "/agents?limit=2", check: agentsAre(holders[2], holders[1])},
		{name: "agents of an unknown folder", method: "GET", path: "/v1/folders/" + events.NewID(events.PrefixSource, time.Now()) + "/agents", want: 404},
	})
}

func TestArchivalRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent")}) // the recall counts below include the MemGPT boot messages
	base := "/v1/agents/" + a.ID
	var first, second api.Passage
	texts := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			got := decodeAs[[]api.Passage](t, b)
			if diff := cmp.Diff(append([]string{}, want...), ids(got, func(p api.Passage) string { return p.Text })); diff != "" {
				t.Errorf("texts (-want +got):\n%s", diff)
			}
		}
	}
	size := func(want int) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			if got := decodeAs[api.ArchivalMemorySummary](t, b); got.Size != want {
				t.Errorf("size = %d, want %d", got.Size, want)
			}
		}
	}
	x.run([]step{
		{name: "insert", method: "POST", path: base + "/archival-memory", body: api.CreatePassage{Text: "likes tea", Tags: []string{"food"}}, check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.Passage](t, b)
			if len(got) != 1 || got[0].Text != "likes tea" || got[0].AgentID == nil || *got[0].AgentID != a.ID {
				t.Fatalf("inserted %+v", got)
			}
			first = got[0]
		}},
		{name: "0.5 insert", method: "POST", path: base + "/archival", body: map[string]any{"text": "hates coffee"}, check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.Passage](t, b)
			if len(got) != 1 {
				t.Fatalf("inserted %+v", got)
			}
			second = got[0]
		}},
		{name: "list", method: "GET", path: base + "/archival-memory", check: texts("likes tea", "hates coffee")},
		{name: "list descending", method: "GET", path: base + "/archival-memory?ascending=false", check: texts("hates coffee", "likes tea")},
		{name: "0.5 list with limit", method: "GET", path: base + "/archival?limit=1", check: texts("likes tea")},
		{name: "list with search", method: "GET", path: base + "/archival-memory?search=TEA", check: texts("likes tea")},
		{name: "list with search, descending", method: "GET", path: base + "/archival-memory?search=e&ascending=false", check: texts("hates coffee", "likes tea")},
		{name: "list with search, limit counts matches", method: "GET", path: base + "/archival-memory?search=coffee&limit=1", check: texts("hates coffee")},
		{name: "list with search, no match", method: "GET", path: base + "/archival-memory?search=juice", check: texts()},
		{name: "archival summary", method: "GET", path: base + "/memory/archival", check: size(2)},
		{name: "recall summary", method: "GET", path: base + "/memory/recall", check: size(4)}, // the initial system, boot and login messages
		{name: "context", method: "GET", path: base + "/context", check: func(t *testing.T, b []byte) {
			if got := decodeAs[contextOverview](t, b); got != (contextOverview{NumArchivalMemory: 2, NumRecallMemory: 4}) {
				t.Errorf("context %+v", got)
			}
		}},
	})
	x.run([]step{
		{name: "list with search before a cursor", method: "GET", path: base + "/archival-memory?search=e&before=" + second.ID, check: texts("likes tea")},
		{name: "list with search after a cursor", method: "GET", path: base + "/archival-memory?search=e&after=" + first.ID, check: texts("hates coffee")},
	})
	x.run([]step{
		{name: "delete", method: "DELETE", path: base + "/archival-memory/" + first.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[message](t, b); got.Message != "Memory id="+first.ID+" successfully deleted" {
				t.Errorf("message %q", got.Message)
			}
		}},
		{name: "0.5 delete", method: "DELETE", path: base + "/archival/" + second.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[message](t, b); got.Message != "Memory id="+second.ID+" successfully deleted" {
				t.Errorf("message %q", got.Message)
			}
		}},
		{name: "empty", method: "GET", path: base + "/archival-memory", check: texts()},
	})
}

func TestMessageRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	a := x.agent(api.CreateAgent{})
	agg := events.Aggregate{Kind: events.KindAgent, ID: a.ID}
	m1 := events.MessageID(events.NewID(events.PrefixMessage, time.Now()))
	m2 := events.MessageID(events.NewID(events.PrefixMessage, time.Now()))
	m3 := events.MessageID(events.NewID(events.PrefixMessage, time.Now()))
	m4 := events.MessageID(events.NewID(events.PrefixMessage, time.Now()))
	login := agents.LoginEvent(time.Now())
	x.appendEvents(agg,
		&events.MessageAppended{ID: m1, Role: "user", Text: "hello"},
		&events.MessageAppended{ID: m2, Role: "system", Text: "be kind"},
		&events.MessageAppended{ID: m3, Role: "user", Text: agents.UserMessage("what's up?", time.Now())},
		&events.MessageAppended{ID: m4, Role: "user", Text: login},
	)
	base := "/v1/agents/" + a.ID
	messagesAre := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			got := decodeAs[[]api.LettaMessage](t, b)
			wantIDs(t, ids(got, func(m api.LettaMessage) string { return m.ID }), want)
		}
	}
	x.run([]step{
		{name: "list newest first", method: "GET", path: base + "/messages?limit=2", check: messagesAre(string(m4), string(m3))},
		{name: "list oldest first, one before m2", method: "GET", path: base + "/messages?order=asc&limit=1&before=" + string(m2), check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.LettaMessage](t, b)
			if len(got) != 1 || got[0].MessageType != api.UserMessageType || *got[0].Content != "hello" {
				t.Errorf("messages %+v", got)
			}
		}},
		{name: "user messages show what the client sent", method: "GET", path: base + "/messages?after=" + string(m2) + "&order=asc", check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.LettaMessage](t, b)
			if len(got) != 2 || got[0].ID != string(m3) || got[1].ID != string(m4) {
				t.Fatalf("messages %+v", got)
			}
			if got[0].MessageType != api.UserMessageType || *got[0].Content != "what's up?" {
				t.Errorf("a client's message is shown packed: %q", *got[0].Content)
			}
			if *got[1].Content != login {
				t.Errorf("a login event is shown as %q, want it as stored", *got[1].Content)
			}
		}},
		{name: "list before", method: "GET", path: base + "/messages?before=" + string(m2) + "&order=asc&limit=1", check: messagesAre(string(m1))},
		{name: "send without a provider", method: "POST", path: base + "/messages", body: map[string]any{"input": "hi"}, want: 400, check: func(t *testing.T, b []byte) {
			if got := decodeAs[detail](t, b).Detail; !strings.Contains(got, "no model provider is configured on this server") {
				t.Errorf("detail %q", got)
			}
		}},
		{name: "send to unknown agent", method: "POST", path: "/v1/agents/" + events.NewID(events.PrefixAgent, time.Now()) + "/messages", body: map[string]any{"input": "hi"}, want: 404},
	})
}

func TestBlockRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	tmpl := x.block(api.CreateBlock{Label: "persona", Value: "I am Sam", TemplateName: strp("sam"), IsTemplate: new(bool)})
	isTemplate := true
	tmpl2 := x.block(api.CreateBlock{Label: "human", Value: "Name: ?", Name: strp("anyone"), IsTemplate: &isTemplate})
	var created api.Block
	x.run([]step{
		{name: "create", method: "POST", path: "/v1/blocks/", body: map[string]any{"label": "notes", "value": "todo", "limit": 20, "metadata": map[string]any{"k": 1}}, check: func(t *testing.T, b []byte) {
			created = decodeAs[api.Block](t, b)
			if created.Label != "notes" || created.Value != "todo" || created.Limit != 20 || string(created.Metadata) != `{"k":1}` {
				t.Errorf("created %+v", created)
			}
		}},
		{name: "list oldest first", method: "GET", path: "/v1/blocks/", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), []string{tmpl.ID, tmpl2.ID, created.ID})
		}},
		{name: "list by label", method: "GET", path: "/v1/blocks/?label=notes", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), []string{created.ID})
		}},
		{name: "list templates", method: "GET", path: "/v1/blocks/?templates_only=true", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), []string{tmpl2.ID})
		}},
		{name: "list by template name", method: "GET", path: "/v1/blocks/?name=sam&templates_only=false", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), []string{tmpl.ID})
		}},
		{name: "list desc page", method: "GET", path: "/v1/blocks/?order=desc&limit=1", check: func(t *testing.T, b []byte) {
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), []string{created.ID})
		}},
		{name: "get", method: "GET", path: "/v1/blocks/" + tmpl.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Block](t, b); got.ID != tmpl.ID || got.TemplateName == nil || *got.TemplateName != "sam" {
				t.Errorf("got %+v", got)
			}
		}},
		{name: "update", method: "PATCH", path: "/v1/blocks/" + tmpl.ID, body: map[string]any{"value": "I am Samantha", "description": "who I am"}, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Block](t, b); got.Value != "I am Samantha" || got.Description == nil || *got.Description != "who I am" {
				t.Errorf("updated %+v", got)
			}
		}},
		{name: "delete", method: "DELETE", path: "/v1/blocks/" + tmpl.ID, check: isNull},
		{name: "deleted is gone", method: "GET", path: "/v1/blocks/" + tmpl.ID, want: 404},
		{name: "agents of a deleted block", method: "GET", path: "/v1/blocks/" + tmpl.ID + "/agents", want: 404},
	})

	// The agents holding a block, newest first, paged.
	x.run([]step{{name: "agents of a block: none", method: "GET", path: "/v1/blocks/" + created.ID + "/agents", check: func(t *testing.T, b []byte) {
		wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{})
	}}})
	var holders []string
	for range 3 {
		holders = append(holders, x.agent(api.CreateAgent{BlockIDs: []string{created.ID}}).ID)
	}
	x.agent(api.CreateAgent{}) // holds other blocks
	x.run([]step{
		{name: "agents of a block", method: "GET", path: "/v1/blocks/" + created.ID + "/agents/", check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{holders[2], holders[1], holders[0]})
		}},
		{name: "agents of a block, paged", method: "GET", path: "/v1/blocks/" + created.ID + "/agents?order=asc&limit=1&after=" + holders[0], check: func(t *testing.T, b []byte) {
			wantIDs(t, agentIDs(decodeAs[[]api.AgentState](t, b)), []string{holders[1]})
		}},
	})
}

func TestToolRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	dice := x.tool("roll_dice")
	upsert := toolBody("roll_dice")
	upsert["description"] = "Roll one die."
	x.run([]step{
		{name: "create", method: "POST", path: "/v1/tools/", body: toolBody("flip_coin"), check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Tool](t, b); got.Name != "flip_coin" || got.ToolType != "custom" || !strings.Contains(string(got.JSONSchema), `"sides"`) {
				t.Errorf("created %+v", got)
			}
		}},
		{name: "create upserts by name", method: "POST", path: "/v1/tools", body: upsert, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Tool](t, b); got.ID != dice.ID || *got.Description != "Roll one die." {
				t.Errorf("upserted %+v, want id %s", got, dice.ID)
			}
		}},
		{name: "put upserts by name", method: "PUT", path: "/v1/tools/", body: toolBody("roll_dice"), check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Tool](t, b); got.ID != dice.ID || *got.Description != "Roll a die." {
				t.Errorf("upserted %+v, want id %s", got, dice.ID)
			}
		}},
		{name: "list", method: "GET", path: "/v1/tools/?limit=100", check: func(t *testing.T, b []byte) {
			got := decodeAs[[]api.Tool](t, b)
			names := ids(got, func(t api.Tool) string { return t.Name })
			if len(got) < 3 || names[0] != "flip_coin" || names[1] != "roll_dice" || !slices.Contains(names, "archival_memory_insert") {
				t.Errorf("tools %v", names)
			}
		}},
		{name: "list by name", method: "GET", path: "/v1/tools/?name=roll_dice", check: func(t *testing.T, b []byte) {
			wantIDs(t, toolIDs(decodeAs[[]api.Tool](t, b)), []string{dice.ID})
		}},
		{name: "get", method: "GET", path: "/v1/tools/" + dice.ID, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Tool](t, b); got.ID != dice.ID || got.Name != "roll_dice" {
				t.Errorf("got %+v", got)
			}
		}},
		{name: "0.5 id by name", method: "GET", path: "/v1/tools/name/roll_dice", check: func(t *testing.T, b []byte) {
			if got := decodeAs[string](t, b); got != dice.ID {
				t.Errorf("id %q, want %q", got, dice.ID)
			}
		}},
		{name: "update", method: "PATCH", path: "/v1/tools/" + dice.ID, body: map[string]any{"description": "Dice.", "tags": []string{"games"}}, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Tool](t, b); *got.Description != "Dice." || !slices.Equal(got.Tags, []string{"games"}) {
				t.Errorf("updated %+v", got)
			}
		}},
		{name: "delete", method: "DELETE", path: "/v1/tools/" + dice.ID, check: isNull},
		{name: "deleted is gone", method: "GET", path: "/v1/tools/" + dice.ID, want: 404},
		{name: "deleted name is gone", method: "GET", path: "/v1/tools/name/roll_dice", want: 404},
	})
}

func TestSourceRoutes(t *testing.T) {
	for _, prefix := range []string{"/v1/folders", "/v1/sources"} {
		t.Run(strings.TrimPrefix(prefix, "/v1/"), func(t *testing.T) {
			x := newHarness(t, Config{})
			old := x.source("old")
			fresh := x.source("fresh")
			a := x.agent(api.CreateAgent{SourceIDs: []string{old.ID}})
			var created api.Source
			x.run([]step{
				{name: "create", method: "POST", path: prefix + "/", body: map[string]any{"name": "docs", "description": "manuals", "embedding": "openai/text-embedding-3-small"}, check: func(t *testing.T, b []byte) {
					created = decodeAs[api.Source](t, b)
					if created.Name != "docs" || *created.Description != "manuals" || created.EmbeddingConfig == nil || created.EmbeddingConfig.EmbeddingDim != 1536 {
						t.Errorf("created %+v", created)
					}
				}},
				{name: "list", method: "GET", path: prefix + "/", check: func(t *testing.T, b []byte) {
					wantIDs(t, sourceIDs(decodeAs[[]api.Source](t, b)), []string{old.ID, fresh.ID, created.ID})
				}},
				{name: "list by name", method: "GET", path: prefix + "?name=docs", check: func(t *testing.T, b []byte) {
					wantIDs(t, sourceIDs(decodeAs[[]api.Source](t, b)), []string{created.ID})
				}},
				{name: "list desc", method: "GET", path: prefix + "?order=desc&limit=1", check: func(t *testing.T, b []byte) {
					wantIDs(t, sourceIDs(decodeAs[[]api.Source](t, b)), []string{created.ID})
				}},
				{name: "get", method: "GET", path: prefix + "/" + old.ID, check: func(t *testing.T, b []byte) {
					if got := decodeAs[api.Source](t, b); got.ID != old.ID || got.Name != "old" {
						t.Errorf("got %+v", got)
					}
				}},
				{name: "update", method: "PATCH", path: prefix + "/" + old.ID, body: map[string]any{"name": "older", "instructions": "read me"}, check: func(t *testing.T, b []byte) {
					if got := decodeAs[api.Source](t, b); got.Name != "older" || *got.Instructions != "read me" {
						t.Errorf("updated %+v", got)
					}
				}},
				{name: "id by name", method: "GET", path: prefix + "/name/older", check: func(t *testing.T, b []byte) {
					if got := decodeAs[string](t, b); got != old.ID {
						t.Errorf("id %q, want %q", got, old.ID)
					}
				}},
				{name: "agents", method: "GET", path: prefix + "/" + old.ID + "/agents", check: func(t *testing.T, b []byte) {
					wantIDs(t, decodeAs[[]string](t, b), []string{a.ID})
				}},
				{name: "agents of none", method: "GET", path: prefix + "/" + fresh.ID + "/agents", check: func(t *testing.T, b []byte) {
					wantIDs(t, decodeAs[[]string](t, b), []string{})
				}},
				{name: "delete", method: "DELETE", path: prefix + "/" + old.ID, check: isNull},
				{name: "deleted is gone", method: "GET", path: prefix + "/" + old.ID, want: 404},
			})
		})
	}
}

func TestJobRoutes(t *testing.T) {
	x := newHarness(t, Config{})
	src := x.source("docs")
	done := events.NewID(events.PrefixJob, time.Now())
	running := events.NewID(events.PrefixJob, time.Now())
	other := events.NewID(events.PrefixJob, time.Now())
	x.appendEvents(events.Aggregate{Kind: events.KindJob, ID: done},
		&events.JobCreated{ID: events.JobID(done), JobType: "load_file", SourceID: events.SourceID(src.ID)},
		&events.JobUpdated{Status: api.JobCompleted})
	x.appendEvents(events.Aggregate{Kind: events.KindJob, ID: running},
		&events.JobCreated{ID: events.JobID(running), JobType: "load_file", SourceID: events.SourceID(src.ID)},
		&events.JobUpdated{Status: api.JobRunning})
	x.appendEvents(events.Aggregate{Kind: events.KindJob, ID: other},
		&events.JobCreated{ID: events.JobID(other), JobType: "other"})
	jobsAre := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			wantIDs(t, jobIDs(decodeAs[[]api.Job](t, b)), want)
		}
	}
	x.run([]step{
		{name: "list newest first", method: "GET", path: "/v1/jobs/", check: jobsAre(other, running, done)},
		{name: "list by source", method: "GET", path: "/v1/jobs?source_id=" + src.ID + "&order=asc", check: jobsAre(done, running)},
		{name: "list with limit", method: "GET", path: "/v1/jobs?limit=1", check: jobsAre(other)},
		{name: "active", method: "GET", path: "/v1/jobs/active", check: jobsAre(other, running)},
		{name: "active of source", method: "GET", path: "/v1/jobs/active/?source_id=" + src.ID, check: jobsAre(running)},
		{name: "get", method: "GET", path: "/v1/jobs/" + done, check: func(t *testing.T, b []byte) {
			if got := decodeAs[api.Job](t, b); got.ID != done || got.Status != api.JobCompleted || got.CompletedAt == nil {
				t.Errorf("job %+v", got)
			}
		}},
	})
}

func TestToolListFilters(t *testing.T) {
	x := newHarness(t, Config{})
	dice := x.tool("roll_dice")
	coin := x.tool("flip_coin")
	names := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			got := ids(decodeAs[[]api.Tool](t, b), func(t api.Tool) string { return t.Name })
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(append([]string{}, want...), got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		}
	}
	var baseNames []string
	for _, bt := range agents.ServerTools() {
		baseNames = append(baseNames, bt.Name)
	}
	x.run([]step{
		{name: "names, repeated", method: "GET", path: "/v1/tools/?names=roll_dice&names=flip_coin", check: names("roll_dice", "flip_coin")},
		{name: "names, comma-separated", method: "GET", path: "/v1/tools/?names=roll_dice,send_message", check: names("roll_dice", "send_message")},
		{name: "tool_ids", method: "GET", path: "/v1/tools/?tool_ids=" + dice.ID + "," + coin.ID, check: names("roll_dice", "flip_coin")},
		{name: "search, ignoring case", method: "GET", path: "/v1/tools/?search=COIN", check: names("flip_coin")},
		{name: "tool_types", method: "GET", path: "/v1/tools/?tool_types=custom", check: names("roll_dice", "flip_coin")},
		{name: "exclude_tool_types", method: "GET", path: "/v1/tools/?exclude_tool_types=custom&limit=100", check: names(baseNames...)},
		{name: "return_only_letta_tools", method: "GET", path: "/v1/tools/?return_only_letta_tools=true&limit=100", check: names(baseNames...)},
		{name: "conditions combine", method: "GET", path: "/v1/tools/?search=o&tool_types=custom&names=flip_coin", check: names("flip_coin")},
		{name: "unknown tool type", method: "GET", path: "/v1/tools/?tool_types=magic", want: 400},
	})
}

func TestBlockListFilters(t *testing.T) {
	x := newHarness(t, Config{})
	tea := x.block(api.CreateBlock{Label: "Food", Value: "Likes green TEA", Description: strp("what Ada eats"), Tags: []string{"ada", "food"}})
	cat := x.block(api.CreateBlock{Label: "pets", Value: "A cat called Turing", Tags: []string{"ada"}})
	lone := x.block(api.CreateBlock{Label: "notes", Value: "nothing yet"})
	x.agent(api.CreateAgent{BlockIDs: []string{tea.ID, cat.ID}})
	x.agent(api.CreateAgent{BlockIDs: []string{tea.ID}})
	are := func(want ...string) func(*testing.T, []byte) {
		return func(t *testing.T, b []byte) {
			t.Helper()
			wantIDs(t, blockIDs(decodeAs[[]api.Block](t, b)), append([]string{}, want...))
		}
	}
	x.run([]step{
		{name: "label_search", method: "GET", path: "/v1/blocks/?label_search=FOO", check: are(tea.ID)},
		{name: "value_search", method: "GET", path: "/v1/blocks/?value_search=turing", check: are(cat.ID)},
		{name: "description_search", method: "GET", path: "/v1/blocks/?description_search=ada%20eats", check: are(tea.ID)},
		{name: "tags, any", method: "GET", path: "/v1/blocks/?tags=food&tags=ada", check: are(tea.ID, cat.ID)},
		{name: "tags, all", method: "GET", path: "/v1/blocks/?tags=food&tags=ada&match_all_tags=true", check: are(tea.ID)},
		{name: "held by more than one agent", method: "GET", path: "/v1/blocks/?connected_to_agents_count_gt=1", check: are(tea.ID)},
		{name: "held by no agent", method: "GET", path: "/v1/blocks/?connected_to_agents_count_lt=1", check: are(lone.ID)},
		{name: "held by exactly one or two", method: "GET", path: "/v1/blocks/?connected_to_agents_count_eq=2&connected_to_agents_count_eq=1&value_search=a", check: are(tea.ID, cat.ID)},
		{name: "conditions combine", method: "GET", path: "/v1/blocks/?tags=ada&value_search=cat", check: are(cat.ID)},
		{name: "a count that is not a number", method: "GET", path: "/v1/blocks/?connected_to_agents_count_gt=many", want: 422},
	})
}

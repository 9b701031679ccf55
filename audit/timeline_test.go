package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/audit"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
	"github.com/engram-dev/engram/service"
)

func ptr[T any](v T) *T { return &v }

// A scripted conversation on a real node, its history read over HTTP and
// rendered: the lines a person reads.
func TestTimeline(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Service = service.Config{Providers: reg, Models: []api.Model{{LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 8000, Handle: ptr("openai/gpt-4o-mini")}, Name: "gpt-4o-mini"}}}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(ctx) })
	srv := httptest.NewServer(rest.NewHandler(n.Service, rest.Config{}))
	t.Cleanup(srv.Close)

	svc := n.Service
	a, err := svc.CreateAgent(ctx, api.CreateAgent{Name: ptr("sam"), AgentType: ptr("memgpt_agent"), Model: ptr("openai/gpt-4o-mini"), MemoryBlocks: []api.CreateBlock{
		{Label: "persona", Value: "I am Sam."}, {Label: "human", Value: "Name: Ada"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	script.Push(
		llmtest.Step{Content: "Ada likes tea; remember it.", ToolCalls: []agents.ToolCall{{Name: "core_memory_append", Arguments: `{"name":"human","content":"Likes tea","request_heartbeat":true}`}}},
		llmtest.Step{Content: "Tell her.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: `{"message":"Noted, Ada!"}`}}},
	)
	if _, err := svc.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "I like tea"}}, service.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateAgentBlock(ctx, a.ID, "human", api.UpdateBlock{Value: ptr("Name: Ada Lovelace\nLikes tea")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "Ada was born in 1815."}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateAgent(ctx, a.ID, api.UpdateAgent{Secrets: map[string]string{"API_TOKEN": "tok-91c2", "REGION": "eu"}}); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(srv.URL + "/v1/agents/" + a.ID + "/events?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []api.Event
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tl := audit.NewTimeline(&out)
	for _, e := range evs {
		if err := tl.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("timeline:\n%s", out.String())
	for _, want := range []string{
		`client                     persona: new block "I am Sam."`,
		`agent "sam" created with 2 blocks`,
		`user: "I like tea"`,
		`run takes message-`,
		`thinks "Ada likes tea; remember it."; calls core_memory_append(content="Likes tea", name="human")`,
		`core_memory_append → OK`,
		`human: + "Likes tea"`,
		`says "Noted, Ada!"`,
		`client                     human: + "Lovelace" after "Name: Ada"`,
		`archival + "Ada was born in 1815."`,
		`tool secrets set: API_TOKEN, REGION (sealed)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "tok-91c2") {
		t.Error("the timeline shows a secret")
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, `human: + "Likes tea"`) && !strings.Contains(line, "agent ← message-…") {
			t.Errorf("the agent's edit does not name the input it answered: %s", line)
		}
	}
}

func TestDiff(t *testing.T) {
	tests := []struct{ old, new, want string }{
		{"Name: Ada", "Name: Ada\nLikes tea", `human: + "Likes tea"`},
		{"Name: Ada\nLikes tea", "Name: Ada", `human: - "Likes tea"`},
		{"I am Sam.", "I am Sam, a butler.", `human: + ", a butler" after "I am Sam"`},
		{"Likes tea", "Likes coffee", `human: - "tea" + "coffee" after "Likes"`},
		{"a", "b", `human: - "a" + "b"`},
		{"same", "same", `human: unchanged`},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		tl := audit.NewTimeline(&out)
		tl.Write(api.Event{Seq: 1, Type: "block_created", Aggregate: "block/b", IssuedBy: "client", Data: json.RawMessage(fmt.Sprintf(`{"label":"human","value":%q}`, tc.old))})
		out.Reset()
		tl.Write(api.Event{Seq: 2, Type: "block_updated", Aggregate: "block/b", IssuedBy: "client", Data: json.RawMessage(fmt.Sprintf(`{"value":%q}`, tc.new))})
		if got := strings.TrimSpace(out.String()); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%q → %q: %s, want …%s", tc.old, tc.new, got, tc.want)
		}
	}
}

package node

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/service"
)

// Alone, a node hands an input to its runner as the input's append is
// stored, not when its partition's consumer delivers it: with the
// consumers stopped, a send is still answered (once).
func TestInputRunsAsItIsStored(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	args, _ := json.Marshal(map[string]any{"message": "Hello, Ada."})
	script.SetDefault(&llmtest.Step{Content: "I should answer.", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: string(args)}}})
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test-key", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	handle := "openai/gpt-4o-mini"
	cfg := DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	cfg.Service.Providers = reg
	cfg.Service.Models = []api.Model{{LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 8000, Handle: &handle}, Name: "gpt-4o-mini"}}
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	model, memgpt := handle, "memgpt_agent"
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{Model: &model, AgentType: &memgpt})
	if err != nil {
		t.Fatal(err)
	}
	n.inputs.Stop() // no consumer delivers the input
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.Service.SendMessage(sctx, a.ID, []service.Input{{Role: "user", Text: "hello"}}, service.SendOptions{UseAssistantMessage: true})
	if err != nil {
		t.Fatalf("the send was not answered with the input consumers stopped: %v", err)
	}
	if resp.Usage.StepCount != 1 || len(script.Requests()) != 1 {
		t.Fatalf("the send ran %d steps and %d model calls; want one each", resp.Usage.StepCount, len(script.Requests()))
	}
}

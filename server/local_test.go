package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// TestLocalModels: with no provider configured, the server probes the
// local endpoints once at start, uses the one that answers (here the
// scripted model, standing in for llama.cpp) and says so in the log.
func TestLocalModels(t *testing.T) {
	script := llmtest.NewServer(t)
	script.Models = []string{"qwen2.5:7b"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close()

	logs := &lockedBuffer{}
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "", false
	cfg.LocalModels = []llm.LocalEndpoint{{Provider: "ollama", BaseURL: dead}, {Provider: "llamacpp", BaseURL: script.URL}}
	cfg.ProbeTimeout = 300 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if !strings.Contains(logs.String(), `msg="found a local model server" provider=llamacpp url=`+script.URL) {
		t.Errorf("the log does not say what was found:\n%s", logs.String())
	}

	code, body := do(t, http.DefaultClient, "GET", s.URL+"/v1/models/", nil)
	var models []api.Model
	json.Unmarshal(body, &models)
	if code != 200 || len(models) != 1 || models[0].Handle == nil || *models[0].Handle != "llamacpp/qwen2.5:7b" {
		t.Fatalf("models: %d %s", code, body)
	}
	// An agent made without a model gets the local one, and it answers.
	code, body = do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/", map[string]any{"name": "local", "agent_type": "memgpt_agent"})
	var a api.AgentState
	json.Unmarshal(body, &a)
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	script.Push(reply("Hi from llama.cpp"))
	code, body = do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}})
	if code != 200 || !strings.Contains(string(body), "Hi from llama.cpp") {
		t.Fatalf("send: %d %s", code, body)
	}
	if reqs := script.Requests(); len(reqs) < 2 || reqs[len(reqs)-1].Model != "qwen2.5:7b" {
		t.Errorf("the model was not called by its name: %+v", reqs)
	}

	// A configured provider is not second-guessed: nothing is probed.
	cfg2 := DefaultConfig(t.TempDir())
	cfg2.HTTPAddr, cfg2.Node.NATSAddr, cfg2.Node.SyncAlways = "127.0.0.1:0", "", false
	cfg2.LocalModels = cfg.LocalModels
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: dead}))
	cfg2.Node.Service.Providers = reg
	before := len(script.Requests())
	s2, err := Start(context.Background(), cfg2)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close(context.Background())
	if len(script.Requests()) != before || len(reg.Providers()) != 1 {
		t.Errorf("probed with a provider configured: %d requests, providers %v", len(script.Requests())-before, reg.Providers())
	}
}

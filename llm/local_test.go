package llm_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// deadURL is a loopback address nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1"
}

// silentURL accepts connections and never answers.
func silentURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return "http://" + ln.Addr().String() + "/v1"
}

func TestProbeLocal(t *testing.T) {
	script := llmtest.NewServer(t)
	script.Models = []string{"llama3.2:3b", "qwen2.5"}
	probe := []llm.LocalEndpoint{
		{Provider: "ollama", BaseURL: deadURL(t)},
		{Provider: "lmstudio", BaseURL: silentURL(t)},
		{Provider: "llamacpp", BaseURL: script.URL},
	}
	began := time.Now()
	found := llm.ProbeLocal(context.Background(), probe, 300*time.Millisecond)
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("probing took %v; the endpoints are asked at once, each for 300ms", took)
	}
	if len(found) != 1 || found[0].Provider != "llamacpp" || found[0].BaseURL != script.URL || !slices.Equal(found[0].Models, script.Models) {
		t.Fatalf("found %+v", found)
	}
	// The provider it returns runs the model.
	reg := llm.NewRegistry()
	reg.Add(found[0].Provider, found[0].Model)
	if _, name, err := reg.Lookup("llamacpp/llama3.2:3b"); err != nil || name != "llama3.2:3b" {
		t.Fatalf("lookup: %q %v", name, err)
	}
	if got := llm.LocalEndpoints(); len(got) != 4 || got[0].BaseURL != "http://127.0.0.1:11434/v1" || got[3].Provider != "vllm" {
		t.Errorf("LocalEndpoints %+v", got)
	}
}

func TestRegistryListModels(t *testing.T) {
	script := llmtest.NewServer(t)
	script.Models = []string{"b-model", "a-model"}
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1}))
	reg.Add("anthropic", llm.NewAnthropic(llm.AnthropicConfig{APIKey: "k", BaseURL: script.AnthropicURL, MaxRetries: -1}))
	reg.Add("down", llm.NewOpenAI(llm.OpenAIConfig{BaseURL: deadURL(t), MaxRetries: -1}))
	got := reg.ListModels(context.Background())
	if len(got) != 3 || got[0].Provider != "anthropic" || got[1].Provider != "down" || got[2].Provider != "openai" {
		t.Fatalf("%+v", got)
	}
	for _, p := range []llm.ProviderModels{got[0], got[2]} {
		if p.Err != nil || !slices.Equal(p.Models, []string{"a-model", "b-model"}) {
			t.Errorf("%s: %v %v", p.Provider, p.Models, p.Err)
		}
	}
	if got[1].Err == nil {
		t.Error("a provider that is down lists models")
	}
}

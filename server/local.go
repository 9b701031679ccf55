package server

import (
	"context"
	"log/slog"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
)

// localContextWindow is what a model found on a local server is assumed to
// hold: local servers do not say, and most serve at least this much.
const localContextWindow = 8192

// probeLocal, when no model provider is configured, asks cfg.LocalModels
// for their models once and makes those that answer the providers, their
// models the ones clients may pick (unless models were configured).
func probeLocal(ctx context.Context, cfg *Config, logger *slog.Logger) {
	if len(cfg.LocalModels) == 0 {
		return
	}
	reg, ok := cfg.Node.Service.Providers.(*llm.Registry)
	switch {
	case cfg.Node.Service.Providers == nil || ok && reg == nil:
		reg = llm.NewRegistry()
	case !ok || len(reg.Providers()) > 0:
		return // configured
	}
	found := llm.ProbeLocal(ctx, cfg.LocalModels, cfg.ProbeTimeout)
	if len(found) == 0 {
		urls := make([]string, len(cfg.LocalModels))
		for i, e := range cfg.LocalModels {
			urls[i] = e.BaseURL
		}
		logger.Warn("no model provider configured and no local model server answered: agents can be created and edited but not run; set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server) or ANTHROPIC_API_KEY", "probed", urls)
		return
	}
	keepModels := len(cfg.Node.Service.Models) > 0
	for _, f := range found {
		reg.Add(f.Provider, f.Model)
		logger.Info("found a local model server", "provider", f.Provider, "url", f.BaseURL, "models", f.Models)
		if keepModels {
			continue
		}
		for _, name := range f.Models {
			handle, endpoint, provider, category := f.Provider+"/"+name, f.BaseURL, f.Provider, "base"
			cfg.Node.Service.Models = append(cfg.Node.Service.Models, api.Model{
				LLMConfig: api.LLMConfig{Model: name, ModelEndpointType: f.Provider, ModelEndpoint: &endpoint, ContextWindow: localContextWindow, Handle: &handle,
					ProviderName: &provider, ProviderCategory: &category},
				Name: name, DisplayName: name, ProviderType: f.Provider, MaxContextWindow: localContextWindow, ModelType: "llm",
			})
		}
	}
	cfg.Node.Service.Providers = reg
}

package llm

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

// LocalEndpoint is an OpenAI-compatible server that may be running on this
// machine, and the provider name its models get ("ollama/llama3.2").
type LocalEndpoint struct {
	Provider string
	BaseURL  string // up to and including /v1
}

// LocalEndpoints returns the usual local OpenAI-compatible servers, in the
// order ProbeLocal prefers them.
func LocalEndpoints() []LocalEndpoint {
	return []LocalEndpoint{
		{"ollama", "http://127.0.0.1:11434/v1"},
		{"lmstudio", "http://127.0.0.1:1234/v1"},
		{"llamacpp", "http://127.0.0.1:8080/v1"},
		{"vllm", "http://127.0.0.1:8000/v1"},
	}
}

// DefaultProbeTimeout bounds each endpoint's answer in ProbeLocal.
const DefaultProbeTimeout = 500 * time.Millisecond

// Found is a local endpoint that answered, with the models it serves.
type Found struct {
	LocalEndpoint
	Models []string
	Model  *OpenAI // a provider for its models
}

// ProbeLocal asks every endpoint at once for its models (GET /models), each
// within timeout (0 means DefaultProbeTimeout), and returns those that
// answered with at least one model, in the order given. An endpoint that
// refuses, times out or answers anything else is skipped: nothing there.
func ProbeLocal(ctx context.Context, endpoints []LocalEndpoint, timeout time.Duration) []Found {
	timeout = orDefault(timeout, DefaultProbeTimeout)
	found := make([]*Found, len(endpoints))
	var wg sync.WaitGroup
	for i, e := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := NewOpenAI(OpenAIConfig{BaseURL: e.BaseURL, Timeout: timeout, MaxRetries: -1})
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			models, err := m.ListModels(ctx)
			if err != nil || len(models) == 0 {
				return
			}
			// Serve completions with the usual timeout, not the probe's.
			found[i] = &Found{LocalEndpoint: e, Models: models, Model: NewOpenAI(OpenAIConfig{BaseURL: e.BaseURL})}
		}()
	}
	wg.Wait()
	var out []Found
	for _, f := range found {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// ModelLister is a provider that can say which models it serves.
type ModelLister interface {
	ListModels(ctx context.Context) ([]string, error)
}

var (
	_ ModelLister = (*OpenAI)(nil)
	_ ModelLister = (*Anthropic)(nil)
)

// ListModels returns the ids of the models the API offers, every page.
func (a *Anthropic) ListModels(ctx context.Context) ([]string, error) {
	var ids []string
	pager := a.client.Models.ListAutoPaging(ctx, anthropic.ModelListParams{})
	for pager.Next() {
		ids = append(ids, pager.Current().ID)
	}
	if err := pager.Err(); err != nil {
		return nil, a.wrap(ctx, err)
	}
	return ids, nil
}

// ProviderModels is what one provider serves.
type ProviderModels struct {
	Provider string
	Models   []string
	Err      error // the provider could not be asked
}

// ListModels asks every provider in the registry, at once, which models it
// serves; the answers come sorted by provider. A provider that cannot list
// its models has Err set.
func (r *Registry) ListModels(ctx context.Context) []ProviderModels {
	names := r.Providers()
	out := make([]ProviderModels, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		out[i].Provider = name
		r.mu.RLock()
		m := r.providers[name]
		r.mu.RUnlock()
		lister, ok := m.(ModelLister)
		if !ok {
			out[i].Err = fmt.Errorf("provider %s cannot list its models", name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			models, err := lister.ListModels(ctx)
			sort.Strings(models)
			out[i].Models, out[i].Err = models, err
		}()
	}
	wg.Wait()
	return out
}

// Package llm connects agents to chat-model providers through their official
// Go SDKs.
//
// [OpenAI] speaks OpenAI's chat-completions API, to OpenAI itself or to any
// compatible server (Ollama, vLLM, llama.cpp, LM Studio, ...) chosen by its
// base URL; [Anthropic] speaks Anthropic's messages API. Both implement
// [agents.Model]: every failure is an [*Error] that wraps either
// [agents.ErrContextOverflow] (the request does not fit the model's context
// window, or the reply was cut off at the length limit) or
// [agents.ErrProvider] (everything else: HTTP errors, timeouts, unreadable
// or empty replies). Neither reads the environment; [FromEnv] builds them
// from a getenv function, and a [Registry] maps model handles such as
// "openai/gpt-4o-mini" to them.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/agents"
)

// Defaults of the provider configs.
const (
	DefaultTimeout    = 120 * time.Second
	DefaultMaxRetries = 2
	DefaultMaxTokens  = 4096 // Anthropic requires a reply limit
)

// Error is a failed call to a provider. It wraps [agents.ErrContextOverflow]
// or [agents.ErrProvider], and the SDK's error when there is one (an HTTP
// error reply, a transport error, context.DeadlineExceeded).
type Error struct {
	Provider string // "openai" or "anthropic"
	Status   int    // the HTTP status of an error reply; 0 if there was none
	// Message says what went wrong, in the provider's words when it gave
	// some. It never contains the API key.
	Message string

	kind error // agents.ErrContextOverflow or agents.ErrProvider
	err  error // the SDK's error, or nil
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.Status, e.Message)
	}
	return e.Provider + ": " + e.Message
}

// Unwrap returns the kind of failure and the SDK's error.
func (e *Error) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// errorf builds the provider's Error of the given kind, with the key
// redacted from the message.
func errorf(provider, key string, kind error, status int, cause error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[redacted]")
	}
	return &Error{Provider: provider, Status: status, Message: msg, kind: kind, err: cause}
}

// transportError is the Error for a failure with no HTTP error reply: ctx
// ending, a request attempt timing out, a broken connection or body.
func transportError(ctx context.Context, provider, key string, timeout time.Duration, err error) *Error {
	var ue *url.Error
	switch {
	case ctx.Err() != nil:
		return errorf(provider, key, agents.ErrProvider, 0, err, "%v", context.Cause(ctx))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return errorf(provider, key, agents.ErrProvider, 0, err, "request timed out after %v", timeout)
	}
	return errorf(provider, key, agents.ErrProvider, 0, err, "%v", err)
}

// overflowPhrases are the ways providers say a request does not fit the
// model's context window, lower-cased.
var overflowPhrases = []string{
	"maximum context length",           // OpenAI, vLLM
	"context_length_exceeded",          // OpenAI's code
	"too many tokens",                  // OpenAI (older), Azure
	"exceeds the context window",       // OpenAI
	"prompt is too long",               // Anthropic
	"exceed context limit",             // Anthropic: input + max_tokens
	"exceeds the available context",    // llama.cpp
	"exceed_context_size",              // llama.cpp's type
	"model_context_window_exceeded",    // Anthropic's stop reason
	"context window exceeds the limit", // Mistral and others
}

// isOverflow reports whether an error with the given HTTP status (0: none)
// and texts says the context window was exceeded. Rate limits and server
// errors never do, whatever they say about tokens.
func isOverflow(status int, texts ...string) bool {
	if status == http.StatusTooManyRequests || status >= 500 {
		return false
	}
	for _, t := range texts {
		t = strings.ToLower(t)
		for _, p := range overflowPhrases {
			if strings.Contains(t, p) {
				return true
			}
		}
	}
	return false
}

// checkBaseURL reports whether u is usable as a base URL: empty, or an
// absolute http(s) URL.
func checkBaseURL(u string) error {
	if u == "" {
		return nil
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("base URL: %w", err)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("base URL %q: want an absolute http or https URL", u)
	}
	return nil
}

// orDefault returns v, or def if v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// retries is the SDK's retry count for a configured MaxRetries.
func retries(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return DefaultMaxRetries
	}
	return n
}

// ErrUnknownModel is wrapped by the errors of Registry.Lookup.
var ErrUnknownModel = errors.New("unknown model")

// Registry maps model handles, "provider/model", to the providers that serve
// them. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex // guards providers
	providers map[string]agents.Model
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{providers: map[string]agents.Model{}}
}

// Add makes m the provider of the handles "provider/...", replacing any
// before it.
func (r *Registry) Add(provider string, m agents.Model) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[provider] = m
}

// Providers returns the names of the providers added, sorted.
func (r *Registry) Providers() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.providers))
	for name := range r.providers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the provider of handle and the model's name at that
// provider: "openai/gpt-4o-mini" is gpt-4o-mini at the provider added as
// "openai". The model name is everything after the first slash, so
// "openai/meta-llama/Llama-3.1-8B" names meta-llama/Llama-3.1-8B. A handle
// without a provider, or with one not added, is an error wrapping
// ErrUnknownModel.
func (r *Registry) Lookup(handle string) (agents.Model, string, error) {
	provider, name, ok := strings.Cut(handle, "/")
	if !ok || provider == "" || name == "" {
		return nil, "", fmt.Errorf("model handle %q: want provider/model: %w", handle, ErrUnknownModel)
	}
	r.mu.RLock()
	m, ok := r.providers[provider]
	r.mu.RUnlock()
	if !ok {
		return nil, "", fmt.Errorf("model handle %q: no provider %q is configured: %w", handle, provider, ErrUnknownModel)
	}
	return m, name, nil
}

// FromEnv builds a Registry of the providers that getenv configures:
//
//	OPENAI_API_KEY, OPENAI_BASE_URL        "openai", if either is set (a local
//	                                       OpenAI-compatible server needs no key)
//	ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL  "anthropic", if the key is set
//
// getenv is typically os.Getenv. No provider configured is not an error: the
// Registry is empty. A malformed base URL is.
func FromEnv(getenv func(string) string) (*Registry, error) {
	r := NewRegistry()
	if key, base := getenv("OPENAI_API_KEY"), getenv("OPENAI_BASE_URL"); key != "" || base != "" {
		cfg := OpenAIConfig{APIKey: key, BaseURL: base}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("OPENAI_BASE_URL: %w", err)
		}
		r.Add("openai", NewOpenAI(cfg))
	}
	if key, base := getenv("ANTHROPIC_API_KEY"), getenv("ANTHROPIC_BASE_URL"); key != "" {
		cfg := AnthropicConfig{APIKey: key, BaseURL: base}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("ANTHROPIC_BASE_URL: %w", err)
		}
		r.Add("anthropic", NewAnthropic(cfg))
	}
	return r, nil
}

package search

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Embedder turns texts into embedding vectors.
//
// Embed returns one vector per text, in order, each of Dims() floats, or an
// error and no vectors. It is safe for concurrent use. Failures a retry may
// cure (rate limits, server errors, broken connections) are retried a
// bounded number of times before Embed gives up.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dims is the vectors' dimension; 0 until known when it was not
	// configured.
	Dims() int
}

// Defaults of OpenAIEmbedderConfig.
const (
	DefaultEmbedBatch   = 64
	DefaultEmbedRetries = 3
	DefaultEmbedBackoff = 500 * time.Millisecond
	DefaultEmbedTimeout = 60 * time.Second
	maxEmbedBackoff     = 8 * time.Second
)

// OpenAIEmbedderConfig configures an OpenAIEmbedder. Zero values take the
// defaults named.
type OpenAIEmbedderConfig struct {
	BaseURL string // up to and including /v1; empty means OpenAI's
	APIKey  string // sent as a bearer token when set
	Model   string // required: the agent's embedding_config.embedding_model
	// Dims is the expected dimension (embedding_config.embedding_dim). Zero
	// accepts the dimension of the first reply. A reply of another
	// dimension is an error.
	Dims int
	// SendDims sends Dims as the request's "dimensions", which OpenAI's
	// text-embedding-3 models honour and some other servers reject.
	SendDims  bool
	BatchSize int           // inputs per request; DefaultEmbedBatch
	Retries   int           // retries per request; DefaultEmbedRetries; negative: none
	Backoff   time.Duration // first retry's wait, doubled each time; DefaultEmbedBackoff
	Timeout   time.Duration // per attempt; DefaultEmbedTimeout
}

// OpenAIEmbedder calls an OpenAI-compatible /v1/embeddings endpoint through
// the official SDK.
type OpenAIEmbedder struct {
	svc openai.EmbeddingService
	cfg OpenAIEmbedderConfig
	dim chan int // holds the known dimension (0: unknown); a one-slot lock
}

var _ Embedder = (*OpenAIEmbedder)(nil)

// NewOpenAIEmbedder returns an embedder for cfg. It reads no environment
// variables.
func NewOpenAIEmbedder(cfg OpenAIEmbedderConfig) (*OpenAIEmbedder, error) {
	if cfg.Model == "" {
		return nil, errors.New("embedder: no model")
	}
	if cfg.Dims < 0 {
		return nil, fmt.Errorf("embedder: negative dimension %d", cfg.Dims)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.openai.com/v1"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultEmbedBatch
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultEmbedRetries
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultEmbedBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultEmbedTimeout
	}
	opts := []option.RequestOption{
		option.WithHTTPClient(&http.Client{}),
		option.WithBaseURL(cfg.BaseURL),
		option.WithMaxRetries(0), // retried here, with our own bound
		option.WithRequestTimeout(cfg.Timeout),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	e := &OpenAIEmbedder{svc: openai.NewEmbeddingService(opts...), cfg: cfg, dim: make(chan int, 1)}
	e.dim <- cfg.Dims
	return e, nil
}

// Dims returns the configured dimension, or the one the server replied
// with, or 0 before the first reply.
func (e *OpenAIEmbedder) Dims() int {
	d := <-e.dim
	e.dim <- d
	return d
}

// Embed embeds texts in requests of at most BatchSize inputs.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("embed: text %d is empty", i)
		}
	}
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += e.cfg.BatchSize {
		part := texts[lo:min(lo+e.cfg.BatchSize, len(texts))]
		vecs, err := e.embedRetrying(ctx, part)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (e *OpenAIEmbedder) embedRetrying(ctx context.Context, texts []string) ([][]float32, error) {
	wait := e.cfg.Backoff
	for attempt := 0; ; attempt++ {
		vecs, retry, after, err := e.embedOnce(ctx, texts)
		if err == nil {
			return vecs, nil
		}
		if !retry || attempt >= e.cfg.Retries || ctx.Err() != nil {
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, err
		}
		d := wait
		if after > 0 {
			d = min(after, maxEmbedBackoff)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("embed: %w", context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, maxEmbedBackoff)
	}
}

// embedOnce makes one request. It reports whether a failure is worth a
// retry, and the server's Retry-After when it gave one.
func (e *OpenAIEmbedder) embedOnce(ctx context.Context, texts []string) ([][]float32, bool, time.Duration, error) {
	p := openai.EmbeddingNewParams{
		Model:          e.cfg.Model,
		Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
	}
	if e.cfg.SendDims && e.cfg.Dims > 0 {
		p.Dimensions = openai.Int(int64(e.cfg.Dims))
	}
	res, err := e.svc.New(ctx, p)
	if err != nil {
		var api *openai.Error
		if errors.As(err, &api) {
			retry := api.StatusCode == http.StatusTooManyRequests || api.StatusCode >= 500 || api.StatusCode == http.StatusRequestTimeout
			var after time.Duration
			if api.Response != nil {
				if s, err := strconv.Atoi(api.Response.Header.Get("Retry-After")); err == nil && s >= 0 {
					after = time.Duration(s) * time.Second
				}
			}
			msg := api.Message
			if msg == "" {
				msg = http.StatusText(api.StatusCode)
			}
			return nil, retry, after, fmt.Errorf("embed with %s: HTTP %d: %s", e.cfg.Model, api.StatusCode, e.redact(msg))
		}
		if ctx.Err() != nil {
			return nil, false, 0, fmt.Errorf("embed with %s: %w", e.cfg.Model, context.Cause(ctx))
		}
		return nil, true, 0, fmt.Errorf("embed with %s: %s", e.cfg.Model, e.redact(err.Error()))
	}
	if len(res.Data) != len(texts) {
		return nil, false, 0, fmt.Errorf("embed with %s: %d vectors for %d texts", e.cfg.Model, len(res.Data), len(texts))
	}
	d := <-e.dim
	defer func() { e.dim <- d }()
	out := make([][]float32, len(texts))
	want := d
	for _, item := range res.Data {
		i := int(item.Index)
		if i < 0 || i >= len(texts) || out[i] != nil {
			return nil, false, 0, fmt.Errorf("embed with %s: reply has a bad or repeated index %d", e.cfg.Model, item.Index)
		}
		if len(item.Embedding) == 0 {
			return nil, false, 0, fmt.Errorf("embed with %s: empty vector for text %d", e.cfg.Model, i)
		}
		if want == 0 {
			want = len(item.Embedding)
		}
		if len(item.Embedding) != want {
			return nil, false, 0, fmt.Errorf("embed with %s: vector of %d dimensions, want %d", e.cfg.Model, len(item.Embedding), want)
		}
		v := make([]float32, len(item.Embedding))
		for j, x := range item.Embedding {
			v[j] = float32(x)
		}
		out[i] = v
	}
	d = want
	return out, false, 0, nil
}

func (e *OpenAIEmbedder) redact(s string) string {
	if e.cfg.APIKey == "" {
		return s
	}
	return strings.ReplaceAll(s, e.cfg.APIKey, "[redacted]")
}

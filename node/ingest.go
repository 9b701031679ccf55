package node

import (
	"errors"
	"sync"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/ingest"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/service"
)

// ingester reads files for the service with the ingest package, giving
// its errors the fault kinds the API maps to status codes.
type ingester struct {
	limit int64 // largest file accepted; 0 means ingest.MaxFileSize
}

func (g ingester) Check(name, mime string, data []byte) (string, error) {
	if err := ingest.CheckSize(int64(len(data)), g.limit); err != nil {
		return "", fault.E(fault.TooLarge, "%s is %d bytes; the limit is %d", name, len(data), g.max())
	}
	_, typ, err := ingest.Detect(name, mime, data)
	if err != nil {
		return "", faultOf(err)
	}
	return typ, nil
}

func (g ingester) max() int64 {
	if g.limit > 0 {
		return g.limit
	}
	return ingest.MaxFileSize
}

func (g ingester) Text(name, mime string, data []byte) (string, error) {
	text, err := ingest.Extract(name, mime, data)
	if err != nil {
		return "", faultOf(err)
	}
	return text, nil
}

func (g ingester) Passages(name, mime string, data []byte, chunkTokens int) ([]string, error) {
	text, err := g.Text(name, mime, data)
	if err != nil {
		return nil, err
	}
	opt := ingest.DefaultChunkOptions()
	if chunkTokens > 0 {
		opt.Size = chunkTokens
	}
	return ingest.Chunk(text, opt), nil
}

func faultOf(err error) error {
	switch {
	case errors.Is(err, ingest.ErrTooLarge):
		return fault.E(fault.TooLarge, "%v", err)
	case errors.Is(err, ingest.ErrUnsupported):
		return fault.E(fault.Unsupported, "%v", err)
	case errors.Is(err, ingest.ErrCorrupt):
		return fault.E(fault.Invalid, "%v", err)
	}
	return err
}

// OpenAIEmbedders serves the embedding models of an OpenAI-compatible
// endpoint (baseURL "" means OpenAI's own): the returned function gives the
// embedder for an embedding config whose endpoint type is "openai", one per
// model, and nil for any other. The endpoint is the server's; an agent's
// embedding_endpoint is not followed, so clients cannot point the server at
// other hosts.
func OpenAIEmbedders(baseURL, apiKey string) func(api.EmbeddingConfig) service.Embedder {
	var (
		mu    sync.Mutex
		cache = map[string]service.Embedder{}
	)
	return func(cfg api.EmbeddingConfig) service.Embedder {
		if cfg.EmbeddingEndpointType != "openai" || cfg.EmbeddingModel == "" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if e, ok := cache[cfg.EmbeddingModel]; ok {
			return e
		}
		e, err := search.NewOpenAIEmbedder(search.OpenAIEmbedderConfig{BaseURL: baseURL, APIKey: apiKey, Model: cfg.EmbeddingModel, BatchSize: cfg.BatchSize})
		if err != nil {
			return nil
		}
		cache[cfg.EmbeddingModel] = e
		return e
	}
}

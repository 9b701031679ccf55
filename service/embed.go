package service

import (
	"context"
	"encoding/json"
	"fmt"
)

// embed computes one vector per text with the embedding model of cfg (an
// agent's or a source's embedding config). It returns nil, and no error,
// when that model is not served: passages are then stored without vectors
// and found by their words alone.
func (s *Service) embed(ctx context.Context, cfg json.RawMessage, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	emb := s.embedderFor(embeddingConfig(cfg))
	if emb == nil {
		return nil, nil
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("the embedding provider answered %d vectors for %d texts", len(vecs), len(texts))
	}
	return vecs, nil
}

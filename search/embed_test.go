package search_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/search"
)

func embedder(t *testing.T, srv *llmtest.Server, cfg search.OpenAIEmbedderConfig) *search.OpenAIEmbedder {
	t.Helper()
	cfg.BaseURL, cfg.APIKey = srv.URL, "sk-secret"
	if cfg.Model == "" {
		cfg.Model = "text-embedding-3-small"
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	e, err := search.NewOpenAIEmbedder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmbedderBatches(t *testing.T) {
	srv := llmtest.NewServer(t)
	srv.SetEmbedder(func(text string) []float32 { return []float32{float32(len(text)), 1} })
	e := embedder(t, srv, search.OpenAIEmbedderConfig{BatchSize: 3})
	if e.Dims() != 0 {
		t.Fatalf("Dims before any reply = %d", e.Dims())
	}
	var texts []string
	for i := range 7 {
		texts = append(texts, strings.Repeat("x", i+1))
	}
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		if len(v) != 2 || v[0] != float32(i+1) {
			t.Fatalf("vector %d = %v", i, v)
		}
	}
	reqs := srv.EmbeddingRequests()
	if len(reqs) != 3 || len(reqs[0].Input) != 3 || len(reqs[2].Input) != 1 || reqs[0].Model != "text-embedding-3-small" {
		t.Fatalf("requests: %+v", reqs)
	}
	if e.Dims() != 2 {
		t.Fatalf("Dims = %d, want 2", e.Dims())
	}
	if vecs, err := e.Embed(context.Background(), nil); err != nil || len(vecs) != 0 {
		t.Fatalf("no texts: %v %v", vecs, err)
	}
	if _, err := e.Embed(context.Background(), []string{"ok", " "}); err == nil {
		t.Fatal("an empty text was embedded")
	}
	// A reply of another dimension than the first is refused.
	srv.SetEmbedder(func(string) []float32 { return []float32{1, 2, 3} })
	if _, err := e.Embed(context.Background(), []string{"a"}); err == nil || !strings.Contains(err.Error(), "3 dimensions, want 2") {
		t.Fatalf("dimension change: %v", err)
	}
}

func TestEmbedderDimensions(t *testing.T) {
	srv := llmtest.NewServer(t) // the default: hashed bag of words of the requested size
	e := embedder(t, srv, search.OpenAIEmbedderConfig{Dims: 64, SendDims: true})
	vecs, err := e.Embed(context.Background(), []string{"hello world"})
	if err != nil || len(vecs[0]) != 64 || e.Dims() != 64 {
		t.Fatalf("%v %v", vecs, err)
	}
	if r := srv.EmbeddingRequests(); r[0].Dimensions != 64 || r[0].EncodingFormat != "float" {
		t.Fatalf("request: %+v", r[0])
	}
	e = embedder(t, srv, search.OpenAIEmbedderConfig{Dims: 64})
	if _, err := e.Embed(context.Background(), []string{"hello"}); err == nil {
		t.Fatal("a 384-dim reply was accepted for a 64-dim model")
	}
}

func TestEmbedderRetries(t *testing.T) {
	srv := llmtest.NewServer(t)
	e := embedder(t, srv, search.OpenAIEmbedderConfig{Retries: 3})
	srv.FailEmbeddings(429, 500, 503)
	if _, err := e.Embed(context.Background(), []string{"x"}); err != nil {
		t.Fatalf("three retryable failures then success: %v", err)
	}
	if n := len(srv.EmbeddingRequests()); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
	srv.FailEmbeddings(500, 500, 500, 500)
	_, err := e.Embed(context.Background(), []string{"x"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("retries exhausted: %v", err)
	}
	before := len(srv.EmbeddingRequests())
	srv.FailEmbeddings(401)
	_, err = e.Embed(context.Background(), []string{"x"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "sk-secret") {
		t.Fatalf("401: %v", err)
	}
	if n := len(srv.EmbeddingRequests()) - before; n != 1 {
		t.Fatalf("a 401 was retried: %d requests", n)
	}
	// A transport error is retried too, and bounded.
	dead, err := search.NewOpenAIEmbedder(search.OpenAIEmbedderConfig{BaseURL: "http://127.0.0.1:1/v1", Model: "m", Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Embed(context.Background(), []string{"x"}); err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("unreachable server: %v", err)
	}
	if _, err := search.NewOpenAIEmbedder(search.OpenAIEmbedderConfig{}); err == nil {
		t.Fatal("an embedder without a model was made")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"x"}); err == nil {
		t.Fatal("embedded with a cancelled context")
	}
	_ = fmt.Sprint()
}

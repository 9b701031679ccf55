package llmtest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func TestEmbeddingsWire(t *testing.T) {
	s := NewServer(t)
	type reply struct {
		Object string `json:"object"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
	}
	code, _, body := post(t, s.URL+"/embeddings", `{"model":"m","input":["red apple","apple red","blue sky"],"dimensions":16}`)
	var r reply
	if code != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Object != "list" || len(r.Data) != 3 || r.Model != "m" {
		t.Fatalf("%d %s", code, body)
	}
	var vs [3][]float32
	for i, d := range r.Data {
		if d.Index != i || d.Object != "embedding" || json.Unmarshal(d.Embedding, &vs[i]) != nil || len(vs[i]) != 16 {
			t.Fatalf("item %d: %+v", i, d)
		}
	}
	if !slices.Equal(vs[0], vs[1]) || slices.Equal(vs[0], vs[2]) {
		t.Fatalf("bag of words: %v %v %v", vs[0], vs[1], vs[2])
	}

	// The official SDK reads floats and base64 alike.
	svc := openai.NewEmbeddingService(option.WithBaseURL(s.URL), option.WithAPIKey("k"), option.WithMaxRetries(0))
	s.SetEmbedder(func(text string) []float32 { return []float32{float32(len(text)), 0.5, -2} })
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{"", openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		res, err := svc.New(context.Background(), openai.EmbeddingNewParams{
			Model: "m", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"abc", "hello"}}, EncodingFormat: format,
		})
		if err != nil {
			t.Fatalf("%q: %v", format, err)
		}
		if len(res.Data) != 2 || !slices.Equal(res.Data[1].Embedding, []float64{5, 0.5, -2}) {
			t.Fatalf("%q: %+v", format, res.Data)
		}
	}
	reqs := s.EmbeddingRequests()
	if len(reqs) != 4 || reqs[3].EncodingFormat != "base64" || reqs[0].Dimensions != 16 || !slices.Equal(reqs[1].Input, []string{"abc", "hello"}) {
		t.Fatalf("requests: %+v", reqs)
	}

	// Scripted failures, then normal replies again.
	s.FailEmbeddings(429, 503)
	for _, want := range []int{429, 503, 200} {
		if code, _, body := post(t, s.URL+"/embeddings", `{"model":"m","input":"x"}`); code != want {
			t.Fatalf("got %d %s, want %d", code, body, want)
		}
	}
	for _, bad := range []string{`{"input":"x"}`, `{"model":"m","input":[]}`, `{"model":"m","input":[""]}`, `{"model":"m","input":[[1,2]]}`, `{"model":"m","input":"x","encoding_format":"int8"}`, `{`} {
		if code, _, body := post(t, s.URL+"/embeddings", bad); code != 400 {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

package llmtest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"unicode"
)

// DefaultEmbedDims is the dimension of the default embedding function.
const DefaultEmbedDims = 384

// EmbedFunc maps a text to its embedding. It must be deterministic and give
// every text a vector of the same length.
type EmbedFunc func(text string) []float32

// EmbeddingRequest is one /v1/embeddings request the server received.
type EmbeddingRequest struct {
	Model          string
	Input          []string
	EncodingFormat string // "float", "base64", or "" when absent
	Dimensions     int    // 0 when absent
}

// embeddings is the state of the /v1/embeddings endpoint.
type embeddings struct {
	mu    sync.Mutex // guards the fields below
	fn    EmbedFunc
	fails []int
	reqs  []EmbeddingRequest
}

// HashEmbed is a bag of words hashed into dims buckets: texts that share
// words get similar vectors, texts that share none are orthogonal. Words are
// lowercased runs of letters and digits.
func HashEmbed(dims int) EmbedFunc {
	return func(text string) []float32 {
		v := make([]float32, dims)
		for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%uint32(dims)]++
		}
		return v
	}
}

// SetEmbedder makes POST /v1/embeddings answer f(text) for each input. nil
// restores the default: HashEmbed of the request's "dimensions", or of
// DefaultEmbedDims.
func (s *Server) SetEmbedder(f EmbedFunc) {
	s.emb.mu.Lock()
	defer s.emb.mu.Unlock()
	s.emb.fn = f
}

// FailEmbeddings makes the next embeddings requests answer these HTTP
// statuses, one request each, before answering normally again.
func (s *Server) FailEmbeddings(statuses ...int) {
	s.emb.mu.Lock()
	defer s.emb.mu.Unlock()
	s.emb.fails = append(s.emb.fails, statuses...)
}

// EmbeddingRequests returns every embeddings request received so far, in
// order of arrival.
func (s *Server) EmbeddingRequests() []EmbeddingRequest {
	s.emb.mu.Lock()
	defer s.emb.mu.Unlock()
	return append([]EmbeddingRequest(nil), s.emb.reqs...)
}

// serveEmbeddings answers POST /v1/embeddings in OpenAI's format: float
// arrays, or base64 of little-endian float32s when encoding_format is
// "base64".
func (s *Server) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.record(newRecorded("openai", r, body), false)
	bad := func(msg string) {
		writeError(w, Step{RetryAfter: -1}, http.StatusBadRequest, openAIErrorBody(http.StatusBadRequest, msg, "invalid_request_error", ""))
	}
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		bad(fmt.Sprintf("We could not parse the JSON body of your request. (%v)", err))
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil {
		bad("'input' must be a string or an array of strings (llmtest takes no token arrays)")
		return
	}
	switch {
	case req.Model == "":
		bad("you must provide a model parameter")
		return
	case len(inputs) == 0:
		bad("'input' : input must be a non-empty string or array")
		return
	case req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64":
		bad(fmt.Sprintf("Invalid value: '%s'. Supported values are: 'float' and 'base64'.", req.EncodingFormat))
		return
	case req.Dimensions != nil && *req.Dimensions <= 0:
		bad("'dimensions' must be positive")
		return
	}
	for i, in := range inputs {
		if in == "" {
			bad(fmt.Sprintf("'$.input[%d]' is invalid: empty string", i))
			return
		}
	}
	rec := EmbeddingRequest{Model: req.Model, Input: inputs, EncodingFormat: req.EncodingFormat}
	if req.Dimensions != nil {
		rec.Dimensions = *req.Dimensions
	}
	s.emb.mu.Lock()
	s.emb.reqs = append(s.emb.reqs, rec)
	fn, fail := s.emb.fn, 0
	if len(s.emb.fails) > 0 {
		fail, s.emb.fails = s.emb.fails[0], s.emb.fails[1:]
	}
	s.emb.mu.Unlock()
	if fail != 0 {
		writeError(w, Step{RetryAfter: -1}, fail, openAIErrorBody(fail, fmt.Sprintf("llmtest: scripted HTTP %d", fail), "", ""))
		return
	}
	if fn == nil {
		fn = HashEmbed(DefaultEmbedDims)
		if rec.Dimensions > 0 {
			fn = HashEmbed(rec.Dimensions)
		}
	}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	reply := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}{Object: "list", Model: req.Model}
	for i, in := range inputs {
		v := fn(in)
		var emb any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 0, 4*len(v))
			for _, x := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		reply.Data = append(reply.Data, item{Object: "embedding", Index: i, Embedding: emb})
		reply.Usage.PromptTokens += len(strings.Fields(in))
	}
	reply.Usage.TotalTokens = reply.Usage.PromptTokens
	writeJSON(w, http.StatusOK, reply)
}

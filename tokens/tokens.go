// Package tokens counts tokens offline, with the BPE encodings OpenAI models
// use (cl100k_base, o200k_base), for context-window accounting.
//
// The merge ranks are compiled into the binary: they are the .tiktoken files
// that the github.com/pkoukk/tiktoken-go-loader module embeds. Loading and
// counting never touch the network or the file system and read no
// environment variables. The cost is about 7 MB of binary size for any
// program that imports this package, and, the first time an encoding is
// used, about 0.1 s and 5 MB (cl100k_base) or 0.15 s and 10 MB (o200k_base)
// of heap. [ForModel] loads each encoding once per process and shares the
// Counter.
//
// Counts are exact for text: they equal tiktoken's encode_ordinary lengths.
// The pre-tokenizer is hand-written (split.go) and checked against the
// encodings' regular expressions; byte-pair merging follows tiktoken, with
// an O(n log n) variant for long pieces, so that a megabyte of letters
// without a space takes under a second rather than many minutes. Special-token
// text such as "<|endoftext|>" is counted as the ordinary text it is, which
// is how the API treats it inside message content. Chat requests and tool
// definitions are counted with a documented approximation of OpenAI's
// billing; see [Counter.Messages] and [Counter.Tools].
package tokens

import (
	"fmt"
	"strings"
	"sync"

	loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding names a BPE encoding.
type Encoding string

// The encodings this package can load.
const (
	CL100KBase Encoding = "cl100k_base" // gpt-4, gpt-3.5-turbo, text-embedding-3-*
	O200KBase  Encoding = "o200k_base"  // gpt-4o, gpt-4.1, o1, o3 and later
)

// o200kPrefixes are the model-name prefixes that use o200k_base, after
// tiktoken's own table (gpt-oss uses o200k_harmony, which differs from
// o200k_base only in special tokens). Everything else, including models
// whose tokenizers are not public (claude-*) or not tiktoken's (llama-*),
// is counted with cl100k_base as a stand-in.
var o200kPrefixes = []string{
	"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss",
	"o1", "o3", "o4",
}

// EncodingForModel reports the encoding ForModel uses for model. Matching is
// by prefix, ignores case, a provider prefix ending in "/" and a fine-tune's
// "ft:" prefix, so "openai/GPT-4o-mini" and "ft:gpt-4o:acme::x" are
// o200k_base. Unknown models get cl100k_base.
func EncodingForModel(model string) Encoding {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	for _, p := range o200kPrefixes {
		if strings.HasPrefix(m, p) {
			return O200KBase
		}
	}
	return CL100KBase
}

// A Counter counts tokens under one encoding. It is immutable and safe for
// concurrent use by multiple goroutines.
type Counter struct {
	enc Encoding
	bpe *bpe
}

// ForModel returns the shared Counter for model's encoding (see
// [EncodingForModel]). The first call for an encoding loads its ranks, which
// is slow; later calls, for any model with the same encoding, return the same
// Counter. An error means the embedded ranks could not be parsed, which
// indicates a broken build rather than a bad argument.
func ForModel(model string) (*Counter, error) {
	return ForEncoding(EncodingForModel(model))
}

// ForEncoding returns the shared Counter for enc, loading it on first use.
// It fails for an encoding other than [CL100KBase] and [O200KBase].
func ForEncoding(enc Encoding) (*Counter, error) {
	l, ok := loaders[enc]
	if !ok {
		return nil, fmt.Errorf("tokens: unknown encoding %q", enc)
	}
	return l()
}

// Encoding reports the encoding c counts with.
func (c *Counter) Encoding() Encoding { return c.enc }

// Count returns the number of tokens text encodes to. Special-token text is
// counted as ordinary text.
func (c *Counter) Count(text string) int {
	if text == "" {
		return 0
	}
	return c.bpe.count(text)
}

// splitters are the encodings' pre-tokenizers (see split.go).
var splitters = map[Encoding]func(string, int) int{
	CL100KBase: splitCL100K,
	O200KBase:  splitO200K,
}

// loaders holds one lazily loaded Counter per encoding. Each function runs
// its load at most once and then returns the same result forever.
var loaders = map[Encoding]func() (*Counter, error){
	CL100KBase: sync.OnceValues(func() (*Counter, error) { return load(CL100KBase) }),
	O200KBase:  sync.OnceValues(func() (*Counter, error) { return load(O200KBase) }),
}

// load builds enc's Counter from the ranks embedded in the loader module.
// It reads nothing but the embedded files.
func load(enc Encoding) (*Counter, error) {
	ranks, err := loader.NewOfflineLoader().LoadTiktokenBpe(string(enc) + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("tokens: load %s: %w", enc, err)
	}
	return &Counter{enc: enc, bpe: &bpe{split: splitters[enc], ranks: ranks}}, nil
}

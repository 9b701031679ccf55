// Package tokens counts tokens offline, with the BPE encodings OpenAI models
// use (cl100k_base, o200k_base), for context-window accounting.
//
// The merge ranks are compiled into the binary (they come from the
// github.com/pkoukk/tiktoken-go-loader module's embedded .tiktoken files), so
// counting never touches the network or the file system: no download, no
// cache directory, no environment variables. The cost is about 5 MB of
// embedded rank files in every binary that imports this package, and roughly
// a few hundred milliseconds and tens of megabytes of heap the first time an
// encoding is used. Construct a [Counter] once and share it; [ForModel]
// already caches one Counter per encoding for the life of the process.
//
// Counts are exact for plain text: they match OpenAI's tiktoken for the same
// encoding. Special-token text such as "<|endoftext|>" is counted as the
// ordinary text it is, which is how the API treats it inside message content.
// Chat requests and tool definitions are counted with a documented
// approximation of OpenAI's billing; see [Counter.Messages] and
// [Counter.Tools].
package tokens

import (
	"fmt"
	"strings"
	"sync"

	"github.com/dlclark/regexp2"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding names a BPE encoding.
type Encoding string

// The encodings this package can load.
const (
	CL100KBase Encoding = "cl100k_base" // gpt-4, gpt-3.5-turbo, text-embedding-3-*
	O200KBase  Encoding = "o200k_base"  // gpt-4o, gpt-4.1, o1, o3 and later
)

// o200kPrefixes are the model-name prefixes that use o200k_base. Everything
// else, including non-OpenAI models (claude-*, llama-*) whose tokenizers are
// not public or not BPE-compatible, is counted with cl100k_base as a stand-in.
var o200kPrefixes = []string{
	"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5",
	"o1", "o3", "o4",
}

// EncodingForModel reports the encoding ForModel uses for model. Matching is
// by prefix and ignores case and any provider prefix ending in "/", so
// "openai/GPT-4o-mini" is o200k_base. Unknown models get cl100k_base.
func EncodingForModel(model string) Encoding {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
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

// spec is what it takes to build an encoding: the rank file's name inside
// the loader module and the pre-tokenization pattern. The patterns are
// OpenAI's (tiktoken_ext/openai_public.py), as tiktoken-go v0.1.8 writes them
// for the regexp2 engine. Special tokens are left out: Count treats their
// text as ordinary text.
type spec struct {
	file    string
	pattern string
}

var specs = map[Encoding]spec{
	CL100KBase: {
		file:    "cl100k_base.tiktoken",
		pattern: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	},
	O200KBase: {
		file: "o200k_base.tiktoken",
		pattern: strings.Join([]string{
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`\p{N}{1,3}`,
			` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
			`\s*[\r\n]+`,
			`\s+(?!\S)`,
			`\s+`,
		}, "|"),
	},
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
	s := specs[enc]
	ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe(s.file)
	if err != nil {
		return nil, fmt.Errorf("tokens: load %s: %w", enc, err)
	}
	re, err := regexp2.Compile(s.pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("tokens: load %s: %w", enc, err)
	}
	return &Counter{enc: enc, bpe: &bpe{pattern: re, ranks: ranks}}, nil
}

package ingest

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/engram-dev/engram/tokens"
)

// Chunking constants from Letta 0.5.1.
const (
	// DefaultChunkSize is EmbeddingConfig.embedding_chunk_size's default:
	// the most tokens in one passage of a loaded file.
	DefaultChunkSize = 300
	// DefaultChunkOverlap is the overlap of llama-index's TokenTextSplitter,
	// which Letta's load_data uses for files: the most tokens consecutive
	// passages share.
	DefaultChunkOverlap = 20
	// ArchivalChunkOverlap is the overlap of llama-index's SentenceSplitter,
	// which Letta uses (with DefaultChunkSize) to split text inserted into
	// archival memory rather than loaded from a file.
	ArchivalChunkOverlap = 200
)

// ChunkOptions configure [Chunk]. The zero value means chunks of
// [DefaultChunkSize] tokens without overlap, counted with cl100k_base; use
// [DefaultChunkOptions] for Letta's file-loading behaviour.
type ChunkOptions struct {
	// Size is the most tokens in one chunk; zero or less means
	// DefaultChunkSize.
	Size int
	// Overlap is the most tokens a chunk repeats from the end of the one
	// before it; zero or less means none. An Overlap of Size or more is
	// treated as Size-1.
	Overlap int
	// Counter counts tokens; nil means the cl100k_base encoding, which Letta
	// uses for splitting whatever the embedding model.
	Counter *tokens.Counter
}

// DefaultChunkOptions returns Letta's file-chunking settings: 300 tokens with
// an overlap of 20, counted with cl100k_base.
func DefaultChunkOptions() ChunkOptions {
	return ChunkOptions{Size: DefaultChunkSize, Overlap: DefaultChunkOverlap}
}

// Validate reports options that Chunk would have to adjust.
func (o ChunkOptions) Validate() error {
	if o.Size < 0 {
		return fmt.Errorf("ingest: chunk size %d is negative", o.Size)
	}
	if o.Overlap < 0 {
		return fmt.Errorf("ingest: chunk overlap %d is negative", o.Overlap)
	}
	if size := o.size(); o.Overlap >= size {
		return fmt.Errorf("ingest: chunk overlap %d is not smaller than the chunk size %d", o.Overlap, size)
	}
	return nil
}

func (o ChunkOptions) size() int {
	if o.Size <= 0 {
		return DefaultChunkSize
	}
	return o.Size
}

// A Span is the byte range text[Start:End] of one chunk.
type Span struct{ Start, End int }

// Chunk splits text into passages of at most opt.Size tokens, the way
// llama-index's TokenTextSplitter does for Letta: the text is cut before
// each space (then, for a run without spaces that is still too long, before
// each newline, then between characters), and the pieces are packed greedily
// into chunks; each new chunk starts with the last pieces of the one before,
// as many as fit in opt.Overlap tokens. Chunks are trimmed of surrounding
// white space.
//
// Guarantees: the result depends only on text and opt; no chunk is empty or
// all white space; no chunk has more than opt.Size tokens, unless it is a
// single character that alone encodes to more (possible only for Size < 4);
// every non-space character of text is in some chunk, in order — the chunks,
// each with the overlap it shares with the one before removed, concatenate to
// text less white space at the cut points; and each chunk adds text beyond
// the end of the one before and shares at most opt.Overlap tokens with it
// (none after the rare chunk that had to be cut short because its text
// counted more tokens than its pieces). Text with no non-space characters gives no
// chunks. Invalid UTF-8 is chunked as bytes and never panics.
func Chunk(text string, opt ChunkOptions) []string {
	spans := ChunkSpans(text, opt)
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = text[s.Start:s.End]
	}
	return out
}

// ChunkSpans is [Chunk], reporting where each chunk lies in text.
func ChunkSpans(text string, opt ChunkOptions) []Span {
	c := newChunker(text, opt)
	if c == nil {
		return nil
	}
	c.merge()
	return c.spans
}

// piece is a range of the text with its token count, and (once known,
// otherwise -1) the count of the piece trimmed of leading white space, as it
// is when it starts a chunk.
type piece struct{ start, end, n, lead int }

type chunker struct {
	text    string
	size    int
	overlap int
	counter *tokens.Counter
	cache   map[string]int // token counts of short pieces (words repeat)
	spans   []Span

	// Pieces are made as merge needs them and forgotten once behind the
	// current chunk, so memory stays proportional to a chunk, not the text.
	// Piece i (counting from the start of the text) is pieces[i-base].
	pieces []piece
	base   int
	next   int // where in text the pieces made so far end
	// dirty[i-base] is the number of joins up to piece i where the
	// tokenizer may read across the cut (see cleanJoin); lastDirty is the
	// latest value and made says whether any piece has been made.
	dirty     []int
	lastDirty int
	made      bool
}

func newChunker(text string, opt ChunkOptions) *chunker {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	c := &chunker{text: text, size: opt.size(), overlap: max(opt.Overlap, 0), counter: opt.Counter}
	if c.overlap >= c.size {
		c.overlap = c.size - 1
	}
	if c.counter == nil {
		var err error
		if c.counter, err = tokens.ForEncoding(tokens.CL100KBase); err != nil {
			// The ranks are compiled in; failing to parse them is a broken
			// build, not bad input.
			panic(err)
		}
	}
	c.cache = make(map[string]int, 1024)
	return c
}

// maxCached is the longest piece whose count is cached, and maxCache the
// most entries the cache holds.
const (
	maxCached = 48
	maxCache  = 1 << 16
)

func (c *chunker) count(s string) int {
	if len(s) > maxCached {
		return c.counter.Count(s)
	}
	if n, ok := c.cache[s]; ok {
		return n
	}
	n := c.counter.Count(s)
	if len(c.cache) < maxCache {
		c.cache[s] = n
	}
	return n
}

// pieceCount is the token count of text[start:end], or of it trimmed of
// white space if that is more: a chunk starts with a trimmed piece, and a
// word without its leading space can take more tokens.
func (c *chunker) pieceCount(start, end int) int {
	n := c.count(c.text[start:end])
	if s, e := trimSpan(c.text, start, end); s != start || e != end {
		n = max(n, c.count(c.text[s:e]))
	}
	return n
}

// has reports whether piece i exists, making pieces up to it as needed:
// the text is cut before each space, the space going with the piece that
// follows it, and any piece over the size is split further (see add).
func (c *chunker) has(i int) bool {
	for i-c.base >= len(c.pieces) {
		start := c.next
		if start >= len(c.text) {
			return false
		}
		end := len(c.text)
		if j := strings.IndexByte(c.text[start+1:], ' '); j >= 0 {
			end = start + 1 + j
		}
		c.add(start, end, true)
		c.next = end
	}
	return true
}

// at returns piece i, which has been made and not forgotten.
func (c *chunker) at(i int) *piece { return &c.pieces[i-c.base] }

// forget drops the pieces before lo, when that frees enough to be worth
// the copy.
func (c *chunker) forget(lo int) {
	n := lo - c.base
	if n < 4096 || 2*n < len(c.pieces) {
		return
	}
	c.pieces = c.pieces[:copy(c.pieces, c.pieces[n:])]
	c.dirty = c.dirty[:copy(c.dirty, c.dirty[n:])]
	c.base = lo
}

// add records text[start:end] as a piece, or splits it before each newline
// (if newlines is true and it has any) or between characters if it has too
// many tokens.
func (c *chunker) add(start, end int, newlines bool) {
	n := c.pieceCount(start, end)
	if n <= c.size {
		c.push(piece{start, end, c.count(c.text[start:end]), -1})
		return
	}
	if newlines && strings.IndexByte(c.text[start+1:end], '\n') >= 0 {
		for s := start; s < end; {
			e := end
			if i := strings.IndexByte(c.text[s+1:end], '\n'); i >= 0 {
				e = s + 1 + i
			}
			c.add(s, e, false)
			s = e
		}
		return
	}
	for start < end {
		p := c.longestPrefix(start, end)
		c.push(piece{start, p, c.count(c.text[start:p]), -1})
		start = p
	}
}

// push appends p to the pieces.
func (c *chunker) push(p piece) {
	if c.made && !c.cleanJoin(p.start) {
		c.lastDirty++
	}
	c.made = true
	c.pieces = append(c.pieces, p)
	c.dirty = append(c.dirty, c.lastDirty)
}

// cleanJoin reports whether cutting the text at i leaves the token count
// additive: the text before i ends with a character that is not white space
// and the text after it is a space and then such a character. No pattern of
// the cl100k_base or o200k_base pre-tokenizer matches across such a cut (a
// letter, digit or punctuation run stops at the space; a space attaches only
// to what follows it), so the pre-tokens, and hence the token counts, of
// the two sides add up to those of the whole.
func (c *chunker) cleanJoin(i int) bool {
	if i <= 0 || i+1 >= len(c.text) || c.text[i] != ' ' {
		return false
	}
	before, n := utf8.DecodeLastRuneInString(c.text[:i])
	if (before == utf8.RuneError && n <= 1) || unicode.IsSpace(before) {
		return false
	}
	after, n := utf8.DecodeRuneInString(c.text[i+1:])
	return !(after == utf8.RuneError && n <= 1) && !unicode.IsSpace(after)
}

// longestPrefix returns the end of the longest prefix of text[start:end],
// cut at a character boundary, that has at most size tokens; at least one
// character.
func (c *chunker) longestPrefix(start, end int) int {
	_, w := utf8.DecodeRuneInString(c.text[start:end])
	lo := start + w // known to be acceptable (one character)
	// A token is rarely longer than 16 bytes, so the prefix is within
	// size*16 bytes; grow the bound if it is not.
	hi := min(end, start+c.size*16)
	for hi < end && c.pieceCount(start, hi) <= c.size {
		hi = min(end, start+2*(hi-start))
	}
	if c.pieceCount(start, hi) <= c.size {
		return hi
	}
	// Invariant: prefix to lo fits; prefix to hi does not.
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		for mid > lo && !utf8.RuneStart(c.text[mid]) {
			mid--
		}
		if mid == lo {
			// No character boundary between lo and hi: try the next one up.
			mid = lo + 1
			for mid < hi && !utf8.RuneStart(c.text[mid]) {
				mid++
			}
			if mid == hi {
				break
			}
		}
		if c.pieceCount(start, mid) <= c.size {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// merge packs pieces greedily into chunks with overlap, as llama-index's
// TokenTextSplitter._merge does: pieces are added while their token counts
// sum to at most size; then the chunk is emitted and pieces are dropped from
// its front until what is left sums to at most overlap and leaves room for
// the next piece. The first piece of a chunk is counted without its leading
// space, as it will appear.
func (c *chunker) merge() {
	lo, sum := 0, 0 // the current chunk is pieces lo to i-1; sum is their n
	est := func(sum int) int { return sum - c.at(lo).n + c.lead(lo) }
	for i := 0; c.has(lo); {
		if c.has(i) && (i == lo || est(sum+c.at(i).n) <= c.size) {
			sum += c.at(i).n
			i++
			continue
		}
		if k := c.emit(lo, i); k < i {
			// The text of pieces lo to i-1 counts more tokens than the
			// estimate: only those before k went out. The rest starts the
			// next chunk, without overlap, so that the same window is not
			// tried again.
			lo, i, sum = k, k, 0
			c.forget(lo)
			continue
		}
		if !c.has(i) {
			return
		}
		next := c.at(i).n
		for lo < i && (est(sum) > c.overlap || est(sum)+next > c.size || c.overlapCount(lo) > c.overlap) {
			sum -= c.at(lo).n
			lo++
		}
		c.forget(lo)
	}
}

// overlapCount returns the tokens the chunk that starts with pieces[lo]
// would share with the last chunk emitted. Counts of pieces nearly always
// add up, so this rarely drops a piece the estimate kept; it exists so that
// the overlap bound holds exactly.
func (c *chunker) overlapCount(lo int) int {
	if len(c.spans) == 0 || c.overlap == 0 {
		return 0
	}
	end := c.spans[len(c.spans)-1].End
	if c.at(lo).start >= end {
		return 0
	}
	s, e := trimSpan(c.text, c.at(lo).start, end)
	return c.counter.Count(c.text[s:e])
}

// lead returns the token count of pieces[i] without its leading white space.
func (c *chunker) lead(i int) int {
	p := c.at(i)
	if p.lead < 0 {
		p.lead = p.n
		if s, e := trimSpan(c.text, p.start, p.end); s != p.start && s < e {
			p.lead = c.count(c.text[s:e])
		}
	}
	return p.lead
}

// emit records the longest run pieces[lo:k], k <= hi, whose text, trimmed of
// white space, has at most size tokens (at least one piece), and returns k.
// The pieces' token counts nearly always sum to at least their text's count,
// so k is nearly always hi; the text can count more where a cut changed how
// the tokenizer joins neighbours. It records nothing if the text adds
// nothing past the previous chunk.
func (c *chunker) emit(lo, hi int) int {
	k := hi
	var s, e int
	for {
		s, e = trimSpan(c.text, c.at(lo).start, c.at(k-1).end)
		if k-lo == 1 || s >= e || c.fits(lo, k, s, e) {
			break
		}
		k--
	}
	if s >= e {
		return k
	}
	if n := len(c.spans); n > 0 && e <= c.spans[n-1].End {
		return k
	}
	c.spans = append(c.spans, Span{s, e})
	return k
}

// fits reports whether text[s:e], the trimmed text of pieces[lo:hi], has at
// most size tokens. It counts the text in segments cut at clean joins (see
// cleanJoin), where counts add up: a segment of one whole piece is already
// counted, so only the few segments with a doubtful join, and the trimmed
// ends, are counted again.
func (c *chunker) fits(lo, hi, s, e int) bool {
	n := 0
	for a := lo; a < hi; {
		b := a + 1
		for b < hi && c.dirty[b-c.base] != c.dirty[b-1-c.base] {
			b++
		}
		start, end := c.at(a).start, c.at(b-1).end
		switch {
		case b-a == 1 && start >= s && end <= e:
			n += c.at(a).n
		case b-a == 1 && a == lo && end <= e:
			n += c.lead(a)
		default:
			if from, to := max(start, s), min(end, e); from < to {
				n += c.counter.Count(c.text[from:to])
			}
		}
		if n > c.size {
			return false
		}
		a = b
	}
	return true
}

// trimSpan narrows text[s:e] to exclude leading and trailing white space.
func trimSpan(text string, s, e int) (int, int) {
	for s < e {
		r, w := utf8.DecodeRuneInString(text[s:e])
		if !unicode.IsSpace(r) {
			break
		}
		s += w
	}
	for e > s {
		r, w := utf8.DecodeLastRuneInString(text[s:e])
		if !unicode.IsSpace(r) {
			break
		}
		e -= w
	}
	return s, e
}

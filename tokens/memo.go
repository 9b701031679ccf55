package tokens

import (
	"iter"
	"strings"
	"sync"
)

// Memo counts with a Counter and remembers the counts of long texts' parts,
// so that a text that differs from one seen before in a few lines (a
// system prompt whose memory section changed) costs the new lines, not the
// whole text. Its counts equal the Counter's. It is safe for concurrent use.
type Memo struct {
	c   *Counter
	max int // entries kept; when full the memo starts again

	mu sync.Mutex
	m  map[string]int
}

// memoFrom is the length from which Memo counts a text by its parts;
// shorter texts are counted whole, and not remembered.
const memoFrom = 1024

// partMin is the least length of a part, but for a text's last.
const partMin = 256

// Memo returns a memo of c that keeps at most max counts.
func (c *Counter) Memo(max int) *Memo { return &Memo{c: c, max: max} }

// Count returns c.Count(text).
func (m *Memo) Count(text string) int {
	if len(text) < memoFrom {
		return m.c.Count(text)
	}
	n := 0
	for part := range Parts(text, partMin) {
		m.mu.Lock()
		k, ok := m.m[part]
		m.mu.Unlock()
		if !ok {
			k = m.c.Count(part)
			m.mu.Lock()
			if m.m == nil || len(m.m) >= m.max {
				m.m = make(map[string]int, 256)
			}
			m.m[strings.Clone(part)] = k // not the whole text's memory
			m.mu.Unlock()
		}
		n += k
	}
	return n
}

// Parts cuts text into parts of at least min bytes (the last may be
// shorter) whose counts add up to the text's, in either encoding. It cuts
// only after a newline that an ASCII letter or digit follows: there both
// pre-tokenizers end a piece (the newline run ends a whitespace piece, or
// the punctuation piece that takes trailing newlines), and the next piece
// starts afresh, as it would at the start of a text. Byte-pair merging
// never crosses pieces, so no token straddles the cut.
func Parts(text string, min int) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := 0
		for p := start + max(min, 1); p < len(text); p++ {
			if text[p-1] != '\n' || !asciiAlnum(text[p]) {
				continue
			}
			if !yield(text[start:p]) {
				return
			}
			start = p
			p += max(min, 1) - 1
		}
		if start < len(text) {
			yield(text[start:])
		}
	}
}

func asciiAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

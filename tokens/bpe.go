package tokens

import (
	"container/heap"
	"math"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// bpe is one loaded encoding: the pre-tokenization pattern that splits text
// into pieces, and the merge ranks that byte-pair-encode each piece. Both are
// read-only after load, so a bpe is safe for concurrent use (a
// regexp2.Regexp is).
type bpe struct {
	pattern *regexp2.Regexp
	ranks   map[string]int // token bytes → rank; lower merges first
}

// count returns the number of tokens text encodes to, treating
// special-token text as ordinary text (tiktoken's encode_ordinary).
func (e *bpe) count(text string) int {
	runes := []rune(text)
	m, _ := e.pattern.FindRunesMatch(runes)
	// The pattern reports rune offsets; walk text alongside to turn them
	// into byte offsets, so that pieces are substrings of text (no copies,
	// and invalid UTF-8 keeps its original bytes).
	r, b := 0, 0
	advance := func(to int) {
		for ; r < to; r++ {
			_, n := utf8.DecodeRuneInString(text[b:])
			b += n
		}
	}
	n := 0
	for m != nil {
		advance(m.Index)
		start := b
		advance(m.Index + m.Length)
		n += e.countPiece(text[start:b])
		m, _ = e.pattern.FindNextMatch(m)
	}
	return n
}

// shortPiece is the length up to which countPiece uses tiktoken's quadratic
// scan, which beats a heap on the short pieces ordinary text is made of.
const shortPiece = 128

// countPiece returns the number of tokens one pre-tokenized piece encodes
// to: the number of parts left after repeatedly merging the adjacent pair
// whose concatenation has the lowest rank, leftmost first, until no adjacent
// pair is in the vocabulary.
func (e *bpe) countPiece(piece string) int {
	switch {
	case len(piece) == 0:
		return 0
	case len(piece) == 1:
		return 1 // every byte is a token
	}
	if _, ok := e.ranks[piece]; ok {
		return 1
	}
	if len(piece) <= shortPiece {
		return e.mergeScan(piece)
	}
	return e.mergeHeap(piece)
}

// rank returns the rank of piece[from:to], or math.MaxInt if it is not a
// token.
func (e *bpe) rank(piece string, from, to int) int {
	if r, ok := e.ranks[piece[from:to]]; ok {
		return r
	}
	return math.MaxInt
}

// mergeScan is tiktoken's byte_pair_merge: O(n²) in the piece's length.
func (e *bpe) mergeScan(piece string) int {
	type part struct{ start, rank int } // rank of merging this part with the next
	var buf [shortPiece + 1]part
	parts := buf[:len(piece)+1]
	for i := range parts {
		parts[i] = part{i, math.MaxInt}
	}
	for i := 0; i+2 < len(parts); i++ {
		parts[i].rank = e.rank(piece, i, i+2)
	}
	for {
		best, at := math.MaxInt, -1
		for i := 0; i+1 < len(parts); i++ {
			if parts[i].rank < best {
				best, at = parts[i].rank, i
			}
		}
		if at < 0 {
			return len(parts) - 1
		}
		// Merge part at with part at+1, then re-rank the pairs that now
		// start at at-1 and at.
		parts = append(parts[:at+1], parts[at+2:]...)
		parts[at].rank = math.MaxInt
		if at+2 < len(parts) {
			parts[at].rank = e.rank(piece, parts[at].start, parts[at+2].start)
		}
		if at > 0 {
			parts[at-1].rank = e.rank(piece, parts[at-1].start, parts[at+1].start)
		}
	}
}

// mergeHeap computes the same merges as mergeScan in O(n log n), for long
// pieces (a run of thousands of letters or spaces) where the quadratic scan
// would take seconds. Parts form a doubly linked list over byte offsets; a
// heap holds candidate pairs ordered by (rank, start), which is the
// scan's "lowest rank, leftmost first"; stale candidates are skipped when
// popped.
func (e *bpe) mergeHeap(piece string) int {
	n := len(piece)
	// Part i starts at byte i; next/prev link the live parts, with n as the
	// end sentinel. pairRank[i] is the rank of merging part i with its next.
	next := make([]int, n)
	prev := make([]int, n)
	pairRank := make([]int, n)
	h := make(pairHeap, 0, n)
	for i := range n {
		next[i], prev[i] = i+1, i-1
		pairRank[i] = math.MaxInt
		if i+2 <= n {
			pairRank[i] = e.rank(piece, i, i+2)
			if pairRank[i] != math.MaxInt {
				h = append(h, pair{pairRank[i], i})
			}
		}
	}
	heap.Init(&h)
	// end returns where the part after i ends, i.e. the end of the pair
	// starting at i, or -1 if i is the last part.
	end := func(i int) int {
		j := next[i]
		if j >= n {
			return -1
		}
		return next[j]
	}
	rerank := func(i int) {
		pairRank[i] = math.MaxInt
		if to := end(i); to >= 0 {
			pairRank[i] = e.rank(piece, i, to)
			if pairRank[i] != math.MaxInt {
				heap.Push(&h, pair{pairRank[i], i})
			}
		}
	}
	live := n
	dead := make([]bool, n)
	for h.Len() > 0 {
		p := heap.Pop(&h).(pair)
		if dead[p.start] || pairRank[p.start] != p.rank {
			continue // stale: the part was merged away or re-ranked
		}
		// Merge part p.start with its next part j.
		j := next[p.start]
		dead[j] = true
		next[p.start] = next[j]
		if next[j] < n {
			prev[next[j]] = p.start
		}
		live--
		rerank(p.start)
		if q := prev[p.start]; q >= 0 {
			rerank(q)
		}
	}
	return live
}

// pair is a merge candidate: the part starting at byte start with its next
// part, whose concatenation has the given rank.
type pair struct{ rank, start int }

// pairHeap is a min-heap of merge candidates by (rank, start).
type pairHeap []pair

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].start < h[j].start
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pair)) }
func (h *pairHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

package tokens

import "math"

// bpe is one loaded encoding: the pre-tokenizer that splits text into
// pieces, and the merge ranks that byte-pair-encode each piece. It is
// read-only after load, so safe for concurrent use.
type bpe struct {
	split func(s string, i int) int // end of the piece starting at i
	ranks map[string]int            // token bytes → rank; lower merges first
}

// count returns the number of tokens text encodes to, treating
// special-token text as ordinary text (tiktoken's encode_ordinary).
func (e *bpe) count(text string) int {
	n := 0
	for i := 0; i < len(text); {
		j := e.split(text, i)
		n += e.countPiece(text[i:j])
		i = j
	}
	return n
}

// shortPiece is the length up to which countPiece uses tiktoken's quadratic
// scan, which beats a heap on the short pieces ordinary text is made of.
const shortPiece = 128

// maxPiece is the longest piece mergeHeap takes, 1 GiB.
const maxPiece = 1 << 30

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
	if len(piece) > maxPiece {
		// Beyond mergeHeap's int32 offsets: count the halves, which can
		// differ from the whole by the merges across the cut.
		half := len(piece) / 2
		return e.countPiece(piece[:half]) + e.countPiece(piece[half:])
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
// would take seconds. Parts form a linked list over byte offsets; a heap
// holds candidate merges ordered by (rank, start), which is the scan's
// "lowest rank, leftmost first"; candidates made stale by an earlier merge
// are skipped when popped. It needs about 20 bytes of scratch per byte.
func (e *bpe) mergeHeap(piece string) int {
	const none = math.MaxInt32
	n := int32(len(piece))
	// Part i starts at byte i while it is live. next and prev link the live
	// parts, with n and -1 as sentinels; pairRank[i] is the rank of merging
	// part i with its next part, or none if that is not a token.
	next := make([]int32, n)
	prev := make([]int32, n)
	pairRank := make([]int32, n)
	h := make(pairHeap, 0, n)
	rank := func(from, to int32) int32 {
		if r, ok := e.ranks[piece[from:to]]; ok {
			return int32(r)
		}
		return none
	}
	for i := range n {
		next[i], prev[i] = i+1, i-1
		pairRank[i] = none
		if i+2 <= n {
			pairRank[i] = rank(i, i+2)
			if pairRank[i] != none {
				h = append(h, pair{pairRank[i], i})
			}
		}
	}
	h.init()
	// rerank recomputes the merge of part i with its next part and queues
	// it if it is a token.
	rerank := func(i int32) {
		pairRank[i] = none
		if j := next[i]; j < n {
			if r := rank(i, next[j]); r != none {
				pairRank[i] = r
				h.push(pair{r, i})
			}
		}
	}
	live := int(n)
	for len(h) > 0 {
		p := h.pop()
		if pairRank[p.start] != p.rank {
			continue // stale: merged away or re-ranked since it was queued
		}
		// Merge part p.start with its next part j, which leaves the list.
		// A pair's extent only grows and ranks are unique per token, so a
		// stale candidate never carries its part's current rank.
		j := next[p.start]
		pairRank[j] = none
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
type pair struct{ rank, start int32 }

func (p pair) less(q pair) bool {
	return p.rank < q.rank || p.rank == q.rank && p.start < q.start
}

// pairHeap is a binary min-heap of merge candidates by (rank, start).
type pairHeap []pair

func (h pairHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *pairHeap) push(p pair) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].less(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pairHeap) pop() pair {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return top
}

func (h pairHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

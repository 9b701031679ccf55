package search

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/viterin/vek/vek32"
)

// The vector store keeps every embedding in memory, one contiguous
// dim-strided []float32 per (owner, dimension), and persists them in an
// append-only log inside the index directory (vectorsFile). Each record
// carries the generation of the Apply that wrote it; the Bleve index stores
// the generation it has committed, and Open drops every record of a later
// generation, so the vectors never run ahead of the checkpoint.

const (
	vectorsFile    = "vectors.log"
	vectorsTmpFile = "vectors.log.tmp"

	opPut         byte = 1
	opDelete      byte = 2
	opDeleteOwner byte = 3
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// vecMeta is what a vector search filters on, mirroring the indexed fields.
type vecMeta struct {
	kind string
	role string
	tags []string
	time int64 // unix nanoseconds
}

type vecKey struct {
	owner string
	dim   int
}

// vecBlock is one owner's vectors of one dimension.
type vecBlock struct {
	key  vecKey
	ids  []string
	data []float32 // row i is data[i*dim:(i+1)*dim], unit length
	meta []vecMeta
	pos  map[string]int // id → row
	// kinds counts the rows of each kind (meta's).
	kinds map[string]int

	// The rows quantized for scanQuant (quant.go): row i is
	// codes[i*dim:(i+1)*dim]·scales[i], within errs[i] of data's row i.
	codes  []int8
	scales []float32
	errs   []float32
	sums   []int32 // sums[i] is the sum of row i's codes
	maxErr float32 // at least every errs[i]
}

// vecStore is the in-memory side. Its owner (Index) guards it with a lock.
type vecStore struct {
	blocks map[vecKey]*vecBlock
	where  map[string]vecKey // doc id → the block holding its vector
}

func newVecStore() *vecStore {
	return &vecStore{blocks: map[vecKey]*vecBlock{}, where: map[string]vecKey{}}
}

// normalize returns v scaled to unit length, or nil when v is empty, zero or
// not finite: such a vector cannot rank anything.
func normalize(v []float32) []float32 {
	if len(v) == 0 {
		return nil
	}
	var sum float64
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		sum += f * f
	}
	if sum == 0 {
		return nil
	}
	inv := float32(1 / math.Sqrt(sum))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * inv
	}
	return out
}

func (s *vecStore) remove(id string) bool {
	k, ok := s.where[id]
	if !ok {
		return false
	}
	delete(s.where, id)
	b := s.blocks[k]
	i := b.pos[id]
	b.kinds[b.meta[i].kind]--
	last := len(b.ids) - 1
	if i != last {
		b.ids[i] = b.ids[last]
		copy(b.data[i*k.dim:(i+1)*k.dim], b.data[last*k.dim:])
		b.meta[i] = b.meta[last]
		copy(b.codes[i*k.dim:(i+1)*k.dim], b.codes[last*k.dim:])
		b.scales[i], b.errs[i], b.sums[i] = b.scales[last], b.errs[last], b.sums[last]
		b.pos[b.ids[i]] = i
	}
	delete(b.pos, id)
	b.ids = b.ids[:last]
	b.data = b.data[:last*k.dim]
	b.codes = b.codes[:last*k.dim]
	b.scales, b.errs, b.sums = b.scales[:last], b.errs[:last], b.sums[:last]
	b.meta[last] = vecMeta{}
	b.meta = b.meta[:last]
	if len(b.ids) == 0 {
		delete(s.blocks, k)
	}
	return true
}

// put stores a unit vector (already normalized) for id, replacing any.
func (s *vecStore) put(owner, id string, vec []float32, m vecMeta) {
	s.remove(id)
	k := vecKey{owner, len(vec)}
	b := s.blocks[k]
	if b == nil {
		b = &vecBlock{key: k, pos: map[string]int{}, kinds: map[string]int{}}
		s.blocks[k] = b
	}
	b.pos[id] = len(b.ids)
	b.ids = append(b.ids, id)
	b.data = append(b.data, vec...)
	b.meta = append(b.meta, m)
	b.kinds[m.kind]++
	n := len(b.codes)
	b.codes = append(b.codes, make([]int8, len(vec))...)
	scale, err := quantize(vec, b.codes[n:])
	b.scales = append(b.scales, scale)
	b.errs = append(b.errs, err)
	var sum int32
	for _, c := range b.codes[n:] {
		sum += int32(c)
	}
	b.sums = append(b.sums, sum)
	b.maxErr = max(b.maxErr, err)
	s.where[id] = k
}

func (s *vecStore) removeOwner(owner string) {
	for k, b := range s.blocks {
		if k.owner != owner {
			continue
		}
		for _, id := range b.ids {
			delete(s.where, id)
		}
		delete(s.blocks, k)
	}
}

func (s *vecStore) has(id string) bool {
	_, ok := s.where[id]
	return ok
}

// sortedKeys returns the block keys in a fixed order.
func (s *vecStore) sortedKeys() []vecKey {
	keys := make([]vecKey, 0, len(s.blocks))
	for k := range s.blocks {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b vecKey) int {
		if c := cmp.Compare(a.owner, b.owner); c != 0 {
			return c
		}
		return cmp.Compare(a.dim, b.dim)
	})
	return keys
}

// vecOp is one change to the vector store, as logged.
type vecOp struct {
	op    byte
	owner string // put, deleteOwner
	id    string // put, delete
	vec   []float32
	meta  vecMeta
}

func (s *vecStore) apply(o vecOp) {
	switch o.op {
	case opPut:
		s.put(o.owner, o.id, o.vec, o.meta)
	case opDelete:
		s.remove(o.id)
	case opDeleteOwner:
		s.removeOwner(o.owner)
	}
}

// Record layout: u32 payload length, u32 CRC-32C of the payload, payload.
// Payload: u64 generation, op byte, then per op: put = owner, id, kind, role,
// tag count (uvarint) and tags, time (i64), dim (uvarint), dim float32s;
// delete = id; deleteOwner = owner. Strings are uvarint length + bytes.

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecord(b []byte, gen uint64, o vecOp) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // length and checksum, filled below
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = append(b, o.op)
	switch o.op {
	case opPut:
		b = appendStr(b, o.owner)
		b = appendStr(b, o.id)
		b = appendStr(b, o.meta.kind)
		b = appendStr(b, o.meta.role)
		b = binary.AppendUvarint(b, uint64(len(o.meta.tags)))
		for _, t := range o.meta.tags {
			b = appendStr(b, t)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(o.meta.time))
		b = binary.AppendUvarint(b, uint64(len(o.vec)))
		for _, x := range o.vec {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	case opDelete:
		b = appendStr(b, o.id)
	case opDeleteOwner:
		b = appendStr(b, o.owner)
	}
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

var errCorrupt = errors.New("corrupt vector record")

type reader struct{ b []byte }

func (r *reader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, errCorrupt
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *reader) str() (string, error) {
	n, err := r.uvarint()
	if err != nil || n > uint64(len(r.b)) {
		return "", errCorrupt
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s, nil
}

func (r *reader) u64() (uint64, error) {
	if len(r.b) < 8 {
		return 0, errCorrupt
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v, nil
}

func decodeRecord(payload []byte) (uint64, vecOp, error) {
	r := &reader{payload}
	var o vecOp
	gen, err := r.u64()
	if err != nil || len(r.b) < 1 {
		return 0, o, errCorrupt
	}
	o.op = r.b[0]
	r.b = r.b[1:]
	switch o.op {
	case opPut:
		if o.owner, err = r.str(); err != nil {
			return 0, o, err
		}
		if o.id, err = r.str(); err != nil {
			return 0, o, err
		}
		if o.meta.kind, err = r.str(); err != nil {
			return 0, o, err
		}
		if o.meta.role, err = r.str(); err != nil {
			return 0, o, err
		}
		n, err := r.uvarint()
		if err != nil || n > uint64(len(r.b)) {
			return 0, o, errCorrupt
		}
		for range n {
			t, err := r.str()
			if err != nil {
				return 0, o, err
			}
			o.meta.tags = append(o.meta.tags, t)
		}
		t, err := r.u64()
		if err != nil {
			return 0, o, err
		}
		o.meta.time = int64(t)
		dim, err := r.uvarint()
		if err != nil || dim == 0 || dim*4 != uint64(len(r.b)) {
			return 0, o, errCorrupt
		}
		o.vec = make([]float32, dim)
		for i := range o.vec {
			o.vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(r.b[i*4:]))
		}
	case opDelete:
		if o.id, err = r.str(); err != nil {
			return 0, o, err
		}
	case opDeleteOwner:
		if o.owner, err = r.str(); err != nil {
			return 0, o, err
		}
	default:
		return 0, o, errCorrupt
	}
	return gen, o, nil
}

// vecLog is the vectors' append-only file.
type vecLog struct {
	dir  string
	f    *os.File
	size int64 // bytes of valid records
	live int64 // bytes the live vectors would take in a compacted file
}

// loadVectors reads dir's vector log into a fresh store, keeping records up
// to generation gen and cutting the file after the last such valid record.
func loadVectors(dir string, gen uint64) (*vecStore, *vecLog, error) {
	path := filepath.Join(dir, vectorsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open vectors: %w", err)
	}
	st := newVecStore()
	br := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var hdr [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break // end of file, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > 1<<30 {
			break
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		g, o, err := decodeRecord(payload)
		if err != nil || g > gen {
			break
		}
		st.apply(o)
		off += 8 + int64(n)
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("truncate vectors: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("seek vectors: %w", err)
	}
	l := &vecLog{dir: dir, f: f, size: off}
	l.live = liveBytes(st)
	return st, l, nil
}

func liveBytes(st *vecStore) int64 {
	var n int64
	for _, b := range st.blocks {
		n += int64(len(b.ids)) * int64(64+4*b.key.dim)
	}
	return n
}

// write appends encoded records and makes them durable.
func (l *vecLog) write(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if _, err := l.f.Write(buf); err != nil {
		l.f.Truncate(l.size)
		l.f.Seek(l.size, io.SeekStart)
		return fmt.Errorf("write vectors: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.f.Truncate(l.size)
		l.f.Seek(l.size, io.SeekStart)
		return fmt.Errorf("sync vectors: %w", err)
	}
	l.size += int64(len(buf))
	return nil
}

// rollback cuts the file back to size, undoing records whose Bleve batch
// failed.
func (l *vecLog) rollback(size int64) error {
	if err := l.f.Truncate(size); err != nil {
		return err
	}
	if _, err := l.f.Seek(size, io.SeekStart); err != nil {
		return err
	}
	l.size = size
	return nil
}

// compact rewrites the log as one put record per live vector, tagged with
// gen (already committed), when dead records take more than half the file.
func (l *vecLog) compact(st *vecStore, gen uint64) error {
	l.live = liveBytes(st)
	if l.size < 1<<20 || l.size < 2*l.live {
		return nil
	}
	tmp := filepath.Join(l.dir, vectorsTmpFile)
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("compact vectors: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var size int64
	var buf []byte
	for _, k := range st.sortedKeys() {
		b := st.blocks[k]
		for i, id := range b.ids {
			buf = appendRecord(buf[:0], gen, vecOp{op: opPut, owner: k.owner, id: id, vec: b.data[i*k.dim : (i+1)*k.dim], meta: b.meta[i]})
			w.Write(buf)
			size += int64(len(buf))
		}
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(l.dir, vectorsFile))
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact vectors: %w", err)
	}
	nf, err := os.OpenFile(filepath.Join(l.dir, vectorsFile), os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("reopen vectors: %w", err)
	}
	if _, err := nf.Seek(size, io.SeekStart); err != nil {
		nf.Close()
		return fmt.Errorf("reopen vectors: %w", err)
	}
	l.f.Close()
	l.f, l.size = nf, size
	return nil
}

func (l *vecLog) close() error { return l.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// vecFilter is the part of a Query a vector scan applies itself.
type vecFilter struct {
	kind          string
	roles         []string
	tags          []string
	allTags       bool
	after, before int64 // unix nanoseconds; before 0 = none; after math.MinInt64 = none
}

// allOf reports whether f lets every vector of b through: it filters
// nothing, or only by a kind that every row of b has.
func (f *vecFilter) allOf(b *vecBlock) bool {
	if f.kind == "" || b.kinds[f.kind] != len(b.ids) {
		return f.all()
	}
	return len(f.roles) == 0 && len(f.tags) == 0 && f.after == math.MinInt64 && f.before == 0
}

// all reports whether f lets every vector through.
func (f *vecFilter) all() bool {
	return f.kind == "" && len(f.roles) == 0 && len(f.tags) == 0 && f.after == math.MinInt64 && f.before == 0
}

func (f *vecFilter) match(m *vecMeta) bool {
	if f.kind != "" && m.kind != f.kind {
		return false
	}
	if len(f.roles) > 0 && !slices.Contains(f.roles, m.role) {
		return false
	}
	if m.time < f.after || (f.before != 0 && m.time >= f.before) {
		return false
	}
	if len(f.tags) > 0 {
		if f.allTags {
			for _, t := range f.tags {
				if !slices.Contains(m.tags, t) {
					return false
				}
			}
		} else {
			found := false
			for _, t := range f.tags {
				if slices.Contains(m.tags, t) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// scored is one vector hit.
type scored struct {
	score float32
	id    string
	owner string
	time  int64
}

// better orders hits by score, then id, for a deterministic ranking.
func better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.id < b.id
}

// topK is a min-heap of the k best hits seen.
type topK struct {
	k int
	h []scored
}

func (t *topK) Len() int           { return len(t.h) }
func (t *topK) Less(i, j int) bool { return better(t.h[j], t.h[i]) }
func (t *topK) Swap(i, j int)      { t.h[i], t.h[j] = t.h[j], t.h[i] }
func (t *topK) Push(x any)         { t.h = append(t.h, x.(scored)) }
func (t *topK) Pop() any           { x := t.h[len(t.h)-1]; t.h = t.h[:len(t.h)-1]; return x }

func (t *topK) offer(s scored) {
	if t.k <= 0 {
		return
	}
	if len(t.h) < t.k {
		heap.Push(t, s)
		return
	}
	if better(s, t.h[0]) {
		t.h[0] = s
		heap.Fix(t, 0)
	}
}

// sorted returns the hits best first.
func (t *topK) sorted() []scored {
	out := slices.Clone(t.h)
	slices.SortFunc(out, func(a, b scored) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// dot is the dot product of two equal-length vectors: vek32's AVX2 kernel
// where the CPU has AVX2 and FMA, its pure-Go loop elsewhere.
func dot(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return vek32.Dot(a, b)
}

// parallelScan is the work (rows × dims) above which a scan is split
// across goroutines.
const parallelScan = 1 << 21

// scan ranks every vector of blocks that passes f by dot product with the
// unit query q, keeping the best k. It returns them best first and the
// number of vectors that passed the filter. A large scan takes the
// quantized pass (scanQuant), which finds the same hits as scanFloat.
func scan(blocks []*vecBlock, q []float32, f *vecFilter, k int) ([]scored, int) {
	rows := 0
	for _, b := range blocks {
		rows += len(b.ids)
	}
	workers := 1
	if rows*len(q) > parallelScan {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	if useQuant(rows, len(q), k) {
		kern, _ := kernelFor(len(q))
		return scanQuant(blocks, q, f, k, kern, workers)
	}
	return scanFloat(blocks, q, f, k, workers)
}

// scanFloat is scan over the float32 rows, every one scored exactly.
func scanFloat(blocks []*vecBlock, q []float32, f *vecFilter, k, workers int) ([]scored, int) {
	ps := pieces(blocks)
	tops := make([]topK, workers)
	counts := make([]int, workers)
	for w := range tops {
		tops[w].k = k
	}
	parallel(workers, len(ps), func(w, p int) {
		t := &tops[w]
		pc := ps[p]
		b := pc.b
		dim := b.key.dim
		everything := f.allOf(b)
		for i := pc.lo; i < pc.hi; i++ {
			if !everything && !f.match(&b.meta[i]) {
				continue
			}
			counts[w]++
			s := vek32.Dot(q, b.data[i*dim:(i+1)*dim])
			if len(t.h) < t.k || s >= t.h[0].score {
				t.offer(scored{score: s, id: b.ids[i], owner: b.key.owner, time: b.meta[i].time})
			}
		}
	})
	all := topK{k: k}
	total := 0
	for w := range workers {
		total += counts[w]
		for _, s := range tops[w].h {
			all.offer(s)
		}
	}
	return all.sorted(), total
}

// pieceRows is the most rows one piece of a scan holds: small enough that
// a worker that finishes early takes more of them, large enough that
// taking one costs nothing beside scanning it.
const pieceRows = 4096

// piece is rows lo..hi of a block.
type piece struct {
	b      *vecBlock
	lo, hi int
}

// pieces splits blocks into pieces of at most pieceRows rows.
func pieces(blocks []*vecBlock) []piece {
	var ps []piece
	for _, b := range blocks {
		for lo := 0; lo < len(b.ids); lo += pieceRows {
			ps = append(ps, piece{b, lo, min(lo+pieceRows, len(b.ids))})
		}
	}
	return ps
}

// parallel calls work(w, i) once for every i < n from workers goroutines
// (the caller's among them), w naming the goroutine: each takes the next
// piece when it is done with one, so a goroutine the OS holds back leaves
// its share to the others instead of delaying the whole scan.
func parallel(workers, n int, work func(w, i int)) {
	var next atomic.Int64
	run := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			work(w, i)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { run(w) })
	}
	run(0)
	wg.Wait()
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

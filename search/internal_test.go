package search

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/viterin/vek"
)

func TestDotKernels(t *testing.T) {
	if !vek.Info().Acceleration {
		t.Log("no AVX2 here: only the pure-Go kernel is checked")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 7, 8, 15, 16, 33, 384, 385, 1536} {
		a, b := make([]float32, n), make([]float32, n)
		var want float64
		for i := range a {
			a[i], b[i] = r.Float32()*2-1, r.Float32()*2-1
			want += float64(a[i]) * float64(b[i])
		}
		simd := dot(a, b)
		vek.SetAcceleration(false)
		pure := dot(a, b)
		vek.SetAcceleration(true)
		tol := 1e-5 * math.Sqrt(float64(n))
		if math.Abs(float64(simd)-want) > tol || math.Abs(float64(pure)-want) > tol {
			t.Errorf("n=%d: simd %v, pure %v, want %v", n, simd, pure, want)
		}
	}
	if dot(nil, nil) != 0 {
		t.Error("dot of empty vectors")
	}
}

func TestScanParallelAgrees(t *testing.T) {
	const dim, n = 64, 40000 // above parallelScan
	r := rand.New(rand.NewPCG(3, 4))
	st := newVecStore()
	for i := range n {
		v := make([]float32, dim)
		for j := range v {
			v[j] = r.Float32() - 0.5
		}
		st.put("o", fmt.Sprintf("v%05d", i), normalize(v), vecMeta{kind: KindPassage, time: int64(i)})
	}
	q := make([]float32, dim)
	for j := range q {
		q[j] = r.Float32() - 0.5
	}
	q = normalize(q)
	b := st.blocks[vecKey{"o", dim}]
	f := &vecFilter{after: math.MinInt64}
	top, total := scan([]*vecBlock{b}, q, f, 25)
	// The reference: every score, sorted.
	var all []scored
	for i, id := range b.ids {
		var s float32
		for j := range dim {
			s += q[j] * b.data[i*dim+j]
		}
		all = append(all, scored{score: s, id: id})
	}
	slices.SortFunc(all, func(a, b scored) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	if total != n || len(top) != 25 {
		t.Fatalf("total %d, %d hits", total, len(top))
	}
	for i := range top {
		if top[i].id != all[i].id && math.Abs(float64(top[i].score-all[i].score)) > 1e-5 {
			t.Fatalf("rank %d: %v, want %v", i, top[i], all[i])
		}
	}
}

// TestVectorsNeverAheadOfCheckpoint plays a crash between writing a batch's
// vectors and committing its Bleve batch, and a torn write.
func TestVectorsNeverAheadOfCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Apply(Batch{Seq: 7, Put: []Doc{{ID: "a", Kind: KindPassage, Owner: "o", Text: "alpha", Vector: []float32{1, 0}}}}); err != nil {
		t.Fatal(err)
	}
	gen := ix.gen
	ix.Close()
	path := filepath.Join(dir, vectorsFile)
	good, _ := os.Stat(path)

	// Records of the next generation, whose Bleve batch never committed,
	// then half a record.
	rec := appendRecord(nil, gen+1, vecOp{op: opPut, owner: "o", id: "ghost", vec: []float32{0, 1}})
	rec = appendRecord(rec, gen+1, vecOp{op: opDelete, id: "a"})
	torn := appendRecord(nil, gen, vecOp{op: opPut, owner: "o", id: "torn", vec: []float32{0, 1}})
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(rec)
	f.Write(torn[:len(torn)-3])
	f.Close()

	ix, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Seq() != 7 {
		t.Fatalf("Seq = %d", ix.Seq())
	}
	res, err := ix.Search(context.Background(), Query{Owners: []string{"o"}, Vector: []float32{1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != "a" {
		t.Fatalf("after the crash: %+v, want only a", res)
	}
	if st, _ := os.Stat(path); st.Size() != good.Size() {
		t.Fatalf("vector log is %d bytes, want it cut back to %d", st.Size(), good.Size())
	}
	// The index goes on from there, and the next batch is durable.
	if err := ix.Apply(Batch{Seq: 8, Put: []Doc{{ID: "b", Kind: KindPassage, Owner: "o", Text: "beta", Vector: []float32{0, 1}}}}); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	ix, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	res, _ = ix.Search(context.Background(), Query{Owners: []string{"o"}, Vector: []float32{0, 1}})
	if len(res.Hits) != 2 || res.Hits[0].ID != "b" {
		t.Fatalf("after the next batch: %+v", res)
	}
}

// TestCompaction checks that deletes shrink the vector log and that the
// compacted log reopens to the same vectors.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []Doc
	for i := range 2000 {
		v := make([]float32, 128)
		v[i%128], v[(i*7)%128] = 1, 0.5
		docs = append(docs, Doc{ID: fmt.Sprintf("p%04d", i), Kind: KindPassage, Owner: []string{"x", "y", "z", "w"}[i%4], Text: "t", Vector: v})
	}
	if err := ix.Apply(Batch{Seq: 1, Put: docs}); err != nil {
		t.Fatal(err)
	}
	big := ix.vlog.size
	if err := ix.Apply(Batch{Seq: 2, DeleteOwner: []string{"x", "y", "z"}}); err != nil {
		t.Fatal(err)
	}
	if ix.vlog.size > big*3/10 {
		t.Fatalf("log %d bytes after dropping three quarters of %d", ix.vlog.size, big)
	}
	q := Query{Owners: []string{"x", "w"}, Vector: docs[3].Vector, Limit: 50}
	before, _ := ix.Search(context.Background(), q)
	ix.Close()
	ix, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	after, _ := ix.Search(context.Background(), q)
	if fmt.Sprint(before) != fmt.Sprint(after) || before.Total != 500 {
		t.Fatalf("before %v\nafter %v", before, after)
	}
}

// TestFiltersDoNotScore checks that the owner and kind restriction leaves
// BM25 scores as Bleve gives them for the bare match query of the same
// scoped terms, with the same statistics.
func TestFiltersDoNotScore(t *testing.T) {
	ix, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	texts := []string{"the red fox jumps", "a red red car", "blue whales sing", "red sky at night, red sky in the morning"}
	var docs []Doc
	for i, s := range texts {
		docs = append(docs, Doc{ID: fmt.Sprint(i), Kind: KindPassage, Owner: "only", Text: s})
	}
	if err := ix.Apply(Batch{Seq: 1, Put: docs}); err != nil {
		t.Fatal(err)
	}
	mq := bleve.NewMatchQuery("only/passage:red only/passage:sky")
	mq.SetField(fieldText)
	raw, err := ix.idx.SearchInContext(ix.bm25Stats(context.Background()), bleve.NewSearchRequest(mq))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(context.Background(), Query{Owners: []string{"only"}, Kind: KindPassage, Text: "red sky"})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Hits) != len(res.Hits) || int(raw.Total) != res.Total {
		t.Fatalf("raw %d hits, ours %d", len(raw.Hits), len(res.Hits))
	}
	for i := range raw.Hits {
		if raw.Hits[i].ID != res.Hits[i].ID || math.Abs(raw.Hits[i].Score-res.Hits[i].Score) > 1e-9 {
			t.Errorf("rank %d: raw %s %v, ours %s %v", i, raw.Hits[i].ID, raw.Hits[i].Score, res.Hits[i].ID, res.Hits[i].Score)
		}
	}
}

// TestBM25Statistics checks the token total through puts, replacements,
// deletes and owner deletes, and across a reopen.
func TestBM25Statistics(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		b      Batch
		tokens uint64
		docs   uint64
	}{
		{Batch{Seq: 1, Put: []Doc{{ID: "a", Kind: KindPassage, Owner: "x", Text: "red green blue"}, {ID: "b", Kind: KindPassage, Owner: "y", Text: "one two"}}}, 5, 2},
		{Batch{Seq: 2, Put: []Doc{{ID: "a", Kind: KindPassage, Owner: "x", Text: "red"}, {ID: "c", Kind: KindMessage, Owner: "x", Text: "the cats"}}}, 4, 3}, // "the" is a stop word
		{Batch{Seq: 3, Delete: []string{"b", "zzz"}}, 2, 2},
		{Batch{Seq: 4, DeleteOwner: []string{"x"}, Put: []Doc{{ID: "d", Kind: KindPassage, Owner: "x", Text: "four five six seven"}}}, 4, 1},
	}
	for i, st := range steps {
		if err := ix.Apply(st.b); err != nil {
			t.Fatal(err)
		}
		if ix.tokens != st.tokens || ix.docs != st.docs {
			t.Fatalf("step %d: %d tokens in %d docs, want %d in %d", i, ix.tokens, ix.docs, st.tokens, st.docs)
		}
	}
	ix.Close()
	ix, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.tokens != 4 || ix.docs != 1 {
		t.Fatalf("after reopen: %d tokens in %d docs", ix.tokens, ix.docs)
	}
}

// An index written in another format is refused, so that its owner
// rebuilds it rather than read fields it lacks.
func TestOpenRefusesOtherFormat(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.bleve().SetInternal(formatKey, []byte("1")); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of a format-1 index: %v, want ErrFormat", err)
	}
}

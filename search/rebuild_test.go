package search_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/engram-dev/engram/search"
)

// history is a log of batches: puts over three owners, deletes, an owner
// delete, one per "event".
func history() []search.Batch {
	var out []search.Batch
	seq := uint64(0)
	words := []string{"apple", "river", "engine", "violin", "harbor", "pepper", "planet", "copper"}
	for i := range 120 {
		seq++
		v := make([]float32, 16)
		v[i%16], v[(i*5)%16] = 1, float32(i%3)
		out = append(out, search.Batch{Seq: seq, Put: []search.Doc{{
			ID: fmt.Sprintf("p%03d", i), Kind: search.KindPassage, Owner: []string{"a", "b", "s"}[i%3],
			Text: fmt.Sprintf("%s %s %s", words[i%8], words[(i/8)%8], words[(i*3)%8]),
			Tags: []string{fmt.Sprint("t", i%4)}, Time: t0.Add(timeStep(i)), Vector: v,
		}}})
		if i%10 == 9 {
			seq++
			out = append(out, search.Batch{Seq: seq, Delete: []string{fmt.Sprintf("p%03d", i-4)}})
		}
	}
	seq++
	out = append(out, search.Batch{Seq: seq, DeleteOwner: []string{"b"}})
	return out
}

func TestRebuildGivesIdenticalResults(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "index")
	live := open(t, dir)
	// The live index got its batches in groups, as a projection does.
	var group search.Batch
	for i, b := range history() {
		group.Merge(b)
		if i%25 == 24 {
			apply(t, live, group)
			group = search.Batch{}
		}
	}
	apply(t, live, group)
	queries := []search.Query{
		{Owners: []string{"a", "s"}, Text: "apple river", Limit: 30},
		{Owners: []string{"a", "b", "s"}, Text: "engine", Tags: []string{"t1", "t2"}, Limit: 30},
		{Owners: []string{"a", "s"}, Vector: []float32{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Limit: 30},
		{Owners: []string{"a", "s"}, Text: "violin copper", Vector: []float32{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Limit: 30},
		{Owners: []string{"a", "s"}, After: t0.Add(timeStep(30)), Limit: 30},
	}
	var want []search.Result
	for _, q := range queries {
		want = append(want, find(t, live, q))
	}
	wantSeq := live.Seq()

	// The rebuild replays the log one event at a time, in small Bleve batches.
	fresh, err := search.OpenFresh(dir, search.Options{MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Seq() != 0 {
		t.Fatalf("fresh index at %d", fresh.Seq())
	}
	for _, b := range history() {
		apply(t, fresh, b)
	}
	// Searches on the live index go on meanwhile.
	find(t, live, queries[0])
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.SwapInto(dir); err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if fresh.Dir() != dir || fresh.Seq() != wantSeq {
		t.Fatalf("after swap: dir %s seq %d, want %s %d", fresh.Dir(), fresh.Seq(), dir, wantSeq)
	}
	if _, err := os.Stat(dir + ".new"); !os.IsNotExist(err) {
		t.Fatalf("%s.new left behind: %v", dir, err)
	}
	if _, err := os.Stat(dir + ".old"); !os.IsNotExist(err) {
		t.Fatalf("%s.old left behind: %v", dir, err)
	}
	check := func(ix *search.Index) {
		t.Helper()
		for i, q := range queries {
			got := find(t, ix, q)
			if !sameResult(got, want[i]) {
				t.Errorf("query %d:\nrebuilt %v\nlive    %v", i, got, want[i])
			}
		}
	}
	check(fresh)
	fresh.Close()
	check(open(t, dir))
}

// sameResult compares ids, owners, times and totals exactly, and scores to
// float precision.
func sameResult(a, b search.Result) bool {
	if a.Total != b.Total || len(a.Hits) != len(b.Hits) {
		return false
	}
	for i := range a.Hits {
		x, y := a.Hits[i], b.Hits[i]
		if x.ID != y.ID || x.Owner != y.Owner || !x.Time.Equal(y.Time) || math.Abs(x.Score-y.Score) > 1e-9*math.Max(1, math.Abs(y.Score)) {
			return false
		}
	}
	return true
}

func TestSwapRecovery(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "index")
	ix := open(t, dir)
	apply(t, ix, search.Batch{Seq: 3, Put: []search.Doc{{ID: "x", Kind: search.KindPassage, Owner: "o", Text: "kept"}}})
	ix.Close()
	// A crash after the first rename of a swap leaves only dir.old.
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	ix = open(t, dir)
	if ix.Seq() != 3 || find(t, ix, search.Query{Owners: []string{"o"}, Text: "kept"}).Total != 1 {
		t.Fatal("the old index was not restored")
	}
	if err := ix.SwapInto(dir); err == nil {
		t.Fatal("swapped an index into its own directory")
	}
}

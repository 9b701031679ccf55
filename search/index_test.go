package search_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/search"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *search.Index {
	t.Helper()
	ix, err := search.Open(dir, search.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func apply(t *testing.T, ix *search.Index, b search.Batch) {
	t.Helper()
	if err := ix.Apply(b); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func find(t *testing.T, ix *search.Index, q search.Query) search.Result {
	t.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return res
}

func ids(res search.Result) []string {
	out := make([]string, 0, len(res.Hits))
	for _, h := range res.Hits {
		out = append(out, h.ID)
	}
	return out
}

// axis returns a unit vector along dimension i of dims, tilted by eps
// towards dimension j, so similarities are easy to reason about.
func axis(dims, i int, j int, eps float32) []float32 {
	v := make([]float32, dims)
	v[i] = 1
	if eps != 0 {
		v[j] += eps
	}
	return v
}

func TestBM25AndHits(t *testing.T) {
	ix := open(t, t.TempDir())
	apply(t, ix, search.Batch{Seq: 5, Put: []search.Doc{
		{ID: "p1", Kind: search.KindPassage, Owner: "agent-a", Text: "The cat sat on the mat near the old wooden door of the quiet house by the slow river.", Time: t0},
		{ID: "p2", Kind: search.KindPassage, Owner: "agent-a", Text: "Cats purr; the cat sleeps.", Time: t0.Add(time.Hour)},
		{ID: "p3", Kind: search.KindPassage, Owner: "agent-a", Text: "Interest rates rose again this quarter.", Time: t0.Add(2 * time.Hour)},
		{ID: "p4", Kind: search.KindPassage, Owner: "agent-b", Text: "My cat is called Tom.", Time: t0},
	}})
	if ix.Seq() != 5 {
		t.Fatalf("Seq = %d, want 5", ix.Seq())
	}
	res := find(t, ix, search.Query{Owners: []string{"agent-a"}, Text: "cat"})
	if got := ids(res); !slices.Equal(got, []string{"p2", "p1"}) || res.Total != 2 {
		t.Fatalf("cat: got %v total %d, want [p2 p1] total 2 (stemmed, more occurrences first, other owner excluded)", got, res.Total)
	}
	h := res.Hits[0]
	if h.Owner != "agent-a" || !h.Time.Equal(t0.Add(time.Hour)) || h.Score <= res.Hits[1].Score {
		t.Fatalf("hit = %+v", h)
	}
	// Two owners together see both.
	res = find(t, ix, search.Query{Owners: []string{"agent-a", "agent-b"}, Text: "cats"})
	if res.Total != 3 {
		t.Fatalf("two owners: total %d, want 3", res.Total)
	}
	if n, err := ix.Count([]string{"agent-a"}, search.KindPassage); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3", n, err)
	}
	if n, err := ix.Count([]string{"agent-a"}, search.KindMessage); err != nil || n != 0 {
		t.Fatalf("Count messages = %d, %v; want 0", n, err)
	}
}

// fixture is 30 passages and 10 messages over two agents and a source,
// with tags, roles, times an hour apart and 8-dim vectors.
func fixture(t *testing.T, ix *search.Index, seq uint64) []search.Doc {
	t.Helper()
	var docs []search.Doc
	for i := range 40 {
		d := search.Doc{
			ID:    fmt.Sprintf("d%02d", i),
			Kind:  search.KindPassage,
			Owner: []string{"agent-a", "agent-b", "source-s"}[i%3],
			Text:  fmt.Sprintf("note %d about gardening and tomatoes", i),
			Time:  t0.Add(time.Duration(i) * time.Hour),
			// Similarity to axis 0 falls with i.
			Vector: axis(8, 0, 1+i%7, float32(i)/10),
		}
		if i%2 == 0 {
			d.Tags = append(d.Tags, "even")
		}
		if i%5 == 0 {
			d.Tags = append(d.Tags, "five")
		}
		if i >= 30 {
			d.Kind, d.Role, d.Vector = search.KindMessage, []string{"user", "assistant"}[i%2], nil
		}
		docs = append(docs, d)
	}
	apply(t, ix, search.Batch{Put: docs, Seq: seq})
	return docs
}

func TestFilters(t *testing.T) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	early := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	ix := open(t, t.TempDir())
	docs := fixture(t, ix, 1)
	all := []string{"agent-a", "agent-b", "source-s"}
	// want lists the ids matching pred, for the kinds of query that see
	// every document (text) or only those with vectors.
	want := func(pred func(search.Doc) bool, vec bool) []string {
		var out []string
		for _, d := range docs {
			if pred(d) && (!vec || d.Vector != nil) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		q    search.Query
		pred func(search.Doc) bool
	}{
		{"owner", search.Query{Owners: []string{"agent-b"}}, func(d search.Doc) bool { return d.Owner == "agent-b" }},
		{"owners", search.Query{Owners: []string{"agent-b", "source-s"}}, func(d search.Doc) bool { return d.Owner != "agent-a" }},
		{"kind", search.Query{Owners: all, Kind: search.KindMessage}, func(d search.Doc) bool { return d.Kind == search.KindMessage }},
		{"tags any", search.Query{Owners: all, Tags: []string{"even", "five"}}, func(d search.Doc) bool { return len(d.Tags) > 0 }},
		{"tags all", search.Query{Owners: all, Tags: []string{"even", "five"}, TagMatch: search.TagsAll}, func(d search.Doc) bool { return len(d.Tags) == 2 }},
		{"roles", search.Query{Owners: all, Roles: []string{"user"}}, func(d search.Doc) bool { return d.Role == "user" }},
		{"after", search.Query{Owners: all, After: t0.Add(35 * time.Hour)}, func(d search.Doc) bool { return !d.Time.Before(t0.Add(35 * time.Hour)) }},
		{"before", search.Query{Owners: all, Before: t0.Add(3 * time.Hour)}, func(d search.Doc) bool { return d.Time.Before(t0.Add(3 * time.Hour)) }},
		{"range and owner", search.Query{Owners: []string{"agent-a"}, After: t0.Add(3 * time.Hour), Before: t0.Add(12 * time.Hour)}, func(d search.Doc) bool {
			return d.Owner == "agent-a" && !d.Time.Before(t0.Add(3*time.Hour)) && d.Time.Before(t0.Add(12*time.Hour))
		}},
		// Bounds past what Bleve's dates (int64 nanoseconds, 1677..2262) hold are
		// no bound, or exclude everything; never an error.
		{"before year 9999", search.Query{Owners: all, Before: far}, func(search.Doc) bool { return true }},
		{"after year 1000", search.Query{Owners: all, After: early}, func(search.Doc) bool { return true }},
		{"year 1000 to 9999", search.Query{Owners: all, After: early, Before: far}, func(search.Doc) bool { return true }},
		{"after and before year 9999", search.Query{Owners: all, After: t0.Add(35 * time.Hour), Before: far}, func(d search.Doc) bool { return !d.Time.Before(t0.Add(35 * time.Hour)) }},
		{"after year 9999", search.Query{Owners: all, After: far}, func(search.Doc) bool { return false }},
		{"after 9999, before 9999-12-31", search.Query{Owners: all, After: far, Before: far.AddDate(0, 11, 0)}, func(search.Doc) bool { return false }},
		{"before year 1000", search.Query{Owners: all, Before: early}, func(search.Doc) bool { return false }},
		{"year 1000 to 1001", search.Query{Owners: all, After: early, Before: early.AddDate(1, 0, 0)}, func(search.Doc) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, mode := range []string{"list", "text", "vector", "hybrid"} {
				q := c.q
				q.Limit = search.MaxLimit
				vec := false
				switch mode {
				case "text":
					q.Text = "tomatoes"
				case "vector":
					q.Vector, vec = axis(8, 0, 0, 0), true
				case "hybrid":
					q.Text, q.Vector = "tomatoes", axis(8, 0, 0, 0)
				}
				w := want(c.pred, vec)
				res := find(t, ix, q)
				got := ids(res)
				slices.Sort(got)
				if !slices.Equal(got, w) || res.Total != len(w) {
					t.Errorf("%s: got %v (total %d), want %v", mode, got, res.Total, w)
				}
			}
		})
	}
}

func TestOrdering(t *testing.T) {
	ix := open(t, t.TempDir())
	fixture(t, ix, 1)
	// A listing is newest first.
	res := find(t, ix, search.Query{Owners: []string{"agent-a"}, Kind: search.KindPassage, Limit: 3})
	if got := ids(res); !slices.Equal(got, []string{"d27", "d24", "d21"}) || res.Total != 10 {
		t.Fatalf("listing: %v total %d", got, res.Total)
	}
	if !res.Hits[0].Time.Equal(t0.Add(27*time.Hour)) || res.Hits[0].Owner != "agent-a" {
		t.Fatalf("listing hit: %+v", res.Hits[0])
	}
	// A vector query ranks by cosine: the tilt grows with i.
	res = find(t, ix, search.Query{Owners: []string{"agent-a"}, Vector: axis(8, 0, 0, 0), Limit: 3})
	if got := ids(res); !slices.Equal(got, []string{"d00", "d03", "d06"}) {
		t.Fatalf("vector: %v", got)
	}
	if s := res.Hits[0].Score; math.Abs(s-1) > 1e-6 {
		t.Fatalf("cosine of identical directions = %v, want 1", s)
	}
	if !res.Hits[1].Time.Equal(t0.Add(3*time.Hour)) || res.Hits[1].Owner != "agent-a" {
		t.Fatalf("vector hit: %+v", res.Hits[1])
	}
	// Unnormalised query vectors rank the same.
	res2 := find(t, ix, search.Query{Owners: []string{"agent-a"}, Vector: []float32{7, 0, 0, 0, 0, 0, 0, 0}, Limit: 3})
	if !slices.Equal(ids(res), ids(res2)) {
		t.Fatalf("scaled query: %v vs %v", ids(res2), ids(res))
	}
	// A query vector of another dimension has no candidates.
	res = find(t, ix, search.Query{Owners: []string{"agent-a"}, Vector: []float32{1, 2, 3}})
	if res.Total != 0 || len(res.Hits) != 0 {
		t.Fatalf("3-dim query: %+v", res)
	}
}

func TestPagination(t *testing.T) {
	ix := open(t, t.TempDir())
	fixture(t, ix, 1)
	owners := []string{"agent-a", "agent-b", "source-s"}
	for _, mode := range []string{"list", "text", "vector", "hybrid"} {
		q := search.Query{Owners: owners}
		switch mode {
		case "text":
			q.Text = "note gardening 7"
		case "vector":
			q.Vector = axis(8, 0, 3, 0.5)
		case "hybrid":
			q.Text, q.Vector = "note gardening 7", axis(8, 0, 3, 0.5)
		}
		whole := q
		whole.Limit = 100
		full := find(t, ix, whole)
		var paged []string
		for off := 0; ; off += 7 {
			p := q
			p.Offset, p.Limit = off, 7
			res := find(t, ix, p)
			if res.Total != full.Total {
				t.Fatalf("%s: page at %d has total %d, whole %d", mode, off, res.Total, full.Total)
			}
			if len(res.Hits) == 0 {
				break
			}
			paged = append(paged, ids(res)...)
		}
		if !slices.Equal(paged, ids(full)) || len(paged) != full.Total {
			t.Fatalf("%s: pages give %v, whole %v (total %d)", mode, paged, ids(full), full.Total)
		}
	}
}

func TestHybridTotal(t *testing.T) {
	ix := open(t, t.TempDir())
	apply(t, ix, search.Batch{Seq: 1, Put: []search.Doc{
		{ID: "a", Kind: search.KindPassage, Owner: "o", Text: "alpha", Vector: axis(4, 0, 0, 0)},
		{ID: "b", Kind: search.KindPassage, Owner: "o", Text: "beta", Vector: axis(4, 1, 0, 0)},
		{ID: "c", Kind: search.KindPassage, Owner: "o", Text: "alpha gamma"},
		{ID: "d", Kind: search.KindPassage, Owner: "o", Text: "delta", Vector: []float32{1, 2, 3}},
	}})
	// Candidates: a, b (vectors of 4 dims) and c (a text match without
	// one); d matches neither. b (second by vector) and c (second by text)
	// tie, and the tie goes by id.
	res := find(t, ix, search.Query{Owners: []string{"o"}, Text: "alpha", Vector: axis(4, 0, 0, 0)})
	if got := ids(res); res.Total != 3 || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("hybrid: %v total %d", got, res.Total)
	}
	if want := 2.0 / 61; math.Abs(res.Hits[0].Score-want) > 1e-12 {
		t.Fatalf("a is first in both rankings: score %v, want %v", res.Hits[0].Score, want)
	}
}

func TestSharedSource(t *testing.T) {
	ix := open(t, t.TempDir())
	apply(t, ix, search.Batch{Seq: 1, Put: []search.Doc{
		{ID: "s1", Kind: search.KindPassage, Owner: "source-x", Text: "The launch code is in the blue binder.", Vector: axis(4, 0, 0, 0)},
		{ID: "a1", Kind: search.KindPassage, Owner: "agent-a", Text: "Agent A keeps a binder of recipes.", Vector: axis(4, 0, 1, 0.2)},
		{ID: "b1", Kind: search.KindPassage, Owner: "agent-b", Text: "Agent B lost the binder.", Vector: axis(4, 0, 2, 0.2)},
	}})
	for _, agent := range []string{"agent-a", "agent-b"} {
		for _, q := range []search.Query{
			{Owners: []string{agent, "source-x"}, Text: "binder"},
			{Owners: []string{agent, "source-x"}, Vector: axis(4, 0, 0, 0)},
			{Owners: []string{agent, "source-x"}, Text: "binder", Vector: axis(4, 0, 0, 0)},
		} {
			res := find(t, ix, q)
			got := ids(res)
			slices.Sort(got)
			want := []string{agent[len(agent)-1:] + "1", "s1"}
			if !slices.Equal(got, want) {
				t.Errorf("%s %+v: got %v, want %v", agent, q, got, want)
			}
			for _, h := range res.Hits {
				if (h.ID == "s1") != (h.Owner == "source-x") {
					t.Errorf("hit %+v has the wrong owner", h)
				}
			}
		}
	}
}

func TestDeletes(t *testing.T) {
	dir := t.TempDir()
	ix := open(t, dir)
	fixture(t, ix, 1)
	all := []string{"agent-a", "agent-b", "source-s"}
	apply(t, ix, search.Batch{Seq: 2, Delete: []string{"d00", "d01", "d30", "nope"}})
	apply(t, ix, search.Batch{Seq: 3, DeleteOwner: []string{"agent-b"}})
	check := func(ix *search.Index) {
		t.Helper()
		for _, q := range []search.Query{
			{Owners: all, Limit: 100},
			{Owners: all, Text: "tomatoes", Limit: 100},
			{Owners: all, Vector: axis(8, 0, 0, 0), Limit: 100},
			{Owners: all, Text: "tomatoes", Vector: axis(8, 0, 0, 0), Limit: 100},
		} {
			res := find(t, ix, q)
			for _, h := range res.Hits {
				if h.ID == "d00" || h.ID == "d01" || h.ID == "d30" || h.Owner == "agent-b" {
					t.Fatalf("%+v: deleted document %+v found", q, h)
				}
			}
			if len(res.Hits) != res.Total || res.Total == 0 {
				t.Fatalf("%+v: %d hits, total %d", q, len(res.Hits), res.Total)
			}
		}
		if n, _ := ix.Count([]string{"agent-b"}, ""); n != 0 {
			t.Fatalf("agent-b still has %d documents", n)
		}
		if n, _ := ix.Count([]string{"agent-a"}, ""); n != 12 {
			t.Fatalf("agent-a has %d documents, want 14-2", n)
		}
	}
	check(ix)
	ix.Close()
	ix = open(t, dir)
	if ix.Seq() != 3 {
		t.Fatalf("Seq after reopen = %d", ix.Seq())
	}
	check(ix)
	// A put after an owner delete, in one batch, survives it.
	apply(t, ix, search.Batch{Seq: 4, DeleteOwner: []string{"agent-a"}, Put: []search.Doc{
		{ID: "new", Kind: search.KindPassage, Owner: "agent-a", Text: "fresh tomatoes", Vector: axis(8, 0, 0, 0)},
	}})
	res := find(t, ix, search.Query{Owners: []string{"agent-a"}, Vector: axis(8, 0, 0, 0)})
	if got := ids(res); !slices.Equal(got, []string{"new"}) || res.Total != 1 {
		t.Fatalf("after DeleteOwner+Put: %v total %d", got, res.Total)
	}
	// A put without a vector drops the document's old vector.
	apply(t, ix, search.Batch{Seq: 5, Put: []search.Doc{{ID: "new", Kind: search.KindPassage, Owner: "agent-a", Text: "fresh tomatoes"}}})
	if res := find(t, ix, search.Query{Owners: []string{"agent-a"}, Vector: axis(8, 0, 0, 0)}); res.Total != 0 {
		t.Fatalf("vector kept after a put without one: %+v", res)
	}
}

// TestHybridTotalWhenAllHaveVectors covers the total without a count query:
// when every document of the owner and kind has a vector of the query's
// dimension, and the moments it stops being so (a document without one, a
// filter the counts cannot see).
func TestHybridTotalWhenAllHaveVectors(t *testing.T) {
	ix := open(t, t.TempDir())
	apply(t, ix, search.Batch{Seq: 1, Put: []search.Doc{
		{ID: "a", Kind: search.KindPassage, Owner: "o", Text: "alpha", Vector: axis(4, 0, 0, 0)},
		{ID: "b", Kind: search.KindPassage, Owner: "o", Text: "beta", Vector: axis(4, 1, 0, 0)},
		{ID: "c", Kind: search.KindPassage, Owner: "o", Text: "alpha gamma", Vector: axis(4, 2, 0, 0), Tags: []string{"t"}},
		{ID: "m", Kind: search.KindMessage, Owner: "o", Text: "alpha", Role: "user"},
	}})
	q := search.Query{Owners: []string{"o"}, Kind: search.KindPassage, Text: "alpha", Vector: axis(4, 0, 0, 0)}
	if res := find(t, ix, q); res.Total != 3 {
		t.Fatalf("every passage has a vector: total %d, want 3", res.Total)
	}
	// Both kinds: the message matches the text and has no vector.
	both := q
	both.Kind = ""
	if res := find(t, ix, both); res.Total != 4 {
		t.Fatalf("both kinds: total %d, want 4", res.Total)
	}
	// A passage without a vector that matches the text counts; one that
	// does not match it does not.
	apply(t, ix, search.Batch{Seq: 2, Put: []search.Doc{
		{ID: "d", Kind: search.KindPassage, Owner: "o", Text: "alpha delta"},
		{ID: "e", Kind: search.KindPassage, Owner: "o", Text: "epsilon", Vector: []float32{1, 2, 3}},
	}})
	if res := find(t, ix, q); res.Total != 4 {
		t.Fatalf("with a passage without a vector: total %d, want 4", res.Total)
	}
	// Deleted, they leave every passage with a vector again.
	apply(t, ix, search.Batch{Seq: 3, Delete: []string{"d", "e"}})
	if res := find(t, ix, q); res.Total != 3 {
		t.Fatalf("after the deletes: total %d, want 3", res.Total)
	}
	// A tag filter: candidates and text matches are both filtered.
	tagged := q
	tagged.Tags = []string{"t"}
	if res := find(t, ix, tagged); res.Total != 1 || len(res.Hits) != 1 || res.Hits[0].ID != "c" {
		t.Fatalf("tagged: %v total %d, want [c] 1", ids(res), res.Total)
	}
}

func TestReopenKeepsCheckpointAndVectors(t *testing.T) {
	dir := t.TempDir()
	ix := open(t, dir)
	fixture(t, ix, 41)
	queries := []search.Query{
		{Owners: []string{"agent-a", "source-s"}, Vector: axis(8, 0, 2, 0.3), Limit: 20},
		{Owners: []string{"agent-a", "source-s"}, Text: "gardening 12", Vector: axis(8, 0, 2, 0.3), Limit: 20},
		{Owners: []string{"agent-a", "agent-b"}, Text: "note 3", Limit: 20},
	}
	var before []search.Result
	for _, q := range queries {
		before = append(before, find(t, ix, q))
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := ix.Search(context.Background(), queries[0]); err == nil {
		t.Fatal("search on a closed index succeeded")
	}
	if err := ix.Apply(search.Batch{Seq: 50}); err == nil {
		t.Fatal("apply on a closed index succeeded")
	}
	if _, err := ix.Count([]string{"agent-a"}, ""); err == nil {
		t.Fatal("count on a closed index succeeded")
	}
	ix = open(t, dir)
	if ix.Seq() != 41 {
		t.Fatalf("Seq = %d, want 41", ix.Seq())
	}
	for i, q := range queries {
		after := find(t, ix, q)
		if fmt.Sprint(after) != fmt.Sprint(before[i]) {
			t.Errorf("query %d after reopen:\n%v\nbefore:\n%v", i, after, before[i])
		}
	}
}

func TestApplyRefusesBadInput(t *testing.T) {
	ix := open(t, t.TempDir())
	apply(t, ix, search.Batch{Seq: 10})
	for _, b := range []search.Batch{
		{Seq: 9},
		{Seq: 11, Put: []search.Doc{{Kind: search.KindPassage, Owner: "o"}}},
		{Seq: 11, Put: []search.Doc{{ID: "x", Kind: "blob", Owner: "o"}}},
		{Seq: 11, Put: []search.Doc{{ID: "x", Kind: search.KindPassage}}},
	} {
		if err := ix.Apply(b); err == nil {
			t.Errorf("Apply(%+v) succeeded", b)
		}
	}
	if ix.Seq() != 10 {
		t.Fatalf("Seq moved to %d", ix.Seq())
	}
	for _, q := range []search.Query{
		{},
		{Owners: []string{""}},
		{Owners: []string{"o"}, Kind: "blob"},
		{Owners: []string{"o"}, TagMatch: "some"},
		{Owners: []string{"o"}, Offset: -1},
		{Owners: []string{"o"}, Limit: search.MaxLimit + 1},
		{Owners: []string{"o"}, After: t0, Before: t0},
	} {
		if _, err := ix.Search(context.Background(), q); err == nil {
			t.Errorf("Search(%+v) succeeded", q)
		}
	}
	// Vectors that cannot rank are ignored, not errors.
	apply(t, ix, search.Batch{Seq: 11, Put: []search.Doc{
		{ID: "z", Kind: search.KindPassage, Owner: "o", Text: "zero", Vector: []float32{0, 0}},
		{ID: "n", Kind: search.KindPassage, Owner: "o", Text: "nan", Vector: []float32{float32(math.NaN()), 1}},
	}})
	if res := find(t, ix, search.Query{Owners: []string{"o"}, Vector: []float32{1, 1}}); res.Total != 0 {
		t.Fatalf("unrankable vectors were stored: %+v", res)
	}
	if res := find(t, ix, search.Query{Owners: []string{"o"}, Vector: []float32{0, 0}}); res.Total != 2 {
		t.Fatalf("a zero query vector should list: %+v", res)
	}
}

func TestConcurrentSearchAndApply(t *testing.T) {
	ix := open(t, t.TempDir())
	fixture(t, ix, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				q := search.Query{Owners: []string{"agent-a"}, Text: "tomatoes", Vector: axis(8, 0, w+1, float32(i)/30)}
				if _, err := ix.Search(context.Background(), q); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 20 {
		id := fmt.Sprintf("c%d", i)
		if err := ix.Apply(search.Batch{Seq: uint64(2 + i), Put: []search.Doc{{ID: id, Kind: search.KindPassage, Owner: "agent-a", Text: "more tomatoes", Vector: axis(8, 1, 0, 0)}}}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := ix.Apply(search.Batch{Seq: uint64(2 + i), Delete: []string{id}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestBatchMerge(t *testing.T) {
	steps := []search.Batch{
		{Seq: 1, Put: []search.Doc{{ID: "a", Owner: "o", Text: "one"}, {ID: "b", Owner: "o", Text: "two"}, {ID: "c", Owner: "p", Text: "three"}}},
		{Seq: 2, Delete: []string{"a"}},
		{Seq: 3, Put: []search.Doc{{ID: "a", Owner: "o", Text: "one repeated"}}},
		{Seq: 4, DeleteOwner: []string{"o"}, Put: []search.Doc{{ID: "d", Owner: "o", Text: "four"}}},
		{Seq: 5, Put: []search.Doc{{ID: "c", Owner: "p", Text: "three repeated"}}},
	}
	for i := range steps {
		for j := range steps[i].Put {
			steps[i].Put[j].Kind = search.KindPassage
		}
	}
	one := open(t, t.TempDir())
	merged := open(t, t.TempDir())
	var m search.Batch
	for _, b := range steps {
		apply(t, one, b)
		m.Merge(b)
	}
	apply(t, merged, m)
	q := search.Query{Owners: []string{"o", "p"}, Limit: 10}
	a, b := find(t, one, q), find(t, merged, q)
	if !slices.Equal(ids(a), ids(b)) || merged.Seq() != 5 {
		t.Fatalf("one by one %v, merged %v (seq %d)", ids(a), ids(b), merged.Seq())
	}
	got := ids(a)
	slices.Sort(got)
	if !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("got %v, want [c d]", got)
	}
	if res := find(t, merged, search.Query{Owners: []string{"p"}, Text: "repeated"}); res.Total != 1 {
		t.Fatalf("the later put of c lost: %+v", res)
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	start := time.Now()
	if ix, err := search.Open(dir, search.Options{OpenTimeout: 100 * time.Millisecond}); err == nil {
		ix.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %v", d)
	}
}

var _ = filepath.Join
var _ = os.Remove
var _ = strings.Contains

func timeStep(i int) time.Duration { return time.Duration(i) * 90 * time.Minute }

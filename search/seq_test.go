package search_test

import (
	"context"
	"testing"
	"time"

	"github.com/engram-dev/engram/search"
)

// Every kind of query returns the log sequence, text and tags of each hit, so callers can
// read the body from the log without a lookup table.
func TestHitsCarrySeq(t *testing.T) {
	ix := open(t, t.TempDir())
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := ix.Apply(search.Batch{Seq: 9, Put: []search.Doc{
		{ID: "p1", Kind: search.KindPassage, Owner: "agent-1", Text: "red kite", Tags: []string{"birds", "red"}, Time: at, Seq: 7, Vector: []float32{1, 0}},
		{ID: "p2", Kind: search.KindPassage, Owner: "agent-1", Text: "blue kite", Time: at, Seq: 8},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"p1": 7, "p2": 8}
	for name, q := range map[string]search.Query{
		"bm25":   {Text: "kite"},
		"vector": {Vector: []float32{1, 0}},
		"hybrid": {Text: "kite", Vector: []float32{1, 0}},
		"list":   {},
	} {
		q.Owners = []string{"agent-1"}
		res, err := ix.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) == 0 {
			t.Fatalf("%s: no hits", name)
		}
		for _, h := range res.Hits {
			if h.Seq != want[h.ID] {
				t.Errorf("%s: hit %s has seq %d, want %d", name, h.ID, h.Seq, want[h.ID])
			}
			if h.ID == "p1" && (h.Text != "red kite" || len(h.Tags) != 2 || !h.Time.Equal(at)) {
				t.Errorf("%s: hit p1 = %+v, want its text, tags and time", name, h)
			}
		}
	}
}

func TestRawMatch(t *testing.T) {
	ix := open(t, t.TempDir())
	err := ix.Apply(search.Batch{Seq: 1, Put: []search.Doc{
		{ID: "p1", Kind: search.KindPassage, Owner: "agent-1", Text: "red kites nest", Time: time.Now()},
		{ID: "p2", Kind: search.KindPassage, Owner: "agent-2", Text: "red kites fly", Time: time.Now()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ix.RawMatch(context.Background(), "agent-1", search.KindPassage, "kite"); err != nil || n != 1 {
		t.Fatalf("RawMatch = %d, %v; want the one passage of agent-1", n, err)
	}
}

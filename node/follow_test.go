package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/search"
)

// TestReplayDecodesOnce: a restart that replays the whole log into both
// the read models and the search index (no snapshot, no index) reads and
// decodes each message of the log once, not once per consumer.
func TestReplayDecodesOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways, cfg.SnapshotEvery = false, -1
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := "replayed"
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	agg := events.Aggregate{Kind: events.KindAgent, ID: a.ID}
	now := time.Now().UTC()
	for i := range 1500 {
		b := events.Batch{Command: fmt.Sprint("cmd-", i), Events: []events.Envelope{{Aggregate: agg, Time: now,
			Event: &events.MessageAppended{ID: events.MessageID(events.NewID(events.PrefixMessage, now)), Role: "user", Text: fmt.Sprint("message number ", i)}}}}
		if i%10 == 0 { // a packed message of several events now and then
			for j := range 3 {
				b.Events = append(b.Events, events.Envelope{Aggregate: agg, Time: now, Event: &events.PassageInserted{
					ID: events.PassageID(events.NewID(events.PrefixPassage, now)), AgentID: events.AgentID(a.ID), Text: fmt.Sprintf("passage %d of batch %d", j, i)}})
			}
		}
		if _, err := n.Log.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	n.Close(ctx)
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}

	cfg.NoRestore = true
	n, err = node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	st, err := n.Log.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Service.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Projection.Applied() != st.LastSeq || n.IndexedSeq() != st.LastSeq {
		t.Fatalf("read models at %d, index at %d, log at %d", n.Projection.Applied(), n.IndexedSeq(), st.LastSeq)
	}
	if got := node.Decoded(n); got != st.Messages {
		t.Fatalf("decoded %d messages replaying a log of %d into the read models and the index", got, st.Messages)
	}
	var hits int
	n.WithIndex(func(ix *search.Index) {
		res, err := ix.Search(ctx, search.Query{Owners: []string{a.ID}, Kind: search.KindPassage, Text: "batch 1490"})
		if err != nil {
			t.Fatal(err)
		}
		hits = len(res.Hits)
	})
	if hits == 0 {
		t.Fatal("the replayed index finds no passage")
	}
	t.Logf("%d messages, decoded %d, ready in %v", st.Messages, node.Decoded(n), n.Ready)
}

// TestSearchHurriesLingeringIndex: with the index's queue lingering far
// longer than the test runs, an inserted passage is not in the index until
// a search waits for it, and then the search finds it at once (a search
// that had to wait out its bound would answer from the index without it).
func TestSearchHurriesLingeringIndex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := node.DefaultConfig(t.TempDir())
	cfg.SyncAlways, cfg.IndexLinger = false, time.Hour
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	name := "lingering"
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "the heron nests by the weir"}); err != nil {
		t.Fatal(err)
	}
	if got, applied := n.IndexedSeq(), n.Projection.Applied(); got >= applied {
		t.Fatalf("the index holds %d of the read models' %d before any search: it did not linger", got, applied)
	}
	start := time.Now()
	res, err := n.Service.SearchArchival(ctx, a.ID, api.ArchivalQuery{Query: "heron"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || res.Results[0].Content != "the heron nests by the weir" {
		t.Fatalf("search after insert found %+v (after %v)", res.Results, time.Since(start))
	}
}

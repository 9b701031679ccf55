package service_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

func searchIDs(t *testing.T, svc *service.Service, agentID, query string) []string {
	t.Helper()
	res, err := svc.SearchArchival(context.Background(), agentID, service.ArchivalQuery{Query: query, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(res.Results))
	for i, r := range res.Results {
		ids[i] = r.ID
	}
	return ids
}

func plainAgent(t *testing.T, svc *service.Service, name string) api.AgentState {
	t.Helper()
	a, err := svc.CreateAgent(context.Background(), api.CreateAgent{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// One source attached to two agents serves both; detaching it from one
// hides it from that one only. Attaching copies nothing.
func TestSourceAttachedToTwoAgents(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	svc := n.Service
	src := newSource(t, svc, "lore")
	res, err := svc.LoadFiles(ctx, src.ID, []service.Upload{{Name: "lore.md", Data: []byte("# Lore\n\nThe lighthouse keeper feeds the gulls every morning.\n")}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, svc, res.Job.ID); j.Status != api.JobCompleted {
		t.Fatalf("job %s %s", j.Status, j.Metadata)
	}
	a, b := plainAgent(t, svc, "a"), plainAgent(t, svc, "b")
	own, err := svc.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "Agent a alone remembers the lighthouse colour: red."})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := svc.AttachSource(ctx, id, src.ID); err != nil {
			t.Fatal(err)
		}
	}
	srcPassages, _ := svc.ListSourcePassages(ctx, src.ID, api.Page{})
	if len(srcPassages) != 1 {
		t.Fatalf("source has %d passages", len(srcPassages))
	}
	lore := srcPassages[0].ID

	if got := searchIDs(t, svc, a.ID, "lighthouse"); !slices.Contains(got, lore) || !slices.Contains(got, own[0].ID) || len(got) != 2 {
		t.Fatalf("agent a sees %v", got)
	}
	if got := searchIDs(t, svc, b.ID, "lighthouse"); !reflect.DeepEqual(got, []string{lore}) {
		t.Fatalf("agent b sees %v", got)
	}
	if s, _ := svc.ArchivalSummary(ctx, b.ID); s.Size != 1 {
		t.Fatalf("agent b's archival size %d", s.Size)
	}
	if ps, _ := svc.ListArchival(ctx, b.ID, api.Page{}); len(ps) != 0 {
		t.Fatalf("attaching copied %d passages into agent b", len(ps))
	}

	if _, err := svc.DetachSource(ctx, a.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, svc, a.ID, "lighthouse"); !reflect.DeepEqual(got, []string{own[0].ID}) {
		t.Fatalf("after detach agent a sees %v", got)
	}
	if got := searchIDs(t, svc, b.ID, "lighthouse"); !reflect.DeepEqual(got, []string{lore}) {
		t.Fatalf("after a's detach agent b sees %v", got)
	}
}

// The index is derived data: deleted, it is rebuilt from the log at the
// next start and answers exactly as before.
func TestIndexRebuiltFromTheLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := startAt(t, dir)
	a := plainAgent(t, n.Service, "keeper")
	texts := []string{
		"The tide tables are kept in the blue binder.",
		"Gulls nest on the north cliff in spring.",
		"The lamp is cleaned every Sunday with vinegar.",
		"Storm shutters close when the barometer falls.",
		"The keeper's logbook records every passing ship.",
		"Spring tides flood the lower path twice a month.",
	}
	for _, text := range texts {
		if _, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	queries := []string{"spring", "tide", "lamp vinegar", "ship logbook", "nothing matches zebra"}
	before := map[string][]string{}
	for _, q := range queries {
		before[q] = searchIDs(t, n.Service, a.ID, q)
	}
	if len(before["spring"]) != 2 || len(before["nothing matches zebra"]) != 0 {
		t.Fatalf("searches before: %v", before)
	}
	n.Close(ctx)

	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	n = startAt(t, dir)
	defer n.Close(ctx)
	for _, q := range queries {
		if got := searchIDs(t, n.Service, a.ID, q); !reflect.DeepEqual(got, before[q]) && !(len(got) == 0 && len(before[q]) == 0) {
			t.Fatalf("%q after rebuild: %v, before %v", q, got, before[q])
		}
	}
	// An online rebuild (fresh index beside the live one, swapped in)
	// answers the same too.
	if err := n.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if got := searchIDs(t, n.Service, a.ID, q); !reflect.DeepEqual(got, before[q]) && !(len(got) == 0 && len(before[q]) == 0) {
			t.Fatalf("%q after online rebuild: %v, before %v", q, got, before[q])
		}
	}
}

// With an embedding model served, passages carry vectors from the moment
// they are written, and a query that shares no word with a passage finds
// it by meaning; the log is never re-embedded on restart.
func TestHybridSearchWithEmbeddings(t *testing.T) {
	ctx := context.Background()
	emb := llmtest.NewServer(t)
	// A toy semantic space: two concepts, each a direction.
	concept := map[string]int{"dog": 0, "puppy": 0, "hound": 0, "money": 1, "cash": 1, "salary": 1}
	emb.SetEmbedder(func(text string) []float32 {
		v := make([]float32, 8)
		v[7] = 0.01
		for _, w := range strings.Fields(strings.ToLower(text)) {
			if c, ok := concept[strings.Trim(w, ".,!?")]; ok {
				v[c]++
			}
		}
		return v
	})
	dir := t.TempDir()
	handle := "openai/test-embed"
	withEmbeddings := func(cfg *node.Config) {
		cfg.Service.EmbeddingModels = []api.EmbeddingModel{{EmbeddingConfig: api.EmbeddingConfig{
			EmbeddingEndpointType: "openai", EmbeddingModel: "test-embed", EmbeddingDim: 8, Handle: &handle}}}
		cfg.Service.Embed = node.OpenAIEmbedders(emb.URL, "sk-test")
	}
	n := startAt(t, dir, withEmbeddings)
	a := plainAgent(t, n.Service, "semantic")
	pet, _ := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "We adopted a puppy last spring."})
	pay, _ := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "The salary arrives on the first of the month."})
	if pet[0].Embedding == nil || len(pet[0].Embedding) != 8 {
		t.Fatalf("passage stored without its vector: %+v", pet[0])
	}
	if got := searchIDs(t, n.Service, a.ID, "hound"); len(got) == 0 || got[0] != pet[0].ID {
		t.Fatalf("semantic query 'hound' found %v, want %s first", got, pet[0].ID)
	}
	if got := searchIDs(t, n.Service, a.ID, "cash"); len(got) == 0 || got[0] != pay[0].ID {
		t.Fatalf("semantic query 'cash' found %v, want %s first", got, pay[0].ID)
	}
	calls := len(emb.EmbeddingRequests())
	n.Close(ctx)
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	n = startAt(t, dir, withEmbeddings)
	defer n.Close(ctx)
	if err := n.Service.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(emb.EmbeddingRequests()); got != calls {
		t.Fatalf("rebuilding the index called the embedding provider %d times", got-calls)
	}
	if got := searchIDs(t, n.Service, a.ID, "hound"); len(got) == 0 || got[0] != pet[0].ID {
		t.Fatalf("after rebuild 'hound' found %v", got)
	}
}

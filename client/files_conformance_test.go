package client_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/ingest"
	"github.com/engram-dev/engram/service"
)

func testFiles(t *testing.T, ctx context.Context, c client.Client) {
	src := must(c.CreateSource(ctx, "manuals"))(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("boiler.txt", "The boiler pressure must stay between one and two bar. Bleed the radiators each autumn.")

	job := must(c.LoadFileToSource(ctx, one, src.ID, true))(t)
	if job.Status != api.JobCompleted {
		t.Fatalf("LoadFileToSource job %s %s", job.Status, job.Metadata)
	}
	files := must(c.ListFilesFromSource(ctx, src.ID))(t)
	if len(files) != 1 || files[0].OriginalFileName != "boiler.txt" || files[0].ProcessingStatus != "completed" || files[0].FileName != "manuals/boiler.txt" {
		t.Fatalf("files %+v", files)
	}
	_, err := c.LoadFileToSource(ctx, filepath.Join(dir, "missing.txt"), src.ID, true)
	wantKind(t, "load a missing file", err, fault.Invalid)

	// A directory: two good files, one corrupt, one unsupported.
	sub := filepath.Join(dir, "more")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"garden.md":    "# Garden\n\nPrune the roses in late winter.",
		"kitchen.json": `{"oven": "descale the kettle monthly"}`,
		"broken.pdf":   "%PDF-1.7\nnot really a pdf",
		"photo.png":    "\x89PNG\r\n\x1a\nbinary",
	} {
		if err := os.WriteFile(filepath.Join(sub, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var calls int
	rep := must(c.LoadData(ctx, ingest.DirectoryConnector(sub, ingest.DirOptions{}), "manuals", func(client.LoadProgress) { calls++ }))(t)
	if rep.Documents != 4 || calls == 0 {
		t.Fatalf("report %+v after %d progress calls", rep, calls)
	}
	var failed []string
	for _, f := range rep.Failed {
		failed = append(failed, f.Name)
	}
	slices.Sort(failed)
	diff(t, "failed documents", []string{"broken.pdf", "photo.png"}, failed)
	files = must(c.ListFilesFromSource(ctx, src.ID))(t)
	status := map[string]string{}
	for _, f := range files {
		status[f.OriginalFileName] = f.ProcessingStatus
	}
	diff(t, "file statuses", map[string]string{"boiler.txt": "completed", "garden.md": "completed", "kitchen.json": "completed", "broken.pdf": "error"}, status)

	// The passages are searchable by an agent the source is attached to.
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "handy"}))(t)
	noErr(t, "attach", c.AttachSourceToAgent(ctx, a.ID, src.ID))
	res := must(c.SearchArchivalMemory(ctx, a.ID, service.ArchivalQuery{Query: "roses"}))(t)
	if res.Count != 1 || !strings.Contains(res.Results[0].Content, "Prune the roses") {
		t.Fatalf("search roses: %+v", res)
	}
	sum := must(c.GetArchivalMemorySummary(ctx, a.ID))(t)
	passages := must(c.ListSourcePassages(ctx, src.ID))(t)
	if sum.Size != len(passages) || len(passages) < 3 {
		t.Fatalf("archival summary %d, source passages %d", sum.Size, len(passages))
	}

	// Deleting a file removes its passages from the search.
	var garden string
	for _, f := range files {
		if f.OriginalFileName == "garden.md" {
			garden = f.ID
		}
	}
	noErr(t, "delete file", c.DeleteFileFromSource(ctx, src.ID, garden))
	res = must(c.SearchArchivalMemory(ctx, a.ID, service.ArchivalQuery{Query: "roses"}))(t)
	if res.Count != 0 {
		t.Fatalf("deleted file still found: %+v", res)
	}
	wantKind(t, "delete the file again", c.DeleteFileFromSource(ctx, src.ID, garden), fault.NotFound)
}

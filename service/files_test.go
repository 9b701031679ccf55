package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

func waitJob(t *testing.T, svc *service.Service, id string) api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := svc.WaitJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newSource(t *testing.T, svc *service.Service, name string) api.Source {
	t.Helper()
	src, err := svc.CreateSource(context.Background(), api.CreateSource{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// prose is n sentences of distinct text, so chunks are not all alike.
func prose(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Sentence number %d talks about topic %d of the handbook. ", i, i%17)
	}
	return b.String()
}

func TestUploadTextFile(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	src := newSource(t, n.Service, "docs")
	text := prose(400)
	f, job, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "handbook.txt", MIME: "text/plain", Data: []byte(text)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if f.FileName != "docs/handbook.txt" || f.OriginalFileName != "handbook.txt" || f.FileSize != int64(len(text)) || f.SourceID != src.ID {
		t.Fatalf("file metadata %+v", f)
	}
	if !strings.HasPrefix(f.Digest, "sha256:") {
		t.Fatalf("digest %q", f.Digest)
	}
	j := waitJob(t, n.Service, job.ID)
	if j.Status != api.JobCompleted {
		t.Fatalf("job %+v", j)
	}
	got, err := n.Service.GetFile(ctx, src.ID, f.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProcessingStatus != "completed" || got.TotalChunks == nil || *got.TotalChunks < 2 {
		t.Fatalf("file after load %+v", got)
	}
	if got.Content == nil || !strings.Contains(*got.Content, "Sentence number 399") {
		t.Fatal("include_content lost text")
	}
	ps, err := n.Service.ListSourcePassages(ctx, src.ID, api.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != *got.TotalChunks {
		t.Fatalf("%d passages, file says %d", len(ps), *got.TotalChunks)
	}
	joined := ""
	for _, p := range ps {
		if p.FileID == nil || *p.FileID != f.ID || p.SourceID == nil || *p.SourceID != src.ID {
			t.Fatalf("passage %+v", p)
		}
		joined += p.Text + " "
	}
	for _, probe := range []string{"Sentence number 0 ", "Sentence number 200 ", "Sentence number 399 "} {
		if !strings.Contains(joined, probe) {
			t.Fatalf("passages lost %q", probe)
		}
	}
	// Passages stored many to a log message are found and read back.
	a := plainAgent(t, n.Service, "reader")
	if _, err := n.Service.AttachSource(ctx, a.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	found, err := n.Service.SearchArchival(ctx, a.ID, service.ArchivalQuery{Query: "399", Limit: 3})
	if err != nil || found.Count == 0 || !strings.Contains(found.Results[0].Content, "Sentence number 399 ") {
		t.Fatalf("search in a late passage: %+v %v", found, err)
	}
	// Same name again: suffixed, skipped or refused as asked.
	f2, _, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "handbook.txt", Data: []byte("v2")}, service.DupSuffix)
	if err != nil || f2.FileName != "docs/handbook_(1).txt" {
		t.Fatalf("suffix: %+v %v", f2, err)
	}
	f3, _, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "handbook.txt", Data: []byte("v3")}, service.DupSkip)
	if err != nil || f3.ID != f.ID {
		t.Fatalf("skip: %+v %v", f3, err)
	}
	if _, _, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "handbook.txt", Data: []byte("v4")}, service.DupError); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("error: %v", err)
	}
	// Deleting the file takes its passages with it.
	if err := n.Service.DeleteFile(ctx, src.ID, f.ID); err != nil {
		t.Fatal(err)
	}
	ps, _ = n.Service.ListSourcePassages(ctx, src.ID, api.Page{})
	for _, p := range ps {
		if *p.FileID == f.ID {
			t.Fatal("a passage of the deleted file is left")
		}
	}
	if _, err := n.Service.GetFile(ctx, src.ID, f.ID, false); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("deleted file: %v", err)
	}
}

func TestUploadRefusedUpFront(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	src := newSource(t, n.Service, "docs")
	before, _ := n.Log.LastSeq(ctx)
	big := make([]byte, 50<<20+1)
	if _, _, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "big.txt", Data: big}, ""); fault.KindOf(err) != fault.TooLarge {
		t.Fatalf("oversized file: %v", err)
	}
	if _, _, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "photo.png", MIME: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}, ""); fault.KindOf(err) != fault.Unsupported {
		t.Fatalf("unsupported file: %v", err)
	}
	if after, _ := n.Log.LastSeq(ctx); after != before {
		t.Fatalf("a refused upload appended %d events", after-before)
	}
}

func TestLoadMixedFilesOneCorrupt(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	src := newSource(t, n.Service, "mixed")
	ups := []service.Upload{
		{Name: "a.txt", Data: []byte(prose(50))},
		{Name: "b.md", Data: []byte("# Title\n\nSome *markdown* about engrams.\n")},
		{Name: "c.json", Data: []byte(`{"topic": "memory", "items": ["archival", "recall"]}`)},
		{Name: "d.html", Data: []byte("<html><head><script>var secret=1;</script></head><body><p>Visible words here.</p></body></html>")},
		{Name: "broken.pdf", Data: []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage without xref")},
		{Name: "empty.txt", Data: nil},
	}
	res, err := n.Service.LoadFiles(ctx, src.ID, ups, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != len(ups) {
		t.Fatalf("%d files stored of %d", len(res.Files), len(ups))
	}
	j := waitJob(t, n.Service, res.Job.ID)
	if j.Status != api.JobFailed || !strings.Contains(string(j.Metadata), "broken.pdf") || strings.Contains(string(j.Metadata), "a.txt:") {
		t.Fatalf("job %s %s", j.Status, j.Metadata)
	}
	files, err := n.Service.ListFiles(ctx, src.ID, api.Page{Order: "asc"}, false)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.FileMetadata{}
	for _, f := range files {
		byName[f.OriginalFileName] = f
	}
	for _, name := range []string{"a.txt", "b.md", "c.json", "d.html", "empty.txt"} {
		if byName[name].ProcessingStatus != "completed" {
			t.Fatalf("%s: %+v", name, byName[name])
		}
	}
	if bad := byName["broken.pdf"]; bad.ProcessingStatus != "error" || bad.ErrorMessage == nil || *bad.ErrorMessage == "" {
		t.Fatalf("broken.pdf: %+v", bad)
	}
	if *byName["empty.txt"].TotalChunks != 0 {
		t.Fatalf("empty file gave passages: %+v", byName["empty.txt"])
	}
	ps, _ := n.Service.ListSourcePassages(ctx, src.ID, api.Page{})
	for _, p := range ps {
		if *p.FileID == byName["broken.pdf"].ID {
			t.Fatal("the corrupt file left a passage")
		}
		if strings.Contains(p.Text, "secret") {
			t.Fatal("HTML script text was indexed")
		}
	}
}

// A load cut short by a shutdown finishes after the restart, with every
// passage stored once.
func TestLoadResumesAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := startAt(t, dir)
	src := newSource(t, n.Service, "big")
	text := prose(20000) // ~1.3 MB: many appends
	res, err := n.Service.LoadFiles(ctx, src.ID, []service.Upload{{Name: "big.txt", Data: []byte(text)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	n.Close(ctx)

	n = startAt(t, dir)
	defer n.Close(ctx)
	j := waitJob(t, n.Service, res.Job.ID)
	if j.Status != api.JobCompleted {
		t.Fatalf("job after restart: %s %s", j.Status, j.Metadata)
	}
	f, err := n.Service.GetFile(ctx, src.ID, res.Files[0].ID, false)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := n.Service.ListSourcePassages(ctx, src.ID, api.Page{Limit: service.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.ID] {
			t.Fatalf("passage %s stored twice", p.ID)
		}
		seen[p.ID] = true
	}
	if len(ps) != *f.TotalChunks || len(ps) < 100 {
		t.Fatalf("%d passages, file says %d", len(ps), *f.TotalChunks)
	}
}

func TestUploadToUnknownSource(t *testing.T) {
	n := start(t)
	_, _, err := n.Service.UploadFile(context.Background(), "source-00000000000000000000000000", service.Upload{Name: "a.txt", Data: []byte("x")}, "")
	if !errors.Is(err, &fault.Error{Kind: fault.NotFound}) {
		t.Fatalf("unknown source: %v", err)
	}
}

func TestUploadReplace(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	src := newSource(t, n.Service, "docs")
	f1, j1, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "a.txt", Data: []byte(prose(300))}, "")
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, n.Service, j1.ID)
	f2, j2, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "a.txt", Data: []byte("replacement text")}, service.DupReplace)
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, n.Service, j2.ID)
	files, _ := n.Service.ListFiles(ctx, src.ID, api.Page{}, false)
	if len(files) != 1 || files[0].ID != f2.ID || files[0].ID == f1.ID || files[0].FileName != "docs/a.txt" {
		t.Fatalf("after replace: %+v", files)
	}
	ps, _ := n.Service.ListSourcePassages(ctx, src.ID, api.Page{})
	if len(ps) != 1 || ps[0].Text != "replacement text" {
		t.Fatalf("passages after replace: %+v", ps)
	}
}

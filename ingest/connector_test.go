package ingest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mixedDir builds a directory from testdata/mixed plus the PDF fixtures, a
// file of an unsupported type, a dangling symbolic link (an entry that
// cannot be read), a hidden file and a subdirectory.
func mixedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("testdata/mixed")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		write(e.Name(), readFixture(t, "mixed/"+e.Name()))
	}
	write("h-report.pdf", readFixture(t, "sample.pdf"))
	write("i-broken.pdf", readFixture(t, "corrupt.pdf"))
	write("j-image.png", []byte("\x89PNG\r\n\x1a\n"))
	write(".hidden.txt", []byte("hidden"))
	write("sub/k-nested.txt", []byte("nested text file"))
	if err := os.Symlink(filepath.Join(dir, "missing-target"), filepath.Join(dir, "l-dangling.txt")); err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	passages []string
	err      error
}

// ingestAll runs Passages on every document of c, as a loader would,
// going on after errors.
func ingestAll(t *testing.T, c Connector) ([]string, map[string]result) {
	t.Helper()
	var names []string
	results := map[string]result{}
	for doc, err := range c.Documents(context.Background()) {
		names = append(names, doc.Name)
		if err != nil {
			results[doc.Name] = result{err: err}
			continue
		}
		p, err := Passages(context.Background(), doc, DefaultPassageOptions())
		results[doc.Name] = result{p, err}
	}
	return names, results
}

func TestDirectoryConnectorMixed(t *testing.T) {
	dir := mixedDir(t)
	names, results := ingestAll(t, DirectoryConnector(dir, DirOptions{}))
	want := []string{"a-plain.txt", "b-notes.md", "c-data.json", "d-page.html", "e-main.go", "f-empty.txt",
		"g-junk.txt", "h-report.pdf", "i-broken.pdf", "j-image.png", "l-dangling.txt"}
	if !slices.Equal(names, want) {
		t.Fatalf("documents %q\nwant %q", names, want)
	}
	good := map[string]string{
		"a-plain.txt":  "quick brown fox",
		"b-notes.md":   "**archival** memory",
		"c-data.json":  "owners[0].name: Ada Lovelace",
		"d-page.html":  "item two & more",
		"e-main.go":    `fmt.Println("hello from code")`,
		"h-report.pdf": "Page two talks about archival memory.",
	}
	for name, text := range good {
		r := results[name]
		if r.err != nil {
			t.Errorf("%s: %v", name, r.err)
			continue
		}
		if len(r.passages) != 1 || !strings.Contains(r.passages[0], text) {
			t.Errorf("%s: passages %q lack %q", name, r.passages, text)
		}
	}
	if strings.Contains(results["d-page.html"].passages[0], "secretScript") {
		t.Errorf("HTML passage has script text")
	}
	if r := results["f-empty.txt"]; r.err != nil || len(r.passages) != 0 {
		t.Errorf("empty file: %q, %v; want no passages and no error", r.passages, r.err)
	}
	bad := []struct {
		name string
		kind error
		says string
	}{
		{"g-junk.txt", ErrCorrupt, "g-junk.txt: corrupt file (text): NUL byte at offset 6"},
		{"i-broken.pdf", ErrCorrupt, "i-broken.pdf: corrupt file (pdf): the PDF is truncated"},
		{"j-image.png", ErrUnsupported, `j-image.png: unsupported file type ".png"`},
	}
	for _, b := range bad {
		err := results[b.name].err
		if !errors.Is(err, b.kind) || !strings.Contains(err.Error(), b.says) {
			t.Errorf("%s: error %v; want %v saying %q", b.name, err, b.kind, b.says)
		}
	}
	if err := results["l-dangling.txt"].err; err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dangling link: error %v; want not-exist", err)
	}
}

func TestDirectoryConnectorOptions(t *testing.T) {
	dir := mixedDir(t)
	docs := func(opt DirOptions) []string {
		t.Helper()
		var names []string
		for doc, err := range DirectoryConnector(dir, opt).Documents(context.Background()) {
			if err != nil && doc.Name != "l-dangling.txt" {
				t.Errorf("%s: %v", doc.Name, err)
			}
			names = append(names, doc.Name)
		}
		return names
	}
	if got, want := docs(DirOptions{Recursive: true, Extensions: []string{"txt", ".PDF"}}),
		[]string{"a-plain.txt", "f-empty.txt", "g-junk.txt", "h-report.pdf", "i-broken.pdf", "l-dangling.txt", "sub/k-nested.txt"}; !slices.Equal(got, want) {
		t.Errorf("recursive, txt and pdf: %q\nwant %q", got, want)
	}
	if got := docs(DirOptions{Hidden: true, Extensions: []string{"txt"}}); !slices.Contains(got, ".hidden.txt") || slices.Contains(got, "sub/k-nested.txt") {
		t.Errorf("hidden, not recursive: %q", got)
	}
	// Sorted by the whole relative path, so "a.txt" comes before "a/b.txt".
	d2 := t.TempDir()
	for _, p := range []string{"a/b.txt", "a.txt", "B.txt"} {
		os.MkdirAll(filepath.Join(d2, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(d2, p), []byte("x"), 0o644)
	}
	var got []string
	for doc, err := range DirectoryConnector(d2, DirOptions{Recursive: true}).Documents(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, doc.Name)
	}
	if want := []string{"B.txt", "a.txt", "a/b.txt"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestDirectoryConnectorStops(t *testing.T) {
	dir := mixedDir(t)
	n := 0
	for range DirectoryConnector(dir, DirOptions{}).Documents(context.Background()) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("break after 2: saw %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []error
	for _, err := range DirectoryConnector(dir, DirOptions{}).Documents(ctx) {
		cancel()
		errs = append(errs, err)
	}
	if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], context.Canceled) {
		t.Errorf("cancelled after the first document: %v", errs)
	}
	for _, err := range DirectoryConnector(filepath.Join(dir, "nope"), DirOptions{}).Documents(context.Background()) {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing directory: %v", err)
		}
	}
}

func TestFileConnector(t *testing.T) {
	var docs []Document
	for doc, err := range FileConnector("testdata/sample.pdf").Documents(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	if len(docs) != 1 || docs[0].Name != "sample.pdf" || docs[0].MIME != "application/pdf" || docs[0].Size != int64(len(readFixture(t, "sample.pdf"))) {
		t.Fatalf("documents %+v", docs)
	}
	p, err := Passages(context.Background(), docs[0], DefaultPassageOptions())
	if err != nil || len(p) != 1 || !strings.HasPrefix(p[0], "Engram loads PDF files.") || !strings.HasSuffix(p[0], "The third page ends the report.") {
		t.Fatalf("passages %q, %v", p, err)
	}
	n := 0
	for doc, err := range FileConnector("testdata/none.txt").Documents(context.Background()) {
		n++
		if doc.Name != "none.txt" || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file: %+v, %v", doc, err)
		}
	}
	if n != 1 {
		t.Errorf("missing file yielded %d times", n)
	}
}

func TestPassagesTooLarge(t *testing.T) {
	// Refused from the size alone: Open is never called.
	doc := Document{Name: "huge.txt", Size: 60 << 20, Open: func() (io.ReadCloser, error) {
		t.Fatal("Open called for an oversized document")
		return nil, nil
	}}
	_, err := Passages(context.Background(), doc, DefaultPassageOptions())
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "huge.txt") {
		t.Fatalf("60 MB with the default limit: %v", err)
	}
	// A document larger than it says is cut off while reading.
	liar := BytesDocument("liar.txt", "", []byte(strings.Repeat("word ", 100)))
	liar.Size = 10
	_, err = Passages(context.Background(), liar, PassageOptions{MaxSize: 100})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("500 bytes claiming 10, limit 100: %v", err)
	}
	// Unsupported by name: refused before reading.
	doc = Document{Name: "slides.pptx", Size: 10, Open: doc.Open}
	if _, err := Passages(context.Background(), doc, DefaultPassageOptions()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("pptx: %v", err)
	}
}

func TestPassagesChunks(t *testing.T) {
	text := prose(7, 2000)
	doc := BytesDocument("long.txt", "text/plain", []byte(text))
	p, err := Passages(context.Background(), doc, DefaultPassageOptions())
	if err != nil {
		t.Fatal(err)
	}
	if want := Chunk(text, DefaultChunkOptions()); !slices.Equal(p, want) || len(p) < 5 {
		t.Fatalf("%d passages; Chunk gives %d", len(p), len(want))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Passages(ctx, doc, DefaultPassageOptions()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

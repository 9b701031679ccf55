package ingest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"
)

var update = flag.Bool("update", false, "rewrite the PDF fixtures under testdata")

// makePDF writes a PDF with one page per element of pages, each page's text
// in lines, with fpdf's Helvetica (WinAnsi encoding) and compressed content
// streams. The output is byte-for-byte deterministic.
func makePDF(t testing.TB, pages ...[]string) []byte {
	t.Helper()
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCatalogSort(true)
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p.SetCreationDate(stamp)
	p.SetModificationDate(stamp)
	p.SetFont("Helvetica", "", 12)
	for _, lines := range pages {
		p.AddPage()
		for _, l := range lines {
			p.Cell(0, 8, l)
			p.Ln(10)
		}
	}
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		t.Fatalf("write PDF: %v", err)
	}
	return b.Bytes()
}

// samplePages is the text of testdata/sample.pdf.
var samplePages = [][]string{
	{"Engram loads PDF files.", "First page, second line."},
	{"Page two talks about archival memory."},
	{"The third page ends the report."},
}

// TestPDFFixtures checks that the committed PDF fixtures are what makePDF
// writes (run with -update to rewrite them): a valid three-page PDF and a
// corrupt one, the same file cut off in the middle.
func TestPDFFixtures(t *testing.T) {
	good := makePDF(t, samplePages...)
	corrupt := good[:len(good)/2]
	fixtures := map[string][]byte{
		"testdata/sample.pdf":  good,
		"testdata/corrupt.pdf": corrupt,
	}
	for name, want := range fixtures {
		if *update {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v (run go test -run TestPDFFixtures -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what makePDF writes; run go test -run TestPDFFixtures -update", filepath.Base(name))
		}
	}
}

package ingest

import (
	"bytes"
	"compress/zlib"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// rawPDF assembles a PDF from object bodies (object i+1 is objs[i]), with a
// correct cross-reference table, so that tests can build malformed structure
// in an otherwise well-formed file. Object 1 is the catalog.
func rawPDF(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func TestPDFMalformed(t *testing.T) {
	content := "BT /F1 12 Tf 72 712 Td (hand made page) Tj ET"
	page := func(parent int) string {
		return fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "+
			"/Resources << /Font << /F1 5 0 R >> >> >>", parent)
	}
	stream := fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content)
	font := "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
	tests := []struct {
		name   string
		data   []byte
		want   string
		detail string
	}{
		{"hand-made", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			page(2), stream, font), "hand made page", ""},
		{"no pages", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"), "", ""},
		{"cycle", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 1 >>",
			page(2), stream, font), "", "page tree"},
		{"no page tree", rawPDF("<< /Type /Catalog >>"), "", "no page tree"},
		{"bad content", rawPDF("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			page(2), "<< /Length 9 >>\nstream\n] ] Tj Tf\nendstream", font), "", "cannot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract("x.pdf", "", tt.data)
			if tt.detail == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Extract = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Extract = %q, %v; want ErrCorrupt saying %q", got, err, tt.detail)
			}
		})
	}
}

// flatePDF writes a one-page PDF whose content stream, Flate-compressed,
// shows line n times: a small file with a great deal of text.
func flatePDF(t testing.TB, line string, n int) []byte {
	t.Helper()
	var content bytes.Buffer
	zw := zlib.NewWriter(&content)
	fmt.Fprint(zw, "BT\n")
	op := []byte("(" + line + ") Tj T*\n")
	for range n {
		zw.Write(op)
	}
	fmt.Fprint(zw, "ET\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>")
	obj(fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", content.Len(), content.Bytes()))
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// TestTextLimit checks that a small file whose text expands past its limit
// (TextLimit: 20 times its size, at least 1 MiB) fails with ErrTooLarge
// naming the limit, and that one within it loads.
func TestTextLimit(t *testing.T) {
	const line = "All work and no play makes Jack a dull boy."
	small := flatePDF(t, line, 100)
	text, err := Extract("small.pdf", "", small)
	if err != nil || strings.Count(text, line) != 100 {
		t.Fatalf("small PDF: %d bytes of text, %v", len(text), err)
	}
	deepJSON := strings.Repeat(`{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":`, 200) + "[" +
		strings.Repeat("1,", 40_000) + "1]" + strings.Repeat("}", 200)
	for _, c := range []struct {
		name string
		data []byte
	}{
		// About 1.5 MiB of content and text from a few KB: the text check.
		{"text.pdf", flatePDF(t, line, 30_000)},
		// 40 MiB of content: refused by measuring the content, before the
		// library builds the text.
		{"bomb.pdf", flatePDF(t, line, 800_000)},
		// Every value's line repeats its 13 KB path.
		{"deep.json", []byte(deepJSON)},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			text, err := Extract(c.name, "", c.data)
			var ie *Error
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &ie) {
				t.Fatalf("Extract(%d bytes) = %d bytes of text, %v; want ErrTooLarge", len(c.data), len(text), err)
			}
			limit := TextLimit(int64(len(c.data)))
			if !strings.Contains(err.Error(), fmt.Sprintf("extracted text is over %d bytes", limit)) || ie.Name != c.name {
				t.Errorf("error %q does not name the file and the limit %d", err, limit)
			}
			t.Logf("%d bytes: %v in %v", len(c.data), err, time.Since(start))
		})
	}
	if got := TextLimit(10); got != MinTextSize {
		t.Errorf("TextLimit(10) = %d, want %d", got, MinTextSize)
	}
	if got := TextLimit(1 << 20); got != 20<<20 {
		t.Errorf("TextLimit(1 MiB) = %d, want 20 MiB", got)
	}
	if got := TextLimit(MaxFileSize); got != MaxTextSize {
		t.Errorf("TextLimit(MaxFileSize) = %d, want %d", got, MaxTextSize)
	}
	// A plain text file as large as the file limit is within its text limit.
	if l := TextLimit(MaxFileSize); l < MaxFileSize {
		t.Errorf("a %d-byte text file would be refused (limit %d)", MaxFileSize, l)
	}
}

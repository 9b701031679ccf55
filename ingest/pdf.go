package ingest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ledongthuc/pdf"
)

// extractPDF returns the text of every page in page order, pages separated
// by a blank line. The detail is non-empty if the file is not a readable PDF:
// no header, a missing or broken cross-reference table (a truncated file), an
// encrypted file, or a page whose content cannot be decoded. The PDF library
// panics on some malformed input; that is recovered and reported as corrupt.
func extractPDF(data []byte) (text, detail string, err error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")) {
		return "", "not a PDF: the %PDF- header is missing", nil
	}
	defer func() {
		if p := recover(); p != nil {
			text, detail, err = "", fmt.Sprintf("the PDF cannot be parsed: %v", p), nil
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		detail = "the PDF cannot be opened"
		if !bytes.Contains(data[max(0, len(data)-1024):], []byte("%%EOF")) {
			detail = "the PDF is truncated (no %EOF trailer)"
		}
		return "", detail, err
	}
	n := r.NumPage()
	if n <= 0 {
		return "", "the PDF has no page tree", nil
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			return "", fmt.Sprintf("page %d of %d is missing", i, n), nil
		}
		// Font names ("F1") are local to a page, so each page decodes with
		// its own fonts (nil asks the library to load them).
		t, err := p.GetPlainText(nil)
		if err != nil {
			return "", fmt.Sprintf("page %d of %d cannot be decoded", i, n), err
		}
		t = strings.TrimSpace(strings.ReplaceAll(t, "\r\n", "\n"))
		if t == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(t)
	}
	return b.String(), "", nil
}

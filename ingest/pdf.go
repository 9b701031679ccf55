package ingest

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ledongthuc/pdf"
)

// extractPDF returns the text of every page in page order, pages separated
// by a blank line. The detail is non-empty if the file is not a readable PDF:
// no header, a missing or broken cross-reference table (a truncated file), an
// encrypted file, or a page whose content cannot be decoded. The PDF library
// panics on some malformed input; that is recovered and reported as corrupt.
//
// The error is errTextLimit once the text passes limit bytes, or the pages'
// content streams decompress to more than contentRatio times limit: the
// library builds a page's whole text in memory, so a page is measured, by
// decompressing its content into nothing, before its text is built.
func extractPDF(data []byte, limit int) (text, detail string, err error) {
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
	pages, detail := pdfPages(r)
	if detail != "" {
		return "", detail, nil
	}
	var b strings.Builder
	n := len(pages)
	content := int64(contentRatio) * int64(limit) // what the pages' content may still decompress to
	for i, p := range pages {
		i++
		if content -= pdfContentSize(p.V.Key("Contents"), content+1); content < 0 {
			return "", "", errTextLimit
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
		if b.Len() > limit {
			return "", "", errTextLimit
		}
	}
	return b.String(), "", nil
}

// contentRatio bounds the decompressed content streams of a PDF's pages
// relative to its text limit. Content holds drawing operators besides the
// text, so it is allowed to be several times larger.
const contentRatio = 4

// pdfContentSize returns the decompressed size of a page's content (one
// stream or an array of them), reading at most max bytes.
func pdfContentSize(v pdf.Value, max int64) int64 {
	var rd io.Reader
	switch v.Kind() {
	case pdf.Null:
		return 0
	case pdf.Array:
		rs := make([]io.Reader, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			rs = append(rs, v.Index(i).Reader())
		}
		rd = io.MultiReader(rs...)
	default:
		rd = v.Reader()
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(rd, max))
	return n
}

// Limits on the page tree, which a malformed file can make cyclic or
// endless (the library's own Page lookup loops forever on a cycle).
const (
	maxPDFTreeDepth = 64
	maxPDFTreeNodes = 1 << 17
)

// pdfPages lists the pages in document order by walking the page tree. A
// node is a page tree node if its Type is Pages or, lacking a Type, it has
// Kids; otherwise it is a page.
func pdfPages(r *pdf.Reader) ([]pdf.Page, string) {
	root := r.Trailer().Key("Root").Key("Pages")
	if root.IsNull() {
		return nil, "the PDF has no page tree"
	}
	var (
		pages []pdf.Page
		nodes int
		walk  func(v pdf.Value, depth int) bool
	)
	walk = func(v pdf.Value, depth int) bool {
		nodes++
		if depth > maxPDFTreeDepth || nodes > maxPDFTreeNodes {
			return false
		}
		typ := v.Key("Type").Name()
		if typ == "Pages" || (typ == "" && v.Key("Kids").Kind() == pdf.Array) {
			kids := v.Key("Kids")
			for i := 0; i < kids.Len(); i++ {
				if !walk(kids.Index(i), depth+1) {
					return false
				}
			}
			return true
		}
		if v.Kind() == pdf.Dict {
			pages = append(pages, pdf.Page{V: v})
		}
		return true
	}
	if !walk(root, 0) {
		return nil, fmt.Sprintf("the page tree is more than %d deep or has more than %d nodes (a cycle?)", maxPDFTreeDepth, maxPDFTreeNodes)
	}
	return pages, ""
}

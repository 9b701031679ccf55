package ingest

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utf16LE(s string) []byte {
	b := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name, mime string
		data       []byte
		want       string   // exact text, if set
		contains   []string // in this order
		excludes   []string
	}{
		{name: "a.txt", data: readFixture(t, "mixed/a-plain.txt"),
			want: "The quick brown fox jumps over the lazy dog.\nSecond line of the plain text file.\n"},
		{name: "notes.md", data: readFixture(t, "mixed/b-notes.md"),
			want: string(readFixture(t, "mixed/b-notes.md"))},
		{name: "data.json", data: readFixture(t, "mixed/c-data.json"),
			want: "project: engram\nowners[0].name: Ada Lovelace\nowners[0].role: lead\nowners[1].name: Alan Turing\n" +
				"stars: 42\nactive: true\nlicense: null\ntags: []\n"},
		{name: "events.jsonl", data: []byte("{\"a\": 1}\n{\"a\": \"two\", \"b\": {\"c\": [true]}}\n"),
			want: "a: 1\n\na: two\nb.c[0]: true\n"},
		{name: "page.html", data: readFixture(t, "mixed/d-page.html"),
			want: "Engram Page\n\nWelcome to engram\n\nFirst bold paragraph spread over lines.\n\nBlock two\n\n" +
				"item one\nitem two & more\n\na diagram",
			excludes: []string{"secretScript", "color: red", "secret-style", "enable javascript", "<"}},
		{name: "sample.pdf", data: readFixture(t, "sample.pdf"),
			want: "Engram loads PDF files.\nFirst page, second line.\n\nPage two talks about archival memory.\n\n" +
				"The third page ends the report."},
		{name: "main.go", data: readFixture(t, "mixed/e-main.go"), want: string(readFixture(t, "mixed/e-main.go"))},
		{name: "Makefile", data: []byte("all:\n\tgo build\n"), want: "all:\n\tgo build\n"},
		{name: "utf16.txt", data: utf16LE("héllo wörld\r\n"), want: "héllo wörld\n"},
		{name: "bom.txt", data: []byte("\xEF\xBB\xBFbom text"), want: "bom text"},
		// No extension: the MIME type decides, then the content.
		{name: "upload", mime: "text/markdown; charset=utf-8", data: []byte("# Title"), want: "# Title"},
		{name: "upload", mime: "application/json", data: []byte(`{"k":"v"}`), want: "k: v\n"},
		{name: "blob", mime: "application/octet-stream", data: []byte("just text"), want: "just text"},
		{name: "", data: readFixture(t, "sample.pdf"), contains: []string{"Engram loads PDF files.", "third page"}},
		{name: "", data: []byte("<!doctype html><p>sniffed<script>x()</script>"), want: "sniffed"},
		// HTML details: pre keeps lines; entities decode; unclosed tags are fine.
		{name: "x.htm", data: []byte("<pre>line 1\nline 2</pre><p>a &lt; b<p>c"), want: "line 1\nline 2\n\na < b\n\nc"},
		{name: "empty.txt", data: nil, want: ""},
		{name: "empty.pdf", data: []byte{}, want: ""},
		{name: "empty.json", data: []byte(" \n"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"|"+tt.mime, func(t *testing.T) {
			got, err := Extract(tt.name, tt.mime, tt.data)
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if tt.contains == nil && got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			rest := got
			for _, c := range tt.contains {
				i := strings.Index(rest, c)
				if i < 0 {
					t.Fatalf("text %q lacks %q (in order)", got, c)
				}
				rest = rest[i+len(c):]
			}
			for _, x := range tt.excludes {
				if strings.Contains(got, x) {
					t.Errorf("text %q contains %q", got, x)
				}
			}
		})
	}
}

func TestExtractErrors(t *testing.T) {
	tests := []struct {
		name, mime string
		data       []byte
		kind       error
		message    []string
	}{
		{"report.docx", "", []byte("PK\x03\x04"), ErrUnsupported, []string{"report.docx", `unsupported file type ".docx"`}},
		{"photo", "image/png", []byte("\x89PNG"), ErrUnsupported, []string{"image/png"}},
		{"blob", "", []byte("\x89PNG\r\n\x1a\n\x00\x00"), ErrUnsupported, []string{"application/octet-stream", "binary"}},
		{"junk.txt", "", readFixture(t, "mixed/g-junk.txt"), ErrCorrupt, []string{"junk.txt", "NUL byte at offset 6"}},
		{"latin1.txt", "", []byte("caf\xe9 au lait"), ErrCorrupt, []string{"invalid UTF-8 at byte offset 3"}},
		{"odd.txt", "", []byte{0xFF, 0xFE, 'a'}, ErrCorrupt, []string{"UTF-16"}},
		{"corrupt.pdf", "", readFixture(t, "corrupt.pdf"), ErrCorrupt, []string{"corrupt.pdf", "truncated"}},
		{"fake.pdf", "", []byte("hello, not a pdf"), ErrCorrupt, []string{"not a PDF"}},
		{"bad.json", "", []byte(`{"a": [1, 2,}`), ErrCorrupt, []string{"invalid JSON at byte offset 12"}},
		{"cut.json", "", []byte(`{"a": [1, 2`), ErrCorrupt, []string{"truncated"}},
		{"deep.json", "", []byte(strings.Repeat("[", maxJSONDepth+2) + strings.Repeat("]", maxJSONDepth+2)), ErrCorrupt, []string{"nested too deeply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract(tt.name, tt.mime, tt.data)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Extract = %q, %v; want %v", got, err, tt.kind)
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Kind != tt.kind {
				t.Fatalf("error %v is not an *Error of kind %v", err, tt.kind)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	old := MaxFileSize
	MaxFileSize = 10
	defer func() { MaxFileSize = old }()
	_, err := Extract("big.txt", "", []byte("eleven byte"))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.txt") {
		t.Fatalf("Extract of 11 bytes with a limit of 10: %v", err)
	}
	if _, err := Extract("ok.txt", "", []byte("ten bytes!")); err != nil {
		t.Fatalf("Extract at the limit: %v", err)
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		size, limit int64
		tooLarge    bool
	}{
		{0, 0, false}, {MaxFileSize, 0, false}, {MaxFileSize + 1, 0, true},
		{100, 100, false}, {101, 100, true}, {1 << 40, -1, true},
	}
	for _, tt := range tests {
		err := CheckSize(tt.size, tt.limit)
		if got := errors.Is(err, ErrTooLarge); got != tt.tooLarge {
			t.Errorf("CheckSize(%d, %d) = %v; want too large %v", tt.size, tt.limit, err, tt.tooLarge)
		}
	}
	if err := CheckSize(101, 100); !strings.Contains(err.Error(), "101 bytes is over the limit of 100 bytes") {
		t.Errorf("message: %v", err)
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, mime string
		data       string
		format     Format
		wantMIME   string
	}{
		{"A.PDF", "", "", FormatPDF, "application/pdf"},
		{"x.md", "text/plain", "", FormatMarkdown, "text/markdown"},
		{"x.json", "application/json", "", FormatJSON, "application/json"},
		{"x.py", "", "", FormatCode, "text/plain"},
		{".env", "", "", FormatCode, "text/plain"},
		{"dir/README", "", "", FormatText, "text/plain"},
		{"noext", "text/csv", "", FormatText, "text/csv"},
		{"noext", "application/vnd.api+json", "", FormatJSON, "application/vnd.api+json"},
		{"noext", "", "%PDF-1.7", FormatPDF, "application/pdf"},
		{"noext", "", `{"a":1}`, FormatJSON, "application/json"},
		{`C:\docs\notes.TXT`, "", "", FormatText, "text/plain"},
	}
	for _, tt := range tests {
		f, mt, err := Detect(tt.name, tt.mime, []byte(tt.data))
		if err != nil || f != tt.format || mt != tt.wantMIME {
			t.Errorf("Detect(%q, %q) = %q, %q, %v; want %q, %q", tt.name, tt.mime, f, mt, err, tt.format, tt.wantMIME)
		}
	}
}

// FuzzExtract feeds arbitrary bytes under every format: Extract must not
// panic, and every failure must be an *Error of one of the three kinds.
func FuzzExtract(f *testing.F) {
	for _, n := range []string{"sample.pdf", "corrupt.pdf", "mixed/d-page.html", "mixed/c-data.json", "mixed/a-plain.txt"} {
		f.Add(readFixture(f, n))
	}
	f.Add([]byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF"))
	names := []string{"f.pdf", "f.html", "f.json", "f.txt", "f.md", "f"}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range names {
			_, err := Extract(name, "", data)
			if err == nil {
				continue
			}
			var ie *Error
			if !errors.As(err, &ie) || (ie.Kind != ErrCorrupt && ie.Kind != ErrUnsupported && ie.Kind != ErrTooLarge) {
				t.Fatalf("Extract(%s): error %v has no kind", name, err)
			}
		}
	})
}

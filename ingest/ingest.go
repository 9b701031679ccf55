// Package ingest turns files into passages: it reads documents from a file or
// a directory, extracts their text (plain text, Markdown, JSON, HTML, PDF and
// source code) and splits the text into overlapping token-sized chunks, the
// way Letta loads a data source.
//
// The package does no networking and knows nothing of sources, jobs or
// embeddings; the caller stores and embeds the passages. Errors carry a kind
// that callers branch on with errors.Is: [ErrUnsupported] (the REST layer's
// 415), [ErrCorrupt] (the file claims a type but cannot be read as it) and
// [ErrTooLarge] (over the size limit, checked before the bytes are read, or
// yielding more text than [TextLimit] allows).
package ingest

import (
	"errors"
	"fmt"
)

// MaxFileSize is the default limit, in bytes, on the size of one file. A
// limit of zero or less passed to [CheckSize] or in [PassageOptions] means
// this value.
var MaxFileSize int64 = 50 << 20

// Limits on the text extracted from one file. A small file can hold a great
// deal of text (a PDF's Flate stream or a deeply nested JSON document
// expands hundreds of times), and every byte of it becomes passages, events
// and index entries, so the text is bounded by the file's own size: at most
// TextRatio times it, never less than MinTextSize, and never more than
// MaxTextSize. A file over its limit fails with [ErrTooLarge]; extraction
// stops as soon as the limit is passed, so the text over it is never built.
var (
	TextRatio   int64 = 20
	MinTextSize int64 = 1 << 20
	MaxTextSize int64 = 2 * MaxFileSize // 100 MiB: a 50 MiB text file, with room for UTF-16 and JSON paths
)

// TextLimit returns the most bytes of text a file of size bytes may yield.
func TextLimit(size int64) int64 {
	return min(MaxTextSize, max(MinTextSize, TextRatio*size))
}

// textTooLarge is the error of a file whose text is over limit.
func textTooLarge(name string, f Format, size, limit int64) error {
	return &Error{Name: name, Type: string(f), Kind: ErrTooLarge, Detail: fmt.Sprintf(
		"its extracted text is over %d bytes, the limit for a file of %d bytes (%d times its size, at least %d and at most %d bytes)",
		limit, size, TextRatio, MinTextSize, MaxTextSize)}
}

// The kinds of error this package returns, matched with errors.Is.
var (
	// ErrUnsupported means the file's type is not one this package reads
	// (an image, an office document, an archive, binary data).
	ErrUnsupported = errors.New("unsupported file type")
	// ErrCorrupt means the file has a supported type but its content cannot
	// be parsed as that type: a truncated PDF, invalid JSON, binary bytes in
	// a file named .txt.
	ErrCorrupt = errors.New("corrupt file")
	// ErrTooLarge means the file is over the size limit, or its text is
	// over the limit on extracted text ([TextLimit]).
	ErrTooLarge = errors.New("file too large")
)

// Error describes why one file could not be ingested. Its Kind is one of
// [ErrUnsupported], [ErrCorrupt] or [ErrTooLarge]; errors.Is matches both the
// Kind and the underlying Err.
type Error struct {
	Name   string // the file's name as given to the caller
	Type   string // the detected or claimed type: an extension, a MIME type or a format
	Kind   error  // ErrUnsupported, ErrCorrupt or ErrTooLarge
	Detail string // what is wrong, for a person to read
	Err    error  // the underlying cause, if any
}

func (e *Error) Error() string {
	s := "ingest"
	if e.Name != "" {
		s += " " + e.Name
	}
	s += ": " + e.Kind.Error()
	if e.Type != "" && e.Kind == ErrUnsupported {
		s += " " + e.Type
	} else if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the Kind and, if set, the underlying cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// CheckSize reports an [ErrTooLarge] error if size is over limit, and nil
// otherwise. A limit of zero or less means [MaxFileSize]. Call it with the
// size from a stat or a Content-Length before reading the file.
func CheckSize(size int64, limit int64) error {
	if limit <= 0 {
		limit = MaxFileSize
	}
	if size > limit {
		return &Error{Kind: ErrTooLarge, Detail: fmt.Sprintf("%d bytes is over the limit of %d bytes", size, limit)}
	}
	return nil
}

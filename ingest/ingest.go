// Package ingest turns files into passages: it reads documents from a file or
// a directory, extracts their text (plain text, Markdown, JSON, HTML, PDF and
// source code) and splits the text into overlapping token-sized chunks, the
// way Letta loads a data source.
//
// The package does no networking and knows nothing of sources, jobs or
// embeddings; the caller stores and embeds the passages. Errors carry a kind
// that callers branch on with errors.Is: [ErrUnsupported] (the REST layer's
// 415), [ErrCorrupt] (the file claims a type but cannot be read as it) and
// [ErrTooLarge] (over the size limit, checked before the bytes are read).
package ingest

import (
	"errors"
	"fmt"
)

// MaxFileSize is the default limit, in bytes, on the size of one file. A
// limit of zero or less passed to [CheckSize] or in [PassageOptions] means
// this value.
var MaxFileSize int64 = 50 << 20

// The kinds of error this package returns, matched with errors.Is.
var (
	// ErrUnsupported means the file's type is not one this package reads
	// (an image, an office document, an archive, binary data).
	ErrUnsupported = errors.New("unsupported file type")
	// ErrCorrupt means the file has a supported type but its content cannot
	// be parsed as that type: a truncated PDF, invalid JSON, binary bytes in
	// a file named .txt.
	ErrCorrupt = errors.New("corrupt file")
	// ErrTooLarge means the file is over the size limit.
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

package ingest

import (
	"context"
	"fmt"
	"io"
)

// PassageOptions configure [Passages].
type PassageOptions struct {
	// Chunk says how text is split; see [DefaultChunkOptions].
	Chunk ChunkOptions
	// MaxSize is the most bytes a document may have; zero or less means
	// [MaxFileSize].
	MaxSize int64
}

// DefaultPassageOptions returns Letta's settings for loading a file: chunks
// of 300 tokens overlapping by 20, and files up to [MaxFileSize].
func DefaultPassageOptions() PassageOptions {
	return PassageOptions{Chunk: DefaultChunkOptions()}
}

// Passages reads doc, extracts its text and chunks it: [Extract] then
// [Chunk]. An empty document gives no passages and no error.
//
// The size is checked against the limit before anything is read (from
// doc.Size, if known) and again while reading, so a document larger than it
// claims is cut off and refused. Errors: those of [Extract] ([ErrTooLarge],
// [ErrUnsupported], [ErrCorrupt], all as *[Error]), an error from doc.Open
// or from reading, and ctx.Err() if ctx is done before or after reading.
func Passages(ctx context.Context, doc Document, opt PassageOptions) ([]string, error) {
	text, err := Text(ctx, doc, opt.MaxSize)
	if err != nil {
		return nil, err
	}
	return Chunk(text, opt.Chunk), nil
}

// Text reads doc and extracts its text, checking its size against limit
// (zero or less means [MaxFileSize]) before and while reading. The type is
// detected before the content is read when the name or MIME type settles it,
// so an unsupported file is refused without reading it. It is the first half
// of [Passages], for callers that keep the whole text too.
func Text(ctx context.Context, doc Document, limit int64) (string, error) {
	if limit <= 0 {
		limit = MaxFileSize
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if doc.Size >= 0 {
		if err := CheckSize(doc.Size, limit); err != nil {
			err.(*Error).Name = doc.Name
			return "", err
		}
	}
	if doc.Open == nil {
		return "", fmt.Errorf("ingest: read %s: the document has no content", doc.Name)
	}
	// Refuse by name or MIME type before reading. With no content, Detect
	// fails only on those: sniffing for binary data waits for the bytes.
	if _, _, err := Detect(doc.Name, doc.MIME, nil); err != nil {
		return "", err
	}
	rc, err := doc.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return "", fmt.Errorf("ingest: read %s: %w", doc.Name, err)
	}
	if int64(len(data)) > limit {
		return "", &Error{Name: doc.Name, Kind: ErrTooLarge,
			Detail: fmt.Sprintf("more than %d bytes (the limit)", limit)}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, _, err := Detect(doc.Name, doc.MIME, data)
	if err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", nil
	}
	return extractFormat(doc.Name, f, data)
}

package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A Document is one file a [Connector] yields. Its content is read only when
// Open is called, so a caller can check Size (see [CheckSize]) and the type
// (see [Detect]) first, and large files are never held by the connector.
type Document struct {
	Name    string    // the file's name: its path relative to the connector's root, with "/" separators
	Path    string    // where it was read from (a file-system path), if anywhere
	MIME    string    // its MIME type, from the name; "" if the name does not tell
	Size    int64     // its size in bytes, or -1 if unknown
	ModTime time.Time // its last modification, if known

	// Open returns the content. Each call opens it anew; the caller closes
	// it. It is nil for a Document yielded with an error.
	Open func() (io.ReadCloser, error)
}

// A Connector yields the documents of a data source, like Letta's
// DataConnector. Documents yields each document once, in a deterministic
// order (sorted by Name). A document that cannot be read is yielded with a
// non-nil error and a Document whose Name says which it was; the sequence
// then goes on with the next one. If ctx is cancelled, the sequence yields
// ctx.Err() once and stops. Iterating stops early when the loop breaks.
// Implementations are safe to iterate more than once, and concurrently.
type Connector interface {
	Documents(ctx context.Context) iter.Seq2[Document, error]
}

// FileConnector returns a Connector for the single file at path. Its one
// Document is named by the file's base name.
func FileConnector(path string) Connector { return fileConnector{path: path} }

type fileConnector struct{ path string }

var _ Connector = fileConnector{}

func (c fileConnector) Documents(ctx context.Context) iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Document{Name: filepath.Base(c.path), Path: c.path}, err)
			return
		}
		yield(fileDocument(filepath.Base(c.path), c.path))
	}
}

// DirOptions configure [DirectoryConnector]. The zero value reads the files
// directly in the directory, of every type, skipping hidden ones.
type DirOptions struct {
	// Recursive also reads the files in subdirectories.
	Recursive bool
	// Extensions, if not empty, limits the documents to files with these
	// extensions (".md" or "md"; case is ignored).
	Extensions []string
	// Hidden includes files and directories whose names start with ".".
	Hidden bool
}

// DirectoryConnector returns a Connector for the regular files in dir (and,
// with opt.Recursive, below it). Documents are named by their path relative
// to dir and yielded sorted by that name. Symbolic links to files are
// followed; links to directories are not. Files of unsupported types are
// yielded too: [Passages] reports them with [ErrUnsupported].
func DirectoryConnector(dir string, opt DirOptions) Connector {
	exts := make(map[string]bool, len(opt.Extensions))
	for _, e := range opt.Extensions {
		e = strings.ToLower(e)
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		exts[e] = true
	}
	return dirConnector{dir: dir, opt: opt, exts: exts}
}

type dirConnector struct {
	dir  string
	opt  DirOptions
	exts map[string]bool
}

var _ Connector = dirConnector{}

// entry is a file found by the walk, or an error for a name.
type entry struct {
	name, path string
	err        error
}

func (c dirConnector) Documents(ctx context.Context) iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		entries, err := c.walk(ctx)
		if err != nil {
			yield(Document{Name: ".", Path: c.dir}, err)
			return
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				yield(Document{Name: e.name, Path: e.path}, err)
				return
			}
			if e.err != nil {
				if !yield(Document{Name: e.name, Path: e.path, Size: -1}, e.err) {
					return
				}
				continue
			}
			if !yield(fileDocument(e.name, e.path)) {
				return
			}
		}
	}
}

// walk lists the files to yield, sorted by name. Only an unreadable root is
// an error; anything below it becomes an entry with an error.
func (c dirConnector) walk(ctx context.Context) ([]entry, error) {
	info, err := os.Stat(c.dir)
	if err != nil {
		return nil, fmt.Errorf("ingest: read directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("ingest: read directory %s: not a directory", c.dir)
	}
	var entries []entry
	err = filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		rel, _ := filepath.Rel(c.dir, p)
		name := filepath.ToSlash(rel)
		if err != nil {
			if p == c.dir {
				return err
			}
			entries = append(entries, entry{name: name, path: p, err: fmt.Errorf("ingest: read %s: %w", name, err)})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p == c.dir {
			return nil
		}
		if !c.opt.Hidden && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if !c.opt.Recursive {
				return fs.SkipDir
			}
			return nil
		}
		if len(c.exts) > 0 && !c.exts[strings.ToLower(filepath.Ext(d.Name()))] {
			return nil
		}
		entries = append(entries, entry{name: name, path: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: read directory %s: %w", c.dir, err)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return entries, nil
}

// fileDocument stats the file at path and describes it.
func fileDocument(name, path string) (Document, error) {
	doc := Document{Name: name, Path: path, Size: -1}
	info, err := os.Stat(path)
	if err != nil {
		return doc, fmt.Errorf("ingest: read %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return doc, fmt.Errorf("ingest: read %s: not a regular file (%s)", name, info.Mode().Type())
	}
	doc.Size = info.Size()
	doc.ModTime = info.ModTime()
	doc.MIME = mimeFromName(name)
	doc.Open = func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("ingest: read %s: %w", name, err)
		}
		return f, nil
	}
	return doc, nil
}

// BytesDocument returns a Document for content held in memory, such as an
// upload.
func BytesDocument(name, mimeType string, data []byte) Document {
	return Document{
		Name: name, MIME: mimeType, Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

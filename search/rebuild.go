package search

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Suffixes of the directories a rebuild uses beside the live one.
const (
	freshSuffix = ".new"
	oldSuffix   = ".old"
)

// OpenFresh opens an empty index in dir+".new", removing whatever an
// earlier, unfinished rebuild left there, for the caller to fill from the log
// and then move into dir with SwapInto. The live index in dir is untouched.
func OpenFresh(dir string, opt Options) (*Index, error) {
	fresh := filepath.Clean(dir) + freshSuffix
	if err := os.RemoveAll(fresh); err != nil {
		return nil, fmt.Errorf("open fresh index: %w", err)
	}
	return Open(fresh, opt)
}

// SwapInto replaces the index in dir with ix (typically opened by OpenFresh)
// and reopens ix there; the old index's files are removed. The index that
// was open on dir must be closed first: its files are deleted. On success
// ix serves from dir with its contents and checkpoint unchanged; on error ix
// may be closed, and dir holds either the old index or ix's.
//
// The swap is two renames (dir → dir.old, ix → dir). A crash between them
// leaves no dir; the next Open of dir puts dir.old back, so the rebuild is
// lost but the old index is not.
func (ix *Index) SwapInto(dir string) error {
	dir = filepath.Clean(dir)
	if filepath.Clean(ix.dir) == dir {
		return errors.New("swap: the index is already in " + dir)
	}
	if err := ix.Close(); err != nil {
		return fmt.Errorf("swap: close: %w", err)
	}
	old := dir + oldSuffix
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("swap: %w", err)
		}
	}
	if err := os.Rename(ix.dir, dir); err != nil {
		os.Rename(old, dir)
		return fmt.Errorf("swap: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	os.RemoveAll(old)
	n, err := Open(dir, ix.opt)
	if err != nil {
		return fmt.Errorf("swap: reopen: %w", err)
	}
	ix.applyMu.Lock()
	ix.mu.Lock()
	ix.dir, ix.idx, ix.vecs, ix.vlog, ix.seq, ix.gen = n.dir, n.idx, n.vecs, n.vlog, n.seq, n.gen
	ix.closed = false
	ix.mu.Unlock()
	ix.applyMu.Unlock()
	return nil
}

// recoverSwap puts dir.old back when a crash during SwapInto left no dir.
func recoverSwap(dir string) error {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		return nil
	}
	old := dir + oldSuffix
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	if err := os.Rename(old, dir); err != nil {
		return fmt.Errorf("restore %s: %w", old, err)
	}
	return nil
}

package client

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
)

// MaxFileBytes is the largest file the clients read from disk to load into
// a source; the server may set a lower limit.
const MaxFileBytes = 50 << 20

// readUpload reads a file from disk for loading, refusing an oversized one
// before reading it.
func readUpload(name string) (service.Upload, error) {
	f, err := os.Open(name)
	if err != nil {
		return service.Upload{}, fault.Wrap(fault.Invalid, err, "cannot open %s", name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return service.Upload{}, fault.Wrap(fault.Invalid, err, "cannot read %s", name)
	}
	if fi.IsDir() {
		return service.Upload{}, fault.E(fault.Invalid, "%s is a directory; use LoadData with a directory connector", name)
	}
	if fi.Size() > MaxFileBytes {
		return service.Upload{}, fault.E(fault.TooLarge, "%s is %d bytes; the limit is %d", name, fi.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return service.Upload{}, fault.Wrap(fault.Invalid, err, "cannot read %s", name)
	}
	return service.Upload{Name: filepath.Base(name), Data: data}, nil
}

// LoadFileToSource loads the file at filename (on this machine) into a
// source. With blocking it returns once the job is completed or failed.
func (c core) LoadFileToSource(ctx context.Context, filename, sourceID string, blocking bool) (*api.Job, error) {
	up, err := readUpload(filename)
	if err != nil {
		return nil, err
	}
	jobs, err := c.b.loadFiles(ctx, sourceID, []service.Upload{up})
	if err != nil {
		return nil, err
	}
	if len(jobs) != 1 {
		return nil, fault.E(fault.Internal, "loading %s started %d jobs", filename, len(jobs))
	}
	if !blocking {
		return &jobs[0], nil
	}
	j, err := c.waitJob(ctx, jobs[0].ID)
	return &j, err
}

// waitJob polls a job until it is completed or failed.
func (c core) waitJob(ctx context.Context, id string) (api.Job, error) {
	delay := 10 * time.Millisecond
	for {
		j, err := c.b.getJob(ctx, id)
		if err != nil || j.Status == api.JobCompleted || j.Status == api.JobFailed {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, fault.Wrap(fault.Unavailable, ctx.Err(), "job %s is still %s", id, j.Status)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// ListFilesFromSource lists every file of a source, oldest first.
func (c core) ListFilesFromSource(ctx context.Context, sourceID string) ([]api.FileMetadata, error) {
	return collect(c.pageSize, func(f api.FileMetadata) string { return f.ID }, func(p api.Page) ([]api.FileMetadata, error) {
		return c.b.listFiles(ctx, sourceID, p)
	})
}

// DeleteFileFromSource removes a file and its passages from a source.
func (c core) DeleteFileFromSource(ctx context.Context, sourceID, fileID string) error {
	return c.b.deleteFile(ctx, sourceID, fileID)
}

// ListSourcePassages lists every passage of a source, oldest first.
func (c core) ListSourcePassages(ctx context.Context, sourceID string) ([]api.Passage, error) {
	return collect(c.pageSize, func(p api.Passage) string { return p.ID }, func(p api.Page) ([]api.Passage, error) {
		return c.b.sourcePassages(ctx, sourceID, p)
	})
}

// SearchArchivalMemory ranks the passages an agent's archival search sees
// (its own and its attached sources'): BM25 over their words, fused with
// vector similarity when the agent's embedding model is served.
func (c core) SearchArchivalMemory(ctx context.Context, agentID string, q service.ArchivalQuery) (*api.ArchivalSearch, error) {
	return one(c.b.searchPassages(ctx, agentID, q))
}

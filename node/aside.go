package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/sandbox"
)

// startAside is the work Start runs in goroutines of its own, beside steps
// that wait on something else: probing the tool sandbox (which waits on
// the interpreter's processes) and reading and decoding the snapshot's
// copy a clean Close left (CPU the server's recovery leaves to the other
// core) beside the server's start, and making the input consumers (which
// waits on the server) beside the restore of the read models. Start takes
// each result where it needs it (tools, snapshotCopy, inputs); cancel,
// deferred, ends and cleans up whatever it did not take.
type startAside struct {
	copied chan struct{} // closed once copy is set; nil: no copy read
	copy   *projections.Copy

	sbx      *sandbox.Runner
	probed   chan struct{} // closed once sbx has probed the host; nil: no probe
	sbxTaken bool

	stopPrep context.CancelFunc
	prepared chan struct{} // closed once prep and prepErr are set; nil: not begun
	prep     *bus.Inputs
	prepErr  error
	prepTook bool
}

// sandboxConfig is the tool sandbox of cfg.
func sandboxConfig(cfg Config) sandbox.Config {
	sb := sandbox.DefaultConfig()
	if cfg.Python != "" {
		sb.Python = cfg.Python
	}
	sb.HideDirs = []string{cfg.DataDir}
	sb.Pool = cfg.ToolPool
	return sb
}

// SnapshotCopyFile is the file in the data directory where Close leaves a
// copy of the snapshot it saved, for the next start to decode while the
// server starts; the start removes it. The copy is restored only when the
// snapshot store's snapshot has its digest (projections.Copy).
const SnapshotCopyFile = "projections.snapshot"

// readCopy begins reading and decoding the snapshot's copy in dir, if
// there is one, and removes the file: a copy serves one start.
func (a *startAside) readCopy(dir string, logger *slog.Logger) {
	a.copied = make(chan struct{})
	go func() {
		defer close(a.copied)
		file := filepath.Join(dir, SnapshotCopyFile)
		data, err := os.ReadFile(file)
		if err != nil {
			return // none: not closed cleanly, or never
		}
		if err := os.Remove(file); err != nil {
			logger.Warn("cannot remove the snapshot's copy", "err", err)
		}
		c, err := projections.DecodeCopy(data, bus.SnapshotDigest(data))
		if err != nil {
			logger.Warn("ignoring an unreadable copy of the snapshot", "err", err)
			return
		}
		a.copy = c
	}()
}

// snapshotCopy waits for the copy and hands it over; nil when there is none.
func (a *startAside) snapshotCopy() *projections.Copy {
	if a.copied == nil {
		return nil
	}
	<-a.copied
	c := a.copy
	a.copy = nil
	return c
}

// writeCopy leaves data, the snapshot Close saved, in dir for the next
// start. It is a cache of the store's snapshot, checked against its digest
// when read, so it is written without fsync.
func writeCopy(dir string, data []byte) error {
	tmp, err := os.CreateTemp(dir, SnapshotCopyFile+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, SnapshotCopyFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// probeTools begins r's probe of the host.
func (a *startAside) probeTools(r *sandbox.Runner) {
	a.sbx, a.probed = r, make(chan struct{})
	go func() {
		defer close(a.probed)
		r.Contained()
	}()
}

// tools waits for the probe and hands the runner over; nil if none began.
func (a *startAside) tools() *sandbox.Runner {
	if a.probed == nil {
		return nil
	}
	<-a.probed
	a.sbxTaken = true
	return a.sbx
}

// prepareInputs begins making l's input consumers (bus.Log.PrepareInputs).
func (a *startAside) prepareInputs(ctx context.Context, l *bus.Log) {
	ctx, a.stopPrep = context.WithCancel(ctx)
	a.prepared = make(chan struct{})
	go func() {
		defer close(a.prepared)
		a.prep, a.prepErr = l.PrepareInputs(ctx)
	}()
}

// inputs waits for the input consumers and hands them over.
func (a *startAside) inputs() (*bus.Inputs, error) {
	<-a.prepared
	a.prepTook = true
	return a.prep, a.prepErr
}

// cancel ends what was begun and not taken: it waits for the goroutines,
// closes an untaken sandbox and stops untaken consumers.
func (a *startAside) cancel() {
	if a.copied != nil {
		<-a.copied
	}
	if a.probed != nil {
		<-a.probed
		if !a.sbxTaken {
			a.sbx.Close()
		}
	}
	if a.prepared != nil {
		a.stopPrep()
		<-a.prepared
		if !a.prepTook && a.prep != nil {
			a.prep.Stop()
		}
	}
}

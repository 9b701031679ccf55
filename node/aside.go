package node

import (
	"context"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/sandbox"
)

// startAside is the work Start runs in goroutines of its own, beside steps
// that wait on something else: probing the tool sandbox (which waits on
// the interpreter's processes) beside the server's start, and making the
// input consumers (which waits on the server) beside the restore of the
// read models. Start takes each result where it needs it (tools, inputs);
// cancel, deferred, ends and cleans up whatever it did not take.
type startAside struct {
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

// Package bench runs engram's benchmark workloads beside their baselines and
// reports each figure with the floor it stands on, measured in the same run
// on the same machine.
//
// Every workload starts its own embedded node (or bare JetStream server) in
// a temporary data directory, which is removed when it ends; the memory
// workload measures each size in a fresh process when Options.Self names
// the engram binary, since a closed node of an earlier workload can stay on
// the heap for a while. Run runs the
// workloads in order; Report.Markdown renders the table the README shows,
// and Report is also the JSON that `engram bench --json FILE` writes.
//
// The step and search workloads are also go test benchmarks of this package
// (BenchmarkStep, BenchmarkStepsParallel, BenchmarkSearch), which run the
// same rig, fixture and searches, so that each is measured by one piece of
// code however it is run.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/node"
)

// Options selects and sizes the workloads.
type Options struct {
	// Quick runs every workload briefly: enough to produce every row, not
	// to trust the figures.
	Quick bool
	// Only lists the workloads to run by name (see Workloads); empty runs
	// all of them.
	Only []string
	// ReplayEvents is the size of the log the replay workload builds; 0
	// takes the default (20,000 with Quick, else 1,000,000).
	ReplayEvents int
	// MemoryAgents lists how many idle agents the memory workload creates,
	// one measurement (two rows) each; empty takes the default (10,000 and
	// 100,000; 500 and 2,000 with Quick).
	MemoryAgents []int
	// SearchSizes lists the passages of the search workload's fixtures, one
	// set of rows each; empty takes the default (10,000 and 100,000; 1,000
	// and 5,000 with Quick).
	SearchSizes []int
	// SearchProfile, when set, is a file the search workload writes a CPU
	// profile of its timed searches at its largest size to (not of
	// building the fixture).
	SearchProfile string
	// ReplayProfile, when set, is a file the replay workload writes a CPU
	// profile of its rebuild to (the node's start replaying the whole log:
	// not filling the log, the raw reads or the snapshot restart).
	ReplayProfile string
	// RestartProfile, when set, is a file the replay workload writes a
	// CPU profile of its restart from a snapshot to (the node's start
	// alone, not the close before it that saves the snapshot).
	RestartProfile string
	// Server is the command that runs an engram server, up to and
	// including "server" (engram bench gives itself); the cluster
	// workload's rows that kill server processes need it and are left out
	// without it.
	Server []string
	// Self is the command that runs `engram bench` (engram bench gives
	// itself); with it the memory workload measures each size in a fresh
	// process of its own (MemoryChildFlag), without it in this one, after
	// what the workloads before it left on the heap.
	Self []string
	// TempDir is where data directories are made; "" uses os.TempDir.
	TempDir string
	// Progress, when set, receives one line as each workload starts.
	Progress io.Writer
}

// Row is one line of the table: a figure of engram's beside its baseline.
type Row struct {
	Workload string `json:"workload"` // name of the workload that produced it
	What     string `json:"what"`     // what was measured
	Engram   string `json:"engram"`   // engram's figure, formatted
	Baseline string `json:"baseline"` // the baseline's name and figure, or "—"
	Ratio    string `json:"ratio"`    // engram ÷ baseline, or "—"
	Target   string `json:"target"`   // the budget in DESIGN.md, with "missed" when missed
	Note     string `json:"note,omitempty"`
	// Status is "ok", "not built" (the workload's package is not in this
	// build) or "failed" (Note says why).
	Status string `json:"status"`
	// Metrics holds the raw numbers behind the formatted cells, in the
	// units their names end with (_us, _per_s, _bytes, _s, _ratio).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// Report is the outcome of one run.
type Report struct {
	Started   time.Time `json:"started"`
	Took      string    `json:"took"`
	Quick     bool      `json:"quick"`
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	Arch      string    `json:"arch"`
	CPUs      int       `json:"cpus"`
	Rows      []Row     `json:"rows"`
}

// Workload is one named benchmark. Run returns its rows; a nil Run means the
// workload's package is not in this build, and it reports one "not built"
// row per entry of Rows.
type Workload struct {
	Name string
	Doc  string
	Run  func(ctx context.Context, env *Env) ([]Row, error)
	// NotBuilt names the rows a workload without Run reports.
	NotBuilt []string
}

// Env is what a running workload gets: the options and a place for data.
type Env struct {
	Options
	dirs []string
}

// Dir makes a fresh temporary data directory, removed when the workload ends.
func (e *Env) Dir() (string, error) {
	d, err := os.MkdirTemp(e.TempDir, "engram-bench-")
	if err != nil {
		return "", err
	}
	e.dirs = append(e.dirs, d)
	return d, nil
}

// quietNode starts a node in a fresh data directory with fsync relaxed
// and no snapshots: the set-up of workloads that measure something else.
func (e *Env) quietNode(ctx context.Context) (*node.Node, error) {
	dir, err := e.Dir()
	if err != nil {
		return nil, err
	}
	return startQuietNode(ctx, dir)
}

// startQuietNode is quietNode in a directory of the caller's (a
// benchmark's temporary one).
func startQuietNode(ctx context.Context, dir string) (*node.Node, error) {
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = false
	cfg.SnapshotEvery = -1
	return node.Start(ctx, cfg)
}

func (e *Env) cleanup() {
	for _, d := range e.dirs {
		os.RemoveAll(d)
	}
	e.dirs = nil
}

// Names lists the workload names in the order Run runs them.
func Names() []string {
	var out []string
	for _, w := range Workloads {
		out = append(out, w.Name)
	}
	return out
}

// Run runs the selected workloads in order. A workload that fails reports a
// "failed" row and the others still run; the error is about the options.
func Run(ctx context.Context, opts Options) (*Report, error) {
	for _, n := range opts.Only {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("no workload %q (have %s)", n, strings.Join(Names(), ", "))
		}
	}
	if opts.ReplayEvents < 0 || slices.ContainsFunc(opts.MemoryAgents, func(n int) bool { return n <= 0 }) || slices.ContainsFunc(opts.SearchSizes, func(n int) bool { return n <= 0 }) {
		return nil, errors.New("sizes must be positive")
	}
	r := &Report{Started: time.Now().UTC(), Quick: opts.Quick, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	for _, w := range Workloads {
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, w.Name) {
			continue
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: %s ...\n", w.Name)
		}
		if w.Run == nil {
			for _, what := range w.NotBuilt {
				r.Rows = append(r.Rows, Row{Workload: w.Name, What: what, Engram: "not built", Baseline: "—", Ratio: "—", Target: "—",
					Status: "not built", Note: "the " + w.Name + " package is not in this build"})
			}
			continue
		}
		env := &Env{Options: opts}
		rows, err := w.Run(ctx, env)
		env.cleanup()
		for i := range rows {
			rows[i].Workload = w.Name
			if rows[i].Status == "" {
				rows[i].Status = "ok"
			}
			if opts.Quick { // a few samples judge nothing
				t := strings.TrimSuffix(strings.TrimSuffix(rows[i].Target, ": met"), ": **missed**")
				if t != rows[i].Target {
					rows[i].Target = t + " (not judged in --quick)"
				}
			}
		}
		r.Rows = append(r.Rows, rows...)
		if err != nil {
			r.Rows = append(r.Rows, Row{Workload: w.Name, What: w.Doc, Engram: "failed", Baseline: "—", Ratio: "—", Target: "—", Status: "failed", Note: err.Error()})
		}
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
	}
	r.Took = time.Since(r.Started).Round(time.Millisecond).String()
	return r, nil
}

// Markdown renders the report as the README's table, with a line naming the
// machine and the command.
func (r *Report) Markdown() string {
	var b strings.Builder
	mode := "full run"
	if r.Quick {
		mode = "--quick run (figures are for smoke-testing only)"
	}
	fmt.Fprintf(&b, "engram bench, %s: %s, %s/%s, %d CPUs, %s, took %s\n\n", mode, r.Started.Format(time.RFC3339), r.OS, r.Arch, r.CPUs, r.GoVersion, r.Took)
	b.WriteString("| workload | what | engram | baseline (same run) | ratio | target (DESIGN.md) | note |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", row.Workload, cell(row.What), cell(row.Engram), cell(row.Baseline), cell(row.Ratio), cell(row.Target), cell(row.Note))
	}
	return b.String()
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

func cell(s string) string {
	if s == "" {
		return "—"
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// latencies collects durations and reports percentiles.
type latencies []time.Duration

// pct returns the p-th percentile (0 < p ≤ 1), nearest rank.
func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (l latencies) mean() time.Duration {
	if len(l) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range l {
		t += d
	}
	return t / time.Duration(len(l))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// dur formats a duration for the table: µs below 10 ms, else ms or s.
func dur(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.0f µs", us(d))
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// rate formats a per-second figure with thousands separators.
func rate(v float64, unit string) string {
	return thousands(int64(v+0.5)) + " " + unit
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// verdict appends ": **missed**" to a target when ok is false.
func verdict(target string, ok bool) string {
	if ok {
		return target + ": met"
	}
	return target + ": **missed**"
}

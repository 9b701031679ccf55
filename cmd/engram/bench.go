package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/engram-dev/engram/bench"
)

// runBench runs the benchmark workloads, prints the Markdown table and
// writes the JSON report.
func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "run each workload briefly (to check the suite works; figures are not to be trusted)")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	only := fs.String("only", "", "comma-separated workloads to run: "+strings.Join(bench.Names(), ","))
	events := fs.Int("replay-events", 0, "events in the replay workload's log (default 1,000,000; 20,000 with --quick)")
	memoryAgents := fs.String("memory-agents", "", "comma-separated idle agents in the memory workload's measurements, each in a fresh process (default 10000,100000; 500,2000 with --quick)")
	idle := fs.Int("idle-agents", 0, "one size for the memory workload: --memory-agents N")
	memoryChild := fs.Int(bench.MemoryChildFlag, 0, "") // hidden: measure memory at N agents here, JSON to stdout
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	searchSizes := fs.String("search-sizes", "", "comma-separated passages in the search workload's fixtures (default 10000,100000; 1000,5000 with --quick)")
	searchProfile := fs.String("search-cpuprofile", "", "write a CPU profile of the search workload's timed searches at its largest size to this file")
	replayProfile := fs.String("replay-cpuprofile", "", "write a CPU profile of the replay workload's rebuild (not the log's fill, the raw reads or the snapshot restart) to this file")
	restartProfile := fs.String("restart-cpuprofile", "", "write a CPU profile of the replay workload's restart from a snapshot (the node's start alone) to this file")
	dir := fs.String("tmp", "", "directory for the workloads' temporary data (default: the system's)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: engram bench [--quick] [--json FILE] [--only a,b]")
		shown := flag.NewFlagSet("bench", flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != bench.MemoryChildFlag {
				shown.Var(f.Value, f.Name, f.Usage)
			}
		})
		shown.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	opts := bench.Options{Quick: *quick, ReplayEvents: *events, TempDir: *dir, Progress: os.Stderr, SearchProfile: *searchProfile,
		ReplayProfile: *replayProfile, RestartProfile: *restartProfile}
	if *memoryChild != 0 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return bench.RunMemoryChild(ctx, opts, *memoryChild, os.Stdout)
	}
	if self, err := os.Executable(); err == nil {
		opts.Server = []string{self, "server"} // the cluster workload runs server processes
		opts.Self = []string{self, "bench"}    // the memory workload runs in fresh ones
	}
	var err error
	if opts.SearchSizes, err = sizes("search-sizes", *searchSizes, "passages"); err != nil {
		return err
	}
	if opts.MemoryAgents, err = sizes("memory-agents", *memoryAgents, "agents"); err != nil {
		return err
	}
	if *idle < 0 {
		return fmt.Errorf("--idle-agents: %d is not a positive number of agents", *idle)
	}
	if *idle > 0 && len(opts.MemoryAgents) == 0 {
		opts.MemoryAgents = []int{*idle}
	}
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			if n = strings.TrimSpace(n); n != "" {
				opts.Only = append(opts.Only, n)
			}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.Run(ctx, opts)
	if r != nil {
		fmt.Print(r.Markdown())
		if *jsonFile != "" {
			data, jerr := r.JSON()
			if jerr == nil {
				jerr = os.WriteFile(*jsonFile, append(data, '\n'), 0o644)
			}
			if jerr != nil && err == nil {
				err = fmt.Errorf("write %s: %w", *jsonFile, jerr)
			}
		}
	}
	return err
}

// sizes parses a flag's comma-separated list of positive counts.
func sizes(name, list, unit string) ([]int, error) {
	var out []int
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--%s: %q is not a positive number of %s", name, n, unit)
		}
		out = append(out, v)
	}
	return out, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/client/local"
	"github.com/engram-dev/engram/ingest"
)

// runLoad is `engram load PATH --source NAME`: load a file or a directory
// into a source of a running server (or of a data directory), with a
// progress bar.
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	source := fs.String("source", "", "name of the source to load into (created if missing)")
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	dataDir := fs.String("data-dir", "", "load into this data directory in-process instead of a server (the server must not be running on it)")
	recursive := fs.Bool("recursive", true, "descend into subdirectories")
	// Flags may come after the path, as in the usage line.
	var paths []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(paths) != 1 || *source == "" {
		return errors.New("usage: engram load PATH --source NAME [--url URL | --data-dir DIR] [--token T]")
	}
	path := paths[0]
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var conn ingest.Connector = ingest.FileConnector(path)
	if fi.IsDir() {
		conn = ingest.DirectoryConnector(path, ingest.DirOptions{Recursive: *recursive})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// A data directory means a node in this process; otherwise the server.
	baseURL := *base
	if *dataDir != "" {
		baseURL = ""
	}
	c, err := local.CreateClient(ctx, baseURL, *token, local.WithDataDir(*dataDir))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.GetSourceID(ctx, *source); err != nil {
		if _, err := c.CreateSource(ctx, *source); err != nil {
			return fmt.Errorf("create source %s: %w", *source, err)
		}
		fmt.Fprintf(os.Stderr, "created source %s\n", *source)
	}
	out := io.Discard // a bar only on a terminal; logs and pipes get plain lines
	terminal := false
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		out, terminal = os.Stderr, true
	}
	lastDone := -1
	bar := progressbar.NewOptions(-1,
		progressbar.OptionSetDescription("loading"),
		progressbar.OptionSetWriter(out),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	)
	rep, err := c.LoadData(ctx, conn, *source, func(p client.LoadProgress) {
		bar.ChangeMax(p.Documents)
		bar.Describe(fmt.Sprintf("documents (%d passages)", p.Passages))
		_ = bar.Set(p.DocumentsDone)
		if !terminal && p.DocumentsDone != lastDone {
			lastDone = p.DocumentsDone
			fmt.Fprintf(os.Stderr, "loading: %d of %d documents, %d passages\n", p.DocumentsDone, p.Documents, p.Passages)
		}
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d of %d documents into %s: %d passages\n", rep.Documents-len(rep.Failed), rep.Documents, *source, rep.Passages)
	if len(rep.Failed) > 0 {
		var b strings.Builder
		for _, f := range rep.Failed {
			fmt.Fprintf(&b, "\n  %s: %s", f.Name, f.Error)
		}
		return fmt.Errorf("%d documents failed:%s", len(rep.Failed), b.String())
	}
	return nil
}

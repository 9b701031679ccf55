package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/engram-dev/engram/verify"
)

// runClusterLocal starts a cluster of n engram servers on this machine, as
// child processes on loopback, for a quick try: node i serves REST on
// http-port+i and routes on route-port+i, keeps its data in DIR/n<i>, and
// all share DIR/log.key. It runs until interrupted, then stops them all
// (SIGTERM: each hands its partitions over). Flags after "--" go to every
// server.
func runClusterLocal(args []string) error {
	fs := flag.NewFlagSet("cluster-local", flag.ContinueOnError)
	n := fs.Int("nodes", 3, "how many nodes")
	dir := fs.String("data-dir", "engram-cluster", "directory for the nodes' data directories and their shared log.key")
	httpPort := fs.Int("http-port", 8283, "REST port of the first node; the others count up")
	routePort := fs.Int("route-port", 6222, "cluster route port of the first node; the others count up")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *n < 1 || *n > 9 {
		return fmt.Errorf("--nodes %d: want 1 to 9", *n)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	key := filepath.Join(*dir, verify.KeyFile)
	if _, _, err := verify.LoadOrCreateKey(key); err != nil {
		return err
	}
	var peers []string
	for i := range *n {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", *routePort+i))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		procs []*exec.Cmd
	)
	for i := range *n {
		name := fmt.Sprintf("n%d", i+1)
		argv := append([]string{"server", "--node-name", name, "--data-dir", filepath.Join(*dir, name),
			"--http-addr", fmt.Sprintf("127.0.0.1:%d", *httpPort+i), "--nats-addr", "",
			"--cluster-addr", fmt.Sprintf("127.0.0.1:%d", *routePort+i), "--peers", strings.Join(peers, ","),
			"--log-key-file", key}, fs.Args()...)
		cmd := exec.Command(self, argv...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // an interrupt reaches the nodes through us, in order
		if err := cmd.Start(); err != nil {
			for _, p := range procs {
				p.Process.Signal(syscall.SIGTERM)
			}
			return fmt.Errorf("start %s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "engram cluster-local: %s (pid %d) at http://127.0.0.1:%d\n", name, cmd.Process.Pid, *httpPort+i)
		procs = append(procs, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "engram cluster-local: %d nodes; engram status --url http://127.0.0.1:%d shows them; Ctrl-C stops them\n", *n, *httpPort)
	<-ctx.Done()
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Package sandbox runs users' Python tools in a separate python3 process with
// limits, a clean environment and a fresh working directory.
//
// Each Run starts one interpreter, "python3 -I -S -c <runner>", where the
// runner is a Python script embedded in the binary (runner.py). The call goes
// to the runner as JSON on stdin. Before any tool code runs, the runner lowers
// its own resource limits (address space, CPU time, open files, file size;
// soft and hard, so the tool cannot raise them again) and empties stdin. It
// then executes the tool's source in a fresh globals dict, calls the function
// with the keyword arguments and packages the return value as Letta 0.5 does.
// The answer comes back on file descriptor 3; the tool's prints go to stdout
// and stderr, which are captured separately, so they cannot corrupt it.
//
// The process gets only PATH=/usr/bin:/bin and HOME=<its working directory>
// in its environment. Where the host permits (probed once per Runner), each
// call is contained: util-linux unshare gives it its own mount, network and
// PID namespaces ("unshare --mount --net --pid --fork --mount-proc", plus
// --map-root-user when the server is not root), and the runner, PID 1 there,
// builds its view before any tool code runs:
//
//   - HideDirs are covered by an empty read-only tmpfs;
//   - /tmp, /var/tmp and /dev/shm get an empty tmpfs each (64 MiB), and /tmp
//     is the working directory and HOME, so nothing the tool writes there
//     reaches the host;
//   - when the server runs as root, the call runs as uid and gid 65534
//     (nobody) with no supplementary groups and PR_SET_NO_NEW_PRIVS, so
//     /etc/shadow, /root and the server's files are as closed to it as to
//     any unprivileged user; an interpreter installed where that user cannot
//     enter (pyenv under /root) is bind-mounted read-only into an otherwise
//     empty tmpfs over the closed directory;
//   - RLIMIT_NPROC caps the processes (and threads) at 128;
//   - /proc shows only the call's processes, it can signal nothing outside
//     them, and when the call's process ends PID 1 reports how and exits,
//     which kills every descendant, setsid-detached or not.
//
// Where containment is not permitted the runner falls back, in order, to a
// mount and network namespace that only hides HideDirs, to a network
// namespace alone, and to none; the process then runs in a fresh temporary
// directory on the host, in its own process group, which is killed when the
// call times out, when ctx is cancelled, and after the runner exits.
// Isolation says, in one line, what is in force and why the rest is not.
//
// With Config.Pool, interpreters are started ahead of calls: each enters its
// namespaces, hides HideDirs, imports the runner's modules and then waits for
// its one request on stdin; a call takes a waiting one, and another is
// started in its place. A pooled interpreter still serves exactly one call
// and exits, so nothing a tool does can reach the next call; pooling moves
// the interpreter's start-up (most of a trivial call's latency) off the
// call's path without saving any CPU.
//
// What it does not protect against: when the server is not root, a
// contained tool runs as the server's own user (root only of its user
// namespace), so files of that user outside HideDirs stay readable; run the
// server as a dedicated user. When the server is root, all contained calls
// share uid 65534, so their process limit is shared, and a tool can read
// what any unprivileged user can. The kernel is shared: a kernel exploit
// escapes every layer here. -S means only the standard library is
// importable.
package sandbox

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

//go:embed runner.py
var runnerScript string

// Defaults used for zero Config fields.
const (
	DefaultPython      = "python3"
	DefaultTimeout     = 30 * time.Second
	DefaultMemoryBytes = 512 << 20
	DefaultOutputBytes = 64 << 10
)

// Limits the Config does not expose.
const (
	openFiles = 64       // RLIMIT_NOFILE
	fileBytes = 16 << 20 // RLIMIT_FSIZE: the largest file a tool may write
)

// Config says how to run tools. The zero value of each field means its
// default.
type Config struct {
	// Python is the interpreter, a path or a name looked up in the server's
	// PATH. "" means "python3". It is resolved once, to the real executable
	// (so that version-manager shims work with a clean environment).
	Python string
	// Timeout is the wall-clock limit per call; 0 means 30s.
	Timeout time.Duration
	// MemoryBytes is the address-space limit (RLIMIT_AS); 0 means 512 MiB.
	MemoryBytes int64
	// CPUSeconds is the CPU-time limit (RLIMIT_CPU); 0 means the call's
	// timeout rounded up to whole seconds, plus one: a single-threaded tool
	// that spins then always meets the wall-clock limit first (its CPU time
	// cannot pass its wall time) and is reported as timed out, while one
	// that burns CPU on several threads is still stopped.
	CPUSeconds int
	// OutputBytes caps the captured stdout and stderr together, and
	// separately the returned text; 0 means 64 KiB.
	OutputBytes int
	// HideDirs are directories tools must not see, such as the server's data
	// directory. Where the kernel permits a mount namespace, each is covered
	// by an empty read-only tmpfs for the call; where it does not, they stay
	// readable and Isolation says so. Paths are resolved (made absolute,
	// symlinks followed) when the Runner is first used; missing ones are
	// skipped.
	HideDirs []string
	// Pool is how many interpreters to keep started and waiting for a call
	// (0: none, every call starts its own). A pooled interpreter has done
	// only what every call does before reading its request (start, enter
	// its namespaces, hide HideDirs, import the runner's modules); it then
	// serves exactly one call and exits, like an unpooled one, so no state
	// passes between calls. The pool is filled on the first Run; Close
	// stops it.
	Pool int
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Python:      DefaultPython,
		Timeout:     DefaultTimeout,
		MemoryBytes: DefaultMemoryBytes,
		OutputBytes: DefaultOutputBytes,
	}
}

// Validate reports a negative limit.
func (c Config) Validate() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("sandbox: negative Timeout %s", c.Timeout)
	case c.MemoryBytes < 0:
		return fmt.Errorf("sandbox: negative MemoryBytes %d", c.MemoryBytes)
	case c.CPUSeconds < 0:
		return fmt.Errorf("sandbox: negative CPUSeconds %d", c.CPUSeconds)
	case c.OutputBytes < 0:
		return fmt.Errorf("sandbox: negative OutputBytes %d", c.OutputBytes)
	case c.Pool < 0:
		return fmt.Errorf("sandbox: negative Pool %d", c.Pool)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Python == "" {
		c.Python = d.Python
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = d.MemoryBytes
	}
	if c.OutputBytes == 0 {
		c.OutputBytes = d.OutputBytes
	}
	return c
}

// Call is one invocation of a tool.
type Call struct {
	// Source is the tool's whole Python source.
	Source string
	// Function is the function to call (the tool's name).
	Function string
	// Args are the keyword arguments.
	Args map[string]any
	// AgentState, when non-nil, is decoded and passed as a read-only dict
	// (lists become tuples) to a function that has an agent_state parameter
	// or **kwargs. A legacy function whose first parameter is named self
	// receives it (or None, when AgentState is nil) as self instead, as
	// Letta 0.5 passes self=agent.
	AgentState json.RawMessage
	// Timeout overrides Config.Timeout when non-zero.
	Timeout time.Duration
	// Env are environment variables for this call alone (an agent's
	// secrets), set in the tool's process before its code runs, beside
	// the clean environment. They travel on its stdin, not its command
	// line or initial environment.
	Env map[string]string
}

// Result is what a tool that returned normally produced.
type Result struct {
	// Return is the return value packaged as Letta does: a str as is, None
	// as "None", a dict or list as JSON (indent 2, non-ASCII kept), anything
	// else as str(x). Text over Config.OutputBytes is cut there and ends with
	// a note saying so.
	Return string
	// Stdout and Stderr are the lines the tool printed. When together they
	// exceed Config.OutputBytes, the rest is dropped and the stream that
	// overflowed ends with a note saying so.
	Stdout []string
	Stderr []string
}

// Failure is the error for anything the tool did wrong: an exception it raised
// (Type is the exception class, such as "ValueError", and Message its str), a
// timeout ("TimeoutError"), exhausted memory ("MemoryError"), another limit
// such as CPU time, file size, output size or a fatal signal
// ("ResourceLimit"), exiting without returning ("SystemExit"), or source that
// does not compile ("SyntaxError") or lacks the function ("NameError").
// Stdout and Stderr hold what the tool printed before it failed.
type Failure struct {
	Type    string
	Message string
	Stdout  []string
	Stderr  []string
}

func (f *Failure) Error() string { return f.Type + ": " + f.Message }

// Runner runs tool calls. It is safe for concurrent use; every call gets its
// own process and directory.
type Runner struct {
	cfg Config

	setupOnce sync.Once
	// Written once by setup, read-only afterwards.
	python    string   // the resolved interpreter
	pythonErr error    // why the interpreter cannot be used
	unshare   string   // path of unshare if a namespace is used, else ""
	nsFlags   []string // unshare's flags, when unshare is used
	runArgs   []string // the runner's own flags (--hide, --init, --private-tmp, --user)
	contained bool     // a PID namespace, a private /tmp and the process limit are in force
	netNote   string   // whether the network is isolated, and how
	hide      []string // resolved HideDirs, when they can be hidden
	hideNote  string   // whether HideDirs are hidden, and how
	userNote  string   // the identity tools run as
	procNote  string   // what contains the call's processes
	tmpNote   string   // where the tool's /tmp is

	poolOnce sync.Once
	poolMu   sync.Mutex // guards idle, closed and filling
	idle     []*process // started interpreters waiting for a call
	filling  int        // interpreters being started for the pool
	closed   bool
}

// New returns a Runner for cfg. Zero fields take their defaults; a config
// that does not Validate makes every Run fail.
func New(cfg Config) *Runner {
	return &Runner{cfg: cfg.withDefaults()}
}

// setup resolves the interpreter and probes unshare, once.
func (r *Runner) setup() {
	r.setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.python, r.pythonErr = resolvePython(ctx, r.cfg.Python)
		if r.pythonErr != nil {
			r.netNote = "not isolated (no interpreter to probe with)"
			r.hideNote = "not hidden (no interpreter to probe with)"
			r.userNote, r.procNote, r.tmpNote = "none (no interpreter)", "none (no interpreter)", "none (no interpreter)"
			return
		}
		r.probe(ctx)
	})
}

// Nobody is the identity tools run as when the server runs as root.
const (
	nobodyUID = 65534
	nobodyGID = 65534
)

// processes is RLIMIT_NPROC for a contained call. The kernel counts it per
// user: when the server runs as root, every contained call runs as uid
// 65534 and their processes (and threads) count together.
const processes = 128

// probe finds the isolation this host permits, best first: full
// containment (user, mount, network and PID namespaces, a private /tmp, an
// unprivileged identity), then a mount and network namespace that hides
// HideDirs, then a network namespace alone, then none. Each probe runs the
// runner once, as a call would.
func (r *Runner) probe(ctx context.Context) {
	dirs, inTemp := r.hideDirs()
	list := strings.Join(dirs, ", ")
	r.procNote = "process group only (a tool can see the host's processes and signal those of its own user; a detached child outlives the call)"
	r.tmpNote = "the host's /tmp (the working directory is a fresh directory in it)"
	r.userNote = fmt.Sprintf("the server's own user (uid %d), no further restriction", os.Geteuid())
	if os.Geteuid() == 0 {
		r.userNote = "root, the server's own user: tools can read every file root can"
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		r.netNote = "not isolated (unshare not found)"
		r.hideNote = notHidden(list, "no user namespace")
		return
	}

	flags := []string{"--mount", "--net", "--pid", "--fork", "--mount-proc"}
	args := []string{"--init", "--private-tmp"}
	root := os.Geteuid() == 0
	if root {
		args = append(args, "--user", fmt.Sprintf("%d:%d", nobodyUID, nobodyGID))
	} else {
		flags = append([]string{"--map-root-user"}, flags...)
	}
	fullErr := r.probeRun(ctx, path, flags, args)
	if fullErr == "" {
		r.unshare, r.nsFlags, r.contained = path, flags, true
		for _, d := range dirs {
			args = append(args, "--hide", d)
		}
		r.runArgs = args
		r.netNote = "isolated (own network namespace)"
		limit := fmt.Sprintf("at most %d processes", processes)
		if root {
			limit += fmt.Sprintf(" (counted for uid %d, so across concurrent calls)", nobodyUID)
		}
		r.procNote = "own PID namespace (/proc shows only the call's processes; no signals beyond them), " + limit + ", all killed when the call ends"
		r.tmpNote = "private (empty tmpfs over /tmp, /var/tmp and /dev/shm, 64 MiB each; the working directory is /tmp)"
		if root {
			r.userNote = fmt.Sprintf("uid %d, gid %d, no supplementary groups, no new privileges (the interpreter's installation reachable read-only)", nobodyUID, nobodyGID)
		} else {
			r.userNote = fmt.Sprintf("the server's own user (uid %d, root of a user namespace): its files stay readable unless hidden", os.Geteuid())
		}
		r.hide = dirs
		if len(dirs) > 0 {
			r.hideNote = list + " hidden (empty read-only tmpfs in the call's mount namespace)"
		} else {
			r.hideNote = "none to hide"
		}
		return
	}
	r.procNote += "; containment not permitted: " + fullErr

	mountErr := ""
	if len(dirs) > 0 && inTemp == "" {
		if mountErr = r.probeMount(ctx, path); mountErr == "" {
			r.unshare, r.nsFlags = path, []string{"--mount", "--net", "--map-root-user"}
			for _, d := range dirs {
				r.runArgs = append(r.runArgs, "--hide", d)
			}
			r.hide = dirs
			r.netNote = "isolated (unshare --net --map-root-user)"
			r.hideNote = list + " hidden (empty read-only tmpfs in a mount namespace, locked by a nested user namespace)"
			return
		}
	}
	r.unshare, r.netNote = probeUnshare(ctx, r.python)
	if r.unshare != "" {
		r.nsFlags = []string{"--net", "--map-root-user"}
	}
	switch {
	case len(dirs) == 0:
		r.hideNote = "none to hide"
	case inTemp != "":
		r.hideNote = notHidden(list, "the temporary directory "+inTemp+" is inside it")
	case r.unshare == "":
		r.hideNote = notHidden(list, "no user namespace")
	default:
		r.hideNote = notHidden(list, "mount namespace not permitted: "+mountErr)
	}
}

func notHidden(list, why string) string {
	if list == "" {
		return "none to hide"
	}
	return fmt.Sprintf("%s NOT hidden (%s)", list, why)
}

// hideDirs resolves HideDirs. inTemp names the temporary directory when it
// lies inside one of them (so a host working directory would be hidden too).
func (r *Runner) hideDirs() (dirs []string, inTemp string) {
	for _, d := range r.cfg.HideDirs {
		abs, err := filepath.Abs(d)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil || abs == "/" {
			continue
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() && !slices.Contains(dirs, abs) {
			dirs = append(dirs, abs)
		}
	}
	if tmp, err := filepath.EvalSymlinks(os.TempDir()); err == nil {
		for _, d := range dirs {
			if tmp == d || strings.HasPrefix(tmp, d+string(filepath.Separator)) {
				return dirs, tmp
			}
		}
	}
	return dirs, ""
}

// probeRun runs the runner's probe under unshare with flags, hiding a
// directory of its own. It returns "" when the probe passed, else why not.
func (r *Runner) probeRun(ctx context.Context, unshare string, flags, args []string) string {
	dir, err := os.MkdirTemp("", "engram-sandbox-probe-")
	if err != nil {
		return err.Error()
	}
	defer removeDir(dir)
	if err := os.WriteFile(filepath.Join(dir, "visible"), nil, 0o600); err != nil {
		return err.Error()
	}
	argv := append(append(slices.Clone(flags), r.python, "-I", "-S", "-c", runnerScript, "--probe", "--hide", dir), args...)
	cmd := exec.CommandContext(ctx, unshare, argv...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err != nil || msg != "ok" {
		if msg == "" && err != nil {
			msg = err.Error()
		}
		return firstLine(msg)
	}
	return ""
}

// probeMount checks that the runner can hide a directory in a mount and
// network namespace. It returns "" when it can, else why not.
func (r *Runner) probeMount(ctx context.Context, unshare string) string {
	return r.probeRun(ctx, unshare, []string{"--mount", "--net", "--map-root-user"}, nil)
}

// resolvePython finds the executable behind name. It asks the interpreter
// itself, with the server's environment, so that a shim (pyenv, asdf) that
// needs its environment is resolved to the real binary, which does not.
func resolvePython(ctx context.Context, name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("sandbox: find python %q: %w", name, err)
	}
	out, err := exec.CommandContext(ctx, path, "-I", "-S", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("sandbox: run %s: %w", path, err)
	}
	if exe := strings.TrimSpace(string(out)); filepath.IsAbs(exe) {
		return exe, nil
	}
	return path, nil
}

// probeUnshare reports the path of unshare if it may run python in a new user
// and network namespace, or why not.
func probeUnshare(ctx context.Context, python string) (path, note string) {
	path, err := exec.LookPath("unshare")
	if err != nil {
		return "", "not isolated (unshare not found)"
	}
	cmd := exec.CommandContext(ctx, path, "--net", "--map-root-user", python, "-I", "-S", "-c", "pass")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Sprintf("not isolated (unshare not permitted: %s)", firstLine(msg))
	}
	return path, "isolated (unshare --net --map-root-user)"
}

// Contained reports whether calls run fully contained: in their own mount,
// network and PID namespaces with a private /tmp and a process limit, and,
// when the server is root, as uid 65534. When it is false, Isolation says
// what is missing and why.
func (r *Runner) Contained() bool {
	r.setup()
	return r.contained
}

// Isolation describes, in one line, the isolation in force: the limits, the
// identity tools run as, what contains their processes, their /tmp, their
// network, and whether HideDirs are hidden. Where the host permits less than
// full containment, it says what is missing and why.
func (r *Runner) Isolation() string {
	r.setup()
	cpu := "CPU time up to the call's timeout + 1 s"
	if r.cfg.CPUSeconds > 0 {
		cpu = fmt.Sprintf("CPU time %ds", r.cfg.CPUSeconds)
	}
	pool := "none"
	if r.cfg.Pool > 0 {
		pool = fmt.Sprintf("%d pre-started interpreters, one call each", r.cfg.Pool)
	}
	return fmt.Sprintf("rlimits (address space %s, %s, %d open files, files up to %s), clean env; user: %s; processes: %s; tmp: %s; network: %s; data: %s; pool: %s",
		sizeString(r.cfg.MemoryBytes), cpu, openFiles, sizeString(fileBytes), r.userNote, r.procNote, r.tmpNote, r.netNote, r.hideNote, pool)
}

// request is what runner.py reads on stdin.
type request struct {
	Source        string            `json:"source"`
	Function      string            `json:"function"`
	Args          map[string]any    `json:"args"`
	HasAgentState bool              `json:"has_agent_state"`
	AgentState    json.RawMessage   `json:"agent_state,omitempty"`
	OutputBytes   int               `json:"output_bytes"`
	Limits        requestLimits     `json:"limits"`
	Env           map[string]string `json:"env,omitempty"`
}

type requestLimits struct {
	MemoryBytes int64 `json:"memory_bytes"`
	CPUSeconds  int   `json:"cpu_seconds"`
	OpenFiles   int   `json:"open_files"`
	FileBytes   int64 `json:"file_bytes"`
	Processes   int   `json:"processes,omitempty"`
}

// response is the result line runner.py writes on fd 3.
type response struct {
	OK          bool   `json:"ok"`
	Return      string `json:"return"`
	ReturnChars int    `json:"return_chars"`
	Type        string `json:"type"`
	Message     string `json:"message"`
}

// Run calls c.Function from c.Source in a new process and waits for it.
//
// Three things might happen. The tool returns: Run returns its Result and a
// nil error. The tool fails (see Failure): Run returns a *Failure. Or the
// call could not be made at all (no interpreter, ctx cancelled or past its
// deadline, an invalid Config or Call): Run returns another error.
func (r *Runner) Run(ctx context.Context, c Call) (Result, error) {
	if err := r.cfg.Validate(); err != nil {
		return Result{}, err
	}
	if c.Function == "" {
		return Result{}, errors.New("sandbox: empty Function")
	}
	if c.Timeout < 0 {
		return Result{}, fmt.Errorf("sandbox: negative Timeout %s", c.Timeout)
	}
	r.setup()
	if r.pythonErr != nil {
		return Result{}, r.pythonErr
	}

	timeout := c.Timeout
	if timeout == 0 {
		timeout = r.cfg.Timeout
	}
	cpu := r.cfg.CPUSeconds
	if cpu == 0 {
		cpu = max(1, int(math.Ceil(timeout.Seconds()))) + 1
	}
	procLimit := 0
	if r.contained {
		procLimit = processes
	}
	input, err := json.Marshal(request{
		Source:        c.Source,
		Function:      c.Function,
		Args:          c.Args,
		HasAgentState: c.AgentState != nil,
		AgentState:    c.AgentState,
		OutputBytes:   r.cfg.OutputBytes,
		Env:           c.Env,
		Limits: requestLimits{
			MemoryBytes: r.cfg.MemoryBytes,
			CPUSeconds:  cpu,
			OpenFiles:   openFiles,
			FileBytes:   fileBytes,
			Processes:   procLimit,
		},
	})
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: encode call %s: %w", c.Function, err)
	}

	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := r.take()
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: start %s: %w", c.Function, err)
	}
	defer removeDir(out.dir)
	out.watch(runCtx)
	out.send(input)
	out.wait()

	stdout, stderr := out.lines()
	fail := func(typ, format string, args ...any) (Result, error) {
		return Result{}, &Failure{Type: typ, Message: fmt.Sprintf(format, args...), Stdout: stdout, Stderr: stderr}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("sandbox: run %s: %w", c.Function, err)
	}
	if out.protoOverflow {
		return fail("ResourceLimit", "the runner's answer exceeded %d bytes", out.protoLimit)
	}
	ready, res, status, err := parseProtocol(out.proto.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: run %s: %w", c.Function, err)
	}
	if res != nil {
		if !res.OK {
			return fail(res.Type, "%s", res.Message)
		}
		return Result{Return: r.capReturn(res.Return, res.ReturnChars), Stdout: stdout, Stderr: stderr}, nil
	}
	if runCtx.Err() != nil {
		return fail("TimeoutError", "tool %s timed out after %s", c.Function, timeout)
	}
	if !ready {
		return Result{}, fmt.Errorf("sandbox: run %s: python runner did not start (%s)%s", c.Function, out.state, tail(stderr))
	}
	if out.state == nil {
		return Result{}, fmt.Errorf("sandbox: run %s: no exit status", c.Function)
	}
	ws, _ := out.state.Sys().(syscall.WaitStatus)
	signaled, sig, code := ws.Signaled(), ws.Signal(), out.state.ExitCode()
	if status != nil { // the call ran under the runner's PID 1, which says how it ended
		signaled, sig, code = status.Signal != 0, syscall.Signal(status.Signal), status.Code
	}
	if signaled {
		switch sig {
		case syscall.SIGXCPU:
			return fail("ResourceLimit", "CPU time limit of %ds exceeded", cpu)
		case syscall.SIGKILL:
			return fail("ResourceLimit", "killed (CPU time limit of %ds or out of memory)", cpu)
		case syscall.SIGXFSZ:
			return fail("ResourceLimit", "file size limit of %s exceeded", sizeString(fileBytes))
		default:
			return fail("ResourceLimit", "terminated by signal %d (%s)", int(sig), sig)
		}
	}
	return fail("SystemExit", "tool %s exited with status %d without returning", c.Function, code)
}

// take returns a started interpreter: an idle one from the pool if there is
// one (starting another in its place), else a new one.
func (r *Runner) take() (*process, error) {
	if r.cfg.Pool == 0 {
		return r.start()
	}
	r.poolOnce.Do(func() {
		for range r.cfg.Pool {
			r.refill()
		}
	})
	r.poolMu.Lock()
	// Drop the dead, then prefer one that is warm; one still starting
	// beats a new one.
	live := r.idle[:0]
	for _, p := range r.idle {
		if p.alive() {
			live = append(live, p)
		} else {
			go p.discard()
		}
	}
	r.idle = live
	if len(r.idle) > 0 {
		i := slices.IndexFunc(r.idle, (*process).isWarm)
		if i < 0 {
			i = 0
		}
		p := r.idle[i]
		r.idle = slices.Delete(r.idle, i, i+1)
		r.poolMu.Unlock()
		r.refill()
		return p, nil
	}
	r.poolMu.Unlock()
	r.refill()
	return r.start()
}

// refill starts one interpreter for the pool in the background, unless the
// pool is full (counting those being started) or closed.
func (r *Runner) refill() {
	r.poolMu.Lock()
	if r.closed || len(r.idle)+r.filling >= r.cfg.Pool {
		r.poolMu.Unlock()
		return
	}
	r.filling++
	r.poolMu.Unlock()
	go func() {
		p, err := r.start()
		r.poolMu.Lock()
		r.filling--
		if err != nil || r.closed {
			r.poolMu.Unlock()
			if p != nil {
				p.discard()
			}
			return
		}
		r.idle = append(r.idle, p)
		r.poolMu.Unlock()
	}()
}

// Idle returns how many pooled interpreters have started and wait for a
// call.
func (r *Runner) Idle() int {
	r.poolMu.Lock()
	defer r.poolMu.Unlock()
	n := 0
	for _, p := range r.idle {
		if p.isWarm() && p.alive() {
			n++
		}
	}
	return n
}

// Close stops the pool: idle interpreters are killed and their directories
// removed. Calls in progress finish; later calls start their own
// interpreter. It is safe to call more than once.
func (r *Runner) Close() error {
	r.poolMu.Lock()
	idle := r.idle
	r.idle, r.closed = nil, true
	r.poolMu.Unlock()
	for _, p := range idle {
		p.discard()
	}
	return nil
}

// capReturn cuts text to OutputBytes, at a rune boundary, adding a note.
func (r *Runner) capReturn(text string, chars int) string {
	limit := r.cfg.OutputBytes
	if len(text) <= limit && utf8.RuneCountInString(text) >= chars {
		return text
	}
	cut := min(limit, len(text))
	for cut > 0 && !utf8.RuneStart(text[cut]) && cut < len(text) {
		cut--
	}
	return fmt.Sprintf("%s\n[sandbox: return value truncated: %d characters, limit %d bytes]", text[:cut], chars, limit)
}

// exitStatus is how the call's process ended, as the runner's PID 1 saw it.
type exitStatus struct {
	Code   int `json:"code"`
	Signal int `json:"signal"`
}

// parseProtocol reads the runner's fd-3 lines: the ready line, then the
// result, then (under --init) PID 1's status line. A call that died has a
// status line and no result.
func parseProtocol(b []byte) (ready bool, res *response, status *exitStatus, err error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 0 || lines[0] != `{"ready": true}` {
		return false, nil, nil, nil
	}
	for _, line := range lines[1:] {
		if strings.HasPrefix(line, `{"status": `) {
			var s struct {
				Status *exitStatus `json:"status"`
			}
			if json.Unmarshal([]byte(line), &s) == nil && s.Status != nil {
				status = s.Status
			}
			continue
		}
		if res != nil {
			continue
		}
		var resp response
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			return true, nil, nil, fmt.Errorf("decode runner answer: %w", err)
		}
		if !resp.OK && resp.Type == "" {
			resp.Type = "Exception"
		}
		res = &resp
	}
	return true, res, status, nil
}

// tail formats the end of stderr for an infrastructure error.
func tail(lines []string) string {
	s := strings.TrimSpace(strings.Join(lines, "\n"))
	if s == "" {
		return ""
	}
	const keep = 2000
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return ": " + s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// removeDir removes a call's directory, first making its subdirectories
// writable again in case the tool took that away.
func removeDir(dir string) {
	if dir == "" || os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(path, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

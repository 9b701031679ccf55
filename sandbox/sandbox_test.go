package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newRunner returns a Runner using the real python3, skipping the test when
// there is none.
func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found")
	}
	if cfg.Pool == 0 {
		cfg.Pool = testPool
	}
	r := New(cfg)
	t.Cleanup(func() { r.Close() })
	return r
}

// testPool is the Pool newRunner gives runners; TestPooled sets it to run
// the other tests with warm interpreters.
var testPool int

func run(t *testing.T, r *Runner, c Call) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.Run(ctx, c)
}

// mustFail runs c and returns its *Failure, failing the test on any other
// outcome.
func mustFail(t *testing.T, r *Runner, c Call) *Failure {
	t.Helper()
	res, err := run(t, r, c)
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("Run = %+v, %v; want a *Failure", res, err)
	}
	return f
}

func TestReturns(t *testing.T) {
	r := newRunner(t, Config{})
	tests := []struct {
		name, body string
		want       string
	}{
		{"str", `return "héllo"`, "héllo"},
		{"none", `return None`, "None"},
		{"implicit none", `pass`, "None"},
		{"dict", `return {"a": 1, "b": ["é"]}`, "{\n  \"a\": 1,\n  \"b\": [\n    \"é\"\n  ]\n}"},
		{"list", `return [1, "x"]`, "[\n  1,\n  \"x\"\n]"},
		{"int", `return 42`, "42"},
		{"bool", `return True`, "True"},
		{"tuple is str()", `return (1, 2)`, "(1, 2)"},
		{"async", `return "async"`, "async"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := "def"
			if tt.name == "async" {
				def = "async def"
			}
			src := fmt.Sprintf("%s tool():\n    %s\n", def, tt.body)
			res, err := run(t, r, Call{Source: src, Function: "tool"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Return != tt.want {
				t.Errorf("Return = %q, want %q", res.Return, tt.want)
			}
		})
	}
}

func TestArgsAndPrints(t *testing.T) {
	r := newRunner(t, Config{})
	src := `
import sys

def greet(name: str, times: int = 1):
    """Greets."""
    for i in range(times):
        print(f"hello {name} {i}")
    print("careful", file=sys.stderr)
    return name.upper()
`
	res, err := run(t, r, Call{Source: src, Function: "greet", Args: map[string]any{"name": "ada", "times": 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Return: "ADA", Stdout: []string{"hello ada 0", "hello ada 1"}, Stderr: []string{"careful"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
}

func TestFailures(t *testing.T) {
	r := newRunner(t, Config{})
	tests := []struct {
		name, src, fn string
		args          map[string]any
		wantType      string
		wantMsg       string // substring
		wantStdout    []string
	}{
		{
			name:       "exception keeps prints",
			src:        "def tool():\n    print('before')\n    raise ValueError('bad input')\n",
			wantType:   "ValueError",
			wantMsg:    "bad input",
			wantStdout: []string{"before"},
		},
		{name: "syntax error", src: "def tool(:\n", wantType: "SyntaxError"},
		{name: "missing function", src: "def other():\n    pass\n", wantType: "NameError", wantMsg: "'tool'"},
		{name: "unexpected argument", src: "def tool():\n    pass\n", args: map[string]any{"x": 1}, wantType: "TypeError", wantMsg: "unexpected keyword argument 'x'"},
		{name: "sys.exit", src: "import sys\ndef tool():\n    sys.exit(3)\n", wantType: "SystemExit", wantMsg: "3"},
		{name: "os._exit", src: "import os\ndef tool():\n    os._exit(4)\n", wantType: "SystemExit", wantMsg: "status 4"},
		{name: "error at import", src: "import no_such_module_xyz\ndef tool():\n    pass\n", wantType: "ModuleNotFoundError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.fn
			if fn == "" {
				fn = "tool"
			}
			f := mustFail(t, r, Call{Source: tt.src, Function: fn, Args: tt.args})
			if f.Type != tt.wantType || !strings.Contains(f.Message, tt.wantMsg) {
				t.Errorf("Failure = %q, want type %q with message containing %q", f.Error(), tt.wantType, tt.wantMsg)
			}
			if !strings.HasPrefix(f.Error(), tt.wantType+": ") {
				t.Errorf("Error() = %q, want prefix %q", f.Error(), tt.wantType+": ")
			}
			if diff := cmp.Diff(tt.wantStdout, f.Stdout); diff != "" {
				t.Errorf("Stdout (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	r := newRunner(t, Config{Timeout: 10 * time.Second})
	src := "def tool():\n    print('spinning', flush=True)\n    while True:\n        pass\n"
	start := time.Now()
	f := mustFail(t, r, Call{Source: src, Function: "tool", Timeout: time.Second})
	elapsed := time.Since(start)
	if f.Type != "TimeoutError" {
		t.Errorf("Failure = %v, want TimeoutError", f)
	}
	if elapsed > 5*time.Second { // well under the Runner's 10s; the machine may be loaded
		t.Errorf("took %s, want about 1s", elapsed)
	}
	if diff := cmp.Diff([]string{"spinning"}, f.Stdout); diff != "" {
		t.Errorf("Stdout kept so far (-want +got):\n%s", diff)
	}
}

func TestTimeoutKillsChildren(t *testing.T) {
	r := newRunner(t, Config{})
	// A child that would outlive the tool if only the interpreter were killed.
	src := `
import os, subprocess
def tool():
    p = subprocess.Popen(["/bin/sleep", "30"])
    print(p.pid, os.readlink("/proc/self/ns/pid"), flush=True)
    while True:
        pass
`
	f := mustFail(t, r, Call{Source: src, Function: "tool", Timeout: time.Second})
	if f.Type != "TimeoutError" || len(f.Stdout) != 1 {
		t.Fatalf("Failure = %v, Stdout %q", f, f.Stdout)
	}
	pid, ns, _ := strings.Cut(f.Stdout[0], " ")
	deadline := time.Now().Add(2 * time.Second)
	for running(t, pid, ns) {
		if time.Now().After(deadline) {
			t.Fatalf("child %s still running after the call timed out", f.Stdout[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether the process a tool knows as pid, in the PID
// namespace ns (a readlink of /proc/self/ns/pid), is still running on the
// host. In a PID namespace of its own the tool's pid means nothing here, so
// any live process in that namespace counts. Zombies waiting for their
// reaper do not.
func running(t *testing.T, pid, ns string) bool {
	t.Helper()
	alive := func(dir string) bool {
		stat, err := os.ReadFile(dir + "/stat")
		return err == nil && !strings.Contains(string(stat), ") Z ")
	}
	if own, _ := os.Readlink("/proc/self/ns/pid"); own == ns {
		return alive("/proc/" + pid)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		dir := "/proc/" + e.Name()
		if link, err := os.Readlink(dir + "/ns/pid"); err == nil && link == ns && alive(dir) {
			return true
		}
	}
	return false
}

func TestContextCancelIsNotAFailure(t *testing.T) {
	r := newRunner(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := r.Run(ctx, Call{Source: "def tool():\n    while True:\n        pass\n", Function: "tool"})
	var f *Failure
	if errors.As(err, &f) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want a context error that is not a *Failure", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	r := newRunner(t, Config{MemoryBytes: 256 << 20})
	src := "def tool():\n    b = bytearray(2 << 30)\n    return len(b)\n"
	f := mustFail(t, r, Call{Source: src, Function: "tool"})
	if f.Type != "MemoryError" || f.Message == "" {
		t.Errorf("Failure = %q, want MemoryError with a message", f.Error())
	}
}

func TestCPULimit(t *testing.T) {
	r := newRunner(t, Config{CPUSeconds: 1, Timeout: 10 * time.Second})
	f := mustFail(t, r, Call{Source: "def tool():\n    while True:\n        pass\n", Function: "tool"})
	if f.Type != "ResourceLimit" || !strings.Contains(f.Message, "CPU") {
		t.Errorf("Failure = %q, want a CPU ResourceLimit", f.Error())
	}
}

func TestCleanEnvironment(t *testing.T) {
	t.Setenv("ENGRAM_SECRET_TOKEN", "s3cret")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	r := newRunner(t, Config{})
	src := "import os\ndef tool():\n    return dict(os.environ)\n"
	res, err := run(t, r, Call{Source: src, Function: "tool"})
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(res.Return), &env); err != nil {
		t.Fatalf("decode %q: %v", res.Return, err)
	}
	for k, v := range env {
		if strings.HasPrefix(k, "ENGRAM_") || strings.HasPrefix(k, "OPENAI_") || strings.Contains(v, "s3cret") {
			t.Errorf("tool sees %s=%s", k, v)
		}
	}
	if env["PATH"] != "/usr/bin:/bin" {
		t.Errorf("PATH = %q, want /usr/bin:/bin", env["PATH"])
	}
}

func TestFreshWorkingDirectory(t *testing.T) {
	r := newRunner(t, Config{})
	src := `
import os
def tool(name: str):
    before = os.listdir(".")
    with open(name, "w") as f:
        f.write("x")
    os.mkdir("locked")
    os.chmod("locked", 0o500)
    return {"cwd": os.getcwd(), "home": os.environ["HOME"], "before": before}
`
	testCwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r.setup()
	var dirs []string
	for i := range 2 {
		scratch := fmt.Sprintf("engram-scratch-%d-%d.txt", os.Getpid(), i)
		res, err := run(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"name": scratch}})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Cwd, Home string
			Before    []string
		}
		if err := json.Unmarshal([]byte(res.Return), &got); err != nil {
			t.Fatal(err)
		}
		if got.Cwd == testCwd || got.Cwd != got.Home {
			t.Errorf("cwd %q, HOME %q; want a fresh directory, also HOME (test cwd %q)", got.Cwd, got.Home, testCwd)
		}
		if len(got.Before) != 0 {
			t.Errorf("working directory starts with %q, want empty", got.Before)
		}
		if r.contained {
			// Each call has a /tmp of its own, its working directory;
			// nothing written there reaches the host's.
			if got.Cwd != "/tmp" {
				t.Errorf("cwd %q, want the private /tmp", got.Cwd)
			}
			if _, err := os.Stat(filepath.Join("/tmp", scratch)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the tool's /tmp/%s is on the host: %v", scratch, err)
			}
			continue
		}
		if _, err := os.Stat(got.Cwd); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("working directory %s not removed: %v", got.Cwd, err)
		}
		dirs = append(dirs, got.Cwd)
	}
	if len(dirs) == 2 && dirs[0] == dirs[1] {
		t.Errorf("two calls shared the directory %s", dirs[0])
	}
}

func TestAgentState(t *testing.T) {
	r := newRunner(t, Config{})
	state := json.RawMessage(`{"name": "sam", "memory": {"human": "Ada"}, "tools": ["a", "b"]}`)
	tests := []struct {
		name, src string
		state     json.RawMessage
		want      string
	}{
		{
			name:  "agent_state keyword",
			src:   "def tool(x: int, agent_state):\n    return f\"{x} {agent_state['name']} {agent_state['memory']['human']} {list(agent_state['tools'])}\"\n",
			state: state,
			want:  "1 sam Ada ['a', 'b']",
		},
		{
			name:  "legacy self",
			src:   "def tool(self, x: int):\n    return f\"{x} {self['name']}\"\n",
			state: state,
			want:  "1 sam",
		},
		{
			name: "legacy self without state",
			src:  "def tool(self, x: int):\n    return f\"{x} {self}\"\n",
			want: "1 None",
		},
		{
			name:  "not passed to a function that does not take it",
			src:   "def tool(x: int):\n    return x\n",
			state: state,
			want:  "1",
		},
		{
			name:  "read-only",
			src:   "def tool(x: int, agent_state):\n    try:\n        agent_state['memory']['human'] = 'Eve'\n    except TypeError as e:\n        return str(e)\n    return 'mutated'\n",
			state: state,
			want:  "agent_state is read-only",
		},
		{
			name:  "serializable",
			src:   "import json\ndef tool(x: int, agent_state):\n    return json.dumps(agent_state['memory'])\n",
			state: state,
			want:  `{"human": "Ada"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := run(t, r, Call{Source: tt.src, Function: "tool", Args: map[string]any{"x": 1}, AgentState: tt.state})
			if err != nil {
				t.Fatal(err)
			}
			if res.Return != tt.want {
				t.Errorf("Return = %q, want %q", res.Return, tt.want)
			}
		})
	}
}

func TestOutputLimits(t *testing.T) {
	const limit = 1000
	r := newRunner(t, Config{OutputBytes: limit})

	t.Run("return", func(t *testing.T) {
		res, err := run(t, r, Call{Source: "def tool():\n    return 'é' * 100000\n", Function: "tool"})
		if err != nil {
			t.Fatal(err)
		}
		body, note, ok := strings.Cut(res.Return, "\n[sandbox: return value truncated")
		if !ok || !strings.Contains(note, "100000 characters") {
			t.Fatalf("Return ends %q, want a truncation note", res.Return[max(0, len(res.Return)-100):])
		}
		if len(body) > limit || len(body) < limit-1 || body != strings.Repeat("é", len(body)/2) {
			t.Errorf("kept %d bytes, want about %d whole characters", len(body), limit)
		}
	})

	t.Run("prints", func(t *testing.T) {
		res, err := run(t, r, Call{Source: "def tool():\n    for i in range(10000):\n        print('x' * 50)\n    return 'done'\n", Function: "tool"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Return != "done" {
			t.Errorf("Return = %q", res.Return)
		}
		last := res.Stdout[len(res.Stdout)-1]
		if n := len(strings.Join(res.Stdout[:len(res.Stdout)-1], "\n")); n > limit || n < limit-60 || !strings.Contains(last, "output truncated") {
			t.Errorf("kept %d bytes ending %q, want at most %d and a note", n, last, limit)
		}
	})
}

func TestConcurrentCallsDoNotShareState(t *testing.T) {
	r := newRunner(t, Config{})
	src := `
counter = 0
def tool(n: int):
    global counter
    counter += n
    import builtins
    seen = getattr(builtins, "_leak", None)
    builtins._leak = n
    return f"{counter} {seen}"
`
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := i + 1
			res, err := run(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"n": n}})
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf("%d None", n); res.Return != want {
				errs <- fmt.Errorf("call %d returned %q, want %q", n, res.Return, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNetworkIsolation(t *testing.T) {
	r := newRunner(t, Config{})
	iso := r.Isolation()
	t.Logf("Isolation: %s", iso)
	if !strings.Contains(iso, "network: isolated") {
		t.Skip("network not isolated here")
	}
	src := `
import socket
def tool():
    s = socket.socket()
    s.settimeout(2)
    s.connect(("1.1.1.1", 53))
`
	f := mustFail(t, r, Call{Source: src, Function: "tool"})
	t.Logf("connect: %v", f)
	switch f.Type {
	case "OSError", "TimeoutError", "ConnectionRefusedError", "PermissionError":
	default:
		t.Errorf("Failure = %v, want a network error", f)
	}
}

func TestMissingPython(t *testing.T) {
	r := New(Config{Python: "/nonexistent/python3"})
	_, err := r.Run(context.Background(), Call{Source: "def tool():\n    pass\n", Function: "tool"})
	var f *Failure
	if err == nil || errors.As(err, &f) {
		t.Errorf("Run = %v, want an infrastructure error", err)
	}
	if !strings.Contains(r.Isolation(), "network: not isolated") {
		t.Errorf("Isolation = %q", r.Isolation())
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	if err := (Config{OutputBytes: -1}).Validate(); err == nil {
		t.Error("negative OutputBytes accepted")
	}
}

// TestServerEnvironUnreadable checks that, inside the user namespace, a tool
// cannot read the server's secrets from /proc/<server pid>/environ.
func TestServerEnvironUnreadable(t *testing.T) {
	t.Setenv("ENGRAM_SECRET_TOKEN", "s3cret")
	r := newRunner(t, Config{})
	if !strings.Contains(r.Isolation(), "network: isolated") {
		t.Skip("no user namespace here; the server's /proc entries are readable by the same user")
	}
	// In a PID namespace of its own the tool cannot even name the server.
	src := `
def tool(pid: int):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read().count(b"s3cret")
`
	res, err := run(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"pid": os.Getpid()}})
	var f *Failure
	if err == nil {
		t.Fatalf("tool read the server's environ (%s matches)", res.Return)
	}
	if !errors.As(err, &f) || f.Type != "PermissionError" && f.Type != "FileNotFoundError" {
		t.Errorf("Run = %v, want PermissionError or FileNotFoundError", err)
	}
}

// TestWithoutNamespace runs calls the way a host that forbids unshare would.
func TestWithoutNamespace(t *testing.T) {
	r := newRunner(t, Config{})
	r.setupOnce.Do(func() {
		r.python, r.pythonErr = resolvePython(context.Background(), r.cfg.Python)
		r.netNote = "not isolated (forced by the test)"
	})
	if !strings.Contains(r.Isolation(), "network: not isolated (forced") {
		t.Errorf("Isolation = %q", r.Isolation())
	}
	res, err := run(t, r, Call{Source: "def tool(x: int):\n    print(x)\n    return x * 2\n", Function: "tool", Args: map[string]any{"x": 21}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Return: "42", Stdout: []string{"21"}}, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
	f := mustFail(t, r, Call{Source: "def tool():\n    while True:\n        pass\n", Function: "tool", Timeout: time.Second})
	if f.Type != "TimeoutError" {
		t.Errorf("Failure = %v, want TimeoutError", f)
	}
}

// TestHideDirs checks that a hidden directory looks empty and read-only to a
// tool, which cannot unmount the cover, while the server still sees it.
func TestHideDirs(t *testing.T) {
	data := visibleDir(t)
	secret := filepath.Join(data, "secret.txt")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, Config{HideDirs: []string{data, filepath.Join(data, "missing")}})
	iso := r.Isolation()
	t.Logf("Isolation: %s", iso)
	if !strings.Contains(iso, "data: "+data+" hidden") {
		if strings.Contains(iso, "NOT hidden") {
			t.Skip("no mount namespace here")
		}
		t.Fatalf("Isolation = %q, want the data directory named", iso)
	}
	if r.contained && strings.HasPrefix(data, "/tmp/") {
		t.Skip("the only directory this test could make is under /tmp, which a contained tool does not see at all")
	}
	src := fmt.Sprintf(`
import ctypes, os
def tool(what: str):
    if what == "list":
        return os.listdir(%[1]q)
    if what == "read":
        return open(%[2]q).read()
    if what == "write":
        open(%[1]q + "/x", "w").write("x")
    if what == "umount":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.umount2(%[1]q.encode(), 2) != 0:
            raise OSError(ctypes.get_errno(), "umount refused")
        return os.listdir(%[1]q)
    if what == "parent":
        return os.listdir(%[3]q)
`, data, secret, filepath.Dir(data))
	res, err := run(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"what": "list"}})
	if err != nil || res.Return != "[]" {
		t.Errorf("list = %q, %v; want []", res.Return, err)
	}
	if f := mustFail(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"what": "read"}}); f.Type != "FileNotFoundError" {
		t.Errorf("read = %v, want FileNotFoundError", f)
	}
	if f := mustFail(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"what": "write"}}); f.Type != "OSError" || !strings.Contains(f.Message, "Read-only") {
		t.Errorf("write = %v, want a read-only OSError", f)
	}
	if f := mustFail(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"what": "umount"}}); f.Type != "OSError" && f.Type != "PermissionError" {
		t.Errorf("umount = %v, want OSError", f)
	}
	// The parent stays visible, with the data directory in it.
	res, err = run(t, r, Call{Source: src, Function: "tool", Args: map[string]any{"what": "parent"}})
	if err != nil || !strings.Contains(res.Return, filepath.Base(data)) {
		t.Errorf("parent = %q, %v", res.Return, err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "s3cret" {
		t.Errorf("server reads %q, %v", b, err)
	}
}

// visibleDir returns a new directory that a contained tool could read if it
// were not hidden: one in the package's directory (outside the private
// /tmp, and open to every user), or else a temporary one.
func visibleDir(t *testing.T) string {
	t.Helper()
	if dir, err := os.MkdirTemp(".", ".hide-test-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
		if abs, err := filepath.Abs(dir); err == nil && os.Chmod(dir, 0o755) == nil {
			return abs
		}
	}
	return t.TempDir()
}

// TestHideDirsWithoutNamespace: where unshare cannot be used (here: not
// found), nothing can be hidden, and Isolation says so.
func TestHideDirsWithoutNamespace(t *testing.T) {
	python, err := resolvePython(context.Background(), "python3")
	if err != nil {
		t.Skip(err)
	}
	data := t.TempDir()
	r := newRunner(t, Config{Python: python, HideDirs: []string{data}})
	t.Setenv("PATH", t.TempDir()) // no unshare on it when the Runner looks
	iso := r.Isolation()
	for _, want := range []string{"network: not isolated (unshare not found)", "data: " + data + " NOT hidden (no user namespace)"} {
		if !strings.Contains(iso, want) {
			t.Errorf("Isolation = %q, want %q in it", iso, want)
		}
	}
	res, err := run(t, r, Call{Source: "def tool():\n    return 'ran'\n", Function: "tool"})
	if err != nil || res.Return != "ran" {
		t.Errorf("Run = %q, %v", res.Return, err)
	}
}

// TestPooled runs the behavioural tests again with a pool of warm
// interpreters: a pooled call must behave exactly like a cold one.
func TestPooled(t *testing.T) {
	testPool = 2
	defer func() { testPool = 0 }()
	for name, test := range map[string]func(*testing.T){
		"Returns": TestReturns, "ArgsAndPrints": TestArgsAndPrints, "Failures": TestFailures,
		"Timeout": TestTimeout, "TimeoutKillsChildren": TestTimeoutKillsChildren,
		"ContextCancelIsNotAFailure": TestContextCancelIsNotAFailure, "MemoryLimit": TestMemoryLimit,
		"CPULimit": TestCPULimit, "CleanEnvironment": TestCleanEnvironment,
		"FreshWorkingDirectory": TestFreshWorkingDirectory, "AgentState": TestAgentState,
		"OutputLimits": TestOutputLimits, "ConcurrentCallsDoNotShareState": TestConcurrentCallsDoNotShareState,
		"NetworkIsolation": TestNetworkIsolation, "ServerEnvironUnreadable": TestServerEnvironUnreadable,
		"WithoutNamespace": TestWithoutNamespace, "HideDirs": TestHideDirs,
	} {
		t.Run(name, test)
	}
}

// TestPoolServesOneCallPerInterpreter: each pooled interpreter runs one call
// and exits, so what a call leaves in the interpreter is gone by the next;
// the pool refills, and Close kills the idle interpreters.
func TestPoolServesOneCallPerInterpreter(t *testing.T) {
	r := newRunner(t, Config{Pool: 2})
	src := `
import builtins, json, os
def tool():
    seen = getattr(builtins, "left_behind", None)
    me = f"{os.getpid()}@{os.readlink('/proc/self/ns/pid')}"
    builtins.left_behind = me
    json.dumps = None  # the runner must still answer
    return f"{me} {seen}"
`
	pids := map[string]bool{}
	for i := range 4 {
		res, err := run(t, r, Call{Source: src, Function: "tool"})
		if err != nil {
			t.Fatal(err)
		}
		pid, seen, _ := strings.Cut(res.Return, " ")
		if seen != "None" {
			t.Errorf("call %d saw state left by process %s", i, seen)
		}
		if pids[pid] {
			t.Errorf("process %s served two calls", pid)
		}
		pids[pid] = true
		if p, ns, _ := strings.Cut(pid, "@"); running(t, p, ns) {
			t.Errorf("process %s still running after its call", pid)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Idle() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d idle interpreters, want 2", r.Idle())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.poolMu.Lock()
	idle := append([]*process(nil), r.idle...)
	r.poolMu.Unlock()
	r.Close()
	for _, p := range idle {
		if p.alive() {
			t.Errorf("idle interpreter %d alive after Close", p.cmd.Process.Pid)
		}
		if _, err := os.Stat(p.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("idle directory %s left after Close", p.dir)
		}
	}
	// After Close, calls still run, each in a new interpreter.
	if _, err := run(t, r, Call{Source: src, Function: "tool"}); err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	if r.Idle() != 0 {
		t.Errorf("pool refilled after Close")
	}
}

// benchmarkCall runs a trivial tool call.
func benchmarkCall(b *testing.B, pool int) {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("python3 not found")
	}
	r := New(Config{Pool: pool})
	defer r.Close()
	b.Logf("isolation: %s", r.Isolation())
	c := Call{Source: "def tool(x: int):\n    return x + 1\n", Function: "tool", Args: map[string]any{"x": 41}}
	ctx := context.Background()
	if _, err := r.Run(ctx, c); err != nil { // fills the pool
		b.Fatal(err)
	}
	before := childCPU()
	for b.Loop() {
		if pool > 0 {
			// Measure a call that finds a warm interpreter, as a server
			// that is not saturated does; the refill is not timed.
			b.StopTimer()
			for r.Idle() < pool {
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		res, err := r.Run(ctx, c)
		if err != nil || res.Return != "42" {
			b.Fatalf("Run = %q, %v", res.Return, err)
		}
	}
	// CPU of the interpreters that finished (user+system): the work a call
	// costs, wherever its latency goes.
	b.ReportMetric(float64(childCPU()-before)/float64(time.Millisecond)/float64(b.N), "child-cpu-ms/op")
}

// childCPU is the user+system time of the finished children of this process.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkCallCold(b *testing.B)   { benchmarkCall(b, 0) }
func BenchmarkCallPooled(b *testing.B) { benchmarkCall(b, 2) }

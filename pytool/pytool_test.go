package pytool

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.json golden files")

// testDeriver returns a Deriver using the real python3, skipping the test if
// there is none.
func testDeriver(t testing.TB) *Deriver {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found in PATH")
	}
	return NewDeriver(Config{Timeout: 20 * time.Second})
}

// golden is the file format of testdata/NAME.json.
type golden struct {
	AgentState bool   `json:"agent_state"`
	JSONSchema Schema `json:"json_schema"`
}

func TestDeriveGolden(t *testing.T) {
	d := testDeriver(t)
	sources, err := filepath.Glob(filepath.Join("testdata", "*.py"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) < 12 {
		t.Fatalf("found %d golden sources, want at least 12", len(sources))
	}
	for _, src := range sources {
		name := strings.TrimSuffix(filepath.Base(src), ".py")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Derive(context.Background(), string(code))
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if err := Validate(got.Schema); err != nil {
				t.Errorf("Validate(derived schema): %v", err)
			}
			out, err := json.MarshalIndent(golden{AgentState: got.AgentState, JSONSchema: got.Schema}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			path := strings.TrimSuffix(src, ".py") + ".json"
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pytool -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}

			// The golden file must also decode back to the same schema.
			var back golden
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got.Schema.Parameters.Properties(), back.JSONSchema.Parameters.Properties()); diff != "" {
				t.Errorf("property order after round trip (-derived +decoded):\n%s", diff)
			}
		})
	}
}

// TestDeriveShapes spot-checks the golden results through the Go API, so a
// careless -update cannot silently bless a wrong answer.
func TestDeriveShapes(t *testing.T) {
	d := testDeriver(t)
	tests := []struct {
		file       string
		name       string
		agentState bool
		properties []string
		required   []string
	}{
		{"plain_types", "roll_dice", false, []string{"sides", "label", "verbose", "weight", "request_heartbeat"}, []string{"sides", "label", "verbose", "weight", "request_heartbeat"}},
		{"defaults", "search_archive", false, []string{"query", "page", "exact", "limit", "request_heartbeat"}, []string{"query", "request_heartbeat"}},
		{"optional", "lookup", false, []string{"key", "fallback", "mode", "scale", "request_heartbeat"}, []string{"key", "request_heartbeat"}},
		{"self_legacy", "core_memory_append", true, []string{"label", "content", "request_heartbeat"}, []string{"label", "content", "request_heartbeat"}},
		{"agent_state", "archival_memory_insert", true, []string{"content", "request_heartbeat"}, []string{"content", "request_heartbeat"}},
		{"multiple_defs", "the_tool", false, []string{"value", "request_heartbeat"}, []string{"value", "request_heartbeat"}},
		{"async_def", "fetch_page", false, []string{"url", "timeout", "request_heartbeat"}, []string{"url", "request_heartbeat"}},
		{"send_message", "send_message", true, []string{"message"}, []string{"message"}},
		{"no_docstring", "ping", false, []string{"request_heartbeat"}, []string{"request_heartbeat"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			code, err := os.ReadFile(filepath.Join("testdata", tt.file+".py"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Derive(context.Background(), string(code))
			if err != nil {
				t.Fatal(err)
			}
			if got.Schema.Name != tt.name {
				t.Errorf("name = %q, want %q", got.Schema.Name, tt.name)
			}
			if got.AgentState != tt.agentState {
				t.Errorf("AgentState = %v, want %v", got.AgentState, tt.agentState)
			}
			if diff := cmp.Diff(tt.properties, got.Schema.Parameters.Properties()); diff != "" {
				t.Errorf("Properties() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.required, got.Schema.Parameters.Required()); diff != "" {
				t.Errorf("Required() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeriveErrors(t *testing.T) {
	d := testDeriver(t)
	tests := []struct {
		name   string
		source string
		want   string // exact error text; with a trailing "*", a prefix
	}{
		{
			name:   "syntax error",
			source: "x = 1\ndef f(:\n    pass\n",
			want:   "Failed to generate schema for tool: *",
		},
		{
			name:   "null byte",
			source: "def f():\n    pass\x00\n",
			want:   "Failed to generate schema for tool: *",
		},
		{
			name:   "empty source",
			source: "",
			want:   "Failed to generate schema for tool: no function definition found",
		},
		{
			name:   "no function",
			source: "import os\nx = 1\nclass A:\n    def m(self): pass\nif x:\n    def g(): pass\n",
			want:   "Failed to generate schema for tool: no function definition found",
		},
		{
			name:   "missing annotation",
			source: "def f(a: int, b):\n    \"\"\"F.\n\n    Args:\n        a: A.\n        b: B.\n    \"\"\"\n",
			want:   "Parameter 'b' in function 'f' lacks a type annotation",
		},
		{
			name:   "self not first needs annotation",
			source: "def f(a: int, self):\n    \"\"\"F.\n\n    Args:\n        a: A.\n        self: S.\n    \"\"\"\n",
			want:   "Parameter 'self' in function 'f' lacks a type annotation",
		},
		{
			name:   "no docstring",
			source: "def f(a: int):\n    return a\n",
			want:   "Parameter 'a' in function 'f' lacks a description in the docstring",
		},
		{
			name:   "not in Args",
			source: "def f(a: int, b: str):\n    \"\"\"F.\n\n    Args:\n        a: A.\n\n    Returns:\n        b: not an arg.\n    \"\"\"\n",
			want:   "Parameter 'b' in function 'f' lacks a description in the docstring",
		},
		{
			name:   "empty description",
			source: "def f(a: int):\n    \"\"\"F.\n\n    Args:\n        a (int):\n    \"\"\"\n",
			want:   "Parameter 'a' in function 'f' lacks a description in the docstring",
		},
		{
			name:   "unsupported type",
			source: "def f(a: tuple):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type tuple has no corresponding JSON schema type",
		},
		{
			name:   "unsupported inner type",
			source: "from typing import Any, List\ndef f(a: List[Any]):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type Any has no corresponding JSON schema type",
		},
		{
			name:   "general union (source text, whitespace collapsed)",
			source: "from typing import Union\ndef f(a: Union[int,  str]):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type Union[int, str] has no corresponding JSON schema type",
		},
		{
			name:   "pipe union",
			source: "def f(a: int | str | None = None):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type int | str | None has no corresponding JSON schema type",
		},
		{
			name:   "class that is not a model",
			source: "class Point:\n    x: int\n\ndef f(p: Point):\n    \"\"\"F.\n\n    Args:\n        p: P.\n    \"\"\"\n",
			want:   "Python type Point has no corresponding JSON schema type",
		},
		{
			name:   "unsupported model field",
			source: "from pydantic import BaseModel\nclass M(BaseModel):\n    when: datetime\n\ndef f(m: M):\n    \"\"\"F.\n\n    Args:\n        m: M.\n    \"\"\"\n",
			want:   "Python type datetime has no corresponding JSON schema type",
		},
		{
			name:   "recursive model",
			source: "from pydantic import BaseModel\nclass Node(BaseModel):\n    children: list['Node']\n\ndef f(n: Node):\n    \"\"\"F.\n\n    Args:\n        n: N.\n    \"\"\"\n",
			want:   "Python type Node has no corresponding JSON schema type",
		},
		{
			name:   "bad string annotation",
			source: "def f(a: 'list[('):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type list[( has no corresponding JSON schema type",
		},
		{
			name:   "call as annotation",
			source: "def f(a: open('/tmp/x')):\n    \"\"\"F.\n\n    Args:\n        a: A.\n    \"\"\"\n",
			want:   "Python type open('/tmp/x') has no corresponding JSON schema type",
		},
		{
			name:   "varargs",
			source: "def f(*args: int):\n    \"\"\"F.\n\n    Args:\n        args: A.\n    \"\"\"\n",
			want:   "Parameter '*args' in function 'f' is variadic, which tools do not support",
		},
		{
			name:   "kwargs",
			source: "def f(a: int, **kw: int):\n    \"\"\"F.\n\n    Args:\n        a: A.\n        kw: K.\n    \"\"\"\n",
			want:   "Parameter '**kw' in function 'f' is variadic, which tools do not support",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := d.Derive(context.Background(), tt.source)
			if err == nil {
				t.Fatalf("Derive succeeded, want error %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "*"); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("error = %q, want prefix %q", err, prefix)
				}
			} else if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
		})
	}
}

func TestDeriveSyntaxErrorLine(t *testing.T) {
	d := testDeriver(t)
	_, err := d.Derive(context.Background(), "x = 1\n\ndef f(:\n    pass\n")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "(line 3)") {
		t.Errorf("error %q does not give the line", err)
	}
}

// TestSourceNotExecuted checks that nothing in the source runs: not top-level
// statements, decorators, default values nor annotations.
func TestSourceNotExecuted(t *testing.T) {
	d := testDeriver(t)
	dir := t.TempDir()
	opened := filepath.Join(dir, "opened")
	system := filepath.Join(dir, "system")
	annotated := filepath.Join(dir, "annotated")
	src := strings.NewReplacer("OPENED", opened, "SYSTEM", system, "ANNOTATED", annotated).Replace(`
import os
open('OPENED', 'w').write('pwned')
os.system('touch SYSTEM')
__import__('os').system('touch SYSTEM')

def deco(f):
    open('OPENED', 'w')
    return f

@deco
def tool(x: int = os.system('touch SYSTEM')):
    """Tool.

    Args:
        x: X.
    """
    open('OPENED', 'w')
`)
	got, err := d.Derive(context.Background(), src)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	if got.Schema.Name != "tool" {
		t.Errorf("name = %q, want tool", got.Schema.Name)
	}

	// An annotation is never evaluated either, even when it is rejected.
	src2 := strings.ReplaceAll(`
def tool(x: open('ANNOTATED', 'w')):
    """Tool.

    Args:
        x: X.
    """
`, "ANNOTATED", annotated)
	if _, err := d.Derive(context.Background(), src2); !errors.Is(err, ErrInvalid) {
		t.Errorf("Derive(call annotation) = %v, want ErrInvalid", err)
	}

	for _, p := range []string{opened, system, annotated} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (stat err %v): the source was executed", filepath.Base(p), err)
		}
	}
}

// fakePython writes an executable shell script standing in for python3.
func fakePython(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts stand in for python")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh not found")
	}
	path := filepath.Join(t.TempDir(), "fakepython")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCleanEnvironmentAndArgs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	py := fakePython(t, `env > '`+out+`'
echo "ARGS $1 $2 $3" >> '`+out+`'
cat > /dev/null
echo '{"name":"f","description":"","parameters":{"type":"object","properties":{},"required":[]},"agent_state":false}'
`)
	t.Setenv("PYTOOL_SECRET", "do-not-leak")
	t.Setenv("PYTHONPATH", "/nowhere")
	d := NewDeriver(Config{Python: py})
	if _, err := d.Derive(context.Background(), "def f(): pass"); err != nil {
		t.Fatalf("Derive: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, _, _ := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(line, "ARGS "):
			if line != "ARGS -I -S -c" {
				t.Errorf("interpreter arguments = %q, want -I -S -c <script>", line)
			}
		case key == "PATH", key == "PWD", key == "SHLVL", key == "_":
			// PATH is passed on; the shell itself sets the others.
		default:
			t.Errorf("unexpected environment variable %q", line)
		}
	}
}

func TestPythonMissing(t *testing.T) {
	d := NewDeriver(Config{Python: filepath.Join(t.TempDir(), "no-such-python")})
	_, err := d.Derive(context.Background(), "def f(): pass")
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want a non-ErrInvalid failure", err)
	}
}

func TestTimeout(t *testing.T) {
	py := fakePython(t, "exec sleep 30\n")
	d := NewDeriver(Config{Python: py, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := d.Derive(context.Background(), "def f(): pass")
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a DeadlineExceeded failure not wrapping ErrInvalid", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Derive took %v after a 200ms timeout", el)
	}
}

func TestCanceled(t *testing.T) {
	py := fakePython(t, "exec sleep 30\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewDeriver(Config{Python: py}).Derive(ctx, "def f(): pass")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPythonCrash(t *testing.T) {
	for name, body := range map[string]string{
		"exit status": "cat >/dev/null; echo 'Traceback: boom' >&2; exit 1\n",
		"bad output":  "cat >/dev/null; echo 'not json'\n",
		"no params":   "cat >/dev/null; echo '{\"name\":\"f\"}'\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewDeriver(Config{Python: fakePython(t, body)}).Derive(context.Background(), "def f(): pass")
			if err == nil || errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a non-ErrInvalid failure", err)
			}
		})
	}
}

func FuzzDerive(f *testing.F) {
	if _, err := exec.LookPath("python3"); err != nil {
		f.Skip("python3 not found in PATH")
	}
	d := NewDeriver(Config{})
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.py"))
	for _, s := range seeds[:min(3, len(seeds))] {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"",
		"def",
		"def f(): pass",
		"def f(a: 'int'):\n '''x\n\n Args:\n  a: A'''",
		"def f(a: list[list[dict]] | None = 1):\n \"\"\"\n Args:\n     a (x): y\n         z\n \"\"\"",
		"class M(BaseModel):\n x: 'M'\ndef f(m: M):\n '''Args:\n m: M'''",
		"\xff\xfe\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got, err := d.Derive(context.Background(), src)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("Derive(%q) failed for a reason other than the source: %v", src, err)
			}
			return
		}
		if err := Validate(got.Schema); err != nil {
			t.Fatalf("Derive(%q) gave a schema that fails Validate: %v", src, err)
		}
		b, err := json.Marshal(got.Schema)
		if err != nil {
			t.Fatal(err)
		}
		var back Schema
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(back.Parameters.Properties(), got.Schema.Parameters.Properties()) {
			t.Fatalf("properties order changed in a round trip: %s", b)
		}
	})
}

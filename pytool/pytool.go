// Package pytool derives Letta-compatible JSON schemas for tools from Python
// source, by parsing it with Python's own ast module in a subprocess (the
// user's code is never executed).
//
// The rules follow Letta 0.5's generate_schema: the tool is the last top-level
// def (or async def) in the source; its name is the schema name, the first line
// of its Google-style docstring is the description, and every parameter except
// agent_state (and a legacy leading self) must carry a type annotation and a
// description in the docstring's Args section. Unless the function is
// send_message or pause_heartbeats, a required boolean request_heartbeat
// property is appended. Annotations are read structurally from the syntax
// tree: int, str, bool, float, list/List[T], dict/Dict[...], Optional[T],
// Union[T, None], T | None, string (forward-reference) annotations, and
// top-level pydantic BaseModel subclasses are understood; anything else is
// rejected.
//
// The parser is a Python script embedded in the binary (derive.py). It is run
// as "python3 -I -S -c <script>" with only PATH in its environment, reads the
// source as JSON on stdin and answers with JSON on stdout; ast.parse never
// runs, imports or evaluates any of the source.
package pytool

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error that is the fault of the tool source or
// of a client-given schema (syntax error, no function, missing annotation or
// description, unsupported type, bad schema), so callers can answer 400.
// Failures to run Python (missing interpreter, timeout, crash) do not wrap it.
var ErrInvalid = errors.New("invalid tool source")

// Derived is what Derive learns from a source file.
type Derived struct {
	Schema Schema
	// AgentState reports that the function takes an agent_state parameter,
	// or a legacy first self parameter; both are left out of the schema.
	AgentState bool
}

// Config says how to run Python. The zero value runs "python3" found on PATH
// with a 10 second timeout.
type Config struct {
	// Python is the interpreter to run, a path or a name looked up in PATH.
	// Empty means "python3".
	Python string
	// Timeout bounds each Derive call. Zero or negative means 10s.
	Timeout time.Duration
}

const (
	defaultPython  = "python3"
	defaultTimeout = 10 * time.Second
	// maxOutput bounds what is read from the interpreter's stdout and stderr.
	maxOutput = 4 << 20
)

//go:embed derive.py
var script string

// Deriver runs the embedded parser. It is safe for concurrent use; each
// Derive call starts its own short-lived Python process.
type Deriver struct {
	python  string
	timeout time.Duration
}

// NewDeriver returns a Deriver that runs Python as cfg says.
func NewDeriver(cfg Config) *Deriver {
	d := &Deriver{python: cfg.Python, timeout: cfg.Timeout}
	if d.python == "" {
		d.python = defaultPython
	}
	if d.timeout <= 0 {
		d.timeout = defaultTimeout
	}
	return d
}

// invalidError is an error caused by the tool source or schema. Its text is
// the message alone (e.g. "Parameter 'x' in function 'f' lacks a type
// annotation"), and it unwraps to ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// result is what derive.py writes on stdout.
type result struct {
	Error       *string         `json:"error"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	AgentState  bool            `json:"agent_state"`
}

// Derive parses source and returns the schema of its last top-level function.
// Errors caused by the source wrap ErrInvalid.
func (d *Deriver) Derive(ctx context.Context, source string) (Derived, error) {
	input, err := json.Marshal(struct {
		Source string `json:"source"`
	}{source})
	if err != nil {
		return Derived{}, fmt.Errorf("pytool: encode request: %w", err)
	}

	runCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()

	cmd := exec.CommandContext(runCtx, d.python, "-I", "-S", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = bytes.NewReader(input)
	stdout := &limitedBuffer{limit: maxOutput}
	stderr := &limitedBuffer{limit: maxOutput}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// If the interpreter leaves children holding the pipes, do not wait for
	// them forever once it has exited or been killed.
	cmd.WaitDelay = time.Second

	runErr := cmd.Run()
	if err := ctx.Err(); err != nil {
		return Derived{}, fmt.Errorf("pytool: %w", err)
	}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return Derived{}, fmt.Errorf("pytool: %s timed out after %s: %w", d.python, d.timeout, context.DeadlineExceeded)
	}
	if runErr != nil {
		return Derived{}, fmt.Errorf("pytool: run %s: %w%s", d.python, runErr, stderrTail(stderr))
	}
	if stdout.overflow {
		return Derived{}, fmt.Errorf("pytool: %s wrote more than %d bytes", d.python, maxOutput)
	}

	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return Derived{}, fmt.Errorf("pytool: decode %s output: %w%s", d.python, err, stderrTail(stderr))
	}
	if res.Error != nil {
		return Derived{}, &invalidError{msg: *res.Error}
	}
	var params Parameters
	if err := params.UnmarshalJSON(res.Parameters); err != nil || params.IsZero() {
		return Derived{}, fmt.Errorf("pytool: %s output has no parameters object", d.python)
	}
	return Derived{
		Schema: Schema{
			Name:        res.Name,
			Description: res.Description,
			Parameters:  params,
		},
		AgentState: res.AgentState,
	}, nil
}

// stderrTail formats the end of the interpreter's stderr for an error message.
func stderrTail(b *limitedBuffer) string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return ""
	}
	const keep = 2000
	if len(s) > keep {
		s = "..." + s[len(s)-keep:]
	}
	return "\n" + s
}

// limitedBuffer keeps the first limit bytes written to it and drops the rest,
// remembering that it did.
type limitedBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.limit - b.Len(); len(p) > room {
		b.overflow = true
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return n, nil
}

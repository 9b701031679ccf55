package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/sandbox"
	"github.com/engram-dev/engram/search"
	"github.com/engram-dev/engram/service"
)

// ToolRunner runs a custom tool's source in isolation (package sandbox).
type ToolRunner interface {
	// Run calls c.Function in c.Source. A *sandbox.Failure is the tool's
	// own failure (an exception, a limit); other errors are the runner's.
	Run(ctx context.Context, c sandbox.Call) (sandbox.Result, error)
}

// GoFunc is a tool implemented in Go: it gets the model's arguments as JSON
// and returns the text the model reads. An error is reported to the model as
// a failed function. It should return when ctx is done (the tool's timeout);
// one that does not is waited for by Loop.Close.
type GoFunc func(ctx context.Context, args json.RawMessage) (string, error)

// RegisterGoTool makes fn the function of the Go tool id (one that
// service.AddGoTool stored) in this process. Go functions live in the
// process: after a restart they must be registered again.
func (l *Loop) RegisterGoTool(id events.ToolID, fn GoFunc) {
	l.goMu.Lock()
	defer l.goMu.Unlock()
	if l.goFunc == nil {
		l.goFunc = map[events.ToolID]GoFunc{}
	}
	l.goFunc[id] = fn
}

func (l *Loop) goTool(id events.ToolID) GoFunc {
	l.goMu.RLock()
	defer l.goMu.RUnlock()
	return l.goFunc[id]
}

// defaultToolTimeout is a Go tool's limit when it sets none (the sandbox has
// its own default for Python tools).
const defaultToolTimeout = 30 * time.Second

// env gives a step the agent's memories and tools (agents.Env).
type env struct {
	loop    *Loop
	agentID string
	now     time.Time
	read    events.Seq // the run's last input: a tool runs once it is on disk
}

func (e env) Now() time.Time { return e.now }

// RunTool runs one of the agent's custom tools: a Python tool in the
// sandbox, a Go tool in this process. Tools that take the agent's state get
// a read-only view: id, name and memory blocks.
func (e env) RunTool(ctx context.Context, name string, args map[string]any) (agents.ToolOutput, error) {
	// A tool may act on the world: not for an input a power failure could
	// still take back.
	if err := e.loop.store.Durable(ctx, e.read); err != nil {
		return agents.ToolOutput{}, err
	}
	tool, state, err := e.loop.store.AgentTool(e.agentID, name)
	if err != nil {
		return agents.ToolOutput{}, err
	}
	if tool.SourceType == service.SourceTypeGo && tool.ToolType == "custom" {
		return e.loop.runGo(ctx, tool, args)
	}
	runner := e.loop.cfg.Tools
	if runner == nil || tool.SourceType != "python" || tool.SourceCode == "" {
		return agents.ToolOutput{}, fmt.Errorf("tool %s cannot run on this server: no %s runner is configured", name, tool.SourceType)
	}
	vars, err := e.loop.store.AgentSecrets(e.agentID) // for this agent's own tool alone
	if err != nil {
		return agents.ToolOutput{}, err
	}
	timeout := time.Duration(tool.TimeoutSeconds * float64(time.Second))
	res, err := runner.Run(ctx, sandbox.Call{Source: tool.SourceCode, Function: name, Args: args, AgentState: state, Timeout: timeout, Env: vars})
	var f *sandbox.Failure
	if errors.As(err, &f) {
		return agents.ToolOutput{Stdout: f.Stdout, Stderr: f.Stderr}, err
	}
	if err != nil {
		return agents.ToolOutput{}, fmt.Errorf("the tool runner failed: %v", err)
	}
	return agents.ToolOutput{Return: res.Return, Stdout: res.Stdout, Stderr: res.Stderr}, nil
}

// runGo calls a Go tool in this process, within its timeout, turning a panic
// into a failure. A call that outlives its timeout is owned by the Loop,
// whose Close waits for it.
func (l *Loop) runGo(ctx context.Context, tool projections.Tool, args map[string]any) (agents.ToolOutput, error) {
	fn := l.goTool(tool.ID)
	if fn == nil {
		return agents.ToolOutput{}, fmt.Errorf("tool %s is a Go function that this server process has not registered (an embedder registers it with AddTool after each start)", tool.Name)
	}
	if args == nil {
		args = map[string]any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return agents.ToolOutput{}, fmt.Errorf("encode arguments: %v", err)
	}
	timeout := defaultToolTimeout
	if tool.TimeoutSeconds > 0 {
		timeout = time.Duration(tool.TimeoutSeconds * float64(time.Second))
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	l.calls.Add(1)
	go func() {
		defer l.calls.Done()
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		text, err := fn(callCtx, raw)
		done <- result{text, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return agents.ToolOutput{}, r.err
		}
		return agents.ToolOutput{Return: r.text}, nil
	case <-callCtx.Done():
		if ctx.Err() != nil {
			return agents.ToolOutput{}, ctx.Err()
		}
		return agents.ToolOutput{}, fmt.Errorf("TimeoutError: tool %s timed out after %s", tool.Name, timeout)
	}
}

// SearchArchival serves archival_memory_search: ranked passages, five a
// page, each with the time it was written (Letta showed the search's time).
func (e env) SearchArchival(ctx context.Context, query string, page int) ([]string, int, error) {
	if page < 0 {
		return nil, 0, nil
	}
	hits, total, err := e.loop.store.RecallArchival(ctx, e.agentID, query, page*agents.RetrievalPageSize, agents.RetrievalPageSize)
	if err != nil {
		return nil, 0, err
	}
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = fmt.Sprintf("timestamp: %s, memory: %s", agents.LocalTime(h.Time), h.Text)
	}
	return out, total, nil
}

// SearchConversation ranks the agent's user and assistant messages by
// their words (BM25).
func (e env) SearchConversation(ctx context.Context, query string, page int) ([]string, int, error) {
	return e.searchMessages(ctx, page, search.Query{Text: query})
}

// SearchConversationDate lists the agent's user and assistant messages
// from start's day through end's day, newest first.
func (e env) SearchConversationDate(ctx context.Context, start, end time.Time, page int) ([]string, int, error) {
	if end = end.AddDate(0, 0, 1); !start.Before(end) {
		return nil, 0, nil // the model asked for days that end before they start
	}
	return e.searchMessages(ctx, page, search.Query{After: start, Before: end})
}

func (e env) searchMessages(ctx context.Context, page int, q search.Query) ([]string, int, error) {
	if page < 0 {
		return nil, 0, nil
	}
	q.Offset, q.Limit = page*agents.RetrievalPageSize, agents.RetrievalPageSize
	hits, total, err := e.loop.store.RecallMessages(ctx, e.agentID, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = fmt.Sprintf("timestamp: %s, %s - %s", h.Time.UTC().Format("2006-01-02 15:04:05.000000+00:00"), h.Role, h.Text)
	}
	return out, total, nil
}

package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
)

// GoFunc is a tool an embedder wrote in Go. It runs in the server's process:
// args is the model's JSON object of arguments (request_heartbeat removed);
// the string is what the model is told, and an error is reported to it as a
// failed function. It should return when ctx is done (the tool's timeout);
// if it does not, the call is reported as timed out anyway and the goroutine
// is left to finish on its own.
type GoFunc func(ctx context.Context, args json.RawMessage) (string, error)

// GoTool describes a Go tool for AddGoTool.
type GoTool struct {
	// Schema is the function's schema; its parameters are those of the
	// function, without request_heartbeat, which AddGoTool adds as Letta
	// adds it to every custom tool.
	Schema pytool.Schema
	Func   GoFunc
	Tags   []string
	// TimeoutSeconds is the wall-clock limit per call; 0 means 30 s.
	TimeoutSeconds float64
	// Upsert replaces a tool of the same name (keeping its id) instead of
	// failing.
	Upsert bool
}

// goTools holds the Go functions registered in this process, by tool id.
// They are not in the event log: after a restart an embedder registers them
// again.
type goTools struct {
	mu    sync.RWMutex
	funcs map[events.ToolID]GoFunc
}

func (g *goTools) set(id events.ToolID, fn GoFunc) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.funcs == nil {
		g.funcs = map[events.ToolID]GoFunc{}
	}
	g.funcs[id] = fn
}

func (g *goTools) get(id events.ToolID) GoFunc {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.funcs[id]
}

// SourceTypeGo marks a tool whose function is Go code registered in the
// process (base tools have it too, with tool_type letta_core).
const SourceTypeGo = "go"

// heartbeatProperty is the parameter Letta adds to every custom tool.
const heartbeatProperty = `{"type":"boolean","description":"Request an immediate heartbeat after function execution. Set to ` + "`True`" + ` if you want to send a follow-up message or run a follow-up function."}`

// withHeartbeat adds request_heartbeat to a schema's parameters, last and
// required.
func withHeartbeat(p pytool.Parameters) (json.RawMessage, error) {
	var obj struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	props := map[string]json.RawMessage{}
	if len(obj.Properties) > 0 && string(obj.Properties) != "null" {
		if err := json.Unmarshal(obj.Properties, &props); err != nil {
			return nil, err
		}
	}
	if _, ok := props["request_heartbeat"]; ok {
		return nil, invalid("a Go tool must not declare request_heartbeat; it is added for it")
	}
	// Keep the property order: splice the new member in before the closing
	// brace.
	text := string(obj.Properties)
	if len(props) == 0 {
		text = `{"request_heartbeat":` + heartbeatProperty + `}`
	} else {
		text = text[:len(text)-1] + `,"request_heartbeat":` + heartbeatProperty + `}`
	}
	req, _ := json.Marshal(append(obj.Required, "request_heartbeat"))
	return json.RawMessage(`{"type":"object","properties":` + text + `,"required":` + string(req) + `}`), nil
}

// AddGoTool creates (or, with Upsert, replaces) a tool whose function is fn,
// run in this process. The tool is stored like any other, with source_type
// "go" and no source; only this process can run it.
func (s *Service) AddGoTool(ctx context.Context, t GoTool) (api.Tool, error) {
	if t.Func == nil {
		return api.Tool{}, invalid("a Go tool needs a function")
	}
	if err := pytool.Validate(t.Schema); err != nil {
		return api.Tool{}, invalid("%v", err)
	}
	if t.Schema.Description == "" {
		return api.Tool{}, invalid("Go tool %s needs a description", t.Schema.Name)
	}
	if err := checkName("tool", t.Schema.Name); err != nil {
		return api.Tool{}, err
	}
	if err := checkTags(t.Tags); err != nil {
		return api.Tool{}, err
	}
	if t.TimeoutSeconds != 0 {
		if err := checkTimeout(&t.TimeoutSeconds, false); err != nil {
			return api.Tool{}, err
		}
	}
	params, err := withHeartbeat(t.Schema.Parameters)
	if err != nil {
		return api.Tool{}, err
	}
	schema, err := json.Marshal(struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	}{t.Schema.Name, t.Schema.Description, params})
	if err != nil {
		return api.Tool{}, fault.Wrap(fault.Internal, err, "encode tool schema")
	}
	name, desc, srcType, empty := t.Schema.Name, t.Schema.Description, SourceTypeGo, ""
	limit, noState := DefaultReturnCharLimit, false
	c := s.command(ctx, "create_tool", "")
	id := c.newID(events.PrefixTool)
	c.n = 0
	err = s.exec(ctx, c, toolAgg(id), func(st *projections.State, d *decision) error {
		id = c.newID(events.PrefixTool)
		if old := toolNamed(st, "", name); old != nil {
			if !t.Upsert {
				return invalid("Tool %s already exists and update=False", name)
			}
			if old.ToolType != "custom" {
				return invalid("tool %s is a base tool", name)
			}
			id = string(old.ID)
			tags := t.Tags
			if tags == nil {
				tags = old.Tags
			}
			timeout := t.TimeoutSeconds
			d.expectKind(st, toolAgg(id))
			d.add(c, toolAgg(id), &events.ToolUpdated{
				Description: &desc, SourceCode: &empty, SourceType: &srcType, JSONSchema: schema,
				Tags: &tags, AgentState: &noState, TimeoutSeconds: &timeout,
			})
			return nil
		}
		d.expectKind(st, toolAgg(id))
		d.add(c, toolAgg(id), &events.ToolCreated{
			ID: events.ToolID(id), Name: name, Description: desc, SourceType: srcType, JSONSchema: schema,
			Tags: t.Tags, ToolType: "custom", ReturnCharLimit: limit, TimeoutSeconds: t.TimeoutSeconds,
		})
		return nil
	})
	if err != nil {
		return api.Tool{}, err
	}
	s.goTools.set(events.ToolID(id), t.Func)
	return s.GetTool(ctx, id)
}

// runGo calls a Go tool in this process, within its timeout, turning a panic
// into a failure.
func (e env) runGo(ctx context.Context, tool *projections.Tool, args map[string]any) (agents.ToolOutput, error) {
	fn := e.s.goTools.get(tool.ID)
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
	// The call may outlive its timeout (Go code cannot be stopped, only
	// asked to stop): the service owns it, and Close waits for it.
	e.s.work.Add(1)
	go func() {
		defer e.s.work.Done()
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

// defaultToolTimeout is a Go tool's limit when it sets none (the sandbox has
// its own default for Python tools).
const defaultToolTimeout = 30 * time.Second

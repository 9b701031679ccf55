package service

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
)

// ToolRunner runs a custom tool's source in isolation.
type ToolRunner interface {
	// Run calls c.Function in c.Source. A *sandbox.Failure is the tool's
	// own failure (an exception, a limit); other errors are the runner's.
	Run(ctx context.Context, c sandbox.Call) (sandbox.Result, error)
}

// RunTool runs one of the agent's custom tools in the sandbox. Tools that
// take the agent's state get a read-only view: id, name and memory blocks.
func (e env) RunTool(ctx context.Context, name string, args map[string]any) (agents.ToolOutput, error) {
	var (
		tool   *projections.Tool
		state  json.RawMessage
		sealed map[string]string
	)
	e.s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(e.agentID)]
		if a == nil {
			return
		}
		for _, id := range a.ToolIDs {
			if t := st.Tools[id]; t != nil && t.Name == name {
				tool = t
			}
		}
		sealed = a.Secrets
		if tool != nil && tool.AgentState {
			blocks := map[string]any{}
			for _, id := range a.BlockIDs {
				if b := st.Blocks[id]; b != nil {
					blocks[b.Label] = map[string]any{"label": b.Label, "value": b.Value, "limit": b.Limit}
				}
			}
			state, _ = json.Marshal(map[string]any{"id": a.ID, "name": a.Name, "memory": blocks})
		}
	})
	if tool == nil {
		return agents.ToolOutput{}, fmt.Errorf("tool %s is not attached to this agent", name)
	}
	if tool.SourceType == SourceTypeGo && tool.ToolType == "custom" {
		return e.runGo(ctx, tool, args)
	}
	if e.s.cfg.Tools == nil || tool.SourceType != "python" || tool.SourceCode == "" {
		return agents.ToolOutput{}, fmt.Errorf("tool %s cannot run on this server: no %s runner is configured", name, tool.SourceType)
	}
	vars, err := e.s.openSecrets(e.agentID, sealed)
	if err != nil {
		return agents.ToolOutput{}, err
	}
	timeout := time.Duration(tool.TimeoutSeconds * float64(time.Second))
	res, err := e.s.cfg.Tools.Run(ctx, sandbox.Call{Source: tool.SourceCode, Function: name, Args: args, AgentState: state, Timeout: timeout, Env: vars})
	var f *sandbox.Failure
	if errors.As(err, &f) {
		return agents.ToolOutput{Stdout: f.Stdout, Stderr: f.Stderr}, err
	}
	if err != nil {
		return agents.ToolOutput{}, fmt.Errorf("the tool runner failed: %v", err)
	}
	return agents.ToolOutput{Return: res.Return, Stdout: res.Stdout, Stderr: res.Stderr}, nil
}

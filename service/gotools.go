package service

import (
	"context"
	"encoding/json"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
)

// GoTool describes a Go tool for AddGoTool.
type GoTool struct {
	// Schema is the function's schema; its parameters are those of the
	// function, without request_heartbeat, which AddGoTool adds as Letta
	// adds it to every custom tool.
	Schema pytool.Schema
	Tags   []string
	// TimeoutSeconds is the wall-clock limit per call; 0 means 30 s.
	TimeoutSeconds float64
	// Upsert replaces a tool of the same name (keeping its id) instead of
	// failing.
	Upsert bool
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

// AddGoTool creates (or, with Upsert, replaces) a tool whose function is Go
// code that the process running the agent registers (runner.Loop.RegisterGoTool;
// node.Node.AddGoTool does both). The tool is stored like any other, with
// source_type "go" and no source.
func (s *Service) AddGoTool(ctx context.Context, t GoTool) (api.Tool, error) {
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
	id := c.idAt(events.PrefixTool, 1) // what decide's first newID returns (keyed commands)
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
	return s.GetTool(ctx, id)
}

package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
)

// Tool writes check the version of the whole tool kind, so that names stay
// unique: two racing creates of one name cannot both succeed.

func toolAgg(id string) events.Aggregate { return events.Aggregate{Kind: events.KindTool, ID: id} }

// DefaultReturnCharLimit is the return size limit of a tool created without one.
const DefaultReturnCharLimit = 6000

// MaxToolTimeout is the largest per-tool wall-clock limit, in seconds.
const MaxToolTimeout = 3600

// checkTimeout checks a tool's timeout_seconds; zero is allowed only when
// zeroOK (an update that restores the default).
func checkTimeout(t *float64, zeroOK bool) error {
	if t == nil || (zeroOK && *t == 0) {
		return nil
	}
	if !(*t > 0 && *t <= MaxToolTimeout) { // also rejects NaN
		return invalid("timeout_seconds must be more than 0 and at most %d", MaxToolTimeout)
	}
	return nil
}

func lookupTool(st *projections.State, id string) (*projections.Tool, error) {
	if err := events.CheckID(events.PrefixTool, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	t := st.Tools[events.ToolID(id)]
	if t == nil {
		return nil, notFound("Tool with id %s not found.", id)
	}
	return t, nil
}

// toolDef is a validated tool definition from source and/or a schema.
type toolDef struct {
	name, description string
	schema            json.RawMessage
	agentState        bool
}

// define derives or checks a tool's schema. It runs before the command
// decides, because it may start a Python process.
func (s *Service) define(ctx context.Context, source string, givenName, givenDesc *string, givenSchema json.RawMessage) (toolDef, error) {
	var def toolDef
	if strings.TrimSpace(source) == "" {
		return def, invalid("source_code must not be empty")
	}
	if len(source) > MaxSourceLen {
		return def, invalid("source_code is %d bytes; the limit is %d", len(source), MaxSourceLen)
	}
	var schema pytool.Schema
	given := len(givenSchema) > 0 && string(givenSchema) != "null"
	if given {
		if err := json.Unmarshal(givenSchema, &schema); err != nil {
			return def, unprocessable("json_schema: %s", jsonProblem(err))
		}
		if err := pytool.Validate(schema); err != nil {
			return def, invalid("json_schema: %v", err)
		}
	}
	if s.schema != nil {
		d, err := s.schema.Derive(ctx, source)
		switch {
		case err == nil:
			def.agentState = d.AgentState
			if !given {
				schema = d.Schema
			} else if schema.Name != d.Schema.Name {
				return def, invalid("json_schema name %q does not match the function name %q", schema.Name, d.Schema.Name)
			}
		case errors.Is(err, pytool.ErrInvalid):
			if !given {
				return def, invalid("%v", err)
			}
			// A client that gives the schema may send source we cannot parse
			// (another language); the schema stands.
		default:
			if !given {
				return def, fault.Wrap(fault.Unavailable, err, "cannot derive the tool's schema: Python is not available on the server; send json_schema")
			}
		}
	} else if !given {
		return def, invalid("json_schema is required (this server derives no schemas)")
	}
	if givenName != nil && *givenName != "" && *givenName != schema.Name {
		return def, invalid("name %q does not match the function name %q", *givenName, schema.Name)
	}
	if err := checkName("tool", schema.Name); err != nil {
		return def, err
	}
	def.name = schema.Name
	def.description = schema.Description
	if givenDesc != nil {
		def.description = *givenDesc
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return def, fault.Wrap(fault.Internal, err, "encode tool schema")
	}
	def.schema = b
	return def, nil
}

// GenerateToolSchema derives the JSON schema of the function Python source
// defines, as CreateTool would, without creating a tool: bad source is
// invalid, and a server without Python is unavailable.
func (s *Service) GenerateToolSchema(ctx context.Context, req api.CodeInput) (json.RawMessage, error) {
	if req.SourceType != nil && *req.SourceType != "" && *req.SourceType != "python" {
		return nil, invalid("source_type %q: this server derives schemas from Python source only", *req.SourceType)
	}
	def, err := s.define(ctx, req.Code, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return def.schema, nil
}

// CreateTool creates a tool from Python source. When a tool of that name
// exists, upsert updates it in place (keeping its id); otherwise it is an
// error.
func (s *Service) CreateTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error) {
	def, err := s.define(ctx, req.SourceCode, req.Name, req.Description, req.JSONSchema)
	if err != nil {
		return api.Tool{}, err
	}
	if err := checkTags(req.Tags); err != nil {
		return api.Tool{}, err
	}
	limit := DefaultReturnCharLimit
	if req.ReturnCharLimit != nil {
		if *req.ReturnCharLimit < 1 || *req.ReturnCharLimit > 1_000_000 {
			return api.Tool{}, invalid("return_char_limit must be in 1..1000000")
		}
		limit = *req.ReturnCharLimit
	}
	if err := checkTimeout(req.TimeoutSeconds, false); err != nil {
		return api.Tool{}, err
	}
	srcType := "python"
	if req.SourceType != nil && *req.SourceType != "" {
		srcType = *req.SourceType
	}
	c := s.command(ctx, "create_tool", "")
	id := c.idAt(events.PrefixTool, 1) // what decide's first newID returns (keyed commands)
	err = s.exec(ctx, c, toolAgg(id), func(st *projections.State, d *decision) error {
		id = c.newID(events.PrefixTool)
		if old := toolNamed(st, c.org, def.name); old != nil {
			if old.Org != c.org {
				return invalid("%s is the name of a base tool; choose another name", def.name)
			}
			if !upsert {
				return invalid("Tool %s already exists and update=False", def.name)
			}
			id = string(old.ID)
			tags := req.Tags
			if tags == nil {
				tags = old.Tags
			}
			d.expectKind(st, toolAgg(id))
			d.add(c, toolAgg(id), &events.ToolUpdated{
				Description: &def.description, SourceCode: &req.SourceCode, SourceType: &srcType,
				JSONSchema: def.schema, Tags: &tags, ReturnCharLimit: &limit, AgentState: &def.agentState,
				TimeoutSeconds: req.TimeoutSeconds, DefaultRequiresApproval: req.DefaultRequiresApproval,
			})
			return nil
		}
		d.expectKind(st, toolAgg(id))
		d.add(c, toolAgg(id), &events.ToolCreated{
			ID: events.ToolID(id), Name: def.name, Description: def.description, SourceCode: req.SourceCode,
			SourceType: srcType, JSONSchema: def.schema, Tags: req.Tags, ToolType: "custom",
			ReturnCharLimit: limit, AgentState: def.agentState, TimeoutSeconds: deref(req.TimeoutSeconds),
			DefaultRequiresApproval: deref(req.DefaultRequiresApproval), OrganizationID: c.org,
		})
		return nil
	})
	if err != nil {
		return api.Tool{}, err
	}
	return s.GetTool(ctx, id)
}

// GetTool returns a tool.
func (s *Service) GetTool(ctx context.Context, id string) (api.Tool, error) {
	var (
		out api.Tool
		err error
	)
	s.read(func(st *projections.State) {
		var t *projections.Tool
		if t, err = lookupTool(st, id); err == nil {
			out = toolView(t)
		}
	})
	return out, err
}

// GetToolByName returns the tool with a name.
func (s *Service) GetToolByName(ctx context.Context, name string) (api.Tool, error) {
	var (
		out   api.Tool
		found bool
	)
	s.read(func(st *projections.State) {
		if t := toolNamed(st, orgOf(ctx), name); t != nil {
			out, found = toolView(t), true
		}
	})
	if !found {
		return out, notFound("Tool with name %q not found", name)
	}
	return out, nil
}

// ListTools lists tools, newest first unless the page says otherwise.
func (s *Service) ListTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error) {
	var (
		out []api.Tool
		err error
	)
	s.read(func(st *projections.State) {
		list := make([]*projections.Tool, 0, len(st.Tools))
		org := orgOf(ctx)
		for _, t := range st.Tools {
			if toolVisible(org, t) && (name == "" || t.Name == name) {
				list = append(list, t)
			}
		}
		slices.SortFunc(list, func(x, y *projections.Tool) int {
			return projections.ByCreation(x.Created, x.CreatedPart, y.Created, y.CreatedPart)
		})
		list, err = page(list, func(t *projections.Tool) string { return string(t.ID) }, p, "desc", 50, "Tool")
		if err != nil {
			return
		}
		out = make([]api.Tool, len(list))
		for i, t := range list {
			out[i] = toolView(t)
		}
	})
	return out, err
}

// UpdateTool changes a tool. New source re-derives the name and schema.
func (s *Service) UpdateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error) {
	e := &events.ToolUpdated{Description: req.Description, SourceType: req.SourceType, Tags: req.Tags, ReturnCharLimit: req.ReturnCharLimit, TimeoutSeconds: req.TimeoutSeconds,
		DefaultRequiresApproval: req.DefaultRequiresApproval}
	if err := checkTimeout(req.TimeoutSeconds, true); err != nil {
		return api.Tool{}, err
	}
	if req.SourceCode != nil || (len(req.JSONSchema) > 0 && string(req.JSONSchema) != "null") {
		src := ""
		if req.SourceCode != nil {
			src = *req.SourceCode
		} else {
			var cur api.Tool
			cur, err := s.GetTool(ctx, id)
			if err != nil {
				return api.Tool{}, err
			}
			if cur.SourceCode != nil {
				src = *cur.SourceCode
			}
		}
		def, err := s.define(ctx, src, req.Name, req.Description, req.JSONSchema)
		if err != nil {
			return api.Tool{}, err
		}
		e.Name, e.SourceCode, e.JSONSchema, e.AgentState = &def.name, &src, def.schema, &def.agentState
		if req.Description == nil {
			e.Description = &def.description
		}
	} else if req.Name != nil {
		if err := checkName("tool", *req.Name); err != nil {
			return api.Tool{}, err
		}
		e.Name = req.Name
	}
	if req.Tags != nil {
		if err := checkTags(*req.Tags); err != nil {
			return api.Tool{}, err
		}
	}
	if req.ReturnCharLimit != nil && (*req.ReturnCharLimit < 1 || *req.ReturnCharLimit > 1_000_000) {
		return api.Tool{}, invalid("return_char_limit must be in 1..1000000")
	}
	meta, err := object("metadata_", req.Metadata)
	if err != nil {
		return api.Tool{}, err
	}
	e.Metadata = meta
	c := s.command(ctx, "update_tool", id)
	err = s.exec(ctx, c, toolAgg(id), func(st *projections.State, d *decision) error {
		t, err := lookupTool(st, id)
		if err != nil {
			return err
		}
		if err := writableTool(c.org, t); err != nil {
			return err
		}
		if e.Name != nil && *e.Name != t.Name {
			if other := toolNamed(st, t.Org, *e.Name); other != nil {
				return invalid("a tool named %s already exists (%s)", *e.Name, other.ID)
			}
		}
		d.expectKind(st, toolAgg(id))
		d.add(c, toolAgg(id), e)
		return nil
	})
	if err != nil {
		return api.Tool{}, err
	}
	return s.GetTool(ctx, id)
}

// DeleteTool deletes a tool; agents that had it lose it.
func (s *Service) DeleteTool(ctx context.Context, id string) error {
	c := s.command(ctx, "delete_tool", id)
	return s.exec(ctx, c, toolAgg(id), func(st *projections.State, d *decision) error {
		t, err := lookupTool(st, id)
		if err != nil {
			return err
		}
		if err := writableTool(c.org, t); err != nil {
			return err
		}
		d.expectKind(st, toolAgg(id))
		d.add(c, toolAgg(id), &events.ToolDeleted{})
		return nil
	})
}

// EnsureBaseTools creates the base tools that do not exist yet. Their ids are
// derived from their names, so nodes racing to create them agree.
func (s *Service) EnsureBaseTools(ctx context.Context) error {
	for _, bt := range agents.ServerTools() {
		exists := false
		s.read(func(st *projections.State) { exists = toolNamed(st, "", bt.Name) != nil })
		if exists {
			continue
		}
		c := &command{id: "base-tool:" + bt.Name, now: s.cfg.Clock().UTC(), actor: "engram"}
		id := events.DerivedID(events.PrefixTool, c.id)
		desc, typ := bt.Description, cmp.Or(bt.ToolType, "letta_core")
		err := s.exec(ctx, c, toolAgg(id), func(st *projections.State, d *decision) error {
			if toolNamed(st, "", bt.Name) != nil {
				return errNothing
			}
			d.expectKind(st, toolAgg(id))
			d.add(c, toolAgg(id), &events.ToolCreated{
				ID: events.ToolID(id), Name: bt.Name, Description: desc, SourceType: "go",
				JSONSchema: bt.Schema, Tags: bt.Tags, ToolType: typ, ReturnCharLimit: DefaultReturnCharLimit,
			})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

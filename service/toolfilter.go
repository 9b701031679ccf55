package service

import (
	"context"
	"slices"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/projections"
)

// ToolTypes are the tool_type values Letta names; tool_types filters may
// use any of them.
var ToolTypes = []string{
	"custom", "letta_core", "letta_memory_core", "letta_multi_agent_core", "letta_sleeptime_core",
	"letta_voice_sleeptime_core", "letta_builtin", "letta_files_core", "external_langchain",
	"external_composio", "external_mcp",
}

// ListToolsMatching is ListTools narrowed by a filter: the tools that pass
// every condition it sets, newest first unless the page says otherwise. An
// unknown tool type is Invalid.
func (s *Service) ListToolsMatching(ctx context.Context, f api.ToolFilter, p api.Page) ([]api.Tool, error) {
	for _, t := range append(slices.Clone(f.Types), f.ExcludeTypes...) {
		if !slices.Contains(ToolTypes, t) {
			return nil, invalid("unknown tool type %q (known: %s)", t, strings.Join(ToolTypes, ", "))
		}
	}
	search := strings.ToLower(f.Search)
	keep := func(t *projections.Tool) bool {
		switch {
		case f.Name != "" && t.Name != f.Name,
			len(f.Names) > 0 && !slices.Contains(f.Names, t.Name),
			len(f.IDs) > 0 && !slices.Contains(f.IDs, string(t.ID)),
			search != "" && !strings.Contains(strings.ToLower(t.Name), search),
			len(f.Types) > 0 && !slices.Contains(f.Types, t.ToolType),
			slices.Contains(f.ExcludeTypes, t.ToolType),
			f.LettaOnly && !strings.HasPrefix(t.ToolType, "letta_"):
			return false
		}
		return true
	}
	var (
		out []api.Tool
		err error
	)
	s.read(func(st *projections.State) {
		list := make([]*projections.Tool, 0, len(st.Tools))
		org := orgOf(ctx)
		for _, t := range st.Tools {
			if toolVisible(org, t) && keep(t) {
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

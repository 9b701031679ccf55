package service

import (
	"context"
	"slices"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Fork makes a new agent whose state is another's at a point of the log:
// its settings, copies of its core memory blocks as new blocks, copies of
// the messages then in its context window, and the tools and sources it
// had then that still exist. The new agent's AgentCreated names its
// origin. Archival memory and the messages outside the window are not
// copied.
func (s *Service) Fork(ctx context.Context, agentID string, req api.ForkAgent) (api.AgentState, error) {
	old, err := s.StateAt(ctx, agentID, req.At)
	if err != nil {
		return api.AgentState{}, err
	}
	from := old.Agents[events.AgentID(agentID)]
	window := make([]*events.MessageAppended, 0, len(from.MessageIDs))
	for _, r := range windowRefs(from) {
		env, err := s.load(ctx, r)
		if err != nil {
			return api.AgentState{}, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		m, ok := events.AsMessage(env.Event)
		if !ok {
			continue
		}
		cp := &events.MessageAppended{
			Role: m.Role, Kind: m.Kind, Text: m.Text, Reply: m.Reply, Reasoning: m.Reasoning, Name: m.Name,
			ToolCalls: m.ToolCalls, ToolCallID: m.ToolCallID, Model: m.Model, Stdout: m.Stdout, Stderr: m.Stderr,
		}
		if cp.Kind != "" {
			// A wrapped message renders its envelope with the time it was
			// stored; the copy is stored later, so it keeps the envelope as
			// first rendered (the older stored form, which Words reads).
			cp.Kind, cp.Text = "", promptText(m, env.Time)
		}
		window = append(window, cp)
	}
	name := from.Name + " fork"
	if req.Name != nil {
		name = *req.Name
	}
	if err := checkAgentName(name); err != nil {
		return api.AgentState{}, err
	}
	c := s.command(ctx, "fork_agent", agentID)
	newID := c.idAt(events.PrefixAgent, 1) // what decide's first newID returns (keyed commands)
	err = s.exec(ctx, c, agentAgg(newID), func(st *projections.State, d *decision) error {
		newID = c.newID(events.PrefixAgent)
		e := &events.AgentCreated{
			ID: events.AgentID(newID), Name: name, Description: from.Description, System: from.System, AgentType: from.AgentType,
			LLMConfig: from.LLMConfig, EmbeddingConfig: from.EmbeddingConfig, Metadata: from.Metadata, ToolRules: from.ToolRules, CompactionSettings: from.CompactionSettings,
			Tags:       slices.Clone(from.Tags),
			ForkedFrom: &events.Origin{AgentID: events.AgentID(agentID), Seq: old.Applied},
		}
		for _, id := range from.ToolIDs {
			if st.Tools[id] != nil {
				e.ToolIDs = append(e.ToolIDs, id)
			}
		}
		for _, id := range from.SourceIDs {
			if st.Sources[id] != nil {
				e.SourceIDs = append(e.SourceIDs, id)
			}
		}
		var blocks []*events.BlockCreated
		for _, id := range from.BlockIDs {
			b := old.Blocks[id]
			if b == nil {
				continue
			}
			bc := &events.BlockCreated{
				ID: events.BlockID(c.newID(events.PrefixBlock)), Label: b.Label, Value: b.Value, Limit: b.Limit,
				ReadOnly: b.ReadOnly, Description: b.Description, Metadata: b.Metadata, Tags: slices.Clone(b.Tags),
			}
			blocks = append(blocks, bc)
			e.BlockIDs = append(e.BlockIDs, bc.ID)
		}
		addAgent(st, d, c, e, blocks)
		for _, m := range window {
			cp := *m
			cp.ID = events.MessageID(c.newID(events.PrefixMessage))
			d.add(c, agentAgg(newID), &cp)
		}
		return nil
	})
	if err != nil {
		return api.AgentState{}, err
	}
	return s.GetAgent(ctx, newID)
}

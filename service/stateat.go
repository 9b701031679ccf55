package service

import (
	"context"
	"slices"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// StateAt rebuilds the read model of one agent as it was at a point of the
// log, by folding into a fresh state only the events that concern it: its
// own, then those of the blocks, tools and sources its events name, each
// up to the point. The cost grows with that agent's history, not the
// log's. The state holds the agent (when it existed then) and those
// aggregates, nothing else.
func (s *Service) StateAt(ctx context.Context, agentID string, at api.At) (*projections.State, error) {
	if err := events.CheckID(events.PrefixAgent, agentID); err != nil {
		return nil, unprocessable("%v", err)
	}
	to := events.Seq(at.Seq)
	before := func(env events.Envelope) bool { return at.Time.IsZero() || !env.Time.After(at.Time) }
	var (
		own     []events.Envelope
		related []events.Aggregate
	)
	relate := func(k events.Kind, id string) {
		if x := (events.Aggregate{Kind: k, ID: id}); !slices.Contains(related, x) {
			related = append(related, x)
		}
	}
	err := s.log.Read(ctx, []events.Selector{{Aggregate: agentAgg(agentID)}}, 1, to, func(env events.Envelope) (bool, error) {
		if !before(env) {
			return false, nil
		}
		own = append(own, env)
		switch e := env.Event.(type) {
		case *events.AgentCreated:
			for _, id := range e.BlockIDs {
				relate(events.KindBlock, string(id))
			}
			for _, id := range e.ToolIDs {
				relate(events.KindTool, string(id))
			}
			for _, id := range e.SourceIDs {
				relate(events.KindSource, string(id))
			}
		case *events.AgentUpdated:
			if e.ToolIDs != nil {
				for _, id := range *e.ToolIDs {
					relate(events.KindTool, string(id))
				}
			}
			if e.SourceIDs != nil {
				for _, id := range *e.SourceIDs {
					relate(events.KindSource, string(id))
				}
			}
		case *events.CoreBlockAttached:
			relate(events.KindBlock, string(e.BlockID))
		case *events.AgentToolAttached:
			relate(events.KindTool, string(e.ToolID))
		case *events.AgentSourceAttached:
			relate(events.KindSource, string(e.SourceID))
		}
		return true, nil
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "cannot read agent %s's history from the log", agentID)
	}
	if len(own) == 0 {
		return nil, s.agentNotFound(agentID)
	}
	st := projections.NewState()
	i := 0
	// Fold in log order: the agent's events merged with the others'.
	sel := make([]events.Selector, len(related))
	for i, x := range related {
		sel[i] = events.Selector{Aggregate: x}
	}
	err = s.readLog(ctx, sel, 1, to, func(env events.Envelope) (bool, error) {
		if !before(env) {
			return false, nil
		}
		for ; i < len(own) && (own[i].Seq < env.Seq || own[i].Seq == env.Seq && own[i].Part < env.Part); i++ {
			st.Apply(own[i])
		}
		st.Apply(env)
		return true, nil
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "cannot read agent %s's history from the log", agentID)
	}
	for ; i < len(own); i++ {
		st.Apply(own[i])
	}
	if st.Agents[events.AgentID(agentID)] == nil {
		return nil, notFound("Agent with ID %s did not exist at that point", agentID)
	}
	return st, nil
}

// agentAt is StateAt and the agent in it.
func (s *Service) agentAt(ctx context.Context, agentID string, at api.At) (*projections.State, *projections.Agent, error) {
	st, err := s.StateAt(ctx, agentID, at)
	if err != nil {
		return nil, nil, err
	}
	return st, st.Agents[events.AgentID(agentID)], nil
}

// GetAgentAt is GetAgent as of a point of the log (now, for the zero At).
func (s *Service) GetAgentAt(ctx context.Context, id string, at api.At) (api.AgentState, error) {
	if at.IsZero() {
		return s.GetAgent(ctx, id)
	}
	st, a, err := s.agentAt(ctx, id, at)
	if err != nil {
		return api.AgentState{}, err
	}
	return agentView(st, a), nil
}

// ListAgentBlocksAt is ListAgentBlocks as of a point of the log.
func (s *Service) ListAgentBlocksAt(ctx context.Context, id string, at api.At, p api.Page) ([]api.Block, error) {
	if at.IsZero() {
		return s.ListAgentBlocks(ctx, id, p)
	}
	a, err := s.GetAgentAt(ctx, id, at)
	if err != nil {
		return nil, err
	}
	return page(a.Blocks, func(b api.Block) string { return b.ID }, p, "asc", 100, "Block")
}

// ListMessagesAt is ListMessages as of a point of the log.
func (s *Service) ListMessagesAt(ctx context.Context, id string, at api.At, p api.Page) ([]api.LettaMessage, error) {
	if at.IsZero() {
		return s.ListMessages(ctx, id, p)
	}
	_, a, err := s.agentAt(ctx, id, at)
	if err != nil {
		return nil, err
	}
	refs, err := page(a.Messages, func(r projections.Ref) string { return r.ID }, p, "desc", 100, "Message")
	if err != nil {
		return nil, err
	}
	return s.messageBodies(ctx, refs)
}

// ListArchivalAt is ListArchival as of a point of the log.
func (s *Service) ListArchivalAt(ctx context.Context, id string, at api.At, p api.Page) ([]api.Passage, error) {
	if at.IsZero() {
		return s.ListArchival(ctx, id, p)
	}
	_, a, err := s.agentAt(ctx, id, at)
	if err != nil {
		return nil, err
	}
	refs, err := page(a.Passages, func(r projections.Ref) string { return r.ID }, p, "asc", defaultArchivalLimit, "Passage")
	if err != nil {
		return nil, err
	}
	return s.passageBodies(ctx, refs)
}

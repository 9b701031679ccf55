package service

import (
	"context"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// An organization's aggregates are stored under its id as their subjects'
// tenant token (ev.<organization id>.…), so that NATS permissions can give
// its keys its events and no other's; the default organization's, and what
// has no organization (organizations, keys, the access record, the log's
// checkpoints), under the log's own token. An aggregate is its
// organization's for good: one made by the command is its creation event's
// organization's, one already made, the read models'. (An organization's
// aggregate written before organizations had tokens of their own keeps its
// older events under the log's token; expectations and reads match any
// token, so it goes on, its new events under its organization's.)

// appendLog appends b with the tenant token of each of its aggregates.
func (s *Service) appendLog(ctx context.Context, b events.Batch) (events.Seq, error) {
	s.withTenants(&b)
	return s.log.Append(ctx, b)
}

// withTenants names in b.Tenants the organization of each aggregate of b
// that is not the default one's.
func (s *Service) withTenants(b *events.Batch) {
	made := map[events.Aggregate]string{}
	var convs map[events.Aggregate]events.AgentID // conversations made, by agent
	for _, env := range b.Events {
		switch e := env.Event.(type) {
		case *events.AgentCreated:
			made[env.Aggregate] = e.OrganizationID
		case *events.BlockCreated:
			made[env.Aggregate] = e.OrganizationID
		case *events.ToolCreated:
			made[env.Aggregate] = e.OrganizationID
		case *events.SourceCreated:
			made[env.Aggregate] = e.OrganizationID
		case *events.JobCreated:
			made[env.Aggregate] = e.OrganizationID
		case *events.ConversationCreated:
			if convs == nil {
				convs = map[events.Aggregate]events.AgentID{}
			}
			convs[env.Aggregate] = e.AgentID
		}
	}
	s.read(func(st *projections.State) {
		for _, env := range b.Events {
			a := env.Aggregate
			org, ok := made[a]
			if !ok {
				if agent, isNew := convs[a]; isNew {
					org = orgOfAgent(st, agent, made)
				} else {
					org = orgOfAggregate(st, a)
				}
			}
			if org != "" {
				if b.Tenants == nil {
					b.Tenants = map[events.Aggregate]string{}
				}
				b.Tenants[a] = org
			}
		}
	})
}

// orgOfAgent is the organization of an agent, made by the same command
// (made) or known to the read models.
func orgOfAgent(st *projections.State, id events.AgentID, made map[events.Aggregate]string) string {
	if org, ok := made[events.Aggregate{Kind: events.KindAgent, ID: string(id)}]; ok {
		return org
	}
	if a := st.Agents[id]; a != nil {
		return a.Org
	}
	return ""
}

// orgOfAggregate is the organization the read models give an aggregate;
// "" for the default one's and for what has none.
func orgOfAggregate(st *projections.State, a events.Aggregate) string {
	switch a.Kind {
	case events.KindAgent:
		if x := st.Agents[events.AgentID(a.ID)]; x != nil {
			return x.Org
		}
	case events.KindBlock:
		if x := st.Blocks[events.BlockID(a.ID)]; x != nil {
			return x.Org
		}
	case events.KindTool:
		if x := st.Tools[events.ToolID(a.ID)]; x != nil {
			return x.Org
		}
	case events.KindSource:
		if x := st.Sources[events.SourceID(a.ID)]; x != nil {
			return x.Org
		}
	case events.KindJob:
		if x := st.Jobs[events.JobID(a.ID)]; x != nil {
			return x.Org
		}
	case events.KindConversation:
		if x := st.Conversations[events.ConversationID(a.ID)]; x != nil {
			return orgOfAgent(st, x.AgentID, nil)
		}
	}
	return ""
}

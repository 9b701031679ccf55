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
// that is not the default one's. A server without organizations has none
// to name, and returns at once.
func (s *Service) withTenants(b *events.Batch) {
	// Part of deciding the append, which is acknowledged once on disk with
	// every write stored before it: ahead of the disk.
	s.proj.ReadAhead(func(st *projections.State) {
		if len(st.Orgs) == 0 {
			return
		}
		made := map[events.Aggregate]string{} // by the creation events of b
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
			}
		}
		for _, env := range b.Events {
			a := env.Aggregate
			org, ok := made[a]
			if !ok {
				if c, isNew := env.Event.(*events.ConversationCreated); isNew {
					org = orgOfAgent(st, c.AgentID, made)
				} else {
					org, _ = st.OrgOf(a.Kind, a.ID)
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
	org, _ := st.OrgOf(events.KindAgent, string(id))
	return org
}

package projections

import (
	"time"

	"github.com/engram-dev/engram/events"
)

// Org is the read model of one organization and its API keys.
type Org struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
	Created   events.Seq
	Version   Version
	Deleted   bool // its keys no longer work; kept so its id is never reused
}

// APIKey is one organization's API key, as stored: its hash, never the key.
type APIKey struct {
	ID        string
	Org       string
	Name      string
	Hash      string // hex SHA-256 of the whole key
	ExpiresAt time.Time
	CreatedAt time.Time
	RevokedAt time.Time // zero while it works
}

// Denials counts the refused requests recorded in the log (AccessLog).
type Denials struct {
	Count   int
	Version Version
}

// applyOrg folds an organization's events, its keys' among them.
func (s *State) applyOrg(env events.Envelope) {
	id := env.Aggregate.ID
	o := s.Orgs[id]
	if e, ok := env.Event.(*events.OrgCreated); ok {
		if o != nil {
			return
		}
		o = &Org{ID: id, Name: e.Name, CreatedAt: env.Time, UpdatedAt: env.Time, Created: env.Seq}
		o.Version.bump(env)
		s.Orgs[id] = o
		return
	}
	if o == nil {
		return
	}
	o.Version.bump(env)
	o.UpdatedAt = env.Time
	switch e := env.Event.(type) {
	case *events.OrgUpdated:
		setIf(&o.Name, e.Name)
	case *events.OrgDeleted:
		o.Deleted = true
		for _, k := range s.APIKeys {
			if k.Org == id && k.RevokedAt.IsZero() {
				k.RevokedAt = env.Time
			}
		}
	case *events.APIKeyCreated:
		if _, dup := s.APIKeys[e.ID]; dup || o.Deleted {
			return
		}
		k := &APIKey{ID: e.ID, Org: id, Name: e.Name, Hash: e.Hash, CreatedAt: env.Time}
		if e.ExpiresAt != nil {
			k.ExpiresAt = e.ExpiresAt.UTC()
		}
		s.APIKeys[e.ID] = k
	case *events.APIKeyRevoked:
		if k := s.APIKeys[e.ID]; k != nil && k.Org == id && k.RevokedAt.IsZero() {
			k.RevokedAt = env.Time
		}
	}
}

// applyAccess counts refused requests.
func (s *State) applyAccess(env events.Envelope) {
	if env.Aggregate != events.AccessLog {
		return
	}
	s.Denials.Version.bump(env)
	if _, ok := env.Event.(*events.AccessDenied); ok {
		s.Denials.Count++
	}
}

// OrgOf returns the organization an aggregate belongs to ("" for the
// default one), and whether the aggregate exists. Passages, files and runs
// belong to the organization of their agent or source, and a conversation
// to its agent's.
func (s *State) OrgOf(k events.Kind, id string) (org string, ok bool) {
	switch k {
	case events.KindAgent:
		if a := s.Agents[events.AgentID(id)]; a != nil {
			return a.Org, true
		}
	case events.KindBlock:
		if b := s.Blocks[events.BlockID(id)]; b != nil {
			return b.Org, true
		}
	case events.KindTool:
		if t := s.Tools[events.ToolID(id)]; t != nil {
			return t.Org, true
		}
	case events.KindSource:
		if src := s.Sources[events.SourceID(id)]; src != nil {
			return src.Org, true
		}
	case events.KindJob:
		if j := s.Jobs[events.JobID(id)]; j != nil {
			return j.Org, true
		}
	case events.KindConversation:
		if c := s.Conversations[events.ConversationID(id)]; c != nil {
			return s.OrgOf(events.KindAgent, string(c.AgentID))
		}
	}
	return "", false
}

// goneOrg remembers the organization of a deleted aggregate, when it is not
// the default one, so that its history stays its organization's.
func (s *State) goneOrg(id, org string) {
	if org != "" {
		s.GoneOrgs[id] = org
	}
}

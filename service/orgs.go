package service

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Organizations. Every aggregate belongs to one: the default organization
// ("" in events and read models; DefaultOrgID on the wire), which holds
// everything made by the admin key, by a server without keys and before
// organizations existed, or one made through CreateOrg. A command run
// under WithOrganization creates its aggregates in that organization, and
// every read and write under it treats another organization's objects as
// if they did not exist (NotFound). Base tools (the server's own, made
// by EnsureBaseTools, and Go tools an embedder registers) belong to the
// default organization and are shared: every organization sees them and
// may attach them, only the default one may change them.

// DefaultOrgID is how the default organization is named on the wire: Letta
// 0.5's default organization id.
const DefaultOrgID = "org-00000000-0000-4000-8000-000000000000"

// DefaultOrgName is the default organization's name.
const DefaultOrgName = "default_org"

// KindRun names runs for Visible; runs are no aggregate of their own (a run
// is its agent's).
const KindRun events.Kind = "run"

// keyOrg carries the caller's organization in a context.
const keyOrg ctxKey = 100

// WithOrganization runs the commands and queries under ctx as the
// organization org (an id CreateOrg returned; "" or DefaultOrgID is the
// default one). The organization must come from the caller's credentials
// (Authenticate), never from anything the client chose.
func WithOrganization(ctx context.Context, org string) context.Context {
	if org == DefaultOrgID {
		org = ""
	}
	return context.WithValue(ctx, keyOrg, org)
}

// orgOf is the organization ctx runs as; "" is the default one.
func orgOf(ctx context.Context) string {
	org, _ := ctx.Value(keyOrg).(string)
	return org
}

// sharedTool reports whether every organization may see and attach t: the
// server's base tools and Go tools, which belong to the default one.
func sharedTool(t *projections.Tool) bool {
	return t.Org == "" && t.SourceType == "go"
}

// toolVisible reports whether org may see (and attach) t.
func toolVisible(org string, t *projections.Tool) bool {
	return t.Org == org || sharedTool(t)
}

// Visible answers NotFound when the aggregate of kind k named id exists
// (or existed) and belongs to another organization than ctx's, with the
// message a lookup of a missing one gives; nil otherwise, whether or not
// it exists (the operation itself then reports a missing one). The REST
// layer calls it for every id a request's path or query names, before the
// route runs. A run is its agent's.
func (s *Service) Visible(ctx context.Context, k events.Kind, id string) error {
	org := orgOf(ctx)
	hidden := false
	// Ahead of the disk, without waiting for other writers' fsync round:
	// what it reads (an aggregate's organization, fixed when it is made,
	// and whether it is gone) decides only between running the route and
	// the answer a missing one gets. Had a power failure taken back what
	// it read, the aggregate it hides would be missing, or still another
	// organization's: the same answer.
	s.proj.ReadAhead(func(st *projections.State) {
		if k == KindRun {
			r := st.Runs[id]
			if r == nil {
				return
			}
			k, id = events.KindAgent, string(r.AgentID)
		}
		owner, ok := st.OrgOf(k, id)
		if !ok {
			// A deleted one (its history is still served) is its
			// organization's, the default one's unless GoneOrgs says.
			if _, gone := st.Gone[id]; gone {
				hidden = st.GoneOrgs[id] != org
			}
			return
		}
		if k == events.KindTool && toolVisible(org, st.Tools[events.ToolID(id)]) {
			return
		}
		hidden = owner != org
	})
	if !hidden {
		return nil
	}
	switch k {
	case events.KindAgent:
		return s.agentNotFound(id)
	case events.KindBlock:
		return notFound("Block with id %s not found", id)
	case events.KindTool:
		return notFound("Tool with id %s not found", id)
	case events.KindSource:
		return notFound("Source with id %s not found", id)
	case events.KindJob:
		return notFound("Job with id %s not found", id)
	case KindRun:
		return notFound("Run with id %s not found", id)
	}
	return notFound("%s with id %s not found", k, id)
}

// writableTool answers Permission when org may see the tool but not change
// it (a shared base tool, for any organization but the default one), and
// NotFound when org may not see it at all.
func writableTool(org string, t *projections.Tool) error {
	if t.Org != org {
		if sharedTool(t) {
			return fault.E(fault.Permission, "the tool %s is a base tool the server provides; it cannot be changed", t.ID)
		}
		return notFound("Tool with id %s not found", t.ID)
	}
	return nil
}

// Principal is who a request's credentials name.
type Principal struct {
	Admin bool   // the admin key (the server's token)
	Org   string // the organization; "" is the default one
	KeyID string // the API key, when an organization's key was presented
}

// Why a key was refused (events.AccessDenied.Reason).
const (
	DeniedMissing = "missing" // no credentials
	DeniedUnknown = "unknown" // not a key this server made
	DeniedRevoked = "revoked" // revoked, or its organization deleted
	DeniedExpired = "expired" // past its expiry
)

// keySecretBytes is the entropy of a key's secret part.
const keySecretBytes = 32

// IsAPIKey reports whether token has the form of an organization's API key
// ("apikey-<uuid>.<secret>"), whether or not it is valid.
func IsAPIKey(token string) bool {
	id, _, ok := strings.Cut(token, ".")
	return ok && events.ValidID(events.PrefixAPIKey, id)
}

// Authenticate checks an organization's API key: it returns the key's
// organization, or the reason it is refused (one of the Denied constants)
// and the key id it named, if any. The secret is compared by its SHA-256,
// in constant time.
func (s *Service) Authenticate(ctx context.Context, token string) (p Principal, reason string) {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !events.ValidID(events.PrefixAPIKey, id) {
		return Principal{}, DeniedUnknown
	}
	sum := sha256.Sum256([]byte(token))
	now := s.cfg.Clock()
	reason = DeniedUnknown
	s.read(func(st *projections.State) {
		k := st.APIKeys[id]
		if k == nil {
			return
		}
		want, err := hex.DecodeString(k.Hash)
		if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
			return
		}
		switch {
		case !k.RevokedAt.IsZero():
			reason = DeniedRevoked
		case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
			reason = DeniedExpired
		default:
			p, reason = Principal{Org: k.Org, KeyID: id}, ""
		}
	})
	if reason != "" {
		p.KeyID = id
	}
	return p, reason
}

// KeyActive reports whether the API key named id (its public part) still
// authenticates: it exists, is not revoked, has not expired, and its
// organization was not deleted. A connection made with a key is closed
// once it does not (NATS; see bus.AuthorizeKeys).
func (s *Service) KeyActive(id string) bool {
	now := s.cfg.Clock()
	active := false
	s.read(func(st *projections.State) {
		k := st.APIKeys[id]
		active = k != nil && k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
	})
	return active
}

// RecordDenied appends a refused request to the access record
// (events.AccessLog). The caller bounds how often it is called.
func (s *Service) RecordDenied(ctx context.Context, e events.AccessDenied) error {
	c := s.command(ctx, "access_denied", "")
	return s.exec(ctx, c, events.AccessLog, func(st *projections.State, d *decision) error {
		d.add(c, events.AccessLog, &e)
		return nil
	})
}

func orgAgg(id string) events.Aggregate { return events.Aggregate{Kind: events.KindOrg, ID: id} }

func orgView(o *projections.Org) api.Organization {
	return api.Organization{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt}
}

func defaultOrgView() api.Organization {
	return api.Organization{ID: DefaultOrgID, Name: DefaultOrgName, CreatedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// lookupOrg finds a live organization made by CreateOrg.
func lookupOrg(st *projections.State, id string) (*projections.Org, error) {
	if err := events.CheckID(events.PrefixOrg, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	o := st.Orgs[id]
	if o == nil || o.Deleted {
		return nil, notFound("Organization with id %s not found", id)
	}
	return o, nil
}

// CreateOrg makes an organization. Admin only (the caller checks).
func (s *Service) CreateOrg(ctx context.Context, req api.OrganizationCreate) (api.Organization, error) {
	name := strings.TrimSpace(deref(req.Name))
	if len(name) > 200 {
		return api.Organization{}, invalid("an organization's name is at most 200 characters")
	}
	c := s.command(ctx, "create_org", "")
	id := c.idAt(events.PrefixOrg, 1) // what decide's first newID returns (keyed commands)
	err := s.exec(ctx, c, orgAgg(id), func(st *projections.State, d *decision) error {
		id = c.newID(events.PrefixOrg)
		d.expectAt(st, orgAgg(id))
		d.add(c, orgAgg(id), &events.OrgCreated{Name: cmp.Or(name, id)})
		return nil
	})
	if err != nil {
		return api.Organization{}, err
	}
	var out api.Organization
	s.read(func(st *projections.State) { out = orgView(st.Orgs[id]) })
	return out, nil
}

// ListOrgs lists the organizations, the default one first, then the others
// oldest first.
func (s *Service) ListOrgs(ctx context.Context, p api.Page) ([]api.Organization, error) {
	var (
		out []api.Organization
		err error
	)
	s.read(func(st *projections.State) {
		list := make([]*projections.Org, 0, len(st.Orgs))
		for _, o := range st.Orgs {
			if !o.Deleted {
				list = append(list, o)
			}
		}
		slices.SortFunc(list, func(x, y *projections.Org) int { return int(x.Created) - int(y.Created) })
		list, err = page(list, func(o *projections.Org) string { return o.ID }, p, "asc", 50, "Organization")
		if err != nil {
			return
		}
		if p.After == "" && p.Before == "" {
			out = append(out, defaultOrgView())
		}
		for _, o := range list {
			out = append(out, orgView(o))
		}
	})
	return out, err
}

// UpdateOrg renames an organization.
func (s *Service) UpdateOrg(ctx context.Context, id string, req api.OrganizationUpdate) (api.Organization, error) {
	if id == DefaultOrgID {
		return api.Organization{}, invalid("the default organization cannot be changed")
	}
	if req.Name != nil && (strings.TrimSpace(*req.Name) == "" || len(*req.Name) > 200) {
		return api.Organization{}, invalid("an organization's name is 1 to 200 characters")
	}
	c := s.command(ctx, "update_org", id)
	var out api.Organization
	err := s.exec(ctx, c, orgAgg(id), func(st *projections.State, d *decision) error {
		if _, err := lookupOrg(st, id); err != nil {
			return err
		}
		d.expectAt(st, orgAgg(id))
		d.add(c, orgAgg(id), &events.OrgUpdated{Name: req.Name})
		return nil
	})
	if err != nil {
		return out, err
	}
	s.read(func(st *projections.State) { out = orgView(st.Orgs[id]) })
	return out, nil
}

// DeleteOrg ends an organization: its keys stop working at once. What it
// made stays in the log (which is forever) and out of every other
// organization's reach.
func (s *Service) DeleteOrg(ctx context.Context, id string) (api.Organization, error) {
	if id == DefaultOrgID {
		return api.Organization{}, invalid("the default organization cannot be deleted")
	}
	c := s.command(ctx, "delete_org", id)
	var out api.Organization
	err := s.exec(ctx, c, orgAgg(id), func(st *projections.State, d *decision) error {
		o, err := lookupOrg(st, id)
		if err != nil {
			return err
		}
		out = orgView(o)
		d.expectAt(st, orgAgg(id))
		d.add(c, orgAgg(id), &events.OrgDeleted{})
		return nil
	})
	return out, err
}

func keyView(k *projections.APIKey) api.APIKey {
	v := api.APIKey{ID: k.ID, OrganizationID: k.Org, Name: k.Name, CreatedAt: k.CreatedAt}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		v.ExpiresAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		v.RevokedAt = &t
	}
	return v
}

// CreateAPIKey makes a key for an organization and returns it with its
// secret: the only time the secret is seen, since the log keeps only its
// hash. Keys of the default organization are the admin's token alone.
func (s *Service) CreateAPIKey(ctx context.Context, req api.APIKeyCreate) (api.APIKey, error) {
	if len(req.Name) > 200 {
		return api.APIKey{}, invalid("a key's name is at most 200 characters")
	}
	if req.OrganizationID == "" || req.OrganizationID == DefaultOrgID {
		return api.APIKey{}, invalid("organization_id must name an organization made with POST /v1/admin/orgs (the default organization's key is the server's token)")
	}
	now := s.cfg.Clock().UTC()
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		return api.APIKey{}, invalid("expires_at must be in the future")
	}
	org := req.OrganizationID
	c := s.command(ctx, "create_api_key", org)
	if c.derived {
		// A retried request must not store a second hash for a secret the
		// client never saw; the key is made once, without a client key.
		c.id, c.derived = events.NewID("cmd", c.now), false
	}
	secret := make([]byte, keySecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return api.APIKey{}, fault.Wrap(fault.Internal, err, "cannot make a key")
	}
	id := events.NewID(events.PrefixAPIKey, now)
	token := id + "." + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(token))
	e := &events.APIKeyCreated{ID: id, Name: req.Name, Hash: hex.EncodeToString(sum[:])}
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC()
		e.ExpiresAt = &t
	}
	err := s.exec(ctx, c, orgAgg(org), func(st *projections.State, d *decision) error {
		if _, err := lookupOrg(st, org); err != nil {
			return err
		}
		d.expectAt(st, orgAgg(org))
		d.add(c, orgAgg(org), e)
		return nil
	})
	if err != nil {
		return api.APIKey{}, err
	}
	var out api.APIKey
	s.read(func(st *projections.State) { out = keyView(st.APIKeys[id]) })
	out.Key = token
	return out, nil
}

// ListAPIKeys lists an organization's keys (all of them when org is ""),
// oldest first, without their secrets.
func (s *Service) ListAPIKeys(ctx context.Context, org string) ([]api.APIKey, error) {
	out := []api.APIKey{}
	var err error
	s.read(func(st *projections.State) {
		if org != "" {
			if _, err = lookupOrg(st, org); err != nil {
				return
			}
		}
		keys := make([]*projections.APIKey, 0, len(st.APIKeys))
		for _, k := range st.APIKeys {
			if org == "" || k.Org == org {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(x, y *projections.APIKey) int { return strings.Compare(x.ID, y.ID) })
		for _, k := range keys {
			out = append(out, keyView(k))
		}
	})
	return out, err
}

// RevokeAPIKey ends a key: requests presenting it are refused (401) from
// the moment this returns.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) (api.APIKey, error) {
	if err := events.CheckID(events.PrefixAPIKey, id); err != nil {
		return api.APIKey{}, unprocessable("%v", err)
	}
	var org string
	s.read(func(st *projections.State) {
		if k := st.APIKeys[id]; k != nil {
			org = k.Org
		}
	})
	if org == "" {
		return api.APIKey{}, notFound("API key %s not found", id)
	}
	c := s.command(ctx, "revoke_api_key", id)
	err := s.exec(ctx, c, orgAgg(org), func(st *projections.State, d *decision) error {
		k := st.APIKeys[id]
		if !k.RevokedAt.IsZero() {
			return errNothing
		}
		d.expectAt(st, orgAgg(org))
		d.add(c, orgAgg(org), &events.APIKeyRevoked{ID: id})
		return nil
	})
	if err != nil {
		return api.APIKey{}, err
	}
	var out api.APIKey
	s.read(func(st *projections.State) { out = keyView(st.APIKeys[id]) })
	return out, nil
}

// AccessAudit pages through the record of access: organizations made,
// changed and deleted, keys made and revoked (each naming who did it) and
// refused requests, in log order. The filter is that of History.
func (s *Service) AccessAudit(ctx context.Context, f api.EventFilter) ([]api.Event, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, unprocessable("limit must not be negative")
	case limit == 0:
		limit = defaultHistoryLimit
	case limit > MaxPageLimit:
		limit = MaxPageLimit
	}
	sel := []events.Selector{{Aggregate: events.AccessLog}}
	s.read(func(st *projections.State) {
		for id := range st.Orgs {
			sel = append(sel, events.Selector{Aggregate: orgAgg(id)})
		}
	})
	var to events.Seq
	if f.Before != 0 {
		if f.Before <= f.After+1 {
			return []api.Event{}, nil
		}
		to = events.Seq(f.Before - 1)
	}
	out := []api.Event{}
	err := s.log.Read(ctx, sel, events.Seq(f.After+1), to, func(env events.Envelope) (bool, error) {
		if len(out) >= limit {
			return false, nil
		}
		if len(f.Types) > 0 && !slices.Contains(f.Types, string(env.Type)) ||
			!f.Since.IsZero() && env.Time.Before(f.Since) || !f.Until.IsZero() && !env.Time.Before(f.Until) {
			return true, nil
		}
		data, err := json.Marshal(env.Event)
		if err != nil {
			return false, err
		}
		by := env.Actor
		if by == "" {
			by = "client"
		}
		out = append(out, api.Event{
			Seq: uint64(env.Seq), Part: env.Part, Time: env.Time, Type: string(env.Type),
			Aggregate: env.Aggregate.String(), Command: env.Command, IssuedBy: by, Data: data,
		})
		return true, nil
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "cannot read the access record from the log")
	}
	return out, nil
}

// ActiveRuns counts the runs of ctx's organization that are in progress:
// stored and not ended (created or running), on any node. An agent's runs
// end in the order they began, so each agent's are counted from its newest
// back to the first that ended.
func (s *Service) ActiveRuns(ctx context.Context) int {
	org := orgOf(ctx)
	n := 0
	s.read(func(st *projections.State) {
		for _, a := range st.Agents {
			if a.Org != org {
				continue
			}
			for i := len(a.Runs) - 1; i >= 0; i-- {
				r := st.Runs[a.Runs[i]]
				if r == nil || !r.Active() {
					break
				}
				n++
			}
		}
	})
	return n
}

package events

import "time"

// Organizations, their API keys and refused requests. An organization is an
// aggregate of kind KindOrg whose events also carry its keys; refused
// requests are appended to the one aggregate AccessLog.

// More aggregate kinds.
const (
	// KindOrg is an organization: its name and its API keys.
	KindOrg Kind = "org"
	// KindAccess is the record of refused requests (AccessLog).
	KindAccess Kind = "access"
)

// PrefixOrg and PrefixAPIKey are the id prefixes of organizations (as
// Letta spells them) and of API keys.
const (
	PrefixOrg    = "org"
	PrefixAPIKey = "apikey"
)

// AccessLog is the aggregate refused requests (AccessDenied) are appended to.
var AccessLog = Aggregate{Kind: KindAccess, ID: "denied"}

// OrgCreated starts an organization. Its id is the aggregate's.
type OrgCreated struct {
	Name string `json:"name"`
}

// OrgUpdated renames an organization.
type OrgUpdated struct {
	Name *string `json:"name,omitempty"`
}

// OrgDeleted ends an organization: its keys stop working. What it owned
// stays in the log (as every event does), reachable through no key's API.
type OrgDeleted struct{}

// APIKeyCreated adds a key to an organization. Only the SHA-256 of the
// whole key is stored; the key itself was shown once, to whoever made it.
type APIKeyCreated struct {
	ID        string     `json:"id"` // "apikey-<uuid>": the key's public part, its first segment
	Name      string     `json:"name,omitempty"`
	Hash      string     `json:"hash"`                 // hex SHA-256 of the whole key
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // nil: never
}

// APIKeyRevoked ends a key: requests presenting it are refused from then on.
type APIKeyRevoked struct {
	ID string `json:"id"`
}

// AccessDenied records a request refused for its credentials.
type AccessDenied struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Remote string `json:"remote,omitempty"` // the client's address
	Reason string `json:"reason"`           // "missing", "unknown", "revoked", "expired"
	KeyID  string `json:"key_id,omitempty"` // the key presented, when it names one
	// Suppressed counts refusals not recorded before this one, when they
	// came faster than the record is kept (the server bounds its rate).
	Suppressed int `json:"suppressed,omitempty"`
}

func (OrgCreated) EventType() Type    { return TypeOrgCreated }
func (OrgUpdated) EventType() Type    { return TypeOrgUpdated }
func (OrgDeleted) EventType() Type    { return TypeOrgDeleted }
func (APIKeyCreated) EventType() Type { return TypeAPIKeyCreated }
func (APIKeyRevoked) EventType() Type { return TypeAPIKeyRevoked }
func (AccessDenied) EventType() Type  { return TypeAccessDenied }

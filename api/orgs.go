package api

import "time"

// Organization is Letta's Organization (GET /v1/admin/orgs).
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// PrivilegedTools is Letta's flag; engram grants no organization more
	// than another, so it is always false.
	PrivilegedTools bool `json:"privileged_tools"`
}

// OrganizationCreate is the body of POST /v1/admin/orgs.
type OrganizationCreate struct {
	Name            *string `json:"name,omitempty"`
	PrivilegedTools *bool   `json:"privileged_tools,omitempty"` // accepted, and ignored unless true (refused)
}

// OrganizationUpdate is the body of PATCH /v1/admin/orgs?org_id=.
type OrganizationUpdate struct {
	Name            *string `json:"name,omitempty"`
	PrivilegedTools *bool   `json:"privileged_tools,omitempty"`
}

// APIKey is an organization's API key (engram's /v1/admin/keys). Key, the
// whole secret, is set only in the answer to the request that made it.
type APIKey struct {
	ID             string     `json:"id"`
	OrganizationID string     `json:"organization_id"`
	Name           string     `json:"name,omitempty"`
	Key            string     `json:"key,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
}

// APIKeyCreate is the body of POST /v1/admin/keys.
type APIKeyCreate struct {
	OrganizationID string     `json:"organization_id"`
	Name           string     `json:"name,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"` // nil: the key does not expire
}

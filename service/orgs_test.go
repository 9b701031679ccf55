package service_test

import (
	"context"
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

// TestOrgsSurviveRestart: organizations, their keys (valid, revoked,
// expiring) and what each owns come back after a restart (from the
// snapshot the node writes when it stops, and from the log), and the log
// still verifies.
func TestOrgsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, dir, nil)
	ctx := context.Background()
	org, err := r.n.Service.CreateOrg(ctx, api.OrganizationCreate{Name: ptr("acme")})
	if err != nil {
		t.Fatal(err)
	}
	live, err := r.n.Service.CreateAPIKey(ctx, api.APIKeyCreate{OrganizationID: org.ID})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := r.n.Service.CreateAPIKey(ctx, api.APIKeyCreate{OrganizationID: org.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.Service.RevokeAPIKey(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	octx := service.WithOrganization(ctx, org.ID)
	a, err := r.n.Service.CreateAgent(octx, api.CreateAgent{Name: ptr("theirs")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if p, reason := r.n.Service.Authenticate(ctx, live.Key); reason != "" || p.Org != org.ID {
			t.Errorf("%s: live key = %+v, %q", when, p, reason)
		}
		if _, reason := r.n.Service.Authenticate(ctx, gone.Key); reason != service.DeniedRevoked {
			t.Errorf("%s: revoked key: %q", when, reason)
		}
		if _, reason := r.n.Service.Authenticate(ctx, live.Key+"x"); reason != service.DeniedUnknown {
			t.Errorf("%s: altered key: %q", when, reason)
		}
		if err := r.n.Service.Visible(ctx, "agent", a.ID); err == nil {
			t.Errorf("%s: the default organization sees the organization's agent", when)
		}
		if err := r.n.Service.Visible(octx, "agent", a.ID); err != nil {
			t.Errorf("%s: the organization does not see its agent: %v", when, err)
		}
		list, err := r.n.Service.ListAgents(ctx, api.AgentFilter{}, api.Page{})
		if err != nil || len(list) != 0 {
			t.Errorf("%s: the default organization lists %d agents, %v", when, len(list), err)
		}
	}
	check("before")
	if err := r.n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = startRig(t, dir, r.llm)
	check("after a restart")
	rep, err := r.n.Service.VerifyLog(ctx)
	if err != nil || !rep.Verified {
		t.Errorf("verify after organizations: %+v, %v", rep, err)
	}
}

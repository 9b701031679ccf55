package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/rest"
)

// serve starts a node and serves it over loopback HTTP until the test ends.
func serve(t *testing.T, cfg rest.Config) *httptest.Server {
	t.Helper()
	ncfg := node.DefaultConfig(t.TempDir())
	testNodeConfig(&ncfg)
	n, err := node.Start(t.Context(), ncfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rest.NewHandler(n.Service, cfg))
	t.Cleanup(func() {
		srv.Close()
		n.Close(context.Background())
	})
	return srv
}

func newREST(t *testing.T) client.Client {
	t.Helper()
	// Short pages make every full listing take several requests.
	c := client.NewREST(serve(t, rest.Config{}).URL, "", client.WithListPage(2))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestREST(t *testing.T) {
	RunConformance(t, newREST)
}

// TestRESTErrors checks that server errors are *APIError values that carry
// the status, the detail and the fault kind.
func TestRESTErrors(t *testing.T) {
	ctx := t.Context()
	c := newREST(t)
	id := events.NewID(events.PrefixAgent, time.Now())
	_, err := c.GetAgent(ctx, id)
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("GetAgent of an unknown id: %T %v; want *client.APIError", err, err)
	}
	if ae.Status != 404 || ae.Detail != "Agent with ID "+id+" not found" {
		t.Errorf("APIError = %d %q", ae.Status, ae.Detail)
	}
	if !fault.Is(err, fault.NotFound) || fault.Message(err) != ae.Detail {
		t.Errorf("kind %v message %q", fault.KindOf(err), fault.Message(err))
	}
}

// TestRESTToken checks the bearer token: without it the server refuses with
// fault.Permission, with it the calls succeed.
func TestRESTToken(t *testing.T) {
	ctx := t.Context()
	srv := serve(t, rest.Config{Token: "s3cret"})

	anon := client.NewREST(srv.URL, "")
	defer anon.Close()
	_, err := anon.ListAgents(ctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || !fault.Is(err, fault.Permission) {
		t.Errorf("ListAgents without the token: %v (kind %v); want 401, fault.Permission", err, fault.KindOf(err))
	}
	wrong := client.NewREST(srv.URL, "guess")
	defer wrong.Close()
	if _, err := wrong.ListAgents(ctx); !fault.Is(err, fault.Permission) {
		t.Errorf("ListAgents with a wrong token: %v; want fault.Permission", err)
	}

	c := client.NewREST(srv.URL+"/v1/", "s3cret")
	defer c.Close()
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "guarded"}))(t)
	if ok := must(c.AgentExists(ctx, a.ID))(t); !ok {
		t.Error("AgentExists with the token = false")
	}
}

// TestRESTUnreachable checks that a server that cannot be reached is
// fault.Unavailable, and that the context still shows through.
func TestRESTUnreachable(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	c := client.NewREST(url, "")
	defer c.Close()
	_, err := c.ListAgents(t.Context())
	if !fault.Is(err, fault.Unavailable) {
		t.Errorf("ListAgents of a closed server: %v (kind %v); want fault.Unavailable", err, fault.KindOf(err))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListAgents(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ListAgents with a cancelled context: %v; want context.Canceled in the chain", err)
	}
}

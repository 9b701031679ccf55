package client_test

import (
	"testing"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/client/local"
	"github.com/engram-dev/engram/node"
)

func newLocal(t *testing.T) client.Client {
	t.Helper()
	// Short pages make every full listing take several requests.
	c, err := local.New(t.Context(), t.TempDir(), local.WithNodeConfig(testNodeConfig), local.WithClientOptions(client.WithListPage(2)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestLocal(t *testing.T) {
	RunConformance(t, newLocal)
}

// TestLocalReopen checks that a Local client's data outlives it.
func TestLocalReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c, err := local.New(ctx, dir, local.WithNodeConfig(testNodeConfig))
	if err != nil {
		t.Fatal(err)
	}
	a := must(c.CreateAgent(ctx, client.CreateAgentOptions{Name: "keeper"}))(t)
	must(c.UpdateInContextMemory(ctx, a.ID, "human", "Name: Ada"))(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	c, err = local.New(ctx, dir, local.WithNodeConfig(testNodeConfig))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id := must(c.GetAgentID(ctx, "keeper"))(t); id != a.ID {
		t.Fatalf("GetAgentID after reopen = %q; want %q", id, a.ID)
	}
	m := must(c.GetInContextMemory(ctx, a.ID))(t)
	if h, _ := m.Get("human"); h.Value != "Name: Ada" {
		t.Errorf("human after reopen = %q", h.Value)
	}
}

// TestCreateClient checks that CreateClient picks the implementation as
// create_client does.
func TestCreateClient(t *testing.T) {
	ctx := t.Context()
	c, err := local.CreateClient(ctx, "", "", local.WithDataDir(t.TempDir()), local.WithNodeConfig(testNodeConfig))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*local.Client); !ok {
		t.Errorf("CreateClient without a base URL = %T; want *local.Client", c)
	}
	if ms := must(c.ListModels(ctx))(t); len(ms) != 1 {
		t.Errorf("the node config option was not applied: models %v", ms)
	}

	r, err := local.CreateClient(ctx, "http://127.0.0.1:1", "t", local.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*client.REST); !ok {
		t.Errorf("CreateClient with a base URL = %T; want *client.REST", r)
	}
}

// TestNewConfig checks that WithNodeConfig sees the default config.
func TestNewConfig(t *testing.T) {
	dir := t.TempDir()
	var seen node.Config
	c, err := local.New(t.Context(), dir, local.WithNodeConfig(func(cfg *node.Config) {
		seen = *cfg
		testNodeConfig(cfg)
		cfg.Service.Models = append(cfg.Service.Models, api.Model{LLMConfig: api.LLMConfig{Model: "m", ModelEndpointType: "ollama", ContextWindow: 1, Handle: ptr("ollama/m")}})
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if seen.DataDir != dir || !seen.SyncAlways {
		t.Errorf("WithNodeConfig saw %+v; want node.DefaultConfig(dir)", seen)
	}
	if ms := must(c.ListModels(t.Context()))(t); len(ms) != 2 {
		t.Errorf("models = %d; want 2", len(ms))
	}
}

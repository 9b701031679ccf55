package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llmtest"
)

// TestAgentSecrets: an agent's tool environment variables reach its own
// tools and no other agent's, are shown masked, are never stored in clear
// (no file of the data directory holds them: the log keeps them sealed),
// can be replaced and removed, and survive a restart.
func TestAgentSecrets(t *testing.T) {
	dir := t.TempDir()
	r := startRig(t, dir, nil)
	ctx := context.Background()
	secret := fmt.Sprintf("tok-%d-a7e1c9", time.Now().UnixNano())
	fingerprint := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])[:16]
	}
	// The tool reports a fingerprint of the variable, never the variable,
	// so that its return (stored in the log) cannot put it on disk.
	src := `def show_env(x: str) -> str:
    """Report the environment.

    Args:
        x (str): anything
    """
    import hashlib, os
    v = os.environ.get("API_TOKEN")
    fp = "none" if v is None else hashlib.sha256(v.encode()).hexdigest()[:16]
    return "fp=" + fp + " names=" + ",".join(sorted(os.environ))
`
	tool, err := r.n.Service.CreateTool(ctx, api.CreateTool{SourceCode: src}, true)
	if err != nil {
		t.Fatal(err)
	}
	limit := 200
	newAgent := func(secrets map[string]string) api.AgentState {
		a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{
			Model: ptr("openai/gpt-4o-mini"), AgentType: ptr("memgpt_agent"), ToolIDs: []string{tool.ID},
			MemoryBlocks: []api.CreateBlock{{Label: "persona", Value: "I am Sam.", Limit: &limit}},
			Secrets:      secrets,
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	mine := newAgent(map[string]string{"API_TOKEN": secret, "REGION": "eu"})
	other := newAgent(nil)

	seen := func(agentID string) string {
		t.Helper()
		r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{call("show_env", map[string]any{"x": "hi", "request_heartbeat": true})}}, say("done"))
		send(t, r, agentID, "show me")
		return toolMessage(t, r.llm)
	}
	got := seen(mine.ID)
	if !strings.Contains(got, "fp="+fingerprint(secret)) || !strings.Contains(got, "REGION") {
		t.Errorf("the agent's own tool saw %q; want its secret (fp=%s) and REGION", got, fingerprint(secret))
	}
	got = seen(other.ID)
	if !strings.Contains(got, "fp=none") || strings.Contains(got, "REGION") || strings.Contains(got, "API_TOKEN") {
		t.Errorf("another agent's tool saw %q; want none of the first agent's secrets", got)
	}

	// Shown masked, under both of Letta's names.
	view, err := r.n.Service.GetAgent(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(view)
	if bytes.Contains(raw, []byte(secret)) {
		t.Errorf("the agent's view holds the secret: %s", raw)
	}
	if len(view.Secrets) != 2 || view.Secrets[0].Key != "API_TOKEN" || view.Secrets[0].Value != api.MaskedSecret ||
		len(view.ToolExecEnvironmentVariables) != 2 {
		t.Errorf("secrets shown as %+v / %+v", view.Secrets, view.ToolExecEnvironmentVariables)
	}
	if o, _ := r.n.Service.GetAgent(ctx, other.ID); o.Secrets != nil {
		t.Errorf("the other agent shows secrets %+v", o.Secrets)
	}

	// Bad names are refused and change nothing.
	for _, bad := range []map[string]string{{"PATH": "/evil"}, {"A=B": "x"}, {"": "x"}, {"NUL": "a\x00b"}} {
		if _, err := r.n.Service.UpdateAgent(ctx, mine.ID, api.UpdateAgent{Secrets: bad}); err == nil {
			t.Errorf("secrets %q accepted", bad)
		}
	}

	// Restart: the sealed secrets come back from the log and still open.
	if err := r.n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = startRig(t, dir, r.llm)
	if got := seen(mine.ID); !strings.Contains(got, "fp="+fingerprint(secret)) {
		t.Errorf("after a restart the tool saw %q", got)
	}

	// Replaced through the older name, then removed.
	if _, err := r.n.Service.UpdateAgent(ctx, mine.ID, api.UpdateAgent{ToolExecEnvironmentVariables: map[string]string{"API_TOKEN": "second-8c1f77"}}); err != nil {
		t.Fatal(err)
	}
	if got := seen(mine.ID); !strings.Contains(got, "fp="+fingerprint("second-8c1f77")) || strings.Contains(got, "REGION") {
		t.Errorf("after replacing, the tool saw %q", got)
	}
	if _, err := r.n.Service.UpdateAgent(ctx, mine.ID, api.UpdateAgent{Secrets: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if got := seen(mine.ID); !strings.Contains(got, "fp=none") {
		t.Errorf("after removing, the tool saw %q", got)
	}

	// Nothing in the data directory holds the secret in clear.
	if err := r.n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && (bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte("second-8c1f77"))) {
			t.Errorf("%s holds a secret in clear", path)
		}
		return nil
	})
}

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/server"
	"github.com/engram-dev/engram/verify"
)

// TestClusterExternalNATS: two engram nodes embed no NATS but share one
// the operator runs (--nats-url). They share the log (a write on one is
// read on the other), spread the agents' partitions between them, answer
// sends whichever runs the agent, and when one stops the other takes its
// partitions and answers.
func TestClusterExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a NATS server and two nodes")
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the external NATS did not start")
	}
	script := llmtest.NewServer(t)
	script.SetResponder(echo(10*time.Millisecond, nil))
	key := filepath.Join(t.TempDir(), "log.key")
	if _, _, err := verify.LoadOrCreateKey(key); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *server.Server {
		cfg := server.DefaultConfig(t.TempDir())
		cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "", false
		cfg.Node.NATSURL, cfg.Node.NodeName, cfg.Node.LogKeyFile = ns.ClientURL(), name, key
		reg, err := llm.FromEnv(func(k string) string {
			return map[string]string{"OPENAI_BASE_URL": script.URL, "OPENAI_API_KEY": "key-" + name}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Node.Service.Providers = reg
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, err := server.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e1, e2 := start("e1"), start("e2")
	t.Cleanup(func() { e2.Close(context.Background()) })
	closed1 := false
	t.Cleanup(func() {
		if !closed1 {
			e1.Close(context.Background())
		}
	})
	if e1.Node.NATS.ClientURL() != "" {
		t.Fatalf("a node on an external NATS listens for NATS clients at %s", e1.Node.NATS.ClientURL())
	}

	// Both pull partitions, every one by one of them.
	var st api.ClusterStatus
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, b, err := do(http.DefaultClient, "GET", e1.URL+"/v1/cluster", nil)
		if err == nil && json.Unmarshal(b, &st) == nil {
			count := map[string]int{}
			for _, n := range st.Owners {
				count[n]++
			}
			if len(st.Owners) == 64 && count["e1"] > 0 && count["e2"] > 0 {
				t.Logf("partitions: %v", count)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partitions did not spread over e1 and e2: %+v", st)
		}
	}

	// A write on one is read on the other.
	id := newAgent(t, e1.URL)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _, _ := do(http.DefaultClient, "GET", e2.URL+"/v1/agents/"+id, nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2 never saw the agent made on e1 (%d)", code)
		}
	}
	// Sends on both are answered, each read back on the node asked.
	for k, url := range []string{e1.URL, e2.URL, e1.URL, e2.URL} {
		text := fmt.Sprintf("external #%d", k)
		if r, _ := deliver(url, id, text); !r.answered("re: " + text) {
			t.Fatalf("send %q: %d %s %v", text, r.code, r.body, r.err)
		}
		if wrong := readBack(url, id, text); wrong != "" {
			t.Fatalf("send %q read back: %s", text, wrong)
		}
	}
	// One stops; the other takes every partition and still answers.
	if err := e1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed1 = true
	text := "after e1 stopped"
	began := time.Now()
	if r, _ := deliver(e2.URL, id, text); !r.answered("re: " + text) {
		t.Fatalf("send after e1 stopped: %d %s %v", r.code, r.body, r.err)
	}
	t.Logf("after e1 stopped, a send on e2 was answered in %s", time.Since(began).Round(time.Millisecond))
	var rep api.LogVerification
	if err := json.Unmarshal(must(t, "GET", e2.URL+"/v1/admin/log/verify", nil), &rep); err != nil || !rep.Verified {
		t.Fatalf("verify on e2: %+v %v", rep, err)
	}
}

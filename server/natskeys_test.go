package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
)

// doAs is do with a key.
func doAs(t *testing.T, method, url, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s", method, url, b)
		}
	}
	return resp.StatusCode
}

// natsTenant is an organization made through the admin routes, a key of
// it, and an agent it made with that key.
type natsTenant struct {
	org   api.Organization
	key   api.APIKey
	agent string
}

const natsAdmin = "admin-secret-for-nats"

// startKeyed starts a server with an admin token, a NATS listener and a
// scripted model.
func startKeyed(t *testing.T, edit func(*Config)) (*Server, *llmtest.Server) {
	t.Helper()
	script := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second}))
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways, cfg.Token = "127.0.0.1:0", "127.0.0.1:0", false, natsAdmin
	cfg.Node.Service.Providers = reg
	cfg.Node.KeyWatch = 200 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, script
}

// makeTenant makes an organization, a key and an agent.
func makeTenant(t *testing.T, s *Server, name string) natsTenant {
	t.Helper()
	var x natsTenant
	if code := doAs(t, "POST", s.URL+"/v1/admin/orgs", natsAdmin, map[string]any{"name": name}, &x.org); code != 200 {
		t.Fatalf("create org: %d", code)
	}
	if code := doAs(t, "POST", s.URL+"/v1/admin/keys", natsAdmin, api.APIKeyCreate{OrganizationID: x.org.ID}, &x.key); code != 200 || x.key.Key == "" {
		t.Fatalf("create key: %d", code)
	}
	x.agent = makeAgent(t, s, x.key.Key)
	return x
}

func makeAgent(t *testing.T, s *Server, key string) string {
	t.Helper()
	var a api.AgentState
	if code := doAs(t, "POST", s.URL+"/v1/agents/", key, map[string]any{
		"agent_type":    "memgpt_agent",
		"llm_config":    map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}},
	}, &a); code != 200 {
		t.Fatalf("create agent: %d", code)
	}
	return a.ID
}

// TestOrganizationKeysOverNATS: organizations' API keys made through the
// admin routes are NATS credentials. A's key sends to A's agent and is
// answered; sent on A's subject to B's agent it is 404 and B's agent gets
// nothing; on B's subject it is refused; neither it nor the admin appends
// to the log; revoking it closes its connection and refuses it at CONNECT;
// an expired key likewise; each refusal is in the access record.
func TestOrganizationKeysOverNATS(t *testing.T) {
	const admin = natsAdmin
	s, script := startKeyed(t, nil)
	mk := func(name string) natsTenant { return makeTenant(t, s, name) }
	A, B := mk("acme"), mk("globex")
	url := s.Node.NATS.ClientURL()
	connect := func(key, org string, opts ...nats.Option) (*nats.Conn, error) {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Token(key), nats.NoReconnect(), nats.CustomInboxPrefix("_INBOX." + org)}, opts...)...)
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, err
	}
	closedA := make(chan struct{})
	nc, err := connect(A.key.Key, A.org.ID, nats.ClosedHandler(func(*nats.Conn) { close(closedA) }))
	if err != nil {
		t.Fatalf("A's key over NATS: %v", err)
	}

	// Its own agent, on its own subject.
	script.Push(reply("Hi A"))
	msg, err := nc.Request(bus.AgentRequestSubject(A.org.ID, A.agent), []byte(`{"input":"hello"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp api.LettaResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil || len(resp.Messages) == 0 {
		t.Fatalf("A's send to its agent: %s", msg.Data)
	}
	// Its own events: the agent's, stored under its organization's token,
	// its creation and the send's messages among them; none of B's.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	own, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectPrefix + "." + A.org.ID + ".>"}})
	if err != nil {
		t.Fatalf("A's consumer on its own events: %v", err)
	}
	seen := map[string]bool{}
	for {
		m, err := own.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		if es, ok := bus.ParseSubject(m.Subject()); !ok || es.Tenant != A.org.ID || strings.Contains(string(m.Data()), B.agent) {
			t.Fatalf("A read %s: %.200s", m.Subject(), m.Data())
		}
		if strings.Contains(m.Subject(), A.agent) {
			seen[strings.TrimPrefix(m.Subject()[strings.LastIndexByte(m.Subject(), '.'):], ".")] = true
		}
	}
	if !seen["agent_created"] && !seen["packed"] || !seen["message_received"] {
		t.Fatalf("A read its agent's events %v; want its creation and the send's input", seen)
	}
	if _, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.SubjectPrefix + "." + B.org.ID + ".>"}}); err == nil {
		t.Fatal("A made a consumer on B's events")
	}
	// B's agent on A's subject: 404, as over REST.
	msg, err = nc.Request(bus.AgentRequestSubject(A.org.ID, B.agent), []byte(`{"input":"from A"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(msg.Data), "not found") {
		t.Fatalf("A's send to B's agent on A's subject answered %s", msg.Data)
	}
	// B's agent on B's subject, and the default organization's: refused.
	for _, subj := range []string{bus.AgentRequestSubject(B.org.ID, B.agent), bus.AgentRequestSubject(bus.DefaultTenant, B.agent)} {
		if msg, err := nc.Request(subj, []byte(`{"input":"from A"}`), time.Second); err == nil {
			t.Fatalf("A's request on %s answered %s", subj, msg.Data)
		}
	}
	var msgs []map[string]any
	if code := doAs(t, "GET", s.URL+"/v1/agents/"+B.agent+"/messages", B.key.Key, nil, &msgs); code != 200 {
		t.Fatalf("B's messages: %d", code)
	}
	for _, m := range msgs {
		if b, _ := json.Marshal(m); strings.Contains(string(b), "from A") {
			t.Fatalf("B's agent got A's message: %s", b)
		}
	}

	// No client appends, the admin included.
	last, err := s.Node.Log.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	adm, err := nats.Connect(url, nats.Token(admin))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	forged := bus.Subject(s.Node.Log.Tenant(), events.Aggregate{Kind: events.KindAgent, ID: B.agent}, events.TypeAgentDeleted)
	for _, c := range []*nats.Conn{nc, adm} {
		js, _ := jetstream.New(c)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if _, err := js.Publish(ctx, forged, []byte(`{}`)); err == nil {
			t.Error("a client appended an event")
		}
		cancel()
		c.Publish(forged, []byte(`{}`))
		c.PublishRequest(bus.AgentRequestSubject(A.org.ID, A.agent), forged, []byte(`{"input":"reply onto the log"}`))
		c.Flush()
	}
	time.Sleep(500 * time.Millisecond)
	if now, err := s.Node.Log.LastSeq(context.Background()); err != nil || now != last {
		t.Fatalf("the log's last sequence went from %d to %d (%v)", last, now, err)
	}

	// Revoked: the open connection is closed, a new one refused.
	if code := doAs(t, "DELETE", s.URL+"/v1/admin/keys/"+A.key.ID, admin, nil, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	select {
	case <-closedA:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection of a revoked key is open 10s later")
	}
	if _, err := connect(A.key.Key, A.org.ID); err == nil {
		t.Fatal("a revoked key connected")
	}

	// Expired: likewise.
	exp := time.Now().Add(1500 * time.Millisecond).UTC()
	var short api.APIKey
	if code := doAs(t, "POST", s.URL+"/v1/admin/keys", admin, api.APIKeyCreate{OrganizationID: B.org.ID, ExpiresAt: &exp}, &short); code != 200 {
		t.Fatalf("create key: %d", code)
	}
	closedB := make(chan struct{})
	if _, err := connect(short.Key, B.org.ID, nats.ClosedHandler(func(*nats.Conn) { close(closedB) })); err != nil {
		t.Fatalf("a key before its expiry: %v", err)
	}
	select {
	case <-closedB:
		if time.Now().Before(exp) {
			t.Fatal("the connection of a key was closed before the key expired")
		}
	case <-time.After(time.Until(exp) + 10*time.Second):
		t.Fatal("the connection of an expired key is open 10s later")
	}
	if _, err := connect(short.Key, B.org.ID); err == nil {
		t.Fatal("an expired key connected")
	}
	if _, err := connect(B.key.Key, B.org.ID); err != nil {
		t.Fatalf("B's other key: %v", err)
	}

	// The refused CONNECTs are in the access record, with the key each named.
	want := []string{"CONNECT nats revoked " + A.key.ID, "CONNECT nats expired " + short.ID}
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var audit []api.Event
		if code := doAs(t, "GET", s.URL+"/v1/admin/audit?limit=1000", admin, nil, &audit); code != 200 {
			t.Fatalf("audit: %d", code)
		}
		got = got[:0]
		for _, e := range audit {
			var d events.AccessDenied
			if e.Type == string(events.TypeAccessDenied) && json.Unmarshal(e.Data, &d) == nil && d.Method == "CONNECT" {
				got = append(got, d.Method+" "+d.Path+" "+d.Reason+" "+d.KeyID)
				if d.Remote == "" {
					t.Errorf("a refused CONNECT without the client's address: %s", e.Data)
				}
			}
		}
		if len(got) >= len(want) {
			break
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("refused CONNECTs recorded %q, want %q", got, want)
	}
}

// TestOrganizationLimitsOverNATS: an organization's sends over NATS are
// held to its request rate (counted apart from REST's) and to its limit of
// runs in progress (counted with REST's), and another organization is
// served meanwhile; a refused send stores nothing.
func TestOrganizationLimitsOverNATS(t *testing.T) {
	s, script := startKeyed(t, func(c *Config) { c.RateLimit, c.RateBurst, c.MaxRunsPerOrg = 0.05, 3, 1 })
	A, B := makeTenant(t, s, "acme"), makeTenant(t, s, "globex")
	a2 := makeAgent(t, s, A.key.Key)
	url := s.Node.NATS.ClientURL()
	conn := func(x natsTenant) *nats.Conn {
		nc, err := nats.Connect(url, nats.Token(x.key.Key), nats.CustomInboxPrefix("_INBOX."+x.org.ID))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	na, nb := conn(A), conn(B)
	ask := func(nc *nats.Conn, org, agent, text string) string {
		t.Helper()
		m, err := nc.Request(bus.AgentRequestSubject(org, agent), []byte(`{"input":"`+text+`"}`), 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Data)
	}

	// Runs: A's first send is held in its model call; its second, to
	// another agent, is refused; B's is served.
	hold := make(chan struct{})
	script.Push(llmtest.Step{Content: "thinking", Hold: hold, ToolCalls: reply("first").ToolCalls})
	first := make(chan string, 1)
	go func() {
		m, err := na.Request(bus.AgentRequestSubject(A.org.ID, A.agent), []byte(`{"input":"one"}`), 30*time.Second)
		if err != nil {
			first <- err.Error()
			return
		}
		first <- string(m.Data)
	}()
	for i := 0; script.Pending() > 0; i++ {
		if i > 1000 {
			t.Fatal("the first run never called the model")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before, err := s.Node.Log.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ask(na, A.org.ID, a2, "two"); !strings.Contains(got, "runs in progress") || !strings.Contains(got, `"unavailable"`) {
		t.Fatalf("A's second run answered %s; want the run limit", got)
	}
	if now, _ := s.Node.Log.LastSeq(context.Background()); now != before {
		t.Errorf("a refused send appended %d messages", now-before)
	}
	script.Push(reply("for B"))
	if got := ask(nb, B.org.ID, B.agent, "hi"); !strings.Contains(got, "for B") {
		t.Fatalf("B's send answered %s", got)
	}
	close(hold)
	if got := <-first; !strings.Contains(got, "first") {
		t.Fatalf("A's first send answered %s", got)
	}

	// Rate: A has spent its burst of 3 (two sends above and this one); its
	// next is refused, B's is not.
	missing := "agent-0193a5b2-0000-7000-8000-0000000000ee"
	if got := ask(na, A.org.ID, missing, "x"); !strings.Contains(got, "not found") {
		t.Fatalf("A's third request answered %s", got)
	}
	if got := ask(na, A.org.ID, missing, "x"); !strings.Contains(got, "too many requests") {
		t.Fatalf("A's fourth request answered %s; want the rate limit", got)
	}
	if got := ask(nb, B.org.ID, missing, "x"); !strings.Contains(got, "not found") {
		t.Fatalf("B's request answered %s; want it served", got)
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-dev/engram/events"
)

// TestOnlyEngramWritesTheLog: a NATS client other than engram — with the
// token, or with none when the server has none — reads the log, but cannot
// append to it, purge or delete from it, take over engram's input
// consumers, forge run reports or answer sends in engram's place; a wrong
// token is refused. The log is unchanged by every attempt.
func TestOnlyEngramWritesTheLog(t *testing.T) {
	for _, token := range []string{"s3cret", ""} {
		t.Run(fmt.Sprintf("token=%q", token), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := DefaultConfig(t.TempDir())
			cfg.SyncAlways, cfg.ClientAddr, cfg.Token = false, "127.0.0.1:0", token
			s, err := StartServer(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			l, err := OpenLog(ctx, s, LogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			agent := "agent-0193a5b2-0000-7000-8000-0000000000aa"
			if _, err := l.Append(ctx, events.Batch{Command: "c1", Events: []events.Envelope{agentEnv(agent, &events.AgentCreated{ID: events.AgentID(agent)})}}); err != nil {
				t.Fatal(err)
			}

			if token != "" {
				if nc, err := nats.Connect(s.ClientURL(), nats.Token("wrong")); err == nil {
					nc.Close()
					t.Fatal("a wrong token connected")
				}
			}
			var (
				mu     sync.Mutex
				denied []string
			)
			nc, err := nats.Connect(s.ClientURL(), nats.Token(token), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				mu.Lock()
				denied = append(denied, err.Error())
				mu.Unlock()
			}))
			if err != nil {
				t.Fatalf("the client's own token: %v", err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}

			// Reading works.
			stream, err := js.Stream(ctx, StreamName)
			if err != nil {
				t.Fatalf("stream info: %v", err)
			}
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				t.Fatalf("ordered consumer: %v", err)
			}
			if m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || !strings.Contains(string(m.Data()), agent) {
				t.Fatalf("reading the log: %v", err)
			}

			// Writing does not. A refused JetStream request goes unanswered:
			// each gets a short deadline of its own.
			short := func() context.Context {
				c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				t.Cleanup(cancel)
				return c
			}
			subj := Subject(l.Tenant(), events.Aggregate{Kind: events.KindAgent, ID: agent}, events.TypeAgentDeleted)
			if _, err := js.Publish(short(), subj, []byte(`{"forged":true}`), jetstream.WithExpectLastSequence(1)); err == nil {
				t.Error("a client appended an event")
			}
			nc.Publish(subj, []byte(`{"forged":true}`))
			if err := stream.Purge(short()); err == nil {
				t.Error("a client purged the log")
			}
			if err := stream.DeleteMsg(short(), 1); err == nil {
				t.Error("a client deleted an event")
			}
			if _, err := stream.CreateOrUpdateConsumer(short(), jetstream.ConsumerConfig{Durable: fmt.Sprintf(inputConsumerFormat, 7), AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
				t.Error("a client replaced an input consumer")
			}
			nc.Publish(runSubject(l.Tenant(), "message-x"), []byte(`{"done":{}}`))
			if _, err := nc.Subscribe(AgentRequestSubject(l.Tenant(), agent), func(*nats.Msg) {}); err == nil {
				nc.Flush()
			}
			nc.Flush()
			time.Sleep(100 * time.Millisecond) // permission errors arrive asynchronously

			mu.Lock()
			n := len(denied)
			mu.Unlock()
			if n < 3 { // the event publish, the run report, the request subscription
				t.Errorf("%d permission violations reported; want at least 3: %v", n, denied)
			}
			if last, err := l.LastSeq(ctx); err != nil || last != 1 {
				t.Fatalf("the log's last sequence is %d (%v); want 1: nothing appended, purged or deleted", last, err)
			}
			if _, err := l.Load(ctx, 1, 0); err != nil {
				t.Fatalf("the first event is gone: %v", err)
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatal("timed out")
			}
		})
	}
}

// testKeys is a table of organizations' keys: key → (org, key id), and the
// ids of those that stopped working; it keeps the refusals it is told of.
type testKeys struct {
	mu      sync.Mutex
	orgs    map[string][2]string
	dead    map[string]bool
	refused []Refusal
}

func (k *testKeys) Authenticate(key string) (string, string, string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	o, ok := k.orgs[key]
	switch {
	case !ok:
		return "", "", "unknown"
	case k.dead[o[1]]:
		return "", o[1], "revoked"
	}
	return o[0], o[1], ""
}

func (k *testKeys) Refused(r Refusal) {
	k.mu.Lock()
	k.refused = append(k.refused, r)
	k.mu.Unlock()
}

func (k *testKeys) Active(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.dead[id]
}

func (k *testKeys) revoke(id string) {
	k.mu.Lock()
	k.dead[id] = true
	k.mu.Unlock()
}

// orgClient is a NATS client with a permission-error record.
type orgClient struct {
	*nats.Conn
	js     jetstream.JetStream
	mu     sync.Mutex
	denied []string
}

func (c *orgClient) violations() []string {
	c.Flush()
	time.Sleep(100 * time.Millisecond) // permission errors arrive asynchronously
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.denied...)
}

func connectAs(t *testing.T, url, token, inbox string, extra ...nats.Option) (*orgClient, error) {
	t.Helper()
	c := &orgClient{}
	opts := append([]nats.Option{nats.Token(token), nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.denied = append(c.denied, err.Error())
		c.mu.Unlock()
	})}, extra...)
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// TestOrganizationKeysOverNATS: a client presenting organization A's key
// sends requests to A's agents and reads events under ev.A.> only — not
// B's by subscription, consumer (unfiltered, filtered to B, or filtered to
// A in the subject but to B in the body), direct get or STREAM.MSG.GET,
// and not B's requests; the default organization's keys read no events
// (ev.default.> holds every organization's); no client, the admin
// included, appends to the log, directly or by having engram answer a
// request onto an event subject; a revoked key is refused at CONNECT and
// its open connection closed.
func TestOrganizationKeysOverNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := DefaultConfig(t.TempDir())
	cfg.SyncAlways, cfg.ClientAddr, cfg.Token = false, "127.0.0.1:0", "admin-token"
	s, err := StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	const (
		orgA = "org-0193a5b2-0000-7000-8000-00000000000a"
		orgB = "org-0193a5b2-0000-7000-8000-00000000000b"
		kidA = "apikey-0193a5b2-0000-7000-8000-00000000000a"
		kidB = "apikey-0193a5b2-0000-7000-8000-00000000000b"
		kidD = "apikey-0193a5b2-0000-7000-8000-00000000000d"
		keyA = kidA + ".secret-a"
		keyB = kidB + ".secret-b"
		keyD = kidD + ".secret-d" // the default organization's
	)
	keys := &testKeys{orgs: map[string][2]string{keyA: {orgA, kidA}, keyB: {orgB, kidB}, keyD: {"", kidD}}, dead: map[string]bool{}}

	// Before AuthorizeKeys, no key works.
	if _, err := connectAs(t, s.ClientURL(), keyA, ""); err == nil {
		t.Fatal("a key connected before keys were authorized")
	}
	watch, err := s.AuthorizeKeys("", keys, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)

	// Events of the default tenant and of each organization's (the log
	// writes under one tenant; a log per tenant stands for the layout
	// where events are stored under their organization's token).
	logs := map[string]*Log{}
	for _, tenant := range []string{DefaultTenant, orgA, orgB} {
		l, err := OpenLog(ctx, s, LogConfig{Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		logs[tenant] = l
	}
	agentOf := map[string]string{
		DefaultTenant: "agent-0193a5b2-0000-7000-8000-0000000000d0",
		orgA:          "agent-0193a5b2-0000-7000-8000-0000000000a0",
		orgB:          "agent-0193a5b2-0000-7000-8000-0000000000b0",
	}
	seqOf := map[string]uint64{}
	for _, tenant := range []string{DefaultTenant, orgA, orgB} {
		id := agentOf[tenant]
		r, err := logs[tenant].Append(ctx, events.Batch{Command: "c-" + tenant, Events: []events.Envelope{agentEnv(id, &events.AgentCreated{ID: events.AgentID(id), Name: "secret of " + tenant})}})
		if err != nil {
			t.Fatal(err)
		}
		seqOf[tenant] = uint64(r)
	}
	subjOf := func(tenant string) string {
		return Subject(tenant, events.Aggregate{Kind: events.KindAgent, ID: agentOf[tenant]}, events.TypeAgentCreated)
	}

	// Requests: the handler records who asked what.
	var (
		hmu   sync.Mutex
		asked []string
	)
	resp, err := s.ServeAgentRequests(func(_ context.Context, tenant, agentID string, data []byte) []byte {
		hmu.Lock()
		asked = append(asked, tenant+"/"+agentID)
		hmu.Unlock()
		return []byte(`{"tenant":"` + tenant + `"}`)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resp.Close)

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}

	a, err := connectAs(t, s.ClientURL(), keyA, "_INBOX."+orgA)
	if err != nil {
		t.Fatalf("A's key: %v", err)
	}

	// Its own: a subscription, a filtered consumer, a direct get, a request.
	own := make(chan *nats.Msg, 4)
	if _, err := a.ChanSubscribe(SubjectPrefix+"."+orgA+".>", own); err != nil {
		t.Fatal(err)
	}
	theirs := make(chan *nats.Msg, 4)
	for _, subj := range []string{SubjectPrefix + "." + orgB + ".>", SubjectPrefix + ".>", SubjectPrefix + "." + DefaultTenant + ".>", "_INBOX." + orgB + ".>", "_INBOX.>"} {
		if _, err := a.ChanSubscribe(subj, theirs); err != nil {
			t.Fatal(err)
		}
	}
	a.Flush()
	if v := a.violations(); len(v) != 5 {
		t.Errorf("A subscribing to B's, everyone's, the default's events and others' inboxes: %d violations, want 5: %q", len(v), v)
	}
	cons, err := a.js.OrderedConsumer(short(), StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectPrefix + "." + orgA + ".>"}})
	if err != nil {
		t.Fatalf("A's consumer on its own events: %v", err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || !strings.Contains(string(m.Data()), "secret of "+orgA) {
		t.Fatalf("A reading its own events: %v", err)
	}
	if m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Fatalf("A's consumer delivered another event: %s", m.Data())
	}
	if got, err := a.Request("$JS.API.DIRECT.GET."+StreamName+"."+subjOf(orgA), nil, 2*time.Second); err != nil || !strings.Contains(string(got.Data), "secret of "+orgA) {
		t.Fatalf("A's direct get of its own subject: %v", err)
	}
	got, err := a.Request(AgentRequestSubject(orgA, agentOf[orgA]), []byte(`{}`), 5*time.Second)
	if err != nil || string(got.Data) != `{"tenant":"`+orgA+`"}` {
		t.Fatalf("A's request to its agent: %v", err)
	}

	// B's and everyone's: refused.
	for name, filter := range map[string][]string{"B's": {SubjectPrefix + "." + orgB + ".>"}, "everyone's": nil, "the default's": {SubjectPrefix + "." + DefaultTenant + ".>"}, "B's and A's": {SubjectPrefix + "." + orgA + ".>", SubjectPrefix + "." + orgB + ".>"}} {
		if c, err := a.js.OrderedConsumer(short(), StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: filter}); err == nil {
			if m, err := c.Next(jetstream.FetchMaxWait(time.Second)); err == nil {
				t.Errorf("A's consumer on %s events delivered %s", name, m.Data())
			} else {
				t.Errorf("A made a consumer on %s events", name)
			}
		}
	}
	// A filter of A's in the subject and B's in the body: the server
	// holds them to be equal.
	body := `{"stream_name":"` + StreamName + `","config":{"name":"sneaky","filter_subject":"` + SubjectPrefix + "." + orgB + `.>","ack_policy":"none","deliver_policy":"all"}}`
	if got, err := a.Request("$JS.API.CONSUMER.CREATE."+StreamName+".sneaky."+SubjectPrefix+"."+orgA+".>", []byte(body), 2*time.Second); err == nil && !strings.Contains(string(got.Data), `"error"`) {
		t.Errorf("A made a consumer on B's events through its own filter's subject: %s", got.Data)
	}
	if m, err := a.Request("$JS.API.CONSUMER.MSG.NEXT."+StreamName+".sneaky", []byte(`{"batch":1,"expires":200000000}`), time.Second); err == nil && strings.Contains(string(m.Data), "secret of "+orgB) {
		t.Errorf("A read B's event: %s", m.Data)
	}
	for name, req := range map[string][2]string{
		"direct get of B's subject":          {"$JS.API.DIRECT.GET." + StreamName + "." + subjOf(orgB), ""},
		"direct get of B's sequence":         {"$JS.API.DIRECT.GET." + StreamName, fmt.Sprintf(`{"seq":%d}`, seqOf[orgB])},
		"direct get of B's sequence, in A's": {"$JS.API.DIRECT.GET." + StreamName + "." + subjOf(orgA), fmt.Sprintf(`{"seq":%d}`, seqOf[orgB])},
		"STREAM.MSG.GET of B's sequence":     {"$JS.API.STREAM.MSG.GET." + StreamName, fmt.Sprintf(`{"seq":%d}`, seqOf[orgB])},
		"stream info with B's subjects":      {"$JS.API.STREAM.INFO." + StreamName, `{"subjects_filter":">"}`},
	} {
		if got, err := a.Request(req[0], []byte(req[1]), time.Second); err == nil && (strings.Contains(string(got.Data), "secret of") || strings.Contains(string(got.Data), agentOf[orgB])) {
			t.Errorf("A's %s answered %s", name, got.Data)
		}
	}
	if _, err := a.Request(AgentRequestSubject(orgB, agentOf[orgB]), []byte(`{}`), 500*time.Millisecond); err == nil {
		t.Error("A's request to B's agent was answered")
	}
	if _, err := a.Request(AgentRequestSubject(DefaultTenant, agentOf[DefaultTenant]), []byte(`{}`), 500*time.Millisecond); err == nil {
		t.Error("A's request to the default organization's agent was answered")
	}
	select {
	case m := <-theirs:
		t.Errorf("A received %s on %s", m.Data, m.Subject)
	case <-time.After(200 * time.Millisecond):
	}
	hmu.Lock()
	if want := []string{orgA + "/" + agentOf[orgA]}; !slices.Equal(asked, want) {
		t.Errorf("requests served %q, want %q", asked, want)
	}
	hmu.Unlock()

	// The default organization's key: its agents, no events (they are
	// every organization's under ev.default.>).
	d, err := connectAs(t, s.ClientURL(), keyD, "_INBOX."+DefaultTenant)
	if err != nil {
		t.Fatalf("the default organization's key: %v", err)
	}
	if got, err := d.Request(AgentRequestSubject(DefaultTenant, agentOf[DefaultTenant]), []byte(`{}`), 5*time.Second); err != nil || !strings.Contains(string(got.Data), DefaultTenant) {
		t.Fatalf("the default organization's request: %v", err)
	}
	if _, err := d.ChanSubscribe(SubjectPrefix+"."+DefaultTenant+".>", theirs); err != nil {
		t.Fatal(err)
	}
	if v := d.violations(); len(v) != 1 {
		t.Errorf("the default organization's key subscribing to ev.default.>: %d violations, want 1: %q", len(v), v)
	}
	if _, err := d.js.OrderedConsumer(short(), StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectPrefix + "." + DefaultTenant + ".>"}}); err == nil {
		t.Error("the default organization's key made a consumer on ev.default.>")
	}

	// Nobody appends: not A onto its own events, not the admin, and not
	// through engram answering a request onto an event subject or a
	// JetStream acknowledgement.
	admin, err := connectAs(t, s.ClientURL(), cfg.Token, "")
	if err != nil {
		t.Fatal(err)
	}
	last, err := logs[DefaultTenant].LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*orgClient{a, admin} {
		c.Publish(subjOf(orgA), []byte(`{"forged":true}`))
		if _, err := c.js.Publish(short(), subjOf(orgA), []byte(`{"forged":true}`)); err == nil {
			t.Error("a client appended an event")
		}
	}
	hmu.Lock()
	asked = nil
	hmu.Unlock()
	admin.PublishRequest(AgentRequestSubject(DefaultTenant, agentOf[DefaultTenant]), subjOf(DefaultTenant), []byte(`{}`))
	admin.PublishRequest(AgentRequestSubject(DefaultTenant, agentOf[DefaultTenant]), "$JS.ACK."+StreamName+".c.1.1.1.1.0", []byte(`{}`))
	a.PublishRequest(AgentRequestSubject(orgA, agentOf[orgA]), subjOf(orgA), []byte(`{}`))
	admin.Flush()
	a.Flush()
	time.Sleep(300 * time.Millisecond)
	hmu.Lock()
	if len(asked) != 0 {
		t.Errorf("requests with a reply onto the log or JetStream were served: %q", asked)
	}
	hmu.Unlock()
	if now, err := logs[DefaultTenant].LastSeq(ctx); err != nil || now != last {
		t.Fatalf("the log's last sequence went from %d to %d (%v): a client appended", last, now, err)
	}

	// A revoked key: its open connection is closed, and it cannot connect.
	closed := make(chan struct{})
	b, err := connectAs(t, s.ClientURL(), keyB, "_INBOX."+orgB, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("B's key: %v", err)
	}
	if got, err := b.Request(AgentRequestSubject(orgB, agentOf[orgB]), []byte(`{}`), 5*time.Second); err != nil || !strings.Contains(string(got.Data), orgB) {
		t.Fatalf("B's request: %v", err)
	}
	keys.revoke(kidB)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection of a revoked key is still open after 10s")
	}
	if _, err := connectAs(t, s.ClientURL(), keyB, ""); err == nil {
		t.Fatal("a revoked key connected")
	}
	if !a.IsConnected() {
		t.Fatal("A's connection was closed with B's")
	}
	// A forged secret for a live key id, a key-shaped token nobody made, a
	// wrong admin token, none.
	for _, bad := range []string{kidA + ".forged", "apikey-0193a5b2-0000-7000-8000-0000000000ff.x", "not-the-admin-token", ""} {
		if _, err := connectAs(t, s.ClientURL(), bad, ""); err == nil {
			t.Errorf("%q connected", bad)
		}
	}
	// Every refusal since AuthorizeKeys was told, with the key it named.
	keys.mu.Lock()
	var told []string
	for _, r := range keys.refused {
		if r.Remote == "" {
			t.Errorf("a refusal without the client's address: %+v", r)
		}
		told = append(told, strings.TrimSpace(r.Reason+" "+r.KeyID))
	}
	keys.mu.Unlock()
	if want := []string{"revoked " + kidB, "unknown", "unknown", "unknown", "missing"}; !slices.Equal(told, want) {
		t.Errorf("refusals told %q, want %q", told, want)
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
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

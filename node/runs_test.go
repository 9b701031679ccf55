package node

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

// Alone, a node hands a run's reports to the watchers in its process on the
// publishing goroutine, as they are; it publishes them on NATS (as JSON)
// only for somebody watching the run's subject there.
func TestRunReportsWithinTheProcess(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig(t.TempDir())
	cfg.SyncAlways = false
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	rb := newRunBus(n.NATS, n.Log.Tenant())
	var got, other []service.RunReport
	stop, err := rb.WatchRun("message-1", func(r service.RunReport) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	stopOther, err := rb.WatchRun("message-1", func(r service.RunReport) { other = append(other, r) })
	if err != nil {
		t.Fatal(err)
	}
	msg := api.LettaMessage{ID: "message-9", MessageType: api.AssistantMessageType}
	if err := rb.PublishRun("message-1", service.RunReport{Message: &msg}); err != nil {
		t.Fatal(err)
	}
	// Delivered before PublishRun returned, as published.
	if len(got) != 1 || got[0].Message != &msg || len(other) != 1 {
		t.Fatalf("right after the publish the watchers hold %+v and %+v", got, other)
	}
	rb.PublishRun("message-2", service.RunReport{Seq: 1})
	if len(got) != 1 {
		t.Fatalf("a report of another run reached the watcher: %+v", got)
	}
	stopOther()
	stopOther() // twice is harmless

	// Somebody watching on NATS gets the reports from then on, as JSON.
	outside := make(chan *nats.Msg, 4)
	sub, err := n.NATS.Conn().ChanSubscribe("engram."+n.Log.Tenant()+".run.message-1", outside)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	n.NATS.Conn().Flush()
	if err := rb.PublishRun("message-1", service.RunReport{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-outside:
		var r service.RunReport
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Seq != 7 {
			t.Fatalf("a NATS watcher got %q (%v)", m.Data, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a NATS watcher of the run's subject heard nothing")
	}
	if len(got) != 2 || len(other) != 1 {
		t.Fatalf("the watchers hold %d and %d reports; want 2 and 1", len(got), len(other))
	}
	stop()
	rb.PublishRun("message-1", service.RunReport{Seq: 8})
	if len(got) != 2 {
		t.Fatalf("a report reached a watcher after it stopped: %+v", got)
	}
}

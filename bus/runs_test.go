package bus

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// On a node alone a run's reports reach the process's watchers on the
// publishing goroutine, and still reach anyone watching the subject on
// NATS; whether a caller wants tokens is answered from the offers here.
func TestRunReportsWithinTheProcess(t *testing.T) {
	s, _ := startLog(t, false)
	var got [][]byte
	cancel, err := s.WatchRun(DefaultTenant, "message-1", func(b []byte) { got = append(got, append([]byte(nil), b...)) })
	if err != nil {
		t.Fatal(err)
	}
	outside := make(chan *nats.Msg, 4)
	sub, err := s.Conn().ChanSubscribe(runSubject(DefaultTenant, "message-1"), outside)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := s.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishRun(DefaultTenant, "message-1", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// Delivered before PublishRun returned: no trip through the server.
	if len(got) != 1 || string(got[0]) != `{"a":1}` {
		t.Fatalf("the watcher holds %q right after the publish, want the report", got)
	}
	if err := s.PublishRun(DefaultTenant, "message-2", []byte(`{"b":2}`)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("a report of another run reached the watcher: %q", got)
	}
	select {
	case m := <-outside:
		if string(m.Data) != `{"a":1}` {
			t.Fatalf("a NATS watcher got %q", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a NATS watcher of the run's subject heard nothing")
	}
	cancel()
	cancel() // twice is harmless
	if err := s.PublishRun(DefaultTenant, "message-1", []byte(`{"c":3}`)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("a report reached a watcher after it stopped: %q", got)
	}

	if s.WantsTokens(DefaultTenant, "message-1") {
		t.Fatal("tokens wanted with no offer")
	}
	stop1, err := s.OfferTokens(DefaultTenant, "message-1")
	if err != nil {
		t.Fatal(err)
	}
	stop2, err := s.OfferTokens(DefaultTenant, "message-1")
	if err != nil {
		t.Fatal(err)
	}
	if !s.WantsTokens(DefaultTenant, "message-1") || s.WantsTokens(DefaultTenant, "message-2") {
		t.Fatal("the offer is not seen for its run alone")
	}
	stop1()
	stop1()
	if !s.WantsTokens(DefaultTenant, "message-1") {
		t.Fatal("one of two offers stopped, and tokens are no longer wanted")
	}
	stop2()
	if s.WantsTokens(DefaultTenant, "message-1") {
		t.Fatal("tokens still wanted after every offer stopped")
	}
}

// Two watchers of one run each get every report, and one stopping leaves
// the other.
func TestRunReportsTwoWatchers(t *testing.T) {
	s, _ := startLog(t, false)
	var a, b atomic.Int32
	stopA, err := s.WatchRun(DefaultTenant, "message-1", func([]byte) { a.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	stopB, err := s.WatchRun(DefaultTenant, "message-1", func([]byte) { b.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	s.PublishRun(DefaultTenant, "message-1", []byte(`{}`))
	stopA()
	s.PublishRun(DefaultTenant, "message-1", []byte(`{}`))
	if a.Load() != 1 || b.Load() != 2 {
		t.Fatalf("watchers got %d and %d reports, want 1 and 2", a.Load(), b.Load())
	}
}

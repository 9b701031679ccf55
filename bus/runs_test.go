package bus

import (
	"testing"
)

// On a node alone the server says whether anyone watches a run's subject,
// and whether a caller wants tokens is answered from the offers made here.
func TestRunsOnANodeAlone(t *testing.T) {
	s, _ := startLog(t, false)
	if !s.Local() {
		t.Fatal("a node alone says it is not")
	}
	if s.RunWatched(DefaultTenant, "message-1") {
		t.Fatal("a run is watched with nobody subscribed")
	}
	sub, err := s.Conn().SubscribeSync(runSubject(DefaultTenant, "message-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if !s.RunWatched(DefaultTenant, "message-1") || s.RunWatched(DefaultTenant, "message-2") {
		t.Fatal("a subscription to one run's subject is not seen for it alone")
	}
	sub.Unsubscribe()
	s.Conn().Flush()
	if s.RunWatched(DefaultTenant, "message-1") {
		t.Fatal("a run is still watched after its subscriber left")
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

package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/llmtest"
)

// TestInputsStoreWordsAndOldLogsReadAsBefore: a client's input is stored
// as its words with a kind, and the model reads it in Letta's envelope; an
// input stored before kinds existed (the rendered envelope in its text) is
// shown to the model exactly as stored and listed as its words.
func TestInputsStoreWordsAndOldLogsReadAsBefore(t *testing.T) {
	ctx := context.Background()
	script := llmtest.NewServer(t)
	script.SetResponder(func(rec llmtest.Recorded) llmtest.Step { return say("ok") })
	r := startRig(t, t.TempDir(), script)
	a := r.agent(t)

	send(t, r, a.ID, "new words")
	var stored *events.MessageAppended
	err := r.n.Log.Read(ctx, []events.Selector{{Aggregate: events.Aggregate{Kind: events.KindAgent, ID: a.ID}, Types: []events.Type{events.TypeMessageReceived}}}, 0, 0,
		func(env events.Envelope) (bool, error) {
			if in, ok := env.Event.(*events.MessageReceived); ok { // a packed message comes whole
				stored = &in.MessageAppended
			}
			return true, nil
		})
	if err != nil || stored == nil {
		t.Fatalf("no message_received in the log: %v", err)
	}
	if stored.Kind != events.InputUser || stored.Text != "new words" {
		t.Fatalf("stored %q of kind %q; want the words alone, of kind %q", stored.Text, stored.Kind, events.InputUser)
	}
	seen := script.Requests()[0].Messages
	if last := seen[len(seen)-1].Content; !strings.Contains(last, `"type": "user_message"`) || !strings.Contains(last, `"message": "new words"`) {
		t.Fatalf("the model read %q; want the words in a user_message envelope", last)
	}

	// An input as older engram stored it.
	old := "{\n  \"type\": \"user_message\",\n  \"message\": \"old words\",\n  \"time\": \"2024-10-23 07:29:24 PM UTC+0000\"\n}"
	id := events.MessageID(events.NewID(events.PrefixMessage, time.Now()))
	if _, err := r.n.Log.Append(ctx, events.Batch{Command: "old-send", Events: []events.Envelope{{
		Aggregate: events.Aggregate{Kind: events.KindAgent, ID: a.ID}, Time: time.Now().UTC(),
		Event: &events.MessageReceived{MessageAppended: events.MessageAppended{ID: id, Role: "user", Text: old, RunID: events.DerivedID("run", string(id))}},
	}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(script.Requests()) == 2 }) // the owner runs it
	seen = script.Requests()[1].Messages
	found := false
	for _, m := range seen {
		found = found || m.Content == old
	}
	if !found {
		t.Fatalf("the model did not read the old input as stored; it read %+v", seen)
	}
	waitFor(t, func() bool { return len(pendingTypes(t, r, a.ID)) == 0 })
	msgs, err := r.n.Service.ListMessages(ctx, a.ID, api.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, m := range msgs {
		if m.MessageType == api.UserMessageType && m.Content != nil && !strings.HasPrefix(*m.Content, "{") {
			users = append(users, *m.Content)
		}
	}
	slices.Sort(users) // the listing's order is not the point here
	if strings.Join(users, "|") != "new words|old words" {
		t.Fatalf("listed user messages %q; want both inputs as their words", users)
	}
}

package service

import (
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
)

// Stream sets o's callbacks so that emit receives the run's messages as
// their steps commit and, with tokens, the model's reasoning as token
// deltas while it generates: reasoning_message items that share one id per
// step, each holding a piece of the text. A reasoning message whose text
// went out as deltas is not emitted again whole. emit is called from the
// run's goroutine, one call at a time; it must not block for long.
func (o *SendOptions) Stream(tokens bool, emit func(api.LettaMessage)) {
	var (
		mu       sync.Mutex // guards deltaID and streamed, and serialises emit
		deltaID  string
		streamed strings.Builder
	)
	o.OnMessage = func(m api.LettaMessage) {
		mu.Lock()
		defer mu.Unlock()
		seen := m.MessageType == api.ReasoningMessageType && m.Reasoning != nil && streamed.Len() > 0 &&
			strings.TrimSpace(*m.Reasoning) == strings.TrimSpace(streamed.String())
		deltaID = ""
		streamed.Reset()
		if !seen {
			emit(m)
		}
	}
	if !tokens {
		o.OnDelta = nil
		return
	}
	o.OnDelta = func(d agents.Delta) {
		if d.Content == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if deltaID == "" {
			deltaID = events.NewID(events.PrefixMessage, now)
		}
		streamed.WriteString(d.Content)
		text := d.Content
		emit(api.LettaMessage{ID: deltaID, Date: now.UTC().Truncate(time.Second), MessageType: api.ReasoningMessageType, Reasoning: &text})
	}
}

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
// their steps commit and, with tokens, the model's text as token deltas
// while it generates: the MemGPT loop's thoughts and any native reasoning
// as reasoning_message items, the modern loop's answer as assistant_message
// items; the deltas of one message of a step share one id, each holding a
// piece of the text. A message whose text went out as deltas is not emitted
// again whole. emit is called from the run's goroutine, one call at a time;
// it must not block for long.
func (o *SendOptions) Stream(tokens bool, emit func(api.LettaMessage)) {
	var (
		mu      sync.Mutex // guards streams, and serialises emit
		streams = map[string]*streamed{}
	)
	of := func(typ string) *streamed {
		if streams[typ] == nil {
			streams[typ] = &streamed{}
		}
		return streams[typ]
	}
	o.OnMessage = func(m api.LettaMessage) {
		mu.Lock()
		defer mu.Unlock()
		text := m.Reasoning
		if m.MessageType == api.AssistantMessageType {
			text = m.Content
		}
		st := of(m.MessageType)
		seen := text != nil && st.text.Len() > 0 && strings.TrimSpace(*text) == strings.TrimSpace(st.text.String())
		st.id = ""
		st.text.Reset()
		if !seen {
			emit(m)
		}
	}
	if !tokens {
		o.OnDelta = nil
		return
	}
	o.OnDelta = func(d agents.Delta) {
		mu.Lock()
		defer mu.Unlock()
		for _, part := range []struct{ typ, text string }{
			{api.ReasoningMessageType, d.Content + d.Reasoning}, {api.AssistantMessageType, d.Reply},
		} {
			if part.text == "" {
				continue
			}
			now := time.Now()
			st := of(part.typ)
			if st.id == "" {
				st.id = events.NewID(events.PrefixMessage, now)
			}
			st.text.WriteString(part.text)
			text := part.text
			m := api.LettaMessage{ID: st.id, Date: now.UTC().Truncate(time.Second), MessageType: part.typ}
			if part.typ == api.AssistantMessageType {
				m.Content = &text
			} else {
				m.Reasoning = &text
			}
			emit(m)
		}
	}
}

// streamed is the text of one message a step has streamed so far.
type streamed struct {
	id   string
	text strings.Builder
}

package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Summarization, as Letta does it on a context overflow: keep the system
// message and the newest messages, replace about three quarters (by tokens)
// of the rest with a summary written by the model, and never let the kept
// history start with a tool return. Unlike Letta, the summary and the new
// context window are events, so they survive a restart.

const (
	summaryKeepLast = 3
	summaryFraction = 0.75
	summaryAck      = "Understood, I will respond with a summary of the message (and only the summary, nothing else) once I receive the conversation history. I'm ready."
	summaryPrompt   = `Your job is to summarize a history of previous messages in a conversation between an AI persona and a human.
The conversation you are given is from a fixed context window and may not be complete.
Messages sent by the AI are marked with the 'assistant' role; its function calls are shown too. Its inner monologue (the assistant content) is not seen by the user, only what it sends with send_message is.
Messages marked 'user' come from the human, or are system events (logins, heartbeats, alerts); 'tool' messages are function results.
Write a summary of the conversation from the AI's point of view, in the first person, in fewer than 100 words. Answer with the summary only.`
)

// tokensOf estimates the tokens of a message.
func (s *Service) tokensOf(m agents.Message) int {
	n := len(m.Content)
	for _, tc := range m.ToolCalls {
		n += len(tc.Name) + len(tc.Arguments)
	}
	if s.cfg.CountTokens != nil {
		text := m.Content
		for _, tc := range m.ToolCalls {
			text += tc.Name + tc.Arguments
		}
		return s.countCached(text) + 4
	}
	return n/4 + 4
}

// Summarize compresses an agent's context window now (the /summarize
// command, and the answer to a context overflow).
func (s *Service) Summarize(ctx context.Context, agentID string) error {
	model, name, err := s.modelFor(agentID)
	if err != nil {
		return err
	}
	return s.summarize(ctx, agentID, model, name)
}

func (s *Service) summarize(ctx context.Context, agentID string, model agents.Model, name string) error {
	var (
		ids     []events.MessageID
		version events.Seq
		total   int
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			ids, version, total = append([]events.MessageID(nil), a.MessageIDs...), a.Version.Seq, len(a.Messages)
		}
	})
	sc, err := s.loadContext(ctx, agentID)
	if err != nil {
		return err
	}
	// sc.state.Context is ids[1:] when ids[0] is the system message.
	msgs := sc.state.Context
	offset := len(ids) - len(msgs)
	if len(msgs) <= summaryKeepLast+1 {
		return invalid("Summarize error: tried to run summarize, but couldn't find enough messages to compress [len=%d, preserve_N=%d]", len(ids), summaryKeepLast)
	}
	sum := 0
	for _, m := range msgs {
		sum += s.tokensOf(m)
	}
	want := int(float64(sum) * summaryFraction)
	candidates := len(msgs) - summaryKeepLast
	cut, acc := candidates-1, 0
	for i := 0; i < candidates; i++ {
		acc += s.tokensOf(msgs[i])
		if acc > want {
			cut = i
			break
		}
	}
	if cut < len(msgs) && msgs[cut].Role == "user" {
		cut++
	}
	for cut < len(msgs) && msgs[cut].Role == "tool" {
		cut++
	}
	if cut <= 1 {
		return invalid("Summarize error: tried to run summarize, but couldn't find enough messages to compress [len=%d <= 1]", cut)
	}
	var transcript strings.Builder
	for _, m := range msgs[:cut] {
		fmt.Fprintf(&transcript, "%s: %s", m.Role, m.Content)
		for _, tc := range m.ToolCalls {
			fmt.Fprintf(&transcript, " [calls %s(%s)]", tc.Name, tc.Arguments)
		}
		transcript.WriteByte('\n')
	}
	resp, err := model.Complete(ctx, agents.Request{Model: name, Messages: []agents.Message{
		{Role: "system", Content: summaryPrompt},
		{Role: "assistant", Content: summaryAck},
		{Role: "user", Content: transcript.String()},
	}})
	if err != nil {
		if errors.Is(err, agents.ErrContextOverflow) {
			return fault.Wrap(fault.Invalid, err, "the history is too long even to summarize")
		}
		return fault.Wrap(fault.Unavailable, err, "the model provider failed while summarizing: %v", err)
	}
	if strings.TrimSpace(resp.Content) == "" {
		return fault.E(fault.Unavailable, "the model returned an empty summary")
	}
	c := s.command(ctx, "summarize", agentID)
	c.id, c.derived = events.NewID("summary", c.now), false
	kept := ids[offset+cut:]
	hidden := total - len(kept)
	summaryID := events.MessageID(c.newID(events.PrefixMessage))
	window := append([]events.MessageID{}, ids[:offset]...)
	window = append(window, summaryID)
	window = append(window, kept...)
	var d decision
	d.expect = []events.Expectation{{Aggregate: agentAgg(agentID), Version: version}}
	d.add(c, agentAgg(agentID), &events.MessageAppended{ID: summaryID, Role: "user", Kind: events.InputSystemAlert,
		Text: agents.SummaryText(resp.Content, cut, hidden, total+1)})
	d.add(c, agentAgg(agentID), &events.AgentUpdated{MessageIDs: &window})
	seq, err := s.appendStanding(ctx, agentID, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs}, version)
	if err != nil {
		if errors.Is(err, events.ErrConflict) {
			return fault.Wrap(fault.Conflict, err, "the agent changed while summarizing; retry")
		}
		return fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	return s.proj.WaitFor(ctx, seq)
}

// countCached counts tokens, remembering the counts of texts seen before:
// every step counts the whole context again, and most of it is unchanged.
func (s *Service) countCached(text string) int {
	s.tokenMu.Lock()
	n, ok := s.tokenCounts[text]
	s.tokenMu.Unlock()
	if ok {
		return n
	}
	n = s.cfg.CountTokens(text)
	s.tokenMu.Lock()
	if s.tokenCounts == nil || len(s.tokenCounts) >= maxCachedBodies {
		s.tokenCounts = make(map[string]int, 1024)
	}
	s.tokenCounts[text] = n
	s.tokenMu.Unlock()
	return n
}

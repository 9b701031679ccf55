package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/service"
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

// summarizeNow compresses an agent's own context window (the /summarize
// command).
func (l *Loop) summarizeNow(ctx context.Context, agentID string) error {
	model, name, err := l.store.ModelFor(agentID, service.Scope{})
	if err != nil {
		return err
	}
	return l.summarize(ctx, agentID, service.Scope{}, "", model, name)
}

// summarize replaces the oldest part of the context window of a run in
// scope (its conversation's, or the agent's own) with a summary the model
// writes; run is the run that overflowed ("" for none), whose message the
// summary of a conversation's window is. A change to the agent meanwhile
// is a fault.Conflict: the caller decides again from the new state.
func (l *Loop) summarize(ctx context.Context, agentID string, in service.Scope, run string, model agents.Model, name string) error {
	sc, err := l.store.StepContext(ctx, agentID, in)
	if err != nil {
		return err
	}
	ids := sc.Window
	// sc.State.Context is ids[1:] when ids[0] is the system message.
	msgs := sc.State.Context
	offset := len(ids) - len(msgs)
	if len(msgs) <= summaryKeepLast+1 {
		return fault.E(fault.Invalid, "Summarize error: tried to run summarize, but couldn't find enough messages to compress [len=%d, preserve_N=%d]", len(ids), summaryKeepLast)
	}
	sum := 0
	for _, m := range msgs {
		sum += l.tokensOf(m)
	}
	want := int(float64(sum) * summaryFraction)
	candidates := len(msgs) - summaryKeepLast
	cut, acc := candidates-1, 0
	for i := 0; i < candidates; i++ {
		acc += l.tokensOf(msgs[i])
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
		return fault.E(fault.Invalid, "Summarize error: tried to run summarize, but couldn't find enough messages to compress [len=%d <= 1]", cut)
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
	kept := ids[offset+cut:]
	hidden := sc.Stored - len(kept)
	return l.store.CommitSummary(ctx, agentID, service.Summary{
		Context: sc, Before: ids[:offset], Kept: kept, Now: l.cfg.Clock().UTC(), Run: run,
		Text: agents.SummaryText(resp.Content, cut, hidden, sc.Stored+1),
	})
}

// tokensOf estimates the tokens of a message.
func (l *Loop) tokensOf(m agents.Message) int {
	n := len(m.Content)
	for _, tc := range m.ToolCalls {
		n += len(tc.Name) + len(tc.Arguments)
	}
	if l.cfg.CountTokens != nil {
		text := m.Content
		for _, tc := range m.ToolCalls {
			text += tc.Name + tc.Arguments
		}
		return l.tokens.count(text, l.cfg.CountTokens) + 4
	}
	return n/4 + 4
}

// contextTokens estimates the tokens a step's request takes: the system
// message, every message, and the tool schemas.
func (l *Loop) contextTokens(st agents.State) int {
	// The system prompt changes with every step (its memory section), so
	// it is counted, not looked up: a counter that remembers long texts'
	// parts (the node's) makes that cheap.
	n := len(st.System)/4 + 4
	if l.cfg.CountTokens != nil {
		n = l.cfg.CountTokens(st.System) + 4
	}
	for _, m := range st.Context {
		n += l.tokensOf(m)
	}
	for _, t := range st.Tools {
		n += l.toolTokens(t)
	}
	return n
}

// toolTokens estimates the tokens of a tool's schema, remembered by the
// tool's name: the same tools come with every step.
func (l *Loop) toolTokens(t agents.Tool) int {
	l.tools.mu.Lock()
	e, ok := l.tools.m[t.Name]
	l.tools.mu.Unlock()
	if ok && e.description == t.Description && e.parameters == string(t.Parameters) {
		return e.n
	}
	e = toolCount{description: t.Description, parameters: string(t.Parameters),
		n: l.tokensOf(agents.Message{Content: t.Name + t.Description + string(t.Parameters)})}
	l.tools.mu.Lock()
	if l.tools.m == nil || len(l.tools.m) >= maxCachedCounts {
		l.tools.m = map[string]toolCount{}
	}
	l.tools.m[t.Name] = e
	l.tools.mu.Unlock()
	return e.n
}

// toolCounts remembers the token estimate of each tool's schema by name.
type toolCounts struct {
	mu sync.Mutex // guards m
	m  map[string]toolCount
}

type toolCount struct {
	description, parameters string
	n                       int
}

// tokenCache remembers the token counts of texts seen before: every step
// counts the whole context again, and most of it is unchanged. It is
// bounded: when full it is emptied.
type tokenCache struct {
	mu sync.Mutex // guards m
	m  map[string]int
}

// maxCachedCounts bounds the token cache.
const maxCachedCounts = 20_000

func (c *tokenCache) count(text string, counter func(string) int) int {
	c.mu.Lock()
	n, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		return n
	}
	n = counter(text)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedCounts {
		c.m = make(map[string]int, 1024)
	}
	c.m[text] = n
	c.mu.Unlock()
	return n
}

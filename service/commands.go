package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// RunCommand runs one of Letta's slash commands on an agent. Unlike Letta's
// server, where most of them are broken no-ops, each one here does what
// Letta's CLI does: /memory, /pop [n], /retry, /rethink <text>,
// /rewrite <text>, /summarize, /heartbeat and /memorywarning. Messages are
// never deleted from the log: /pop, /rethink and /rewrite change the context
// window, and recall memory keeps the history.
func (s *Service) RunCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error) {
	cmd, arg, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(command), "/")), " ")
	arg = strings.TrimSpace(arg)
	empty := api.LettaResponse{Messages: []api.LettaMessage{}, StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage: api.Usage{MessageType: "usage_statistics", RunIDs: []string{}}}
	if _, err := s.GetAgent(ctx, agentID); err != nil {
		return empty, err
	}
	switch strings.ToLower(cmd) {
	case "memory":
		text, err := s.memoryDump(ctx, agentID)
		if err != nil {
			return empty, err
		}
		empty.Messages = append(empty.Messages, api.LettaMessage{MessageType: api.SystemMessageType, Content: &text, Date: s.cfg.Clock().UTC()})
		return empty, nil
	case "pop":
		n := 3
		if arg != "" {
			v, err := strconv.Atoi(arg)
			if err != nil || v < 1 {
				return empty, invalid("/pop takes a positive number of messages, not %q", arg)
			}
			n = v
		}
		return empty, s.rewindow(ctx, agentID, func(ids []events.MessageID, _ []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error) {
			if len(ids) <= 2 {
				return nil, nil, invalid("Agent only has %d messages in stack, none left to pop", len(ids))
			}
			if n > len(ids)-2 {
				return nil, nil, invalid("Agent only has %d messages in stack, cannot pop more than %d", len(ids), len(ids)-2)
			}
			return ids[:len(ids)-n], nil, nil
		})
	case "retry":
		// The owner of the agent rewinds and runs, after the inputs queued
		// before this one, so a run in flight never sees half a rewind.
		return s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunRetry}, SendOptions{UseAssistantMessage: true})
	case "rethink", "rewrite":
		if arg == "" {
			return empty, invalid("/%s needs the new text", cmd)
		}
		return empty, s.rewindow(ctx, agentID, func(ids []events.MessageID, msgs []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error) {
			for i := len(msgs) - 1; i > 0; i-- {
				m := msgs[i]
				if m == nil || m.Role != "assistant" {
					continue
				}
				edited := *m
				if strings.EqualFold(cmd, "rethink") {
					edited.Text = arg
				} else {
					if len(m.ToolCalls) == 0 || m.ToolCalls[0].Name != agents.ToolSendMessage {
						return nil, nil, invalid("Assistant missing send_message function call")
					}
					var args map[string]any
					json.Unmarshal([]byte(m.ToolCalls[0].Arguments), &args)
					if args == nil {
						args = map[string]any{}
					}
					args["message"] = arg
					b, _ := json.Marshal(args)
					edited.ToolCalls = append([]events.ToolCall(nil), m.ToolCalls...)
					edited.ToolCalls[0].Arguments = string(b)
				}
				out := append([]events.MessageID(nil), ids...)
				return out, &edited, nil // the edited copy takes index i
			}
			return nil, nil, invalid("there is no assistant message to change")
		})
	case "summarize":
		// The owner summarizes, between runs, as it does on an overflow.
		if _, err := s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunSummarize}, SendOptions{UseAssistantMessage: true}); err != nil {
			return empty, err
		}
		return empty, nil
	case "heartbeat":
		return s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunHeartbeat, Reason: "Automated timer"}, SendOptions{UseAssistantMessage: true})
	case "memorywarning":
		return s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunMemoryWarning}, SendOptions{UseAssistantMessage: true})
	}
	return empty, invalid("unknown command /%s (known: /memory, /pop [n], /retry, /rethink <text>, /rewrite <text>, /summarize, /heartbeat, /memorywarning)", cmd)
}

// rewindow replaces an agent's context window. decide sees the window's ids
// and messages (nil where a body could not be read) and returns the new
// window, and optionally an edited copy of the message at the position it
// replaces (matched by role from the end).
//
// It is optimistic: when the agent changed meanwhile (a step of a run going
// on committed), it reads the window again and decides anew.
func (s *Service) rewindow(ctx context.Context, agentID string, decide func([]events.MessageID, []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error)) error {
	return s.optimistic(ctx, func() error { return s.rewindowOnce(ctx, agentID, decide) })
}

func (s *Service) rewindowOnce(ctx context.Context, agentID string, decide func([]events.MessageID, []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error)) error {
	var (
		ids     []events.MessageID
		refs    = map[events.MessageID]projections.Ref{}
		version events.Seq
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			ids, version = append([]events.MessageID(nil), a.MessageIDs...), a.Version.Seq
			for _, r := range a.Messages {
				refs[events.MessageID(r.ID)] = r
			}
		}
	})
	msgs := make([]*events.MessageAppended, len(ids))
	for i, id := range ids {
		env, err := s.load(ctx, refs[id])
		if err != nil {
			return fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		msgs[i], _ = events.AsMessage(env.Event)
	}
	window, edited, err := decide(ids, msgs)
	if err != nil {
		return err
	}
	c := s.command(ctx, "rewindow", agentID)
	c.id, c.derived = events.NewID("cmd", c.now), false
	var d decision
	d.expect = []events.Expectation{{Aggregate: agentAgg(agentID), Version: version}}
	if edited != nil {
		for i := len(window) - 1; i >= 0; i-- {
			if window[i] == edited.ID {
				edited.ID = events.MessageID(c.newID(events.PrefixMessage))
				window[i] = edited.ID
				d.add(c, agentAgg(agentID), edited)
				break
			}
		}
	}
	d.add(c, agentAgg(agentID), &events.AgentUpdated{MessageIDs: &window})
	seq, err := s.appendLog(ctx, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs})
	if err != nil {
		if errors.Is(err, events.ErrConflict) {
			return err
		}
		return fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	return s.proj.WaitFor(ctx, seq)
}

// memoryDump renders core memory and the archival and recall statistics.
func (s *Service) memoryDump(ctx context.Context, agentID string) (string, error) {
	blocks, err := s.ListAgentBlocks(ctx, agentID, api.Page{Limit: MaxPageLimit})
	if err != nil {
		return "", err
	}
	var mem []agents.Block
	for _, b := range blocks {
		mem = append(mem, agents.Block{Label: b.Label, Value: b.Value, Limit: b.Limit})
	}
	arch, _ := s.ArchivalSummary(ctx, agentID)
	recall, _ := s.RecallSummary(ctx, agentID)
	return fmt.Sprintf("\nDumping memory contents:\n\n%s\n\nArchival memory: %d passages\nRecall memory: %d messages", agents.RenderMemory(mem), arch.Size, recall.Size), nil
}

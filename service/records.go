package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Stored messages: recall memory as records (Letta 0.5's Message objects),
// where ListMessages gives the LettaMessage views of the same history.

// ListStoredMessages pages through an agent's history as stored messages,
// newest first unless the page says otherwise.
func (s *Service) ListStoredMessages(ctx context.Context, agentID string, p api.Page) ([]api.StoredMessage, error) {
	refs, err := s.historyRefs(agentID, p)
	if err != nil {
		return nil, err
	}
	return s.storedMessages(ctx, agentID, refs)
}

// ContextStoredMessages returns the messages of an agent's context window,
// in order.
func (s *Service) ContextStoredMessages(ctx context.Context, agentID string) ([]api.StoredMessage, error) {
	refs, err := s.contextRefs(agentID)
	if err != nil {
		return nil, err
	}
	return s.storedMessages(ctx, agentID, refs)
}

// historyRefs locates a page of an agent's history, newest first unless
// the page says otherwise.
func (s *Service) historyRefs(agentID string, p api.Page) (refs []projections.Ref, err error) {
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			refs, err = page(a.Messages, func(r projections.Ref) string { return r.ID }, p, "desc", 100, "Message")
		}
	})
	return refs, err
}

// ListDefaultMessages pages through the messages of an agent's default
// conversation: those of no other conversation (Letta's conversation_id
// "default"), newest first unless the page says otherwise.
func (s *Service) ListDefaultMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error) {
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			refs = make([]projections.Ref, 0, len(a.Messages))
			for _, r := range a.Messages {
				if !r.Conv {
					refs = append(refs, r)
				}
			}
			refs, err = page(refs, func(r projections.Ref) string { return r.ID }, p, "desc", 100, "Message")
		}
	})
	if err != nil {
		return nil, err
	}
	return s.messageBodies(ctx, refs)
}

// contextRefs locates the messages of an agent's context window, in order.
func (s *Service) contextRefs(agentID string) (refs []projections.Ref, err error) {
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			refs = windowRefs(a)
		}
	})
	return refs, err
}

// StoredMessagesByID returns the named messages of an agent, in the order
// given; an id the agent does not have is skipped.
func (s *Service) StoredMessagesByID(ctx context.Context, agentID string, ids []string) ([]api.StoredMessage, error) {
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		for _, id := range ids {
			if r, ok := messageRef(a, id); ok {
				refs = append(refs, r)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return s.storedMessages(ctx, agentID, refs)
}

func messageRef(a *projections.Agent, id string) (projections.Ref, bool) {
	for i := len(a.Messages) - 1; i >= 0; i-- {
		if a.Messages[i].ID == id {
			return a.Messages[i], true
		}
	}
	return projections.Ref{}, false
}

func (s *Service) storedMessages(ctx context.Context, agentID string, refs []projections.Ref) ([]api.StoredMessage, error) {
	out := make([]api.StoredMessage, 0, len(refs))
	for _, r := range refs {
		env, err := s.load(ctx, r)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		e, ok := events.AsMessage(env.Event)
		if !ok {
			continue
		}
		out = append(out, storedMessage(agentID, e, r))
	}
	return out, nil
}

func storedMessage(agentID string, e *events.MessageAppended, r projections.Ref) api.StoredMessage {
	m := api.StoredMessage{
		ID: string(e.ID), AgentID: agentID, Role: e.Role, Text: promptText(e, timeOf(r.CreatedAt)), Name: e.Name, Model: e.Model,
		ToolCallID: e.ToolCallID, CreatedAt: timeOf(r.CreatedAt),
	}
	for _, tc := range e.ToolCalls {
		m.ToolCalls = append(m.ToolCalls, api.StoredToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	return m
}

// messageRoles are the roles a stored message may have.
var messageRoles = []string{"system", "user", "assistant", "tool"}

// UpdateMessage changes the body of one of an agent's stored messages in
// place: it keeps its id, its time and its place in history and in the
// context window, and the log keeps the body it replaces. It appends at the
// agent's version it read, so a step of a run going on and the edit never
// interleave: the later of the two reads the other's result.
func (s *Service) UpdateMessage(ctx context.Context, agentID, messageID string, u api.MessageUpdate) (api.StoredMessage, error) {
	if u.Role != nil && !slices.Contains(messageRoles, *u.Role) {
		return api.StoredMessage{}, unprocessable("role must be one of system, user, assistant, tool, not %q", *u.Role)
	}
	var out api.StoredMessage
	err := s.optimistic(ctx, func() error {
		var err error
		out, err = s.updateMessageOnce(ctx, agentID, messageID, u)
		return err
	})
	return out, err
}

func (s *Service) updateMessageOnce(ctx context.Context, agentID, messageID string, u api.MessageUpdate) (api.StoredMessage, error) {
	var (
		ref     projections.Ref
		found   bool
		version events.Seq
		err     error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		ref, found = messageRef(a, messageID)
		version = a.Version.Seq
		for _, r := range a.Pending {
			if r.ID == messageID {
				err = invalid("message %s is an input no run has answered yet; it can be changed once it is answered", messageID)
			}
		}
	})
	if err != nil {
		return api.StoredMessage{}, err
	}
	if !found {
		return api.StoredMessage{}, notFound("Message with id %s not found for agent %s", messageID, agentID)
	}
	env, err := s.load(ctx, ref)
	if err != nil {
		return api.StoredMessage{}, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", messageID)
	}
	old, _ := events.AsMessage(env.Event)
	edited := *old
	setIf(&edited.Role, u.Role)
	setIf(&edited.Text, u.Text)
	if u.Text != nil && edited.Kind != "" {
		// Letta 0.5's clients edit the text as its listings show it, the
		// envelope included: such a text is stored as given, not wrapped
		// again; bare words keep the message's kind.
		given := events.MessageAppended{Role: edited.Role, Text: *u.Text}
		if _, _, wrapped := given.Words(); wrapped {
			edited.Kind = ""
		}
	}
	setIf(&edited.Name, u.Name)
	setIf(&edited.ToolCallID, u.ToolCallID)
	if u.ToolCalls != nil {
		edited.ToolCalls = nil
		for _, tc := range *u.ToolCalls {
			edited.ToolCalls = append(edited.ToolCalls, events.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
	}
	c := s.command(ctx, "update_message", agentID+"/"+messageID)
	var d decision
	d.expect = []events.Expectation{{Aggregate: agentAgg(agentID), Version: version}}
	d.add(c, agentAgg(agentID), &events.MessageUpdated{MessageAppended: edited})
	seq, err := s.appendLog(ctx, events.Batch{Command: c.stored(), Expect: d.expect, Events: d.evs})
	if errors.Is(err, events.ErrConflict) {
		return api.StoredMessage{}, err // decided again by optimistic
	}
	if err != nil {
		return api.StoredMessage{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		return api.StoredMessage{}, fault.Wrap(fault.Unavailable, err, "the write was stored but is not yet visible; retry the read")
	}
	ref.Seq, ref.Part = seq, 0
	return storedMessage(agentID, &edited, ref), nil
}

// DeleteJob deletes a finished job and returns it as it was. A job still
// running is refused: its work would be left without a record.
func (s *Service) DeleteJob(ctx context.Context, id string) (api.Job, error) {
	job, err := s.GetJob(ctx, id)
	if err != nil {
		return api.Job{}, err
	}
	c := s.command(ctx, "delete_job", id)
	err = s.exec(ctx, c, jobAgg(id), func(st *projections.State, d *decision) error {
		j := st.Jobs[events.JobID(id)]
		if j == nil {
			return notFound("Job with id %s not found", id)
		}
		if j.Status != api.JobCompleted && j.Status != api.JobFailed {
			return invalid("job %s is %s; a job can be deleted when it has completed or failed", id, j.Status)
		}
		d.expectAt(st, jobAgg(id))
		d.add(c, jobAgg(id), &events.JobDeleted{})
		return nil
	})
	return job, err
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func timeOf(unixNano int64) time.Time { return time.Unix(0, unixNano).UTC() }

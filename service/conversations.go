package service

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// Conversations are threads of messages with one agent, on an aggregate of
// their own (events.ConversationCreated). A send to a conversation is a
// send to its agent whose inputs name the conversation, run in the agent's
// arrival order like any send; its run reads and writes the
// conversation's own context window (projections.Conversation.MessageIDs,
// which begins with the agent's system message), under a system message
// compiled from the agent's memory blocks, which every conversation shares,
// as Letta 0.16.8 does. The agent's own window is its "default"
// conversation's. Summaries, tool calls waiting for approval and the
// model (the conversation's, or a send's override_model) are each
// conversation's own; recall memory (conversation_search, GET
// /v1/agents/{id}/messages) holds every conversation's messages, as
// Letta's does.

func conversationAgg(id string) events.Aggregate {
	return events.Aggregate{Kind: events.KindConversation, ID: id}
}

func conversationNotFound(id string) error { return notFound("Conversation with ID %s not found", id) }

// lookupConversation finds a live conversation of a live agent of ctx's
// organization (another's is not found); the id must be well formed.
func (s *Service) lookupConversation(ctx context.Context, st *projections.State, id string) (*projections.Conversation, *projections.Agent, error) {
	if err := events.CheckID(events.PrefixConversation, id); err != nil {
		return nil, nil, unprocessable("%v", err)
	}
	c := st.Conversations[events.ConversationID(id)]
	if c == nil {
		return nil, nil, conversationNotFound(id)
	}
	a := st.Agents[c.AgentID]
	if a == nil || a.Org != orgOf(ctx) {
		return nil, nil, conversationNotFound(id) // its agent was deleted, or is another organization's
	}
	return c, a, nil
}

// CreateConversation starts a conversation with an agent.
func (s *Service) CreateConversation(ctx context.Context, agentID string, req api.CreateConversation) (api.Conversation, error) {
	if req.Model != nil && *req.Model != "" {
		if _, err := s.resolveModel(req.Model, nil); err != nil {
			return api.Conversation{}, err
		}
	}
	if err := checkModelSettings(req.ModelSettings); err != nil {
		return api.Conversation{}, err
	}
	c := s.command(ctx, "create_conversation", agentID)
	id := c.idAt(events.PrefixConversation, 1) // what decide's first newID returns (keyed commands)
	err := s.exec(ctx, c, conversationAgg(id), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err == nil && a.Org != orgOf(ctx) {
			err = s.agentNotFound(agentID) // another organization's
		}
		if err != nil {
			return err
		}
		var sources []*projections.Block
		for _, label := range req.IsolatedBlockLabels {
			i := slices.IndexFunc(a.BlockIDs, func(b events.BlockID) bool { return st.Blocks[b] != nil && st.Blocks[b].Label == label })
			if i < 0 {
				return notFound("isolated_block_labels: agent %s has no block labelled %q", agentID, label)
			}
			if slices.Contains(sources, st.Blocks[a.BlockIDs[i]]) {
				return unprocessable("isolated_block_labels: %q is named twice", label)
			}
			sources = append(sources, st.Blocks[a.BlockIDs[i]])
		}
		id = c.newID(events.PrefixConversation)
		d.expectAt(st, conversationAgg(id))
		ev := &events.ConversationCreated{
			ID: events.ConversationID(id), AgentID: a.ID, ModelSettings: req.ModelSettings,
			IsolatedBlockLabels: req.IsolatedBlockLabels,
		}
		// As Letta 0.16.8: each isolated label gets a copy of the agent's
		// block, the conversation's own, which its runs read and edit.
		var copies []*events.BlockCreated
		for _, b := range sources {
			bc := &events.BlockCreated{ID: events.BlockID(c.newID(events.PrefixBlock)), Label: b.Label, Value: b.Value, Limit: b.Limit,
				ReadOnly: b.ReadOnly, Description: b.Description, Metadata: b.Metadata, OrganizationID: c.org}
			ev.IsolatedBlockIDs = append(ev.IsolatedBlockIDs, bc.ID)
			copies = append(copies, bc)
		}
		if req.Summary != nil {
			ev.Summary = *req.Summary
		}
		if req.Model != nil {
			ev.Model = *req.Model
		}
		d.add(c, conversationAgg(id), ev)
		for _, bc := range copies {
			d.expectAt(st, blockAgg(string(bc.ID)))
			d.add(c, blockAgg(string(bc.ID)), bc)
		}
		return nil
	})
	if err != nil {
		return api.Conversation{}, err
	}
	return s.GetConversation(ctx, id)
}

// checkModelSettings refuses model_settings that are not a JSON object.
func checkModelSettings(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return unprocessable("model_settings must be an object")
	}
	return nil
}

// GetConversation returns a conversation.
func (s *Service) GetConversation(ctx context.Context, id string) (api.Conversation, error) {
	var (
		out api.Conversation
		err error
	)
	s.read(func(st *projections.State) {
		var (
			c *projections.Conversation
			a *projections.Agent
		)
		if c, a, err = s.lookupConversation(ctx, st, id); err == nil {
			out = conversationView(c, a)
		}
	})
	return out, err
}

// ListConversations lists conversations, newest first unless the page says
// otherwise.
func (s *Service) ListConversations(ctx context.Context, f api.ConversationFilter, p api.Page) ([]api.Conversation, error) {
	var (
		out []api.Conversation
		err error
	)
	s.read(func(st *projections.State) {
		org := orgOf(ctx)
		if f.AgentID != "" {
			var a *projections.Agent
			if a, err = s.lookupAgent(st, f.AgentID); err == nil && a.Org != org {
				err = s.agentNotFound(f.AgentID) // another organization's
			}
			if err != nil {
				return
			}
		}
		list := make([]*projections.Conversation, 0)
		for _, c := range st.Conversations {
			a := st.Agents[c.AgentID]
			if a == nil || a.Org != org || (f.AgentID != "" && c.AgentID != events.AgentID(f.AgentID)) {
				continue
			}
			if f.SummarySearch != "" && !strings.Contains(strings.ToLower(c.Summary), strings.ToLower(f.SummarySearch)) {
				continue
			}
			list = append(list, c)
		}
		slices.SortFunc(list, func(a, b *projections.Conversation) int { return strings.Compare(string(a.ID), string(b.ID)) })
		if list, err = page(list, func(c *projections.Conversation) string { return string(c.ID) }, p, "desc", 50, "Conversation"); err != nil {
			return
		}
		out = make([]api.Conversation, len(list))
		for i, c := range list {
			out[i] = conversationView(c, st.Agents[c.AgentID])
		}
	})
	return out, err
}

// UpdateConversation changes a conversation's summary, model or model
// settings.
func (s *Service) UpdateConversation(ctx context.Context, id string, req api.UpdateConversation) (api.Conversation, error) {
	if req.Model != nil && *req.Model != "" {
		if _, err := s.resolveModel(req.Model, nil); err != nil {
			return api.Conversation{}, err
		}
	}
	if err := checkModelSettings(req.ModelSettings); err != nil {
		return api.Conversation{}, err
	}
	c := s.command(ctx, "update_conversation", id)
	err := s.exec(ctx, c, conversationAgg(id), func(st *projections.State, d *decision) error {
		if _, _, err := s.lookupConversation(ctx, st, id); err != nil {
			return err
		}
		if req.Summary == nil && req.Model == nil && len(req.ModelSettings) == 0 {
			return errNothing
		}
		d.expectAt(st, conversationAgg(id))
		d.add(c, conversationAgg(id), &events.ConversationUpdated{Summary: req.Summary, Model: req.Model, ModelSettings: req.ModelSettings})
		return nil
	})
	if err != nil {
		return api.Conversation{}, err
	}
	return s.GetConversation(ctx, id)
}

// DeleteConversation ends a conversation; its messages stay with its
// agent, and its isolated blocks are deleted, as Letta deletes them.
func (s *Service) DeleteConversation(ctx context.Context, id string) error {
	c := s.command(ctx, "delete_conversation", id)
	return s.exec(ctx, c, conversationAgg(id), func(st *projections.State, d *decision) error {
		conv, _, err := s.lookupConversation(ctx, st, id)
		if err != nil {
			return err
		}
		d.expectAt(st, conversationAgg(id))
		d.add(c, conversationAgg(id), &events.ConversationDeleted{})
		for _, b := range conv.IsolatedBlockIDs {
			if st.Blocks[b] != nil {
				d.expectAt(st, blockAgg(string(b)))
				d.add(c, blockAgg(string(b)), &events.BlockDeleted{})
			}
		}
		return nil
	})
}

// ConversationAgent resolves the agent a send to a conversation goes to,
// and the conversation its inputs name: "default" (with agentID) is the
// agent's main conversation, named by no conversation; an agent's id is
// accepted in a conversation's place, as Letta still accepts it.
func (s *Service) ConversationAgent(ctx context.Context, convID, agentID string) (agent, conv string, err error) {
	switch {
	case convID == api.DefaultConversation:
		if agentID == "" {
			return "", "", unprocessable("agent_id is required to address the default conversation")
		}
		if _, err = s.GetAgent(ctx, agentID); err == nil {
			err = s.Visible(ctx, events.KindAgent, agentID)
		}
		return agentID, "", err
	case strings.HasPrefix(convID, events.PrefixAgent+"-"):
		if _, err = s.GetAgent(ctx, convID); err == nil {
			err = s.Visible(ctx, events.KindAgent, convID)
		}
		return convID, "", err
	}
	s.read(func(st *projections.State) {
		var c *projections.Conversation
		if c, _, err = s.lookupConversation(ctx, st, convID); err == nil {
			if agentID != "" && agentID != string(c.AgentID) {
				err = unprocessable("conversation %s belongs to agent %s, not %s", convID, c.AgentID, agentID)
				return
			}
			agent, conv = string(c.AgentID), convID
		}
	})
	return agent, conv, err
}

// ListConversationMessages lists a conversation's messages (those of the
// sends made to it), newest first unless the page says otherwise; a page's
// limit counts the messages returned.
func (s *Service) ListConversationMessages(ctx context.Context, id string, p api.Page) ([]api.LettaMessage, error) {
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var c *projections.Conversation
		if c, _, err = s.lookupConversation(ctx, st, id); err == nil {
			refs = slices.Clone(c.Messages)
		}
	})
	if err != nil {
		return nil, err
	}
	return s.pageMessages(ctx, refs, p)
}

func conversationView(c *projections.Conversation, a *projections.Agent) api.Conversation {
	v := api.Conversation{
		ID: string(c.ID), AgentID: string(c.AgentID), Summary: strp(c.Summary), Model: strp(c.Model),
		ModelSettings: rawOr(c.ModelSettings, "null"), IsolatedBlockIDs: make([]string, 0, len(c.IsolatedBlockIDs)),
		InContextMessageIDs: []string{}, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if !c.LastMessageAt.IsZero() {
		t := c.LastMessageAt
		v.LastMessageAt = &t
	}
	for _, id := range c.MessageIDs {
		v.InContextMessageIDs = append(v.InContextMessageIDs, string(id))
	}
	for _, id := range c.IsolatedBlockIDs {
		v.IsolatedBlockIDs = append(v.IsolatedBlockIDs, string(id))
	}
	return v
}

// GetMessage returns the messages one stored message shows as, whichever
// agent holds it (Letta's GET /v1/messages/{id} answers a list).
func (s *Service) GetMessage(ctx context.Context, id string) ([]api.LettaMessage, error) {
	if err := events.CheckID(events.PrefixMessage, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	var (
		ref   projections.Ref
		found bool
	)
	org := orgOf(ctx)
	s.read(func(st *projections.State) {
		for _, a := range st.Agents {
			if a.Org != org {
				continue // another organization's: not found
			}
			for i := len(a.Messages) - 1; i >= 0; i-- {
				if a.Messages[i].ID == id {
					ref, found = a.Messages[i], true
					return
				}
			}
		}
	})
	if !found {
		return nil, notFound("Message with id %s not found", id)
	}
	return s.messageBodies(ctx, []projections.Ref{ref})
}

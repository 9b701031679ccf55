package service

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// InsertArchival stores a passage in an agent's archival memory and returns
// it (as a one-element list, as Letta does).
func (s *Service) InsertArchival(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error) {
	if strings.TrimSpace(req.Text) == "" {
		return nil, invalid("text must not be empty")
	}
	if err := checkText("text", req.Text, MaxTextLen); err != nil {
		return nil, err
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	var at *time.Time
	if req.CreatedAt != nil && *req.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *req.CreatedAt)
		if err != nil {
			return nil, unprocessable("created_at must be an RFC 3339 time, not %q", *req.CreatedAt)
		}
		t = t.UTC()
		at = &t
	}
	var embCfg json.RawMessage
	// Only to embed the text: the decision reads the agent again, and the
	// answer rests on the append, so it may read ahead of the disk.
	s.proj.ReadAhead(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			embCfg = a.EmbeddingConfig
		}
	})
	vecs, err := s.embed(ctx, embCfg, []string{req.Text})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "the embedding provider failed; nothing was stored")
	}
	c := s.command(ctx, "insert_passage", agentID)
	var decided events.Envelope
	appended, err := s.execAppend(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		id := c.newID(events.PrefixPassage)
		d.expectAt(st, agentAgg(agentID))
		p := &events.PassageInserted{
			ID: events.PassageID(id), AgentID: a.ID, Text: req.Text, Tags: dedupe(req.Tags),
			EmbeddingConfig: a.EmbeddingConfig, CreatedAt: at,
		}
		if vecs != nil && string(a.EmbeddingConfig) == string(embCfg) {
			p.Embedding = vecs[0]
		}
		d.add(c, agentAgg(agentID), p)
		decided = d.evs[len(d.evs)-1]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if appended {
		// The passage as stored is the event just appended: answering from
		// it spares a read of the log (a round trip to the stream).
		if p, ok := passageView(decided); ok {
			return []api.Passage{p}, nil
		}
	}
	// A retried command: find what it inserted.
	var id string
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			if seq, ok := a.Version.Done(c.id); ok {
				for _, r := range a.Passages {
					if r.Seq == seq {
						id = r.ID
					}
				}
			}
		}
	})
	p, err := s.loadPassages(ctx, agentID, []string{id})
	return p, err
}

// loadPassages loads passage bodies from the log.
func (s *Service) loadPassages(ctx context.Context, agentID string, ids []string) ([]api.Passage, error) {
	var refs []projections.Ref
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			return
		}
		for _, r := range a.Passages {
			if slices.Contains(ids, r.ID) {
				refs = append(refs, r)
			}
		}
	})
	return s.passageBodies(ctx, refs)
}

// passageBodies reads passages from the log. Passages written together
// (a file's, 25 to a message) share a message, which is read once.
func (s *Service) passageBodies(ctx context.Context, refs []projections.Ref) ([]api.Passage, error) {
	out := make([]api.Passage, 0, len(refs))
	var (
		msgSeq events.Seq
		msg    []events.Envelope
	)
	for i, r := range refs {
		var env events.Envelope
		switch {
		case r.Seq == msgSeq && int(r.Part) < len(msg):
			env = msg[r.Part]
		case r.Part > 0 || (i+1 < len(refs) && refs[i+1].Seq == r.Seq):
			all, err := s.log.LoadAll(ctx, r.Seq)
			if err != nil || int(r.Part) >= len(all) {
				return nil, fault.Wrap(fault.Unavailable, err, "cannot read passage %s from the log", r.ID)
			}
			msgSeq, msg, env = r.Seq, all, all[r.Part]
		default:
			var err error
			if env, err = s.load(ctx, r); err != nil {
				return nil, fault.Wrap(fault.Unavailable, err, "cannot read passage %s from the log", r.ID)
			}
		}
		if p, ok := passageView(env); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// defaultArchivalLimit is the page size of archival listings.
const defaultArchivalLimit = 1000

// ListArchival lists an agent's archival passages, oldest first unless the
// page says otherwise.
func (s *Service) ListArchival(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error) {
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		refs, err = page(a.Passages, func(r projections.Ref) string { return r.ID }, p, "asc", defaultArchivalLimit, "Passage")
	})
	if err != nil {
		return nil, err
	}
	return s.passageBodies(ctx, refs)
}

// ListArchivalContaining is ListArchival keeping only the passages whose
// text contains text, ignoring case; the page's limit counts matches. An
// empty text lists everything. It reads passage bodies from the log, so it
// looks at no more than MaxPageLimit passages past the cursor.
func (s *Service) ListArchivalContaining(ctx context.Context, agentID string, p api.Page, text string) ([]api.Passage, error) {
	if text == "" {
		return s.ListArchival(ctx, agentID, p)
	}
	if p.Limit < 0 {
		return nil, unprocessable("limit must not be negative")
	}
	limit := p.Limit
	if limit == 0 {
		limit = defaultArchivalLimit
	}
	window := p
	window.Limit = MaxPageLimit
	var (
		refs []projections.Ref
		err  error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err != nil {
			return
		}
		refs, err = page(a.Passages, func(r projections.Ref) string { return r.ID }, window, "asc", MaxPageLimit, "Passage")
	})
	if err != nil {
		return nil, err
	}
	// A page just before a cursor holds the matches nearest to it.
	backwards := p.Before != "" && p.After == ""
	if backwards {
		slices.Reverse(refs)
	}
	needle := strings.ToLower(text)
	out := []api.Passage{}
	for _, r := range refs {
		if len(out) == limit {
			break
		}
		ps, err := s.passageBodies(ctx, []projections.Ref{r})
		if err != nil {
			return nil, err
		}
		if len(ps) == 1 && strings.Contains(strings.ToLower(ps[0].Text), needle) {
			out = append(out, ps[0])
		}
	}
	if backwards {
		slices.Reverse(out)
	}
	return out, nil
}

// DeleteArchival deletes a passage from an agent's archival memory.
func (s *Service) DeleteArchival(ctx context.Context, agentID, passageID string) error {
	c := s.command(ctx, "delete_passage", agentID+"/"+passageID)
	return s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		if _, err := s.lookupAgent(st, agentID); err != nil {
			return err
		}
		if err := events.CheckID(events.PrefixPassage, passageID); err != nil {
			return unprocessable("%v", err)
		}
		if st.Passages[events.PassageID(passageID)] != events.AgentID(agentID) {
			return notFound("Passage with id %s not found for agent %s", passageID, agentID)
		}
		d.expectAt(st, agentAgg(agentID))
		d.add(c, agentAgg(agentID), &events.PassageDeleted{ID: events.PassageID(passageID)})
		return nil
	})
}

// ListMessages pages through an agent's message history, newest first
// unless the page says otherwise. Cursors name stored messages; one stored
// message may expand into several LettaMessages that share its id. As in
// Letta, a page's limit counts stored messages.
func (s *Service) ListMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error) {
	refs, err := s.historyRefs(agentID, p)
	if err != nil {
		return nil, err
	}
	return s.messageBodies(ctx, refs)
}

// pageMessages pages stored messages (refs, oldest first) and expands the
// page into LettaMessages.
func (s *Service) pageMessages(ctx context.Context, refs []projections.Ref, p api.Page) ([]api.LettaMessage, error) {
	page, err := page(refs, func(r projections.Ref) string { return r.ID }, p, "desc", 100, "Message")
	if err != nil {
		return nil, err
	}
	out := make([]api.LettaMessage, 0, len(page))
	for _, r := range page {
		env, err := s.load(ctx, r)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		out = append(out, messageViews(env)...)
	}
	return out, nil
}

// ArchivalSummary counts the passages an agent's archival search sees: its
// own and those of its attached sources.
func (s *Service) ArchivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error) {
	var (
		n   int
		err error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			n = archivalCount(st, a)
		}
	})
	return api.ArchivalMemorySummary{Size: n}, err
}

// RecallSummary counts an agent's stored messages.
func (s *Service) RecallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error) {
	n, err := s.count(agentID, func(a *projections.Agent) int { return len(a.Messages) })
	return api.RecallMemorySummary{Size: n}, err
}

func (s *Service) count(agentID string, of func(*projections.Agent) int) (n int, err error) {
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			n = of(a)
		}
	})
	return n, err
}

// ListContextMessages returns the messages in an agent's context window,
// in order, as LettaMessages.
func (s *Service) ListContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error) {
	refs, err := s.contextRefs(agentID)
	if err != nil {
		return nil, err
	}
	return s.messageBodies(ctx, refs)
}

// messageBodies loads stored messages and expands them into LettaMessages.
func (s *Service) messageBodies(ctx context.Context, refs []projections.Ref) ([]api.LettaMessage, error) {
	out := make([]api.LettaMessage, 0, len(refs))
	for _, r := range refs {
		env, err := s.load(ctx, r)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		out = append(out, messageViews(env)...)
	}
	return out, nil
}

// windowRefs locates the messages of an agent's context window, in order.
func windowRefs(a *projections.Agent) []projections.Ref { return refsOf(a, a.MessageIDs) }

// refsOf locates the messages ids of agent a, in order: a context window,
// the agent's own or one of its conversations'. An id a does not hold is
// left out.
//
// A window is mostly a's newest messages in the order they were stored, so
// they are matched from the end, each below the one after it, without
// reading the rest of a's history; one out of that order (a summary, stored
// after the messages it is placed before; the system message, stored
// first) is looked for in the whole history. Message ids are unique in an
// agent's history (the service makes them), so either way an id finds its
// one message. Past a few such, the history is indexed once instead.
func refsOf(a *projections.Agent, ids []events.MessageID) []projections.Ref {
	refs := make([]projections.Ref, len(ids)) // ids[i]'s at i, then packed
	found := make([]bool, len(ids))
	below, misses := len(a.Messages)-1, 0
	for i := len(ids) - 1; i >= 0; i-- {
		id := string(ids[i])
		k := below
		for k >= 0 && a.Messages[k].ID != id {
			k--
		}
		if k >= 0 {
			refs[i], found[i], below = a.Messages[k], true, k-1
			continue
		}
		if misses++; misses > maxOutOfOrder {
			return refsByIndex(a, ids)
		}
		for k = len(a.Messages) - 1; k > below; k-- {
			if a.Messages[k].ID == id {
				refs[i], found[i] = a.Messages[k], true
				break
			}
		}
	}
	n := 0
	for i := range ids {
		if found[i] {
			refs[n] = refs[i]
			n++
		}
	}
	return refs[:n]
}

// maxOutOfOrder is how many ids of a window refsOf looks for in the whole
// history before it indexes the history instead.
const maxOutOfOrder = 4

// refsByIndex is refsOf by an index of a's whole history.
func refsByIndex(a *projections.Agent, ids []events.MessageID) []projections.Ref {
	byID := make(map[string]projections.Ref, len(a.Messages))
	for _, r := range a.Messages {
		byID[r.ID] = r
	}
	refs := make([]projections.Ref, 0, len(ids))
	for _, id := range ids {
		if r, ok := byID[string(id)]; ok {
			refs = append(refs, r)
		}
	}
	return refs
}

package service

import (
	"context"
	"slices"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

func lookupBlock(st *projections.State, id string) (*projections.Block, error) {
	if err := events.CheckID(events.PrefixBlock, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	b := st.Blocks[events.BlockID(id)]
	if b == nil {
		return nil, notFound("Block with id %s not found", id)
	}
	return b, nil
}

// CreateBlock creates a standalone block or a human/persona template.
func (s *Service) CreateBlock(ctx context.Context, req api.CreateBlock) (api.Block, error) {
	c := s.command(ctx, "create_block", "")
	id := c.idAt(events.PrefixBlock, 1) // what decide's first newID returns (keyed commands)
	err := s.exec(ctx, c, blockAgg(id), func(st *projections.State, d *decision) error {
		id = c.newID(events.PrefixBlock)
		bc, err := newBlock(id, req)
		if err != nil {
			return err
		}
		bc.OrganizationID = c.org
		d.expectAt(st, blockAgg(id))
		d.add(c, blockAgg(id), bc)
		return nil
	})
	if err != nil {
		return api.Block{}, err
	}
	return s.GetBlock(ctx, id)
}

// GetBlock returns a block.
func (s *Service) GetBlock(ctx context.Context, id string) (api.Block, error) {
	var (
		out api.Block
		err error
	)
	s.read(func(st *projections.State) {
		var b *projections.Block
		if b, err = lookupBlock(st, id); err == nil {
			out = blockView(b)
		}
	})
	return out, err
}

// ListBlocks lists blocks, oldest first unless the page says otherwise.
func (s *Service) ListBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error) {
	var (
		out []api.Block
		err error
	)
	s.read(func(st *projections.State) {
		var holders map[events.BlockID]int
		if f.AgentsGT != nil || f.AgentsLT != nil || len(f.AgentsEq) > 0 {
			holders = make(map[events.BlockID]int)
			for _, a := range st.Agents {
				for _, id := range a.BlockIDs {
					holders[id]++
				}
			}
		}
		list := make([]*projections.Block, 0)
		org := orgOf(ctx)
		for _, b := range st.Blocks {
			if b.Org != org {
				continue
			}
			if (f.Label != "" && b.Label != f.Label) || (f.TemplatesOnly && !b.IsTemplate) || (f.Name != "" && b.Name != f.Name) {
				continue
			}
			if !containsFold(b.Label, f.LabelSearch) || !containsFold(b.Value, f.ValueSearch) || !containsFold(b.Description, f.DescriptionSearch) {
				continue
			}
			if len(f.Tags) > 0 && !tagsMatch(b.Tags, f.Tags, f.MatchAllTags) {
				continue
			}
			if n := holders[b.ID]; (f.AgentsGT != nil && n <= *f.AgentsGT) || (f.AgentsLT != nil && n >= *f.AgentsLT) ||
				(len(f.AgentsEq) > 0 && !slices.Contains(f.AgentsEq, n)) {
				continue
			}
			list = append(list, b)
		}
		slices.SortFunc(list, func(x, y *projections.Block) int {
			return projections.ByCreation(x.Created, x.CreatedPart, y.Created, y.CreatedPart)
		})
		list, err = page(list, func(b *projections.Block) string { return string(b.ID) }, p, "asc", 50, "Block")
		if err != nil {
			return
		}
		out = make([]api.Block, len(list))
		for i, b := range list {
			out[i] = blockView(b)
		}
	})
	return out, err
}

// containsFold reports whether s contains sub, ignoring case; an empty sub
// is in everything.
func containsFold(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// blockUpdate validates an update against the block's current state.
func blockUpdate(b *projections.Block, req api.UpdateBlock) (*events.BlockUpdated, error) {
	e := &events.BlockUpdated{}
	label, value, limit := b.Label, b.Value, b.Limit
	if req.Label != nil {
		if err := checkLabel(*req.Label); err != nil {
			return nil, err
		}
		label, e.Label = *req.Label, req.Label
	}
	if req.Limit != nil {
		if err := checkLimit(*req.Limit); err != nil {
			return nil, err
		}
		limit, e.Limit = *req.Limit, req.Limit
	}
	if req.Value != nil {
		value, e.Value = *req.Value, req.Value
	}
	if err := checkValue(label, value, limit); err != nil {
		return nil, err
	}
	for _, n := range []*string{req.TemplateName, req.Name} {
		if n != nil {
			if *n != "" {
				if err := checkName("block template", *n); err != nil {
					return nil, err
				}
			}
			e.Name = n
			break
		}
	}
	if req.IsTemplate != nil {
		e.IsTemplate = req.IsTemplate
	}
	if req.ReadOnly != nil {
		e.ReadOnly = req.ReadOnly
	}
	if req.Description != nil {
		if err := checkText("description", *req.Description, MaxDescLen); err != nil {
			return nil, err
		}
		e.Description = req.Description
	}
	meta, err := firstObject("metadata", req.Metadata, req.OldMetadata)
	if err != nil {
		return nil, err
	}
	e.Metadata = meta
	if req.Tags != nil {
		if err := checkTags(*req.Tags); err != nil {
			return nil, err
		}
		e.Tags = req.Tags
	}
	return e, nil
}

func (s *Service) updateBlock(ctx context.Context, target string, find func(st *projections.State) (*projections.Block, error), req api.UpdateBlock) (api.Block, error) {
	c := s.command(ctx, "update_block", target)
	var id events.BlockID
	// Only to name the command's aggregate: nothing read here reaches the
	// client, so it may read ahead of the disk (exec decides again).
	s.proj.ReadAhead(func(st *projections.State) {
		if b, err := find(st); err == nil {
			id = b.ID
		}
	})
	err := s.exec(ctx, c, blockAgg(string(id)), func(st *projections.State, d *decision) error {
		b, err := find(st)
		if err != nil {
			return err
		}
		id = b.ID
		e, err := blockUpdate(b, req)
		if err != nil {
			return err
		}
		if e.Label != nil && *e.Label != b.Label {
			// Keep labels unique within every agent that holds this block.
			for _, a := range st.Agents {
				if !slices.Contains(a.BlockIDs, b.ID) {
					continue
				}
				for _, other := range a.BlockIDs {
					if o := st.Blocks[other]; o != nil && o.ID != b.ID && o.Label == *e.Label {
						return invalid("agent %s already has a block labelled %q", a.ID, *e.Label)
					}
				}
			}
		}
		d.expectAt(st, blockAgg(string(b.ID)))
		d.add(c, blockAgg(string(b.ID)), e)
		return nil
	})
	if err != nil {
		return api.Block{}, err
	}
	return s.settledBlock(ctx, string(id))
}

// settledBlock is GetBlock for the answer to a write: it waits for the
// block's own newest event to be on disk, not for every event applied (as a
// read does), which under concurrent writes to other aggregates would wait
// for their fsync round. After the write, the block's events are on disk
// unless another write to it came since.
func (s *Service) settledBlock(ctx context.Context, id string) (api.Block, error) {
	if s.ahead {
		return s.GetBlock(ctx, id)
	}
	var (
		out   api.Block
		found bool
	)
	err := s.proj.ReadSettled(ctx, func(st *projections.State) events.Seq {
		b := st.Blocks[events.BlockID(id)]
		if b == nil {
			return 0
		}
		out, found = blockView(b), true
		return b.Version.Newest()
	})
	if err != nil {
		return api.Block{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	if !found {
		// Deleted meanwhile: say so as a read does, once that is on disk.
		return s.GetBlock(ctx, id)
	}
	return out, nil
}

// UpdateBlock changes the fields the request sets. A value over the block's
// character limit is refused and the old value kept.
func (s *Service) UpdateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error) {
	return s.updateBlock(ctx, id, func(st *projections.State) (*projections.Block, error) { return lookupBlock(st, id) }, req)
}

// DeleteBlock deletes a block; agents holding it lose it.
func (s *Service) DeleteBlock(ctx context.Context, id string) error {
	c := s.command(ctx, "delete_block", id)
	return s.exec(ctx, c, blockAgg(id), func(st *projections.State, d *decision) error {
		if _, err := lookupBlock(st, id); err != nil {
			return err
		}
		d.expectAt(st, blockAgg(id))
		d.add(c, blockAgg(id), &events.BlockDeleted{})
		return nil
	})
}

// agentBlock finds the block with a label in an agent's core memory.
func (s *Service) agentBlock(st *projections.State, agentID, label string) (*projections.Block, error) {
	a, err := s.lookupAgent(st, agentID)
	if err != nil {
		return nil, err
	}
	for _, id := range a.BlockIDs {
		if b := st.Blocks[id]; b != nil && b.Label == label {
			return b, nil
		}
	}
	return nil, notFound("No block with label '%s' found for agent '%s'", label, agentID)
}

// ListAgentBlocks lists an agent's core memory blocks in attach order.
func (s *Service) ListAgentBlocks(ctx context.Context, agentID string, p api.Page) ([]api.Block, error) {
	a, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	return page(a.Blocks, func(b api.Block) string { return b.ID }, p, "asc", 100, "Block")
}

// GetAgentBlock returns the block with a label in an agent's core memory.
func (s *Service) GetAgentBlock(ctx context.Context, agentID, label string) (api.Block, error) {
	var (
		out api.Block
		err error
	)
	s.read(func(st *projections.State) {
		var b *projections.Block
		if b, err = s.agentBlock(st, agentID, label); err == nil {
			out = blockView(b)
		}
	})
	return out, err
}

// UpdateAgentBlock changes the block with a label in an agent's core memory.
func (s *Service) UpdateAgentBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error) {
	return s.updateBlock(ctx, agentID+"/"+label, func(st *projections.State) (*projections.Block, error) {
		return s.agentBlock(st, agentID, label)
	}, req)
}

// GetCoreMemory returns an agent's core memory.
func (s *Service) GetCoreMemory(ctx context.Context, agentID string) (api.Memory, error) {
	a, err := s.GetAgent(ctx, agentID)
	return a.Memory, err
}

// UpdateCoreMemory sets the value of one section (block label) of an agent's
// core memory and returns the whole memory, as Letta 0.5's
// update_in_context_memory does.
func (s *Service) UpdateCoreMemory(ctx context.Context, agentID, label, value string) (api.Memory, error) {
	if _, err := s.UpdateAgentBlock(ctx, agentID, label, api.UpdateBlock{Value: &value}); err != nil {
		return api.Memory{}, err
	}
	return s.GetCoreMemory(ctx, agentID)
}

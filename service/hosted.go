package service

import (
	"context"
	"slices"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// readLog is Log.Read that also delivers, in log order, the events of the
// selected blocks that are stored in another aggregate's message: a block
// created with an agent is hosted in that agent's creation message
// (events.EncodeHosted), so a read of the block's own subject misses its
// creation unless the agent is selected too (another agent the block was
// attached to, reading its history or its state at a point).
func (s *Service) readLog(ctx context.Context, sel []events.Selector, from, to events.Seq, fn func(events.Envelope) (bool, error)) error {
	if from < 1 {
		from = 1
	}
	selected := map[events.Aggregate]bool{}
	for _, x := range sel {
		selected[x.Aggregate] = true
	}
	var at []events.Seq
	want := map[events.Aggregate]events.Selector{}
	s.read(func(st *projections.State) {
		for _, x := range sel {
			if x.Aggregate.Kind != events.KindBlock {
				continue
			}
			b := st.Blocks[events.BlockID(x.Aggregate.ID)]
			if b == nil || !b.Hosted || b.Created < from || to != 0 && b.Created > to {
				continue
			}
			want[x.Aggregate] = x
			if !slices.Contains(at, b.Created) {
				at = append(at, b.Created)
			}
		}
	})
	var extra []events.Envelope
	slices.Sort(at)
	for _, seq := range at {
		envs, err := s.log.LoadAll(ctx, seq)
		if err != nil {
			return err
		}
		if selected[envs[0].Aggregate] {
			continue // the host's read delivers the whole message
		}
		for _, env := range envs {
			x, ok := want[env.Aggregate]
			if ok && env.Hosted && (x.Types == nil || slices.Contains(x.Types, env.Type)) {
				extra = append(extra, env)
			}
		}
	}
	if len(extra) == 0 {
		return s.log.Read(ctx, sel, from, to, fn)
	}
	stopped := false
	err := s.log.Read(ctx, sel, from, to, func(env events.Envelope) (bool, error) {
		for len(extra) > 0 && (extra[0].Seq < env.Seq || extra[0].Seq == env.Seq && extra[0].Part < env.Part) {
			more, err := fn(extra[0])
			extra = extra[1:]
			if err != nil || !more {
				stopped = true
				return more, err
			}
		}
		more, err := fn(env)
		stopped = !more
		return more, err
	})
	if err != nil || stopped {
		return err
	}
	for _, env := range extra {
		if more, err := fn(env); err != nil || !more {
			return err
		}
	}
	return nil
}

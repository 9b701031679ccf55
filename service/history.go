package service

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// defaultHistoryLimit is the page size of an agent's history.
const defaultHistoryLimit = 100

// fileTypes are the events of a source that an agent's history shows: its
// files', not its passages (a source's passages are its own history).
var fileTypes = []events.Type{events.TypeFileCreated, events.TypeFileUpdated, events.TypeFileDeleted}

// historyOf selects the events that make up an agent's history: the
// agent's, every block's it has had, and the file events of every source
// it has had. A deleted agent's history is its own events.
func (s *Service) historyOf(agentID string) ([]events.Selector, error) {
	if err := events.CheckID(events.PrefixAgent, agentID); err != nil {
		return nil, unprocessable("%v", err)
	}
	var aggs []events.Aggregate
	var sources []events.Aggregate
	var err error
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			if _, gone := st.Gone[agentID]; !gone {
				err = s.agentNotFound(agentID)
			}
			return
		}
		for _, x := range a.Related {
			switch x.Kind {
			case events.KindBlock:
				aggs = append(aggs, x)
			case events.KindSource:
				sources = append(sources, x)
			}
		}
		for _, id := range a.BlockIDs {
			if x := blockAgg(string(id)); !slices.Contains(aggs, x) {
				aggs = append(aggs, x)
			}
		}
		for _, id := range a.SourceIDs {
			if x := sourceAgg(string(id)); !slices.Contains(sources, x) {
				sources = append(sources, x)
			}
		}
	})
	sel := []events.Selector{{Aggregate: agentAgg(agentID)}}
	for _, x := range aggs {
		sel = append(sel, events.Selector{Aggregate: x})
	}
	for _, x := range sources {
		sel = append(sel, events.Selector{Aggregate: x, Types: fileTypes})
	}
	return sel, err
}

// runsOf maps the run ids of an agent's runs to the inputs they answered.
func (s *Service) runsOf(agentID string) map[string]string {
	runs := map[string]string{}
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			for _, r := range a.Messages {
				if r.Input {
					runs[RunOf(r.ID)] = r.ID
				}
			}
		}
	})
	return runs
}

// History pages through an agent's events, those of its blocks and those
// of its sources' files, in log order. A page holds at least limit events, unless the range ends, and
// more only to finish a packed message: the next page starts after the
// last sequence of this one.
func (s *Service) History(ctx context.Context, agentID string, f api.EventFilter) ([]api.Event, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, unprocessable("limit must not be negative")
	case limit == 0:
		limit = defaultHistoryLimit
	case limit > MaxPageLimit:
		limit = MaxPageLimit
	}
	if f.Before != 0 && f.Before <= f.After+1 {
		return []api.Event{}, nil
	}
	for _, t := range f.Types {
		if !slices.Contains(events.Types(), events.Type(t)) {
			return nil, unprocessable("unknown event type %q", t)
		}
	}
	sel, err := s.historyOf(agentID)
	if err != nil {
		return nil, err
	}
	var to events.Seq
	if f.Before != 0 {
		to = events.Seq(f.Before - 1)
	}
	out := []api.Event{}
	inputs := map[string]string{} // step command → the input its run answered
	var runs map[string]string    // run id → its input, made when first needed
	inputOf := func(run string) string {
		if runs == nil {
			runs = s.runsOf(agentID)
		}
		return runs[run]
	}
	err = s.readLog(ctx, sel, events.Seq(f.After+1), to, func(env events.Envelope) (bool, error) {
		if env.Aggregate.Kind == events.KindSource && !slices.Contains(fileTypes, env.Type) {
			return true, nil // a packed message's passages
		}
		// A page holds whole messages: one that reaches the limit inside a
		// packed message ends with the message, so that paging by
		// sequence misses nothing.
		if len(out) >= limit && env.Seq != events.Seq(out[len(out)-1].Seq) {
			return false, nil
		}
		if !f.Until.IsZero() && !env.Time.Before(f.Until) {
			return true, nil
		}
		by, input := issuer(env, inputOf, inputs)
		if len(f.Types) > 0 && !slices.Contains(f.Types, string(env.Type)) || !f.Since.IsZero() && env.Time.Before(f.Since) {
			return true, nil
		}
		data, err := json.Marshal(env.Event)
		if err != nil {
			return false, err
		}
		out = append(out, api.Event{
			Seq: uint64(env.Seq), Part: env.Part, Time: env.Time, Type: string(env.Type),
			Aggregate: env.Aggregate.String(), Command: env.Command, IssuedBy: by, InputID: input, Data: data,
		})
		return true, nil
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "cannot read agent %s's history from the log", agentID)
	}
	return out, nil
}

// issuer says who issued the command that wrote env and, for a step of a
// run, which input the run answered. runs finds the input of a run;
// inputs remembers, per step command, the input found on its earlier
// events (a step's block edits carry no run id).
func issuer(env events.Envelope, runs func(string) string, inputs map[string]string) (string, string) {
	switch {
	case env.Actor != "":
		return env.Actor, ""
	case strings.HasPrefix(env.Command, "summary-"):
		return "agent summary", ""
	case !strings.HasPrefix(env.Command, "step-"):
		return "client", ""
	}
	if _, ok := inputs[env.Command]; !ok {
		switch e := env.Event.(type) {
		case *events.InputTaken:
			if len(e.IDs) > 0 {
				inputs[env.Command] = string(e.IDs[0])
			}
		default:
			if m, ok := events.AsMessage(env.Event); ok && m.RunID != "" {
				if in := runs(m.RunID); in != "" {
					inputs[env.Command] = in
				}
			}
		}
	}
	return "agent step", inputs[env.Command]
}

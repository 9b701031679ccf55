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

// Runs are a projection of the events a send writes (projections.Run): a
// run is created when its inputs are stored, runs from its first step and
// completes with the stop reason its last step records, or is cancelled
// (events.RunCancelled). Nothing about a run lives only in memory.

// PrefixRun is the prefix of run ids.
const PrefixRun = "run"

func runView(r *projections.Run) api.Run {
	v := api.Run{
		ID: r.ID, AgentID: string(r.AgentID), Status: r.Status, CreatedAt: r.CreatedAt,
		StopReason: strp(r.StopReason), Metadata: rawOr(nil, "{}"), ConversationID: strp(string(r.ConversationID)),
	}
	if r.Error != "" {
		v.Metadata, _ = json.Marshal(map[string]string{"error": r.Error})
	}
	if !r.CompletedAt.IsZero() {
		t := r.CompletedAt
		v.CompletedAt = &t
		d := t.Sub(r.CreatedAt).Nanoseconds()
		v.TotalDurationNs = &d
	}
	return v
}

// lookupRun finds a run of a live agent; the id must be well formed.
func (s *Service) lookupRun(st *projections.State, id string) (*projections.Run, error) {
	if err := events.CheckID(PrefixRun, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	r := st.Runs[id]
	if r == nil || st.Agents[r.AgentID] == nil {
		return nil, notFound("Run with ID %s not found", id)
	}
	return r, nil
}

// GetRun returns a run.
func (s *Service) GetRun(ctx context.Context, runID string) (api.Run, error) {
	var (
		out api.Run
		err error
	)
	s.read(func(st *projections.State) {
		var r *projections.Run
		if r, err = s.lookupRun(st, runID); err == nil {
			out = runView(r)
		}
	})
	return out, err
}

// ListRuns lists runs, newest first unless p says otherwise.
func (s *Service) ListRuns(ctx context.Context, f api.RunFilter, p api.Page) ([]api.Run, error) {
	if err := checkIDs(events.PrefixAgent, f.AgentIDs); err != nil {
		return nil, err
	}
	var (
		out []api.Run
		err error
	)
	s.read(func(st *projections.State) {
		var list []*projections.Run
		org := orgOf(ctx)
		add := func(a *projections.Agent) {
			if a.Org != org {
				return
			}
			for _, id := range a.Runs {
				r := st.Runs[id]
				switch {
				case r == nil,
					len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.Status),
					f.StopReason != "" && r.StopReason != f.StopReason,
					f.Active && !r.Active():
					continue
				}
				list = append(list, r)
			}
		}
		if len(f.AgentIDs) == 0 {
			for _, a := range st.Agents {
				add(a)
			}
		} else {
			for _, id := range f.AgentIDs {
				if a := st.Agents[events.AgentID(id)]; a != nil {
					add(a)
				}
			}
		}
		slices.SortFunc(list, func(x, y *projections.Run) int {
			if x.Created != y.Created {
				return int(x.Created) - int(y.Created)
			}
			return strings.Compare(x.ID, y.ID)
		})
		list, err = page(list, func(r *projections.Run) string { return r.ID }, p, "desc", 100, "Run")
		if err != nil {
			return
		}
		out = make([]api.Run, len(list))
		for i, r := range list {
			out[i] = runView(r)
		}
	})
	return out, err
}

// RunMessages lists the messages of a run: the send's inputs, then what
// the run's steps stored, oldest first unless p says otherwise.
func (s *Service) RunMessages(ctx context.Context, runID string, p api.Page) ([]api.LettaMessage, error) {
	var (
		agentID string
		first   projections.Ref
		inputs  []projections.Ref
		err     error
	)
	s.read(func(st *projections.State) {
		var r *projections.Run
		if r, err = s.lookupRun(st, runID); err == nil {
			agentID, first, inputs = string(r.AgentID), r.Inputs[0], slices.Clone(r.Inputs)
		}
	})
	if err != nil {
		return nil, err
	}
	var ms []api.LettaMessage
	for _, ref := range inputs {
		env, err := s.load(ctx, ref)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		ms = append(ms, messageViews(env)...)
	}
	resp, err := s.reply(ctx, agentID, first, true)
	if err != nil {
		return nil, err
	}
	ms = append(ms, resp.Messages...)
	return page(ms, func(m api.LettaMessage) string { return m.ID }, p, "asc", 100, "Message")
}

// RunSteps lists a run's steps, oldest first unless p says otherwise: one
// a model call, named by the assistant message that call stored, with its
// model, usage and, on the last, why the run stopped.
func (s *Service) RunSteps(ctx context.Context, runID string, p api.Page) ([]api.Step, error) {
	var (
		agentID string
		first   projections.Ref
		err     error
	)
	s.read(func(st *projections.State) {
		var r *projections.Run
		if r, err = s.lookupRun(st, runID); err == nil {
			agentID, first = string(r.AgentID), r.Inputs[0]
		}
	})
	if err != nil {
		return nil, err
	}
	steps := []api.Step{}
	err = s.eachRunMessage(ctx, agentID, first, func(env events.Envelope, m *events.MessageAppended) {
		if m.Role != "assistant" {
			return
		}
		st := api.Step{
			ID: "step-" + strings.TrimPrefix(string(m.ID), events.PrefixMessage+"-"), RunID: runID, AgentID: agentID,
			Status: "success", CreatedAt: env.Time.UTC(),
		}
		if m.Model != "" {
			model := m.Model
			st.Model = &model
		}
		if u := m.Usage; u != nil {
			st.PromptTokens, st.CompletionTokens, st.TotalTokens = u.PromptTokens, u.CompletionTokens, u.TotalTokens
		}
		if m.StopReason != "" {
			reason := m.StopReason
			st.StopReason = &reason
		}
		steps = append(steps, st)
	})
	if err != nil {
		return nil, err
	}
	return page(steps, func(s api.Step) string { return s.ID }, p, "asc", 100, "Step")
}

// RunUsage returns the tokens a run's steps took.
func (s *Service) RunUsage(ctx context.Context, runID string) (api.Usage, error) {
	var (
		out api.Usage
		err error
	)
	s.read(func(st *projections.State) {
		var r *projections.Run
		if r, err = s.lookupRun(st, runID); err == nil {
			out = api.Usage{
				MessageType: "usage_statistics", PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens,
				TotalTokens: r.Usage.TotalTokens, StepCount: r.Steps, RunIDs: []string{r.ID},
			}
		}
	})
	return out, err
}

// SendMessageAsync stores a send's inputs and returns its run at once; the
// agent's worker runs it as it runs any send, in arrival order. With a key
// already used on this agent it stores nothing and returns the run of the
// first send (the same key with other inputs is unprocessable). Without
// workers (Config.Runs nil) the run waits for the next send or Resume.
func (s *Service) SendMessageAsync(ctx context.Context, agentID string, inputs []Input, opts SendOptions) (api.Run, error) {
	_, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return api.Run{}, err
	}
	var digest string
	if opts.Key != "" {
		digest = sendDigest(inputs) // of the inputs as sent, as SendMessage
		ctx = WithRequestDigest(WithIdempotencyKey(ctx, opts.Key), nil)
	}
	if _, sent := s.sentWith(agentID, opts.Key); opts.Key == "" || !sent { // a keyed resend is answered below
		if inputs, err = s.settleApprovals(ctx, agentID, inputs, opts); err != nil {
			return api.Run{}, err
		}
	}
	if err := s.checkOverride(opts); err != nil {
		return api.Run{}, err
	}
	if _, _, err := s.modelFor(agentID, Scope{Conversation: events.ConversationID(opts.ConversationID), Model: opts.OverrideModel}); err != nil {
		return api.Run{}, err
	}
	c := s.command(ctx, "send_message", agentID)
	ids := make([]string, len(inputs))
	for i := range inputs {
		ids[i] = c.newID(events.PrefixMessage)
	}
	opts.OnDelta = nil // nobody listens for tokens
	if _, _, err := s.appendInputs(ctx, c, agentID, inputs, ids, opts.Key, digest, opts); err != nil {
		return api.Run{}, err
	}
	first := ids[0]
	if opts.Key != "" {
		ref, ok := s.sentWith(agentID, opts.Key)
		if !ok {
			return api.Run{}, fault.E(fault.Internal, "the send with key %q is not in the projection", opts.Key)
		}
		env, err := s.load(ctx, ref)
		if err != nil {
			return api.Run{}, fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		if in, isInput := env.Event.(*events.MessageReceived); isInput && in.Digest != "" && in.Digest != digest {
			return api.Run{}, unprocessable("the key %q was already used for a send with other messages; use a new key (or otid) for a new message", opts.Key)
		}
		first = ref.ID
	}
	return s.GetRun(ctx, RunOf(first))
}

// CancelRuns cancels runs of an agent: those named (all must be the
// agent's), or every run of the agent not yet ended. A run waiting its
// turn never begins; a run under way stops at its next step boundary. It
// maps each run to "cancelled", or "not_active" when it had ended already.
func (s *Service) CancelRuns(ctx context.Context, agentID string, runIDs []string) (map[string]string, error) {
	if err := checkIDs(PrefixRun, runIDs); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var queued []string // inputs of runs that had not begun: their senders wait
	c := s.command(ctx, "cancel_runs", agentID)
	_, err := s.execAppend(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		clear(out)
		queued = queued[:0]
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		ids := runIDs
		if len(ids) == 0 {
			for _, id := range a.Runs {
				if r := st.Runs[id]; r != nil && r.Active() {
					ids = append(ids, id)
				}
			}
		}
		for _, id := range ids {
			r := st.Runs[id]
			if r == nil || r.AgentID != a.ID {
				return notFound("Run with ID %s not found for agent %s", id, agentID)
			}
			if !r.Active() {
				out[id] = "not_active"
				continue
			}
			out[id] = "cancelled"
			if r.Status == projections.RunCreated {
				queued = append(queued, r.Inputs[len(r.Inputs)-1].ID)
			}
			d.add(c, agentAgg(agentID), &events.RunCancelled{RunID: id})
		}
		if len(d.evs) == 0 {
			return errNothing
		}
		d.expectAt(st, agentAgg(agentID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.Runs != nil {
		// A sender waiting for a run that will never begin hears that it ended.
		r := RunReport{Done: &api.LettaResponse{
			StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "cancelled"},
			Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{}},
		}}
		for _, id := range queued {
			s.cfg.Runs.PublishRun(id, r)
		}
	}
	return out, nil
}

// failRun records that a run under way ended on a failed step: its inputs
// are taken, so no run takes them again. A run that had not begun waits
// for its retry, and records nothing. It is best effort: the failure is
// logged, and a failure to record it too.
func (s *Service) failRun(ctx context.Context, agentID, run string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c := s.command(context.Background(), "fail_run", agentID)
	err := s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		r := st.Runs[run]
		if r == nil || r.Status != projections.RunRunning {
			return errNothing
		}
		d.expectAt(st, agentAgg(agentID))
		d.add(c, agentAgg(agentID), &events.RunFailed{RunID: run, StopReason: "error", Detail: fault.Message(cause)})
		return nil
	})
	if err != nil {
		s.cfg.Logger.Warn("cannot record a failed run", "agent", agentID, "run", run, "err", err)
	}
}

// cancelled reports whether a client cancelled the run.
func (s *Service) cancelled(run string) bool {
	var yes bool
	s.read(func(st *projections.State) {
		if r := st.Runs[run]; r != nil {
			yes = r.Status == projections.RunCancelled
		}
	})
	return yes
}

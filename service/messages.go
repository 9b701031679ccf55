package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// A send runs in three phases. The user's message is appended first, so an
// accepted message is never lost. Then each step of the heartbeat chain
// calls the model and commits everything it produced (its input, the
// model's turn, the function's return, memory edits, archival inserts) as
// one atomic batch. A step that fails leaves nothing behind; a process that
// dies mid-step leaves the user's message unanswered, and the next send (or
// Resume) runs it.

// Input is one message a client sends.
type Input struct {
	Role string // user or system
	Text string
	Name string
	Otid string
}

// SendOptions tunes one send.
type SendOptions struct {
	MaxSteps            int                    // 0: the service default
	UseAssistantMessage bool                   // show send_message as assistant_message
	OnMessage           func(api.LettaMessage) // called for each message as its step commits
	OnDelta             func(agents.Delta)     // token deltas while the model generates
	// Key makes the send idempotent: a send with a key already used on this
	// agent runs nothing and answers with what the first one produced. The
	// REST API takes it from Idempotency-Key or the message's otid.
	Key string
	// ConversationID names the conversation the send goes to ("": the
	// agent's default one). The send runs on the agent's context window
	// either way (see conversations.go).
	ConversationID string

	run string // the run the messages a step stores belong to (runOf), if any
}

// Inputs converts a SendMessage body into inputs, refusing malformed ones.
func Inputs(req api.SendMessage) ([]Input, error) {
	hasInput := len(req.Input) > 0 && string(req.Input) != "null"
	if hasInput && len(req.Messages) > 0 {
		return nil, unprocessable("Cannot specify both messages and input")
	}
	if hasInput {
		text, err := contentText(req.Input)
		if err != nil {
			return nil, err
		}
		return []Input{{Role: "user", Text: text}}, nil
	}
	if req.Messages == nil {
		return nil, unprocessable("Either messages or input must be provided")
	}
	if len(req.Messages) == 0 {
		return nil, unprocessable("Messages must not be empty")
	}
	var out []Input
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "system" {
			return nil, unprocessable("messages[%d].role must be user or system, not %q", i, m.Role)
		}
		var text string
		switch {
		case len(m.Content) > 0 && string(m.Content) != "null":
			t, err := contentText(m.Content)
			if err != nil {
				return nil, unprocessable("messages[%d].content: %v", i, fault.Message(err))
			}
			text = t
		case m.Text != nil:
			text = *m.Text
		}
		if strings.TrimSpace(text) == "" {
			return nil, unprocessable("messages[%d] has no text", i)
		}
		if err := checkText("message", text, MaxTextLen); err != nil {
			return nil, err
		}
		in := Input{Role: m.Role, Text: text}
		if m.Name != nil {
			in.Name = *m.Name
		}
		if m.Otid != nil {
			if len(*m.Otid) > MaxOtidLen {
				return nil, unprocessable("messages[%d].otid is %d bytes long; the limit is %d", i, len(*m.Otid), MaxOtidLen)
			}
			in.Otid = *m.Otid
		}
		out = append(out, in)
	}
	return out, nil
}

// contentText reads a message content: a string or a list of text parts.
func contentText(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", unprocessable("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "" && p.Type != "text" {
			return "", unprocessable("content part type %q is not supported (text only)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// SendMessage gives an agent messages and waits while the agent answers
// them: the heartbeat chain ends, the step limit is reached, or a step
// fails. The messages are appended first, so an accepted message is never
// lost; the node that owns the agent's partition runs it (Process) and
// reports each message as its step commits. One agent answers one send at
// a time, in arrival order, each send with a run of its own.
//
// A send with a key (SendOptions.Key) is stored once: a send with a key
// already used on this agent, however long ago and however many sends ago,
// stores nothing and answers with the reply of the first, waiting for its
// run if it still goes (and running it, if it failed before). The same key
// with other inputs is refused as unprocessable.
func (s *Service) SendMessage(ctx context.Context, agentID string, inputs []Input, opts SendOptions) (api.LettaResponse, error) {
	a, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return api.LettaResponse{}, err
	}
	if loopOf(a.AgentType) == agents.LoopV1 {
		opts.UseAssistantMessage = true // a modern agent's answer is no send_message call
	}
	var digest string
	if opts.Key != "" {
		digest = sendDigest(inputs)
		if _, ok := s.sentWith(agentID, opts.Key); ok {
			return s.answerAgain(ctx, agentID, opts.Key, digest, opts)
		}
		// The command is named by the key, so that concurrent copies of the
		// send decide the same ids and the log stores one of them. A send
		// compares its inputs (sendDigest), not the request's bytes: a
		// resend may carry new otids.
		ctx = WithRequestDigest(WithIdempotencyKey(ctx, opts.Key), nil)
	}
	if _, _, err := s.modelFor(agentID); err != nil {
		return api.LettaResponse{}, err
	}
	c := s.command(ctx, "send_message", agentID)
	ids := make([]string, len(inputs))
	for i := range inputs {
		ids[i] = c.newID(events.PrefixMessage)
	}
	// Watch the run before the input exists, so that no report is missed.
	reports, stop, err := s.watchRun(ids[len(ids)-1])
	if err != nil {
		return api.LettaResponse{}, err
	}
	defer stop()
	if opts.OnDelta != nil {
		// Asked by whoever runs the input, before its first model call.
		untake, err := s.cfg.Runs.OfferTokens(ids[len(ids)-1])
		if err != nil {
			return api.LettaResponse{}, fault.Wrap(fault.Unavailable, err, "cannot offer to take the run's tokens")
		}
		defer untake()
	}
	_, appended, err := s.appendInputs(ctx, c, agentID, inputs, ids, opts.Key, digest, opts)
	if err != nil {
		return api.LettaResponse{}, err
	}
	if !appended {
		// A copy of this send stored it first (it was in the log when this
		// call decided), and its run may have reported already.
		stop()
		return s.answerAgain(ctx, agentID, opts.Key, digest, opts)
	}
	// Whoever runs the input reports after the projection applied it, which
	// is after this call found it missing: every report comes after the watch.
	return s.awaitRun(ctx, reports, opts)
}

// watchRun subscribes to the reports of the run that takes the input
// inputID. stop ends the subscription; reports after it are dropped.
func (s *Service) watchRun(inputID string) (<-chan runReport, func(), error) {
	if s.cfg.Runs == nil {
		return nil, nil, fault.E(fault.Unavailable, "this service runs no agents (it has no run bus)")
	}
	reports := make(chan runReport, 256)
	done := make(chan struct{})
	unsub, err := s.cfg.Runs.WatchRun(inputID, func(b []byte) {
		var r runReport
		if json.Unmarshal(b, &r) == nil {
			select {
			case reports <- r:
			case <-done:
			}
		}
	})
	if err != nil {
		return nil, nil, fault.Wrap(fault.Unavailable, err, "cannot watch the run")
	}
	var once sync.Once
	return reports, func() { once.Do(func() { unsub(); close(done) }) }, nil
}

// awaitRun collects a run's reports into its response until it ends,
// fails, or ctx ends (the run goes on without this caller).
func (s *Service) awaitRun(ctx context.Context, reports <-chan runReport, opts SendOptions) (api.LettaResponse, error) {
	resp := api.LettaResponse{Messages: []api.LettaMessage{}}
	for {
		select {
		case <-ctx.Done():
			return resp, fault.Wrap(fault.Unavailable, ctx.Err(), "stopped waiting for the agent; the message was accepted and will be answered")
		case r := <-reports:
			switch {
			case r.Delta != nil:
				if opts.OnDelta != nil {
					opts.OnDelta(*r.Delta)
				}
			case r.Message != nil:
				m := *r.Message
				if !opts.UseAssistantMessage && m.MessageType == api.AssistantMessageType {
					m = assistantAsCall(m)
				}
				resp.Messages = append(resp.Messages, m)
				if opts.OnMessage != nil {
					opts.OnMessage(m)
				}
			case r.Error != nil:
				return resp, r.Error.Err()
			case r.Done != nil:
				resp.StopReason, resp.Usage = r.Done.StopReason, r.Done.Usage
				return resp, nil
			}
		}
	}
}

// sendDigest fingerprints a send's inputs.
func sendDigest(inputs []Input) string {
	type part struct{ Role, Text, Name string } // not the otid: a key's resend may carry new ones
	parts := make([]part, len(inputs))
	for i, in := range inputs {
		parts[i] = part{in.Role, in.Text, in.Name}
	}
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sentWith finds the first input of the send stored under key.
func (s *Service) sentWith(agentID, key string) (projections.Ref, bool) {
	var (
		ref projections.Ref
		ok  bool
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			ref, ok = a.Keys[key]
		}
	})
	return ref, ok
}

// answerAgain answers a send whose key is stored already: with the reply
// of the stored send, once its run has ended. If its run has not ended (it
// waits its turn, goes on, or failed before it began) the owner of the
// agent is asked to run it (a RunResend request, queued after the agent's
// earlier inputs) and this call waits for that. A run begun for it goes on
// if this client goes away, as for any send.
func (s *Service) answerAgain(ctx context.Context, agentID, key, digest string, opts SendOptions) (api.LettaResponse, error) {
	ref, ok := s.sentWith(agentID, key)
	if !ok {
		return api.LettaResponse{}, fault.E(fault.Internal, "the send with key %q is not in the projection", key)
	}
	env, err := s.load(ctx, ref)
	if err != nil {
		return api.LettaResponse{}, fault.Wrap(fault.Unavailable, err, "cannot read the log")
	}
	if in, isInput := env.Event.(*events.MessageReceived); isInput && in.Digest != "" && in.Digest != digest {
		return api.LettaResponse{}, unprocessable("the key %q was already used for a send with other messages; use a new key (or otid) for a new message", key)
	}
	if s.runActive(runOf(ref.ID)) {
		if _, err := s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunResend, Input: events.MessageID(ref.ID)}, SendOptions{}); err != nil {
			return api.LettaResponse{}, err
		}
	}
	resp, err := s.reply(ctx, agentID, ref, opts.UseAssistantMessage)
	if err != nil {
		return resp, err
	}
	if opts.OnMessage != nil {
		for _, m := range resp.Messages {
			opts.OnMessage(m)
		}
	}
	return resp, nil
}

// runActive reports whether a run has yet to end (it waits, goes on, or
// failed before it began and waits to be run again).
func (s *Service) runActive(run string) bool {
	var yes bool
	s.read(func(st *projections.State) {
		if r := st.Runs[run]; r != nil {
			yes = r.Active()
		}
	})
	return yes
}

// requestRun queues a run with no client message for the agent's owner
// (RunRequested: /retry, /heartbeat, the resend of a failed send) and
// waits for it, reporting as a send does.
func (s *Service) requestRun(ctx context.Context, agentID string, req events.RunRequested, opts SendOptions) (api.LettaResponse, error) {
	// A fresh command, even under a client's key: each request is a run of
	// its own (a resend asked twice finds the send answered the second time).
	c := s.command(context.WithValue(ctx, keyCommand, ""), "request_run", agentID)
	req.ID = events.MessageID(c.newID(events.PrefixMessage))
	reports, stop, err := s.watchRun(string(req.ID))
	if err != nil {
		return api.LettaResponse{}, err
	}
	defer stop()
	err = s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		if _, err := s.lookupAgent(st, agentID); err != nil {
			return err
		}
		r := req
		d.add(c, agentAgg(agentID), &r)
		return nil
	})
	if err != nil {
		return api.LettaResponse{}, err
	}
	return s.awaitRun(ctx, reports, opts)
}

// RunBus carries a run's progress from the node that runs an agent to the
// caller waiting for it.
type RunBus interface {
	// PublishRun sends one report about the run answering inputID.
	PublishRun(inputID string, data []byte) error
	// WatchRun delivers every report about the run answering inputID to fn
	// until stop is called; it is subscribed when it returns.
	WatchRun(inputID string, fn func([]byte)) (stop func(), err error)
	// OfferTokens says, until stop is called, that the caller waiting for
	// the run answering inputID wants the reply's tokens as they come.
	OfferTokens(inputID string) (stop func(), err error)
	// WantsTokens reports whether a caller offers to take the tokens of the
	// run answering inputID.
	WantsTokens(inputID string) bool
}

// runReport is one report of a run: a message, the end, or a failure.
type runReport struct {
	Delta   *agents.Delta      `json:"delta,omitempty"`
	Message *api.LettaMessage  `json:"message,omitempty"`
	Done    *api.LettaResponse `json:"done,omitempty"`
	Error   *fault.Wire        `json:"error,omitempty"`
}

// assistantAsCall shows a send_message reply as the tool call it is.
func assistantAsCall(m api.LettaMessage) api.LettaMessage {
	args, _ := json.Marshal(map[string]string{"message": derefString(m.Content)})
	call := api.ToolCall{Name: agents.ToolSendMessage, Arguments: string(args)}
	m.MessageType, m.Content, m.ToolCall, m.ToolCalls = api.ToolCallMessageType, nil, &call, []api.ToolCall{call}
	return m
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Process answers the client inputs of an agent that no run has taken, up
// to the one at seq: the oldest send first, each send's inputs in a run of
// their own, after the run already going, if any. The node that owns the
// agent's partition calls it for each input it is delivered; reports go to
// the run bus (when there is one) under each taken input's id. It returns
// the response to the send of the input at seq (empty if another call ran
// it) or the failure of its run. An earlier send whose run failed in this
// process is left to its own retry (or to the next start), not run again
// for a later one.
func (s *Service) Process(ctx context.Context, agentID string, seq events.Seq, opts SendOptions) (api.LettaResponse, error) {
	// The input may reach this worker before the projection has it.
	if err := s.proj.WaitFor(ctx, seq); err != nil {
		return api.LettaResponse{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
	}
	for {
		take, err := s.nextSend(ctx, agentID, seq)
		if err != nil {
			return api.LettaResponse{}, err
		}
		if len(take) == 0 {
			return api.LettaResponse{Messages: []api.LettaMessage{}}, nil
		}
		own := take[len(take)-1].seq >= seq
		o := opts
		if !own { // an earlier send: its sender waits for it, not this caller, and set its limit
			o.OnMessage, o.OnDelta, o.MaxSteps = nil, nil, 0
		}
		resp, err := s.runSend(ctx, agentID, take, o)
		if errors.Is(err, errTakenElsewhere) {
			return api.LettaResponse{Messages: []api.LettaMessage{}}, nil // that run reports to its senders
		}
		if err != nil {
			s.failed.Store(take[0].id, true)
			s.dropRequests(ctx, agentID, take)
			s.failRun(ctx, agentID, runOf(string(take[0].id)), err)
		} else {
			s.failed.Delete(take[0].id)
		}
		if own || ctx.Err() != nil {
			return resp, err
		}
	}
}

// runSend runs the agent on one send's inputs until the chain ends.
func (s *Service) runSend(ctx context.Context, agentID string, take []taken, opts SendOptions) (api.LettaResponse, error) {
	defer s.cfg.Metrics.RunStarted()()
	report := func(r runReport) {
		if s.cfg.Runs == nil {
			return
		}
		b, _ := json.Marshal(r)
		for _, in := range take {
			s.cfg.Runs.PublishRun(string(in.id), b)
		}
	}
	fail := func(err error) (api.LettaResponse, error) {
		if !errors.Is(err, errTakenElsewhere) { // the run that took them reports
			w := fault.ToWire(err)
			report(runReport{Error: &w})
		}
		return api.LettaResponse{}, err
	}
	model, name, err := s.modelFor(agentID)
	if err != nil {
		return fail(err)
	}
	first, err := s.requestedInput(ctx, agentID, take)
	if err != nil {
		return fail(err)
	}
	if req := take[0].request; req != nil && req.Kind == events.RunResend {
		// The send it names is answered already: the request only leaves
		// the queue.
		if err := s.takeOnly(ctx, agentID, take); err != nil {
			return fail(err)
		}
		report(runReport{Done: &api.LettaResponse{StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
			Usage: api.Usage{MessageType: "usage_statistics", RunIDs: []string{}}}})
		return api.LettaResponse{}, nil
	}
	// A sender offers to take tokens under its send's last input, the one
	// it watches: one question to the bus per run.
	if opts.OnDelta != nil || (s.cfg.Runs != nil && s.cfg.Runs.WantsTokens(string(take[len(take)-1].id))) {
		// Someone wants the tokens as they come.
		localDelta := opts.OnDelta
		opts.OnDelta = func(d agents.Delta) {
			report(runReport{Delta: &d})
			if localDelta != nil && s.cfg.Runs == nil {
				localDelta(d)
			}
		}
	}
	local := opts.OnMessage
	opts.OnMessage = func(m api.LettaMessage) {
		report(runReport{Message: &m})
		if local != nil && s.cfg.Runs == nil {
			local(m)
		}
	}
	opts.UseAssistantMessage = true // reports carry the assistant form; callers convert
	opts.run = runOf(string(take[0].id))
	if take[0].maxSteps > 0 { // the sender's limit, whoever runs it
		opts.MaxSteps = take[0].maxSteps
	}
	resp, err := s.runFrom(ctx, agentID, model, name, first, take, opts)
	if err != nil {
		return fail(err)
	}
	report(runReport{Done: &api.LettaResponse{StopReason: resp.StopReason, Usage: resp.Usage}})
	return resp, nil
}

// requestedInput prepares the run of a request: /retry rewinds the context
// to the last user message; a heartbeat or a memory warning is rendered
// now, as the input of the run's first step. A send has none.
func (s *Service) requestedInput(ctx context.Context, agentID string, take []taken) (*chained, error) {
	req := take[0].request
	if req == nil {
		return nil, nil
	}
	var t chained
	switch req.Kind {
	case events.RunRetry:
		return nil, s.rewindow(ctx, agentID, func(ids []events.MessageID, msgs []*events.MessageAppended) ([]events.MessageID, *events.MessageAppended, error) {
			for i := len(msgs) - 1; i > 0; i-- {
				if msgs[i] != nil && msgs[i].Role == "user" {
					return ids[:i+1], nil, nil
				}
			}
			return nil, nil, invalid("there is no user message to retry")
		})
	case events.RunHeartbeat:
		t = chained{events.InputHeartbeat, cmp.Or(req.Reason, "Automated timer")}
	case events.RunMemoryWarning:
		t = chained{events.InputMemoryWarning, agents.MemoryWarning}
	case events.RunResend:
		return nil, nil
	default:
		return nil, unprocessable("unknown kind of run request %q", req.Kind)
	}
	return &t, nil
}

// takeOnly takes the requests among take out of the agent's queue without
// a step: a resend whose send was answered, or a request whose run failed
// (it is not run again).
func (s *Service) takeOnly(ctx context.Context, agentID string, take []taken) error {
	var ids []events.MessageID
	for _, in := range take {
		if in.request != nil {
			ids = append(ids, in.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	c := s.command(context.WithValue(ctx, keyCommand, ""), "take_requests", agentID)
	return s.exec(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		ids = slices.DeleteFunc(ids, func(id events.MessageID) bool {
			return !slices.ContainsFunc(a.Pending, func(r projections.Ref) bool { return r.ID == string(id) })
		})
		if len(ids) == 0 {
			return errNothing
		}
		d.add(c, agentAgg(agentID), &events.InputTaken{IDs: ids})
		return nil
	})
}

// dropRequests takes the requests of a failed run out of the queue, so that
// they are not run again at the next start; a failed send stays, for its
// client's retry. It is best effort, as failRun.
func (s *Service) dropRequests(ctx context.Context, agentID string, take []taken) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.takeOnly(ctx, agentID, take); err != nil {
		s.cfg.Logger.Warn("cannot take a failed run request out of the queue", "agent", agentID, "err", err)
	}
}

// runOf names the run that answers the send whose first input is inputID:
// every message the run stores carries it (MessageAppended.RunID).
func runOf(inputID string) string { return events.DerivedID("run", inputID) }

// taken is a client input a run takes into the context.
type taken struct {
	id       events.MessageID
	seq      events.Seq
	msg      agents.Message
	maxSteps int // on a send's first input: the most steps its client allows (0: the default)
	// request, when set, is a run asked for without a client message
	// (msg is empty): taken like an input, adding nothing to the context.
	request *events.RunRequested
}

// nextSend lists the inputs of the oldest send no run has taken, received
// up to seq: its first input and those sent in the same command; or a run
// request (RunRequested) on its own. A send whose run failed in this
// process is passed over, unless it holds seq or a request to resend it is
// reached; that request joins the send it names, or, when that send is no
// longer waiting, is returned alone.
func (s *Service) nextSend(ctx context.Context, agentID string, seq events.Seq) ([]taken, error) {
	var (
		pending []projections.Ref
		loop    string
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			pending = append(pending, a.Pending...)
			loop = loopOf(a.AgentType)
		}
	})
	var sends [][]taken // the sends passed over, for a resend to find
	for i := 0; i < len(pending) && pending[i].Seq <= seq; {
		var (
			send    []taken
			command string
		)
		j := i
		for ; j < len(pending); j++ { // the inputs of one send are stored together
			env, err := s.load(ctx, pending[j])
			if err != nil {
				return nil, fault.Wrap(fault.Unavailable, err, "cannot read the log")
			}
			if req, ok := env.Event.(*events.RunRequested); ok {
				if j == i {
					send = append(send, taken{id: req.ID, seq: pending[j].Seq, request: req})
					j++
				}
				break
			}
			if j > i && env.Command != command {
				break
			}
			command = env.Command
			if m, ok := events.AsMessage(env.Event); ok {
				in := taken{id: m.ID, seq: pending[j].Seq, msg: agents.Message{Role: m.Role, Content: modelText(m, env.Time, loop), Name: m.Name}}
				if r, ok := env.Event.(*events.MessageReceived); ok {
					in.maxSteps = r.MaxSteps
				}
				send = append(send, in)
			}
		}
		i = j
		if len(send) == 0 {
			continue
		}
		if req := send[0].request; req != nil && req.Kind == events.RunResend {
			for _, old := range sends {
				if old[0].id == req.Input {
					s.failed.Delete(old[0].id)
					return append(old, send[0]), nil
				}
			}
			return send, nil
		}
		if _, failed := s.failed.Load(send[0].id); failed && send[len(send)-1].seq < seq {
			sends = append(sends, send)
			continue
		}
		return send, nil
	}
	return nil, nil
}

// reply rebuilds, from the log, the response to the send whose first input
// is at ref: the messages its run stored, in order.
func (s *Service) reply(ctx context.Context, agentID string, ref projections.Ref, useAssistant bool) (api.LettaResponse, error) {
	run := runOf(ref.ID)
	resp := api.LettaResponse{
		Messages:   []api.LettaMessage{},
		StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{run}},
	}
	err := s.eachRunMessage(ctx, agentID, ref, func(env events.Envelope, m *events.MessageAppended) {
		if m.Role == "assistant" {
			resp.Usage.StepCount++
			if m.StopReason != "" {
				resp.StopReason.StopReason = m.StopReason
			}
			if u := m.Usage; u != nil {
				resp.Usage.PromptTokens += u.PromptTokens
				resp.Usage.CompletionTokens += u.CompletionTokens
				resp.Usage.TotalTokens += u.TotalTokens
			}
		}
		if m.Role == "user" || m.Role == "system" {
			return // a heartbeat or a warning that chained the run
		}
		for _, v := range messageViews(env) {
			if !useAssistant && v.MessageType == api.AssistantMessageType {
				v = asToolCall(m, v)
			}
			resp.Messages = append(resp.Messages, v)
		}
	})
	if err != nil {
		return api.LettaResponse{}, err
	}
	if s.cancelled(run) {
		resp.StopReason.StopReason = "cancelled"
	}
	return resp, nil
}

// eachRunMessage hands fn, in log order, each message the run answering the
// input at ref stored (not the inputs themselves).
func (s *Service) eachRunMessage(ctx context.Context, agentID string, ref projections.Ref, fn func(events.Envelope, *events.MessageAppended)) error {
	var refs []projections.Ref
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			i, _ := slices.BinarySearchFunc(a.Messages, ref.Seq, func(r projections.Ref, seq events.Seq) int { return cmp.Compare(r.Seq, seq) })
			refs = append(refs, a.Messages[i:]...)
		}
	})
	run := runOf(ref.ID)
	seen := false
	for _, r := range refs {
		if r.Input {
			continue
		}
		env, err := s.load(ctx, r)
		if err != nil {
			return fault.Wrap(fault.Unavailable, err, "cannot read the log")
		}
		m, ok := events.AsMessage(env.Event)
		if !ok || m.RunID != run {
			if ok && seen && m.RunID != "" {
				break // the next run: runs of one agent do not overlap
			}
			continue
		}
		seen = true
		fn(env, m)
	}
	return nil
}

// modelFor finds the model an agent runs on, or says what to configure.
func (s *Service) modelFor(agentID string) (agents.Model, string, error) {
	var cfg *api.LLMConfig
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			cfg = llmConfig(a.LLMConfig)
		}
	})
	if cfg == nil {
		return nil, "", invalid("agent %s has no model: set one with PATCH /v1/agents/%s {\"model\": \"provider/name\"}, and start the server with a provider configured (OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY)", agentID, agentID)
	}
	handle := cfg.ModelEndpointType + "/" + cfg.Model
	if cfg.Handle != nil && *cfg.Handle != "" {
		handle = *cfg.Handle
	}
	if s.cfg.Providers == nil {
		return nil, "", invalid("no model provider is configured on this server: start it with OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY set (agent %s uses %s)", agentID, handle)
	}
	m, name, err := s.cfg.Providers.Lookup(handle)
	if err != nil {
		return nil, "", invalid("agent %s uses model %s, which this server cannot run: %v", agentID, handle, err)
	}
	return m, name, nil
}

// appendInputs stores the client's messages before anything runs, the
// first with the send's key and digest when it has a key. It returns the
// sequence of the last one, and whether this call stored them (false: a
// send with the same key was stored already).
func (s *Service) appendInputs(ctx context.Context, c *command, agentID string, inputs []Input, ids []string, key, digest string, opts SendOptions) (events.Seq, bool, error) {
	appended, err := s.execAppend(ctx, c, agentAgg(agentID), func(st *projections.State, d *decision) error {
		a, err := s.lookupAgent(st, agentID)
		if err != nil {
			return err
		}
		if _, dup := a.Keys[key]; key != "" && dup {
			return errNothing
		}
		d.expectAt(st, agentAgg(agentID))
		for i, in := range inputs {
			role, kind := "user", events.InputUser
			if in.Role == "system" {
				role, kind = "system", events.InputSystemAlert
			}
			ev := &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(ids[i]), Role: role, Kind: kind, Text: in.Text, Name: in.Name, Otid: in.Otid}}
			if i == 0 {
				ev.Key, ev.Digest, ev.MaxSteps = key, digest, opts.MaxSteps
				ev.ConversationID = events.ConversationID(opts.ConversationID)
			}
			ev.RunID = runOf(ids[0]) // the run that will answer it (projections.Run)
			d.add(c, agentAgg(agentID), ev)
		}
		return nil
	})
	if err != nil || !appended {
		return 0, false, err
	}
	var seq events.Seq
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			for i := len(a.Messages) - 1; i >= 0; i-- {
				if a.Messages[i].ID == ids[len(ids)-1] {
					seq = a.Messages[i].Seq
					break
				}
			}
		}
	})
	return seq, true, nil
}

// stepContext is what a step reads, loaded from the projection and the log.
type stepContext struct {
	state   agents.State
	version events.Seq
	blocks  map[string]projections.Version // block id → version
	msgs    int                            // messages in context, system included
	warned  bool                           // the context already holds a memory-pressure warning
}

func (s *Service) loadContext(ctx context.Context, agentID string) (stepContext, error) {
	var (
		sc        stepContext
		refs      []projections.Ref
		err       error
		prompt    string
		recall    int
		archival  int
		blocks    []agents.Block
		toolDefs  []agents.Tool
		limits    = map[string]int{}
		llm       *api.LLMConfig
		updatedAt time.Time
		loop      string
		rules     json.RawMessage
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			err = s.agentNotFound(agentID)
			return
		}
		sc.version = a.Version.Seq
		sc.blocks = map[string]projections.Version{}
		prompt, recall, archival, updatedAt = a.System, len(a.Messages), archivalCount(st, a), a.UpdatedAt
		llm = llmConfig(a.LLMConfig)
		loop, rules = loopOf(a.AgentType), a.ToolRules
		for _, id := range a.BlockIDs {
			if b := st.Blocks[id]; b != nil {
				blocks = append(blocks, agents.Block{ID: string(b.ID), Label: b.Label, Value: b.Value, Limit: b.Limit})
				sc.blocks[string(b.ID)] = b.Version
			}
		}
		for _, id := range a.ToolIDs {
			t := st.Tools[id]
			if t == nil {
				continue
			}
			var schema struct {
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
			}
			json.Unmarshal(t.JSONSchema, &schema)
			if len(schema.Parameters) == 0 {
				schema.Parameters = json.RawMessage(`{"type":"object","properties":{},"required":[]}`)
			}
			toolDefs = append(toolDefs, agents.Tool{Name: t.Name, Description: schema.Description, Parameters: schema.Parameters})
			limits[t.Name] = t.ReturnCharLimit
		}
		refs = windowRefs(a)
	})
	if err != nil {
		return sc, err
	}
	var msgs []agents.Message
	for i, r := range refs {
		env, err := s.load(ctx, r)
		if err != nil {
			return sc, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", r.ID)
		}
		e, ok := events.AsMessage(env.Event)
		if !ok || (i == 0 && e.Role == "system") {
			continue // the stored system message is compiled afresh below
		}
		if kind, words, _ := e.Words(); kind == events.InputMemoryWarning || (kind == events.InputSystemAlert && words == agents.MemoryWarning) {
			sc.warned = true // the second: as logs before kinds stored it
		}
		m := agents.Message{Role: e.Role, Content: modelText(e, env.Time, loop), Name: e.Name, ToolCallID: e.ToolCallID}
		for _, tc := range e.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, agents.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		msgs = append(msgs, m)
	}
	sc.msgs = len(refs)
	sc.state = agents.State{
		System:     agents.CompileSystem(prompt, blocks, recall, archival, updatedAt),
		Blocks:     blocks,
		Context:    msgs,
		Tools:      toolDefs,
		ToolLimits: limits,
		Loop:       loop,
	}
	if llm != nil {
		sc.state.ContextWindow = llm.ContextWindow
		sc.state.Temperature = llm.Temperature
		sc.state.InnerThoughts = llm.PutInnerThoughtsInKwargs == nil || *llm.PutInnerThoughtsInKwargs
		if llm.Model == "gpt-4" && llm.PutInnerThoughtsInKwargs == nil {
			sc.state.InnerThoughts = false
		}
		// As Letta: parallel calls only when the config allows them and no
		// tool rule needs the calls one at a time.
		sc.state.ParallelToolCalls = llm.ParallelToolCalls != nil && *llm.ParallelToolCalls && noRules(rules)
	}
	if loop == agents.LoopV1 {
		sc.state.InnerThoughts = false
	}
	return sc, nil
}

// chained is an input the runtime gives the agent itself: its kind
// (events.InputHeartbeat, ...) and its words. The step that takes it renders
// it with the step's time and stores it so.
type chained struct{ kind, words string }

// runFrom steps the agent until the chain ends. The first step takes the
// client inputs in take into the context, or a chained input (a heartbeat,
// a warning) given as first.
func (s *Service) runFrom(ctx context.Context, agentID string, model agents.Model, name string, first *chained, take []taken, opts SendOptions) (api.LettaResponse, error) {
	maxSteps := opts.MaxSteps
	if maxSteps <= 0 {
		maxSteps = s.cfg.MaxSteps
	}
	resp := api.LettaResponse{
		Messages:   []api.LettaMessage{},
		StopReason: api.StopReason{MessageType: "stop_reason", StopReason: "end_turn"},
		Usage:      api.Usage{MessageType: "usage_statistics", RunIDs: []string{}},
	}
	if opts.run != "" {
		resp.Usage.RunIDs = []string{opts.run}
	}
	next := first // the chained input of the next step
	for step := 0; ; step++ {
		if opts.run != "" && s.cancelled(opts.run) {
			resp.StopReason.StopReason = "cancelled" // at a step boundary, as RunCancelled says
			return resp, nil
		}
		if step >= maxSteps {
			resp.StopReason.StopReason = "max_steps"
			return resp, nil
		}
		out, err := s.step(ctx, agentID, model, name, next, take, step+1 >= maxSteps, opts)
		take = nil
		if err != nil {
			return resp, err
		}
		resp.Usage.StepCount++
		resp.Usage.PromptTokens += out.usage.PromptTokens
		resp.Usage.CompletionTokens += out.usage.CompletionTokens
		resp.Usage.TotalTokens += out.usage.TotalTokens
		for _, m := range out.messages {
			resp.Messages = append(resp.Messages, m)
			if opts.OnMessage != nil {
				opts.OnMessage(m)
			}
		}
		if out.loop == agents.LoopV1 {
			// The modern loop goes on after every reply with a tool call,
			// with nothing added to the context, and ends at a reply without.
			if !out.Continue {
				return resp, nil
			}
			next = nil
			continue
		}
		switch {
		case out.Warning:
			next = &chained{events.InputMemoryWarning, agents.MemoryWarning}
		case out.Failed:
			next = &chained{events.InputHeartbeat, agents.HeartbeatFailed}
		case out.Heartbeat:
			next = &chained{events.InputHeartbeat, agents.HeartbeatRequested}
		default:
			return resp, nil
		}
	}
}

type stepResult struct {
	agents.Output
	messages []api.LettaMessage
	usage    agents.Usage
	loop     string // the agent's loop (agents.LoopMemGPT, agents.LoopV1)
}

// step runs one model call and commits its events atomically. A conflict
// with a concurrent write reloads and runs the step again.
// last says that the run may take no further step.
func (s *Service) step(ctx context.Context, agentID string, model agents.Model, name string, input *chained, take []taken, last bool, opts SendOptions) (stepResult, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && len(take) > 0 && !s.stillPending(agentID, take[0].id) {
			// Another run took these inputs while this step was deciding (two
			// nodes during a partition's handover): the step is theirs.
			return stepResult{}, errTakenElsewhere
		}
		sc, err := s.loadContext(ctx, agentID)
		if err != nil {
			return stepResult{}, err
		}
		now := s.cfg.Clock().UTC()
		for _, in := range take {
			if in.request == nil {
				sc.state.Context = append(sc.state.Context, in.msg)
			}
		}
		if input != nil {
			sc.state.Context = append(sc.state.Context, agents.Message{Role: "user", Content: agents.Render(input.kind, input.words, now)})
		}
		sc.state.Model = name
		sc.state.Stream = opts.OnDelta
		if w := sc.state.ContextWindow; w > 0 && attempt < 3 && s.contextTokens(sc.state) > w {
			// The window is already full: summarize before asking the model.
			if err := s.summarize(ctx, agentID, model, name); err != nil && !fault.Is(err, fault.Conflict) {
				return stepResult{}, err
			}
			continue // a conflict: the agent changed; decide again from its new state
		}
		out, err := agents.Step(ctx, model, sc.state, env{s: s, agentID: agentID, now: now})
		if err == nil {
			s.cfg.Metrics.ModelCall(name, out.ModelTime, out.Usage.PromptTokens, out.Usage.CompletionTokens)
			if len(out.Assistant.ToolCalls) > 0 {
				s.cfg.Metrics.Tool(out.Failed, out.ToolTime)
			}
		} else if !errors.Is(err, agents.ErrContextOverflow) && ctx.Err() == nil {
			s.cfg.Metrics.ModelError(name)
		}
		if errors.Is(err, agents.ErrContextOverflow) && attempt < 3 {
			if serr := s.summarize(ctx, agentID, model, name); serr != nil && !fault.Is(serr, fault.Conflict) {
				return stepResult{}, serr
			}
			continue // the step again, on the shorter context
		}
		if errors.Is(err, agents.ErrContextOverflow) {
			return stepResult{}, fault.Wrap(fault.Invalid, err, "the conversation no longer fits the model's context window even after summarizing")
		}
		if err != nil {
			if ctx.Err() != nil {
				return stepResult{}, fault.Wrap(fault.Unavailable, err, "request cancelled")
			}
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the model provider failed: %v; nothing was stored for this step, send again to retry", err)
		}
		c := s.command(ctx, "step", agentID)
		c.id = events.NewID("step", now) // each step is its own command
		c.derived = false
		c.now = now // the time its chained input was rendered with
		var d decision
		agg := agentAgg(agentID)
		d.expect = append(d.expect, events.Expectation{Aggregate: agg, Version: sc.version})
		if len(take) > 0 {
			ids := make([]events.MessageID, len(take))
			for i, in := range take {
				ids[i] = in.id
			}
			d.add(c, agg, &events.InputTaken{IDs: ids})
		}
		var stored []*events.MessageAppended
		add := func(m *events.MessageAppended) {
			m.ID = events.MessageID(c.newID(events.PrefixMessage))
			m.RunID = opts.run
			stored = append(stored, m)
			d.add(c, agg, m)
		}
		if input != nil {
			add(&events.MessageAppended{Role: "user", Kind: input.kind, Text: input.words})
		}
		am := &events.MessageAppended{Role: "assistant", Text: out.Assistant.Content, Reasoning: out.Reasoning, Model: name,
			Usage: &events.Usage{PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens, TotalTokens: out.Usage.TotalTokens}}
		chains := (out.Warning && !sc.warned) || out.Failed || out.Heartbeat
		if sc.state.Loop == agents.LoopV1 {
			am.Text, am.Reply = "", out.Reply // the content is the answer
			chains = out.Continue
		}
		if opts.run != "" && !chains {
			am.StopReason = "end_turn" // the run ends here (runFrom decides the same)
		} else if opts.run != "" && last {
			am.StopReason = "max_steps"
		}
		for _, tc := range out.Assistant.ToolCalls {
			am.ToolCalls = append(am.ToolCalls, events.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		add(am)
		if out.Tool != nil {
			fn := ""
			if len(am.ToolCalls) > 0 {
				fn = am.ToolCalls[0].Name
			}
			add(&events.MessageAppended{Role: "tool", Text: out.Tool.Content, Name: fn, ToolCallID: out.Tool.ToolCallID, Stdout: out.Stdout, Stderr: out.Stderr})
		}
		for i, r := range out.Returns { // the modern loop's: one a call
			ret := &events.MessageAppended{Role: "tool", Text: r.Content, Name: r.Name, ToolCallID: r.ToolCallID}
			if i == len(out.Returns)-1 {
				ret.Stdout, ret.Stderr = out.Stdout, out.Stderr
			}
			add(ret)
		}
		for _, b := range out.Edits {
			v := b.Value
			d.expect = append(d.expect, events.Expectation{Aggregate: blockAgg(b.ID), Version: sc.blocks[b.ID].Seq})
			d.add(c, blockAgg(b.ID), &events.BlockUpdated{Value: &v})
		}
		var embedding json.RawMessage
		s.read(func(st *projections.State) {
			if a := st.Agents[events.AgentID(agentID)]; a != nil {
				embedding = a.EmbeddingConfig
			}
		})
		vecs, err := s.embed(ctx, embedding, out.Inserts)
		if err != nil {
			// The passage is kept, found by its words until re-embedded.
			s.cfg.Logger.Warn("embedding an archival insert failed; stored without a vector", "agent", agentID, "err", err)
			vecs = nil
		}
		for i, text := range out.Inserts {
			p := &events.PassageInserted{ID: events.PassageID(c.newID(events.PrefixPassage)), AgentID: events.AgentID(agentID), Text: text, EmbeddingConfig: embedding}
			if vecs != nil {
				p.Embedding = vecs[i]
			}
			d.add(c, agg, p)
		}
		if err := checkSize(d.evs); err != nil {
			return stepResult{}, err
		}
		if s.cfg.BeforeStepCommit != nil {
			s.cfg.BeforeStepCommit()
		}
		seq, err := s.appendStanding(ctx, agentID, events.Batch{Command: c.id, Expect: d.expect, Events: d.evs}, sc.version)
		var ce *events.ConflictError
		if errors.As(err, &ce) && attempt < 3 {
			s.conflicts.Add(1)
			if err := s.proj.WaitFor(ctx, ce.Latest); err != nil {
				return stepResult{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable")
			}
			continue
		}
		if err != nil {
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the event log is unavailable; the step was not stored")
		}
		if err := s.proj.WaitFor(ctx, seq); err != nil {
			return stepResult{}, fault.Wrap(fault.Unavailable, err, "the step was stored but is not yet visible")
		}
		s.cfg.Metrics.Step(name)
		res := stepResult{Output: out, usage: out.Usage, loop: sc.state.Loop}
		res.Warning = out.Warning && !sc.warned // once per summarization period
		for _, m := range stored {
			if m.Role == "user" {
				continue // inputs are not echoed
			}
			env := events.Envelope{Time: c.now, Event: m}
			for _, v := range messageViews(env) {
				if !opts.UseAssistantMessage && v.MessageType == api.AssistantMessageType {
					v = asToolCall(m, v)
				}
				res.messages = append(res.messages, v)
			}
		}
		return res, nil
	}
}

// appendStanding appends a batch decided from the agent as it was at
// version seen, whose first expectation is on the agent. New client inputs
// queue on the agent meanwhile; they change nothing the decision read, so
// it stands: on a conflict they alone caused, the batch is appended again at
// the agent's new version. Any other conflict is returned.
func (s *Service) appendStanding(ctx context.Context, agentID string, b events.Batch, seen events.Seq) (events.Seq, error) {
	agg := agentAgg(agentID)
	seq, err := s.log.Append(ctx, b)
	for tries := 0; tries < 10 && err != nil; tries++ {
		var ce *events.ConflictError
		if !errors.As(err, &ce) || ce.Aggregate != agg {
			break
		}
		if werr := s.proj.WaitFor(ctx, ce.Latest); werr != nil {
			break
		}
		var state, now events.Seq
		s.read(func(st *projections.State) {
			if a := st.Agents[events.AgentID(agentID)]; a != nil {
				state, now = a.StateSeq, a.Version.Seq
			}
		})
		if state > seen || now == 0 {
			break // something the decision depends on changed
		}
		b.Expect[0].Version = now
		seq, err = s.log.Append(ctx, b)
	}
	return seq, err
}

// asToolCall shows a send_message call as the tool call it is.
func asToolCall(m *events.MessageAppended, v api.LettaMessage) api.LettaMessage {
	for _, tc := range m.ToolCalls {
		if tc.Name != agents.ToolSendMessage {
			continue // a modern agent's answer (Reply) is no call
		}
		call := api.ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
		v.MessageType, v.Content, v.ToolCall, v.ToolCalls = api.ToolCallMessageType, nil, &call, []api.ToolCall{call}
	}
	return v
}

// env gives a step read access to the agent's memories.
type env struct {
	s       *Service
	agentID string
	now     time.Time
}

func (e env) Now() time.Time { return e.now }

// contextTokens estimates the tokens a step's request takes: the system
// message, every message, and the tool schemas.
func (s *Service) contextTokens(st agents.State) int {
	n := s.tokensOf(agents.Message{Content: st.System})
	for _, m := range st.Context {
		n += s.tokensOf(m)
	}
	for _, t := range st.Tools {
		n += s.tokensOf(agents.Message{Content: t.Name + t.Description + string(t.Parameters)})
	}
	return n
}

// Untaken maps each agent with client input no run has taken to the
// sequence of its newest such input: what a crash left unanswered (or a
// run that failed).
func (s *Service) Untaken() map[string]events.Seq {
	out := map[string]events.Seq{}
	s.read(func(st *projections.State) {
		for id, a := range st.Agents {
			if n := len(a.Pending); n > 0 {
				out[string(id)] = a.Pending[n-1].Seq
			}
		}
	})
	return out
}

// errTakenElsewhere ends a run whose inputs another run took first.
var errTakenElsewhere = errors.New("the inputs were taken by another run")

// stillPending reports whether the input id still waits for a run.
func (s *Service) stillPending(agentID string, id events.MessageID) bool {
	var yes bool
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			yes = slices.ContainsFunc(a.Pending, func(r projections.Ref) bool { return r.ID == string(id) })
		}
	})
	return yes
}

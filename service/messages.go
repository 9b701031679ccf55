package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	Role string // user or system; approval for an answer to calls awaiting approval
	Text string
	Name string
	Otid string
	// Approvals, on an approval, answer the tool calls that wait for the
	// client.
	Approvals []events.Approval
}

// SendOptions tunes one send.
type SendOptions struct {
	MaxSteps            int                    // 0: the server's default
	UseAssistantMessage bool                   // show send_message as assistant_message
	OnMessage           func(api.LettaMessage) // called for each message as its step commits
	OnDelta             func(agents.Delta)     // token deltas while the model generates
	// OnRun, when set, is told the id of the run that answers the send
	// once it is known: before the run's first message or token.
	OnRun func(runID string)
	// Key makes the send idempotent: a send with a key already used on this
	// agent runs nothing and answers with what the first one produced. The
	// REST API takes it from Idempotency-Key or the message's otid.
	Key string
	// ConversationID names the conversation the send goes to ("": the
	// agent's default one). Its run reads and writes that conversation's
	// context window (see conversations.go).
	ConversationID string
	// OverrideModel is a model handle the send's run uses instead of the
	// conversation's or the agent's model (Letta's override_model); "":
	// none.
	OverrideModel string
	// ClientTools are tools the client runs itself, offered to the model
	// for this send's run (a modern agent's); a call to one stops the run
	// until the client posts its return.
	ClientTools []api.ClientTool
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
		if m.Type != nil && *m.Type == "approval" || m.Type == nil && (m.Approve != nil || m.ApprovalRequestID != nil || len(m.Approvals) > 0) {
			in, err := approvalInput(i, m)
			if err != nil {
				return nil, err
			}
			out = append(out, in)
			continue
		}
		if m.Type != nil && *m.Type != "message" {
			return nil, unprocessable("messages[%d].type must be message or approval, not %q", i, *m.Type)
		}
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

// approvalInput reads an approval message: its answers to the calls
// awaiting approval, in Letta's current form (approvals) or its older one
// (approve and reason for every call of the request).
func approvalInput(i int, m api.MessageCreate) (Input, error) {
	in := Input{Role: "approval"}
	if m.Otid != nil {
		if len(*m.Otid) > MaxOtidLen {
			return in, unprocessable("messages[%d].otid is %d bytes long; the limit is %d", i, len(*m.Otid), MaxOtidLen)
		}
		in.Otid = *m.Otid
	}
	for j, a := range m.Approvals {
		if a.ToolCallID == "" {
			return in, unprocessable("messages[%d].approvals[%d] has no tool_call_id", i, j)
		}
		ap := events.Approval{ToolCallID: a.ToolCallID, Reason: derefString(a.Reason)}
		switch a.Type {
		case "tool":
			if a.ToolReturn == nil {
				return in, unprocessable("messages[%d].approvals[%d] is a tool return without tool_return", i, j)
			}
			if err := checkText("tool return", *a.ToolReturn, MaxTextLen); err != nil {
				return in, err
			}
			ap.Return, ap.Status = a.ToolReturn, "success"
			if a.Status != nil {
				if *a.Status != "success" && *a.Status != "error" {
					return in, unprocessable("messages[%d].approvals[%d].status must be success or error, not %q", i, j, *a.Status)
				}
				ap.Status = *a.Status
			}
		case "", "approval":
			if a.Approve == nil {
				return in, unprocessable("messages[%d].approvals[%d] needs approve (true or false)", i, j)
			}
			ap.Approve = a.Approve
		default:
			return in, unprocessable("messages[%d].approvals[%d].type must be approval or tool, not %q", i, j, a.Type)
		}
		in.Approvals = append(in.Approvals, ap)
	}
	if len(in.Approvals) == 0 {
		if m.Approve == nil {
			return in, unprocessable("messages[%d] is an approval without approvals (or approve)", i)
		}
		// The older form: one answer for every call awaiting approval.
		in.Approvals = []events.Approval{{Approve: m.Approve, Reason: derefString(m.Reason)}}
	}
	return in, nil
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
	agentType, err := s.agentType(agentID)
	if err != nil {
		return api.LettaResponse{}, err
	}
	if loopOf(agentType) == agents.LoopV1 {
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
	if inputs, err = s.settleApprovals(ctx, agentID, inputs, opts); err != nil {
		return api.LettaResponse{}, err
	}
	if err := s.checkOverride(opts); err != nil {
		return api.LettaResponse{}, err
	}
	if _, _, err := s.modelFor(agentID, Scope{Conversation: events.ConversationID(opts.ConversationID), Model: opts.OverrideModel}); err != nil {
		return api.LettaResponse{}, err
	}
	c := s.command(ctx, "send_message", agentID)
	// The input is acknowledged once stored: the caller hears nothing
	// before the run reports, and the run reports nothing before its input
	// is on disk (runner), which the step's own fsync sees to.
	c.ahead = true
	ids := make([]string, len(inputs))
	for i := range inputs {
		ids[i] = c.newID(events.PrefixMessage)
	}
	if opts.OnRun != nil {
		opts.OnRun(RunOf(ids[0])) // a send's inputs are one run, named by its first
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
	input, appended, err := s.appendInputs(ctx, c, agentID, inputs, ids, opts.Key, digest, opts)
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
	return s.awaitRun(ctx, reports, input, opts)
}

// agentType looks the agent up as GetAgent does (the same errors) and
// returns its type alone: a send needs no view of the agent.
func (s *Service) agentType(agentID string) (string, error) {
	var (
		t   string
		err error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			t = a.AgentType
		}
	})
	return t, err
}

// watchRun subscribes to the reports of the run that takes the input
// inputID. stop ends the subscription; reports after it are dropped.
func (s *Service) watchRun(inputID string) (*runInbox, func(), error) {
	if s.cfg.Runs == nil {
		return nil, nil, fault.E(fault.Unavailable, "this service runs no agents (it has no run bus)")
	}
	in := &runInbox{ready: make(chan struct{}, 1)}
	unsub, err := s.cfg.Runs.WatchRun(inputID, in.put)
	if err != nil {
		return nil, nil, fault.Wrap(fault.Unavailable, err, "cannot watch the run")
	}
	var once sync.Once
	return in, func() { once.Do(func() { unsub(); in.close() }) }, nil
}

// acceptedWait bounds how long a send whose caller stopped waiting still
// waits for its input to be on disk, to say whether it was accepted.
const acceptedWait = 10 * time.Second

// runInbox holds a run's reports until the caller takes them. Putting never
// blocks (the run bus may call it on the run's own goroutine, which must
// not wait for a slow reader), so it is not bounded: a run reports its
// messages and its tokens, which the caller takes as fast as it can.
type runInbox struct {
	ready chan struct{} // holds a token while the queue is not empty

	mu     sync.Mutex // guards what follows
	queue  []RunReport
	closed bool
}

func (in *runInbox) put(r RunReport) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.queue = append(in.queue, r)
	in.mu.Unlock()
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// take returns the reports put since the last take.
func (in *runInbox) take() []RunReport {
	in.mu.Lock()
	defer in.mu.Unlock()
	q := in.queue
	in.queue = nil
	return q
}

func (in *runInbox) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed, in.queue = true, nil
}

// awaitRun collects a run's reports into its response until it ends,
// fails, or ctx ends (the run goes on without this caller). input is the
// send's last input when it was appended ahead of the disk (0: it is on
// disk, or this call appended none).
func (s *Service) awaitRun(ctx context.Context, reports *runInbox, input events.Seq, opts SendOptions) (api.LettaResponse, error) {
	resp := api.LettaResponse{Messages: []api.LettaMessage{}}
	for {
		select {
		case <-ctx.Done():
			// Say the message was accepted only once it is on disk.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), acceptedWait)
			err := s.proj.Settle(sctx, input)
			cancel()
			if err != nil {
				return resp, fault.Wrap(fault.Unavailable, err, "stopped waiting for the agent before the message was on disk; it may not have been stored: send it again with the same idempotency key or otid")
			}
			return resp, fault.Wrap(fault.Unavailable, ctx.Err(), "stopped waiting for the agent; the message was accepted and will be answered")
		case <-reports.ready:
		}
		for _, r := range reports.take() {
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
				// Read-your-writes here too when another node ran it; a
				// caller gone meanwhile has nobody to answer.
				_ = s.proj.WaitFor(ctx, r.Seq)
				return resp, nil
			}
		}
	}
}

// KeepAlive is the user message a repeated answer to calls already resolved
// becomes when it brings no message of its own, as Letta's: the agent goes
// on from where it stopped.
const KeepAlive = "<system-alert>Automated keep-alive ping. Ignore this message and continue from where you stopped.</system-alert>"

// settleApprovals checks a send against the approvals of the conversation
// it goes to, as Letta does, and returns the inputs to store. It refuses a message while tool
// calls wait for the client (answer them first, in the same send or
// before: 409), an answer that is not the send's first input, and an
// answer whose tool call ids are not those of the calls that wait. An
// answer when none waits is a repeat if the calls it names were answered
// lately (their returns are among the last 10 messages in context): it
// stores the messages that follow it, or else a keep-alive message, so a
// client that retries an answer whose reply it lost goes on; otherwise it
// is refused.
func (s *Service) settleApprovals(ctx context.Context, agentID string, inputs []Input, opts SendOptions) ([]Input, error) {
	for _, t := range opts.ClientTools {
		if err := checkName("client tool", t.Name); err != nil {
			return nil, err
		}
	}
	for i, in := range inputs {
		if in.Role == "approval" && i > 0 {
			return nil, unprocessable("messages[%d]: an approval must be the first message of a send", i)
		}
	}
	answers := len(inputs) > 0 && inputs[0].Role == "approval"
	var (
		awaiting events.MessageID
		refs     []projections.Ref // the awaiting message's, or the last ones in context
	)
	s.read(func(st *projections.State) {
		a := st.Agents[events.AgentID(agentID)]
		if a == nil {
			return
		}
		// Calls wait in one conversation (the agent's default one, or
		// another) and block only sends to it, as in Letta 0.16.8, where
		// the pending approval is the last message of the conversation's
		// own context.
		window := a.MessageIDs
		awaiting = a.Awaiting
		if c := st.Conversations[events.ConversationID(opts.ConversationID)]; opts.ConversationID != "" && c != nil && c.AgentID == a.ID {
			awaiting, window = c.Awaiting, c.MessageIDs
		}
		if !answers {
			return // only an answer reads messages
		}
		want := map[string]bool{string(awaiting): true}
		if awaiting == "" {
			want = map[string]bool{}
			for _, id := range window[max(0, len(window)-10):] {
				want[string(id)] = true
			}
		}
		for i := len(a.Messages) - 1; i >= 0 && len(refs) < len(want); i-- { // the newest are last
			if want[a.Messages[i].ID] {
				refs = append(refs, a.Messages[i])
			}
		}
	})
	switch {
	case !answers && awaiting != "":
		return nil, pendingApproval(agentID, awaiting)
	case !answers:
		return inputs, nil
	}
	var named []string // the calls the answer names; none: it answers all (Letta's older form)
	for _, a := range inputs[0].Approvals {
		if a.ToolCallID != "" {
			named = append(named, a.ToolCallID)
		}
	}
	// The tool call ids the messages read hold: the awaiting calls, or the
	// returns stored lately.
	var held []string
	for _, ref := range refs {
		env, err := s.load(ctx, ref)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "cannot read message %s from the log", ref.ID)
		}
		e, ok := events.AsMessage(env.Event)
		switch {
		case !ok:
		case awaiting != "":
			for _, tc := range e.ToolCalls {
				held = append(held, tc.ID)
			}
		case e.Role == "tool" && e.ToolCallID != "":
			held = append(held, e.ToolCallID)
		}
	}
	if awaiting == "" {
		if len(named) == 0 || slices.ContainsFunc(named, func(id string) bool { return !slices.Contains(held, id) }) {
			return nil, invalid("no tool call of agent %s waits for approval; send a regular message to go on", agentID)
		}
		if follow := inputs[1:]; len(follow) > 0 {
			return follow, nil // answered already: the messages after it go on
		}
		return []Input{{Role: "user", Text: KeepAlive, Otid: inputs[0].Otid}}, nil
	}
	if len(named) == 0 || sameSet(named, held) {
		return inputs, nil
	}
	if len(held) == 1 && len(named) == 1 && named[0] == string(awaiting) {
		// Letta's older clients named the request's message, not its call.
		out := slices.Clone(inputs)
		out[0].Approvals = slices.Clone(out[0].Approvals)
		for i := range out[0].Approvals {
			out[0].Approvals[i].ToolCallID = held[0]
		}
		return out, nil
	}
	return nil, invalid("Invalid tool call IDs. Expected '%s', but received '%s'.", pyStrings(held), pyStrings(named))
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	return !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) }) &&
		!slices.ContainsFunc(b, func(x string) bool { return !slices.Contains(a, x) })
}

// pyStrings renders strings as a Python list does, as Letta's messages show them.
func pyStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// pendingApproval is the conflict of a message sent while tool calls wait
// for the client: the text says what to do; the detail object is Letta's
// (code PENDING_APPROVAL, its message, the id of the message that asks),
// which its clients read to find the request.
func pendingApproval(agentID string, request events.MessageID) error {
	return &fault.Error{
		Kind: fault.Conflict,
		Msg:  fmt.Sprintf("agent %s has tool calls waiting for approval (message %s): answer them first, with a message of type approval (it may come first in this send)", agentID, request),
		Data: map[string]any{
			"code":               "PENDING_APPROVAL",
			"message":            "CONFLICT: Cannot send a new message: The agent is waiting for approval on a tool call. Please approve or deny the pending request before continuing.",
			"pending_request_id": string(request),
		},
	}
}

// sendDigest fingerprints a send's inputs.
func sendDigest(inputs []Input) string {
	type part struct { // not the otid: a key's resend may carry new ones
		Role, Text, Name string
		Approvals        []events.Approval `json:",omitempty"`
	}
	parts := make([]part, len(inputs))
	for i, in := range inputs {
		parts[i] = part{in.Role, in.Text, in.Name, in.Approvals}
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
	if s.runActive(RunOf(ref.ID)) {
		if _, err := s.requestRun(ctx, agentID, events.RunRequested{Kind: events.RunResend, Input: events.MessageID(ref.ID)}, SendOptions{}); err != nil {
			return api.LettaResponse{}, err
		}
	}
	resp, err := s.reply(ctx, agentID, ref, opts.UseAssistantMessage)
	if err != nil {
		return resp, err
	}
	if opts.OnRun != nil && len(resp.Usage.RunIDs) > 0 {
		opts.OnRun(resp.Usage.RunIDs[0])
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
	return s.awaitRun(ctx, reports, 0, opts)
}

// RunBus carries a run's progress from the node that runs an agent to the
// caller waiting for it.
type RunBus interface {
	// PublishRun sends one report about the run answering inputID.
	PublishRun(inputID string, r RunReport) error
	// WatchRun delivers every report about the run answering inputID to fn
	// until stop is called; it is subscribed when it returns. fn must not
	// block nor change the report: it may be called on the goroutine that
	// publishes, with the report the publisher holds.
	WatchRun(inputID string, fn func(RunReport)) (stop func(), err error)
	// OfferTokens says, until stop is called, that the caller waiting for
	// the run answering inputID wants the reply's tokens as they come.
	OfferTokens(inputID string) (stop func(), err error)
	// WantsTokens reports whether a caller offers to take the tokens of the
	// run answering inputID.
	WantsTokens(inputID string) bool
}

// RunReport is one report of a run: a message, the end, or a failure.
type RunReport struct {
	Delta   *agents.Delta      `json:"delta,omitempty"`
	Message *api.LettaMessage  `json:"message,omitempty"`
	Done    *api.LettaResponse `json:"done,omitempty"`
	Error   *fault.Wire        `json:"error,omitempty"`
	// Seq, on Done, is how far the runner's projection had applied the log
	// when the run ended: at or past its last commit. The caller waits for
	// its own projection to reach it before it answers, so that its client
	// reads the run's messages on the node it asked, whichever ran it.
	Seq events.Seq `json:"seq,omitempty"`
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

// reply rebuilds, from the log, the response to the send whose first input
// is at ref: the messages its run stored, in order.
func (s *Service) reply(ctx context.Context, agentID string, ref projections.Ref, useAssistant bool) (api.LettaResponse, error) {
	run := RunOf(ref.ID)
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
	run := RunOf(ref.ID)
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

// modelFor finds the model a run of an agent in scope runs on
// (runConfig), or says what to configure.
func (s *Service) modelFor(agentID string, in Scope) (agents.Model, string, error) {
	var (
		cfg *api.LLMConfig
		err error
	)
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			cfg, err = s.runConfig(st, a, in)
		}
	})
	if err != nil {
		return nil, "", err
	}
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
			switch in.Role {
			case "system":
				role, kind = "system", events.InputSystemAlert
			case "approval":
				role, kind = "approval", events.InputApproval
			}
			ev := &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(ids[i]), Role: role, Kind: kind, Text: in.Text, Name: in.Name, Otid: in.Otid},
				Approvals: in.Approvals}
			if i == 0 {
				ev.Key, ev.Digest, ev.MaxSteps = key, digest, opts.MaxSteps
				ev.ConversationID = events.ConversationID(opts.ConversationID)
				ev.OverrideModel = opts.OverrideModel
				for _, t := range opts.ClientTools {
					ev.ClientTools = append(ev.ClientTools, events.ClientTool{Name: t.Name, Description: derefString(t.Description), Parameters: t.Parameters})
				}
			}
			ev.RunID = RunOf(ids[0]) // the run that will answer it (projections.Run)
			d.add(c, agentAgg(agentID), ev)
		}
		return nil
	})
	if err != nil || !appended {
		return 0, false, err
	}
	var seq events.Seq
	s.proj.ReadAhead(func(st *projections.State) { // this call's own input, which may be ahead of the disk (Batch.Ahead)
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

// appendStanding appends a batch decided from the agent as it was at
// version seen, whose first expectation is on the agent. New client inputs
// queue on the agent meanwhile; they change nothing the decision read, so
// it stands: on a conflict they alone caused, the batch is appended again at
// the agent's new version. Any other conflict is returned.
func (s *Service) appendStanding(ctx context.Context, agentID string, b events.Batch, seen events.Seq) (events.Seq, error) {
	agg := agentAgg(agentID)
	seq, err := s.appendLog(ctx, b)
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
		// The same decision, expecting the agent as it is now (a new batch:
		// the caller's is not changed under it).
		b.Expect = append([]events.Expectation{{Aggregate: agg, Version: now}}, b.Expect[1:]...)
		seq, err = s.appendLog(ctx, b)
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

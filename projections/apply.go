package projections

import (
	"encoding/json"
	"slices"

	"github.com/engram-dev/engram/events"
)

// Apply folds one event into the state. It is deterministic: the same events
// in the same order always give the same state. Events at or below the
// applied sequence (and, within a packed message, at or below the applied
// part) are ignored, so redelivery is harmless. Events about an
// aggregate that does not exist (or no longer does) change nothing but the
// applied sequence.
func (s *State) Apply(env events.Envelope) {
	if env.Seq != 0 && (env.Seq < s.Applied || env.Seq == s.Applied && env.Part <= s.AppliedPart) {
		return
	}
	s.Applied, s.AppliedPart = env.Seq, env.Part
	if !env.Hosted {
		s.Kinds[env.Aggregate.Kind] = env.Seq
	}
	switch env.Aggregate.Kind {
	case events.KindAgent:
		s.applyAgent(env)
	case events.KindBlock:
		s.applyBlock(env)
	case events.KindTool:
		s.applyTool(env)
	case events.KindSource:
		s.applySource(env)
	case events.KindJob:
		s.applyJob(env)
	case events.KindConversation:
		s.applyConversation(env)
	case events.KindOrg:
		s.applyOrg(env)
	case events.KindAccess:
		s.applyAccess(env)
	}
}

func (s *State) gone(id string, v Version, env events.Envelope) {
	v.bump(env)
	s.Gone[id] = v
}

func (s *State) applyAgent(env events.Envelope) {
	id := events.AgentID(env.Aggregate.ID)
	a := s.Agents[id]
	if e, ok := env.Event.(*events.AgentCreated); ok {
		if a != nil {
			return
		}
		a = &Agent{
			ID: id, Name: e.Name, Description: e.Description, System: e.System, AgentType: e.AgentType,
			LLMConfig: e.LLMConfig, EmbeddingConfig: e.EmbeddingConfig, Metadata: e.Metadata,
			ToolRules: e.ToolRules, CompactionSettings: e.CompactionSettings, Tags: e.Tags, ToolIDs: e.ToolIDs, BlockIDs: e.BlockIDs,
			SourceIDs: e.SourceIDs, CreatedAt: env.Time, UpdatedAt: env.Time, Created: env.Seq, StateSeq: env.Seq, Org: e.OrganizationID,
			Version: s.Gone[string(id)],
		}
		delete(s.Gone, string(id))
		a.Version.bump(env)
		for _, b := range e.BlockIDs {
			a.relate(events.KindBlock, string(b))
		}
		for _, t := range e.ToolIDs {
			a.relate(events.KindTool, string(t))
		}
		for _, src := range e.SourceIDs {
			a.relate(events.KindSource, string(src))
		}
		s.Agents[id] = a
		return
	}
	if a == nil {
		if v, ok := s.Gone[string(id)]; ok {
			s.gone(string(id), v, env)
		}
		return
	}
	a.Version.bump(env)
	a.UpdatedAt = env.Time
	switch env.Event.(type) {
	case *events.MessageReceived, *events.RunRequested, *events.RunCancelled, *events.RunFailed:
		// A queued input or run request, or a cancel that a step in flight
		// does not read.
	default:
		a.StateSeq = env.Seq
	}
	switch e := env.Event.(type) {
	case *events.AgentSecretsSet:
		a.Secrets = nil
		if len(e.Secrets) > 0 {
			a.Secrets = e.Secrets
		}
	case *events.AgentUpdated:
		setIf(&a.Name, e.Name)
		setIf(&a.Description, e.Description)
		setIf(&a.System, e.System)
		setIf(&a.Tags, e.Tags)
		setIf(&a.ToolIDs, e.ToolIDs)
		setIf(&a.SourceIDs, e.SourceIDs)
		if e.MessageIDs != nil {
			a.MessageIDs, a.ownWindow = *e.MessageIDs, false // the event's array
			if a.Awaiting != "" && !slices.Contains(a.MessageIDs, a.Awaiting) {
				a.Awaiting = "" // popped: nothing waits for the client any more
			}
		}
		if e.ToolIDs != nil {
			for _, t := range *e.ToolIDs {
				a.relate(events.KindTool, string(t))
			}
		}
		if e.SourceIDs != nil {
			for _, src := range *e.SourceIDs {
				a.relate(events.KindSource, string(src))
			}
		}
		setRaw(&a.LLMConfig, e.LLMConfig)
		setRaw(&a.EmbeddingConfig, e.EmbeddingConfig)
		setRaw(&a.Metadata, e.Metadata)
		setRaw(&a.ToolRules, e.ToolRules)
		setRaw(&a.CompactionSettings, e.CompactionSettings)
	case *events.AgentDeleted:
		for _, p := range a.Passages {
			delete(s.Passages, events.PassageID(p.ID))
		}
		for _, r := range a.Runs {
			delete(s.Runs, r)
		}
		delete(s.Agents, id)
		s.Gone[string(id)] = a.Version
		s.goneOrg(string(id), a.Org)
	case *events.CoreBlockAttached:
		a.BlockIDs = addOnce(a.BlockIDs, e.BlockID)
		a.relate(events.KindBlock, string(e.BlockID))
	case *events.CoreBlockDetached:
		a.BlockIDs = remove(a.BlockIDs, e.BlockID)
	case *events.AgentToolAttached:
		a.ToolIDs = addOnce(a.ToolIDs, e.ToolID)
		setRaw(&a.ToolRules, e.ToolRules)
		a.relate(events.KindTool, string(e.ToolID))
	case *events.AgentToolDetached:
		a.ToolIDs = remove(a.ToolIDs, e.ToolID)
	case *events.AgentSourceAttached:
		a.SourceIDs = addOnce(a.SourceIDs, e.SourceID)
		a.relate(events.KindSource, string(e.SourceID))
	case *events.AgentSourceDetached:
		a.SourceIDs = remove(a.SourceIDs, e.SourceID)
	case *events.PassageInserted:
		if _, dup := s.Passages[e.ID]; dup {
			return
		}
		at := env.Time
		if e.CreatedAt != nil {
			at = *e.CreatedAt
		}
		a.Passages = append(a.Passages, Ref{ID: string(e.ID), Seq: env.Seq, Part: int32(env.Part), CreatedAt: at.UnixNano()})
		s.Passages[e.ID] = id
	case *events.PassageDeleted:
		if s.Passages[e.ID] != id {
			return
		}
		delete(s.Passages, e.ID)
		a.Passages = slices.DeleteFunc(a.Passages, func(r Ref) bool { return r.ID == string(e.ID) })
	case *events.MessageReceived:
		// Recall memory holds it at once; the context window only when a
		// run takes it (InputTaken), so queued inputs wait their turn.
		ref := Ref{ID: string(e.ID), Seq: env.Seq, Part: int32(env.Part), CreatedAt: env.Time.UnixNano(), Input: true}
		if r := s.Runs[e.RunID]; e.ConversationID != "" || (r != nil && r.AgentID == id && r.ConversationID != "") {
			ref.Conv = true
		}
		a.Messages = append(a.Messages, ref)
		a.Pending = append(a.Pending, ref)
		s.runInput(a, env, ref, e.ConversationID)
		if r := s.Runs[e.RunID]; r != nil && r.AgentID == id {
			s.conversationMessage(r.ConversationID, ref, env)
		}
		for _, k := range [...]string{e.Key, e.Otid} {
			if _, dup := a.Keys[k]; k != "" && !dup {
				if a.Keys == nil {
					a.Keys = map[string]Ref{}
				}
				a.Keys[k] = ref
			}
		}
	case *events.RunRequested:
		// Queued with the client inputs and taken like them, but no message
		// of its own: the run renders its input when it begins.
		ref := Ref{ID: string(e.ID), Seq: env.Seq, Part: int32(env.Part), CreatedAt: env.Time.UnixNano(), Input: true}
		a.Pending = append(a.Pending, ref)
		if e.Kind != events.RunResend { // a resend runs the send's own run
			s.runInput(a, env, ref, "")
		}
	case *events.InputTaken:
		if len(e.IDs) > 0 {
			if r := s.Runs[events.DerivedID("run", string(e.IDs[0]))]; r != nil && r.Status == RunCreated {
				r.Status = RunRunning
			}
		}
		a.Pending = slices.DeleteFunc(a.Pending, func(r Ref) bool { return slices.Contains(e.IDs, events.MessageID(r.ID)) })
		for _, id := range e.IDs {
			for i := len(a.Messages) - 1; i >= 0; i-- {
				if r := a.Messages[i]; r.ID == string(id) {
					if r.Seq > a.Taken {
						a.Taken = r.Seq
					}
					// An input joins the window of its run's conversation.
					switch c, named := s.convOf(a, s.runOfInput(a, id)); {
					case c != nil:
						appendWindow(&c.MessageIDs, &c.ownWindow, id)
					case !named:
						a.appendWindow(id)
					}
					break
				}
			}
		}
	case *events.MessageAppended:
		// A new message joins the context window; AgentUpdated.MessageIDs
		// rewrites the window (summaries, pops).
		// A message of a run in one of the agent's conversations joins
		// that conversation's window instead, and its calls wait there.
		ref := Ref{ID: string(e.ID), Seq: env.Seq, Part: int32(env.Part), CreatedAt: env.Time.UnixNano()}
		if r := s.Runs[e.RunID]; r != nil && r.AgentID == id && r.ConversationID != "" {
			ref.Conv = true
		}
		a.Messages = append(a.Messages, ref)
		var none events.MessageID
		awaiting := &a.Awaiting
		switch c, named := s.convOf(a, e.RunID); {
		case c != nil:
			appendWindow(&c.MessageIDs, &c.ownWindow, e.ID)
			awaiting = &c.Awaiting
		case named:
			awaiting = &none // its conversation was deleted: no window holds it
		default:
			a.appendWindow(e.ID)
		}
		if r := s.Runs[e.RunID]; r != nil && r.AgentID == id {
			s.conversationMessage(r.ConversationID, ref, env)
		}
		switch {
		case e.Role == "assistant" && e.StopReason == "requires_approval":
			*awaiting = e.ID
		case e.Role == "assistant" || e.Role == "tool":
			*awaiting = "" // the calls' returns are stored, or the agent went on
		}
		if r := s.Runs[e.RunID]; r != nil && r.AgentID == id && e.Role == "assistant" {
			r.Steps++
			r.Then = e.Then
			if u := e.Usage; u != nil {
				r.Usage.PromptTokens += u.PromptTokens
				r.Usage.CompletionTokens += u.CompletionTokens
				r.Usage.TotalTokens += u.TotalTokens
			}
			if r.Status == RunCreated {
				r.Status = RunRunning
			}
			if e.StopReason != "" && r.Active() {
				r.Status, r.StopReason, r.CompletedAt, r.Then = RunCompleted, e.StopReason, env.Time, nil
			}
		}
	case *events.ConversationWindowSet:
		if c := s.Conversations[e.ConversationID]; c != nil && c.AgentID == id {
			c.MessageIDs, c.ownWindow = e.MessageIDs, false // the event's array
			if c.Awaiting != "" && !slices.Contains(c.MessageIDs, c.Awaiting) {
				c.Awaiting = ""
			}
		}
	case *events.RunCancelled:
		r := s.Runs[e.RunID]
		if r == nil || r.AgentID != id || !r.Active() {
			return
		}
		if r.Status == RunCreated { // it never begins: its inputs leave the queue
			a.Pending = slices.DeleteFunc(a.Pending, func(p Ref) bool {
				return slices.ContainsFunc(r.Inputs, func(in Ref) bool { return in.ID == p.ID })
			})
		}
		r.Status, r.StopReason, r.CompletedAt, r.Then = RunCancelled, "cancelled", env.Time, nil
	case *events.RunFailed:
		if r := s.Runs[e.RunID]; r != nil && r.AgentID == id && r.Active() {
			r.Status, r.StopReason, r.CompletedAt, r.Error, r.Then = RunFailed, e.StopReason, env.Time, e.Detail, nil
		}
	case *events.MessageUpdated:
		// The stored message now reads from this event; it keeps its
		// place and its time.
		for i := len(a.Messages) - 1; i >= 0; i-- {
			if a.Messages[i].ID == string(e.ID) {
				a.Messages[i].Seq, a.Messages[i].Part = env.Seq, int32(env.Part)
				break
			}
		}
	}
}

// runInput adds a client's input to its run: the run of the previous input
// when both were stored by one command (one send), else a new run.
func (s *State) runInput(a *Agent, env events.Envelope, ref Ref, conv events.ConversationID) {
	if s.Runs == nil {
		s.Runs = map[string]*Run{}
	}
	if n := len(a.Runs); n > 0 && env.Command != "" {
		if r := s.Runs[a.Runs[n-1]]; r != nil && r.Command == env.Command && r.Status == RunCreated {
			r.Inputs = append(r.Inputs, ref)
			return
		}
	}
	id := events.DerivedID("run", ref.ID)
	if s.Runs[id] != nil {
		return
	}
	s.Runs[id] = &Run{ID: id, AgentID: a.ID, Command: env.Command, ConversationID: conv, Inputs: []Ref{ref}, Status: RunCreated, CreatedAt: env.Time, Created: env.Seq}
	a.Runs = append(a.Runs, id)
}

// runOfInput names the run a client's input belongs to, "" if none: the
// newest runs are looked at first, as the input taken is a recent one.
func (s *State) runOfInput(a *Agent, input events.MessageID) string {
	for i := len(a.Runs) - 1; i >= 0; i-- {
		r := s.Runs[a.Runs[i]]
		if r != nil && slices.ContainsFunc(r.Inputs, func(in Ref) bool { return in.ID == string(input) }) {
			return r.ID
		}
	}
	return ""
}

// convOf returns the conversation of agent a whose window the messages of
// the run named run join, and whether the run went to a conversation
// other than the agent's default one: nil and false for the agent's own
// window; nil and true when that conversation was deleted, and no window
// takes them (Service.StepContext fails such a run).
func (s *State) convOf(a *Agent, run string) (*Conversation, bool) {
	if run == "" {
		return nil, false
	}
	r := s.Runs[run]
	if r == nil || r.AgentID != a.ID || r.ConversationID == "" {
		return nil, false
	}
	if c := s.Conversations[r.ConversationID]; c != nil && c.AgentID == a.ID {
		return c, true
	}
	return nil, true
}

// conversationMessage records a message of a run in the run's
// conversation, if it has one that is still there; an input also dates
// the conversation's last message.
func (s *State) conversationMessage(id events.ConversationID, ref Ref, env events.Envelope) {
	if id == "" {
		return
	}
	c := s.Conversations[id]
	if c == nil {
		return
	}
	c.Messages = append(c.Messages, ref)
	if ref.Input {
		c.LastMessageAt = env.Time
	}
}

func (s *State) applyBlock(env events.Envelope) {
	id := events.BlockID(env.Aggregate.ID)
	b := s.Blocks[id]
	if e, ok := env.Event.(*events.BlockCreated); ok {
		if b != nil {
			return
		}
		b = &Block{
			ID: id, Label: e.Label, Value: e.Value, Limit: e.Limit, Name: e.Name, IsTemplate: e.IsTemplate,
			ReadOnly: e.ReadOnly, Description: e.Description, Metadata: e.Metadata, Tags: e.Tags,
			CreatedAt: env.Time, UpdatedAt: env.Time, Created: env.Seq, CreatedPart: int32(env.Part), Hosted: env.Hosted, Version: s.Gone[string(id)], Org: e.OrganizationID,
		}
		delete(s.Gone, string(id))
		b.Version.bump(env)
		s.Blocks[id] = b
		return
	}
	if b == nil {
		if v, ok := s.Gone[string(id)]; ok {
			s.gone(string(id), v, env)
		}
		return
	}
	b.Version.bump(env)
	b.UpdatedAt = env.Time
	switch e := env.Event.(type) {
	case *events.BlockUpdated:
		setIf(&b.Label, e.Label)
		setIf(&b.Value, e.Value)
		setIf(&b.Limit, e.Limit)
		setIf(&b.Name, e.Name)
		setIf(&b.IsTemplate, e.IsTemplate)
		setIf(&b.ReadOnly, e.ReadOnly)
		setIf(&b.Description, e.Description)
		setIf(&b.Tags, e.Tags)
		setRaw(&b.Metadata, e.Metadata)
	case *events.BlockDeleted:
		delete(s.Blocks, id)
		s.Gone[string(id)] = b.Version
		s.goneOrg(string(id), b.Org)
		for _, a := range s.Agents {
			a.BlockIDs = remove(a.BlockIDs, id)
		}
	}
}

func (s *State) applyTool(env events.Envelope) {
	id := events.ToolID(env.Aggregate.ID)
	t := s.Tools[id]
	if e, ok := env.Event.(*events.ToolCreated); ok {
		if t != nil {
			return
		}
		t = &Tool{
			ID: id, Name: e.Name, Description: e.Description, SourceCode: e.SourceCode, SourceType: e.SourceType,
			JSONSchema: e.JSONSchema, Tags: e.Tags, ToolType: e.ToolType, ReturnCharLimit: e.ReturnCharLimit,
			Metadata: e.Metadata, AgentState: e.AgentState, TimeoutSeconds: e.TimeoutSeconds, DefaultRequiresApproval: e.DefaultRequiresApproval,
			CreatedAt: env.Time, UpdatedAt: env.Time,
			Created: env.Seq, CreatedPart: int32(env.Part), Version: s.Gone[string(id)], Org: e.OrganizationID,
		}
		delete(s.Gone, string(id))
		t.Version.bump(env)
		s.Tools[id] = t
		return
	}
	if t == nil {
		if v, ok := s.Gone[string(id)]; ok {
			s.gone(string(id), v, env)
		}
		return
	}
	t.Version.bump(env)
	t.UpdatedAt = env.Time
	switch e := env.Event.(type) {
	case *events.ToolUpdated:
		setIf(&t.Name, e.Name)
		setIf(&t.Description, e.Description)
		setIf(&t.SourceCode, e.SourceCode)
		setIf(&t.SourceType, e.SourceType)
		setIf(&t.Tags, e.Tags)
		setIf(&t.ReturnCharLimit, e.ReturnCharLimit)
		setIf(&t.AgentState, e.AgentState)
		setIf(&t.TimeoutSeconds, e.TimeoutSeconds)
		setIf(&t.DefaultRequiresApproval, e.DefaultRequiresApproval)
		setRaw(&t.JSONSchema, e.JSONSchema)
		setRaw(&t.Metadata, e.Metadata)
	case *events.ToolDeleted:
		delete(s.Tools, id)
		s.Gone[string(id)] = t.Version
		s.goneOrg(string(id), t.Org)
		for _, a := range s.Agents {
			a.ToolIDs = remove(a.ToolIDs, id)
		}
	}
}

func (s *State) applySource(env events.Envelope) {
	id := events.SourceID(env.Aggregate.ID)
	src := s.Sources[id]
	if e, ok := env.Event.(*events.SourceCreated); ok {
		if src != nil {
			return
		}
		src = &Source{
			ID: id, Name: e.Name, Description: e.Description, Instructions: e.Instructions,
			EmbeddingConfig: e.EmbeddingConfig, Metadata: e.Metadata, CreatedAt: env.Time, UpdatedAt: env.Time,
			Created: env.Seq, CreatedPart: int32(env.Part), Version: s.Gone[string(id)], Org: e.OrganizationID,
		}
		delete(s.Gone, string(id))
		src.Version.bump(env)
		s.Sources[id] = src
		return
	}
	if src == nil {
		if v, ok := s.Gone[string(id)]; ok {
			s.gone(string(id), v, env)
		}
		return
	}
	src.Version.bump(env)
	src.UpdatedAt = env.Time
	switch e := env.Event.(type) {
	case *events.SourceUpdated:
		setIf(&src.Name, e.Name)
		setIf(&src.Description, e.Description)
		setIf(&src.Instructions, e.Instructions)
		setRaw(&src.EmbeddingConfig, e.EmbeddingConfig)
		setRaw(&src.Metadata, e.Metadata)
	case *events.SourceDeleted:
		delete(s.Sources, id)
		s.Gone[string(id)] = src.Version
		s.goneOrg(string(id), src.Org)
		for _, a := range s.Agents {
			a.SourceIDs = remove(a.SourceIDs, id)
		}
		for _, p := range src.Passages {
			delete(s.SourcePassages, events.PassageID(p.ID))
		}
	case *events.PassageInserted:
		if s.SourcePassages == nil {
			s.SourcePassages = map[events.PassageID]events.SourceID{}
		}
		if _, dup := s.SourcePassages[e.ID]; dup {
			return
		}
		at := env.Time
		if e.CreatedAt != nil {
			at = *e.CreatedAt
		}
		s.SourcePassages[e.ID] = id
		src.Passages = append(src.Passages, Ref{ID: string(e.ID), Seq: env.Seq, Part: int32(env.Part), CreatedAt: at.UnixNano()})
		if f := src.File(e.FileID); f != nil && e.FileID != "" {
			f.Passages = append(f.Passages, e.ID)
		}
	case *events.PassageDeleted:
		if s.SourcePassages[e.ID] != id {
			return
		}
		delete(s.SourcePassages, e.ID)
		src.Passages = slices.DeleteFunc(src.Passages, func(r Ref) bool { return r.ID == string(e.ID) })
		for _, f := range src.Files {
			f.Passages = slices.DeleteFunc(f.Passages, func(p events.PassageID) bool { return p == e.ID })
		}
	case *events.FileCreated:
		if src.File(e.ID) != nil {
			return
		}
		src.Files = append(src.Files, &File{
			ID: e.ID, Name: e.Name, OriginalName: e.OriginalName, MIME: e.MIME, Size: e.Size, Digest: e.Digest,
			Object: e.Object, JobID: e.JobID, Status: "parsing", CreatedAt: env.Time, UpdatedAt: env.Time,
		})
	case *events.FileUpdated:
		if f := src.File(e.ID); f != nil {
			f.Status, f.Error, f.UpdatedAt = e.Status, e.Error, env.Time
		}
	case *events.FileDeleted:
		src.Files = slices.DeleteFunc(src.Files, func(f *File) bool { return f.ID == e.ID })
	}
}

func (s *State) applyJob(env events.Envelope) {
	id := events.JobID(env.Aggregate.ID)
	j := s.Jobs[id]
	if e, ok := env.Event.(*events.JobCreated); ok {
		if j != nil {
			return
		}
		j = &Job{
			ID: id, JobType: e.JobType, AgentID: e.AgentID, SourceID: e.SourceID, Status: "created",
			Metadata: e.Metadata, CreatedAt: env.Time, Created: env.Seq, CreatedPart: int32(env.Part), Org: e.OrganizationID,
		}
		j.Version.bump(env)
		s.Jobs[id] = j
		return
	}
	if j == nil {
		return
	}
	j.Version.bump(env)
	if _, ok := env.Event.(*events.JobDeleted); ok {
		delete(s.Jobs, id)
		return
	}
	if e, ok := env.Event.(*events.JobUpdated); ok {
		j.Status = e.Status
		j.Error = e.Error
		setRaw(&j.Metadata, e.Metadata)
		if e.Status == "completed" || e.Status == "failed" {
			j.CompletedAt = env.Time
		}
	}
}

func (s *State) applyConversation(env events.Envelope) {
	id := events.ConversationID(env.Aggregate.ID)
	c := s.Conversations[id]
	if e, ok := env.Event.(*events.ConversationCreated); ok {
		if c != nil {
			return
		}
		c = &Conversation{
			ID: id, AgentID: e.AgentID, Summary: e.Summary, Model: e.Model, ModelSettings: e.ModelSettings,
			IsolatedBlockLabels: e.IsolatedBlockLabels, IsolatedBlockIDs: e.IsolatedBlockIDs, CreatedAt: env.Time, UpdatedAt: env.Time, Created: env.Seq,
			Version: s.Gone[string(id)],
		}
		if a := s.Agents[e.AgentID]; a != nil && len(a.MessageIDs) > 0 {
			// Its window begins with the agent's system message.
			c.MessageIDs = []events.MessageID{a.MessageIDs[0]}
		}
		delete(s.Gone, string(id))
		c.Version.bump(env)
		s.Conversations[id] = c
		return
	}
	if c == nil {
		return
	}
	switch e := env.Event.(type) {
	case *events.ConversationDeleted:
		s.gone(string(id), c.Version, env)
		delete(s.Conversations, id)
		return
	case *events.ConversationUpdated:
		if e.Summary != nil {
			c.Summary = *e.Summary
		}
		if e.Model != nil {
			c.Model = *e.Model
		}
		setRaw(&c.ModelSettings, e.ModelSettings)
		if e.LastMessageAt != nil {
			c.LastMessageAt = *e.LastMessageAt
		}
	}
	c.UpdatedAt = env.Time
	c.Version.bump(env)
}

// appendWindow adds a message to the agent's context window. The window's
// array is copied (with room to grow) only when it may be shared — an
// event's, or a restored one — and appended to in place after that: a
// window of n messages costs O(n) to build, where copying on every append
// cost O(n²). In-place appends are safe because the window is never
// changed in place otherwise: elements are never rewritten and the slice
// never shortened, only replaced whole (AgentUpdated), so a slice header
// taken from it earlier keeps seeing the same elements.
func (a *Agent) appendWindow(id events.MessageID) { appendWindow(&a.MessageIDs, &a.ownWindow, id) }

// appendWindow adds id to the window *ids, copying its array first unless
// *own says it is the window's alone (Agent.appendWindow).
func appendWindow(ids *[]events.MessageID, own *bool, id events.MessageID) {
	if !*own {
		*ids = append(make([]events.MessageID, 0, 2*len(*ids)+8), *ids...)
		*own = true
	}
	*ids = append(*ids, id)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setRaw(dst *json.RawMessage, v json.RawMessage) {
	if len(v) > 0 {
		*dst = v
	}
}

func addOnce[T comparable](xs []T, x T) []T {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(slices.Clip(xs), x)
}

func remove[T comparable](xs []T, x T) []T {
	if !slices.Contains(xs, x) {
		return xs
	}
	return slices.DeleteFunc(slices.Clone(xs), func(y T) bool { return y == x })
}

package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/service"
)

// These tests check that each conversation of an agent runs on a context
// window of its own and shares the agent's memory, as Letta 0.16.8's
// conversations do: what the scripted model is sent is what the agent saw.

func sendTo(t *testing.T, r *rig, agentID, conv, text string) api.LettaResponse {
	t.Helper()
	resp, err := r.n.Service.SendMessage(context.Background(), agentID, []service.Input{{Role: "user", Text: text}},
		service.SendOptions{UseAssistantMessage: true, ConversationID: conv})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (r *rig) conversation(t *testing.T, agentID string) string {
	t.Helper()
	c, err := r.n.Service.CreateConversation(context.Background(), agentID, api.CreateConversation{})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// seen is everything a model request carried after its system message:
// each message's text and its tool calls' arguments.
func seen(req llmtest.Recorded) string {
	var b strings.Builder
	for _, m := range req.Messages[1:] {
		b.WriteString(m.Content + "\n")
		for _, tc := range m.ToolCalls {
			b.WriteString(tc.Arguments + "\n")
		}
	}
	return b.String()
}

// lastRequest is the model's last request.
func lastRequest(t *testing.T, r *rig) llmtest.Recorded {
	t.Helper()
	reqs := r.llm.Requests()
	if len(reqs) == 0 {
		t.Fatal("the model was not called")
	}
	return reqs[len(reqs)-1]
}

// wantSeen checks that req carried every word of want and none of avoid.
func wantSeen(t *testing.T, what string, req llmtest.Recorded, want, avoid []string) {
	t.Helper()
	got := seen(req)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: the model was not sent %q; it was sent:\n%s", what, w, got)
		}
	}
	for _, w := range avoid {
		if strings.Contains(got, w) {
			t.Errorf("%s: the model was sent %q, another conversation's; it was sent:\n%s", what, w, got)
		}
	}
}

func digest(t *testing.T, r *rig) string {
	t.Helper()
	var (
		d   string
		err error
	)
	r.n.Projection.Read(func(st *projections.State) { d, err = st.Digest() })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConversationsKeepTheirOwnHistory: two conversations of one agent,
// sends alternating: each model request holds its own conversation's
// messages only, under a system message with the agent's shared memory
// (an edit made in one is seen in the other's next request); the default
// conversation is the agent's own window, untouched by both; each
// conversation's window survives a restart that replays the log and one
// that restores a snapshot.
func TestConversationsKeepTheirOwnHistory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	r := startRig(t, dir, script)
	a := r.modernAgent(t)
	convA, convB := r.conversation(t, a.ID), r.conversation(t, a.ID)
	apples := []string{"apples are red", "noted A1", "remember kiwis", "noted A2"}
	bananas := []string{"bananas are yellow", "noted B1", "which fruit", "noted B2"}

	r.llm.Push(llmtest.Step{Content: "noted A1"})
	sendTo(t, r, a.ID, convA, "apples are red")
	r.llm.Push(llmtest.Step{Content: "noted B1"})
	sendTo(t, r, a.ID, convB, "bananas are yellow")
	wantSeen(t, "B's first send", lastRequest(t, r), bananas[:1], apples)

	// A edits the agent's memory; B's next request shows it.
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("memory_insert", map[string]any{"label": "human", "new_string": "Likes kiwis"})}},
		llmtest.Step{Content: "noted A2"},
	)
	sendTo(t, r, a.ID, convA, "remember kiwis")
	wantSeen(t, "A's second send", lastRequest(t, r), apples[:3], bananas)
	if sys := lastRequest(t, r).Messages[0].Content; !strings.Contains(sys, "Likes kiwis") {
		t.Errorf("A's own edit is not in its system message:\n%s", sys)
	}

	r.llm.Push(llmtest.Step{Content: "noted B2"})
	sendTo(t, r, a.ID, convB, "which fruit")
	reqB := lastRequest(t, r)
	wantSeen(t, "B's second send", reqB, bananas[:3], apples)
	if sys := reqB.Messages[0].Content; reqB.Messages[0].Role != "system" || !strings.Contains(sys, "Likes kiwis") {
		t.Errorf("the memory edit made in conversation A is not in B's system message:\n%s", sys)
	}
	if n := len(reqB.Messages); n != 4 {
		t.Errorf("B's request holds %d messages; want 4: the system message, B's first exchange and its new input", n)
	}

	// The default conversation (the agent's own window) saw neither.
	r.llm.Push(llmtest.Step{Content: "noted D1"})
	send(t, r, a.ID, "plain hello")
	reqD := lastRequest(t, r)
	wantSeen(t, "the default conversation", reqD, []string{"plain hello"}, append(slices.Clone(apples), bananas...))
	if n := len(reqD.Messages); n != 2 || !strings.Contains(reqD.Messages[0].Content, "Likes kiwis") {
		t.Errorf("the default conversation's request holds %d messages (want the system message and the input) and system message:\n%s", n, reqD.Messages[0].Content)
	}

	// What the API shows: each conversation lists its own messages and
	// holds its own window, which begins with the agent's system message;
	// the agent's list holds every message (as Letta's does), its context
	// only the default conversation's.
	inB := 5 // system, user, answer, user, answer; each send below adds two
	check := func(r *rig, when string) {
		t.Helper()
		for _, c := range []struct {
			id          string
			mine, other []string
			inContext   int
		}{
			{convA, apples, bananas, 7}, // system, user, answer, user, call, return, answer
			{convB, bananas, apples, inB},
		} {
			msgs, err := r.n.Service.ListConversationMessages(ctx, c.id, api.Page{Order: "asc"})
			if err != nil {
				t.Fatal(err)
			}
			listed := text(msgs)
			for _, w := range c.mine {
				if !strings.Contains(listed, w) {
					t.Errorf("%s: conversation %s does not list %q", when, c.id, w)
				}
			}
			for _, w := range c.other {
				if strings.Contains(listed, w) {
					t.Errorf("%s: conversation %s lists %q, another conversation's", when, c.id, w)
				}
			}
			conv, err := r.n.Service.GetConversation(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if len(conv.InContextMessageIDs) != c.inContext || conv.InContextMessageIDs[0] != a.MessageIDs[0] {
				t.Errorf("%s: conversation %s holds in context %v; want %d messages from the agent's system message %s", when, c.id, conv.InContextMessageIDs, c.inContext, a.MessageIDs[0])
			}
		}
		all, err := r.n.Service.ListMessages(ctx, a.ID, api.Page{Order: "asc", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if listed := text(all); !strings.Contains(listed, "apples are red") || !strings.Contains(listed, "bananas are yellow") || !strings.Contains(listed, "plain hello") {
			t.Errorf("%s: the agent's messages do not hold every conversation's:\n%s", when, listed)
		}
		inContext, err := r.n.Service.ListContextMessages(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if listed := text(inContext); len(inContext) != 3 || !strings.Contains(listed, "plain hello") || strings.Contains(listed, "apples") || strings.Contains(listed, "bananas") {
			t.Errorf("%s: the agent's own context holds %d messages:\n%s", when, len(inContext), listed)
		}
	}
	check(r, "before a restart")
	want := digest(t, r)

	for _, restart := range []struct {
		name string
		mod  func(*node.Config)
	}{
		{"replayed from the log", func(c *node.Config) { c.NoRestore = true }},
		{"restored from a snapshot", func(c *node.Config) {}},
	} {
		r.n.Close(ctx) // it saves a snapshot
		r = startRig(t, dir, script, restart.mod)
		check(r, restart.name)
		if got := digest(t, r); got != want {
			t.Errorf("%s: digest %s; want %s", restart.name, got, want)
		}
		// B goes on from its own history.
		r.llm.Push(llmtest.Step{Content: "noted B"})
		sendTo(t, r, a.ID, convB, "and now, "+restart.name)
		wantSeen(t, restart.name, lastRequest(t, r), bananas, apples)
		inB += 2
		want = digest(t, r)
	}
}

// text joins what messages say: contents, reasoning, calls and returns.
func text(ms []api.LettaMessage) string {
	var b strings.Builder
	for _, m := range ms {
		for _, s := range []*string{m.Content, m.Reasoning, m.ToolReturn} {
			if s != nil {
				b.WriteString(*s + "\n")
			}
		}
		if m.ToolCall != nil {
			b.WriteString(m.ToolCall.Arguments + "\n")
		}
	}
	return b.String()
}

// TestConversationSummarizesItsOwnWindow: a conversation whose window
// overflows is summarized from its own messages, and the summary takes
// their place in its window only: the agent's own window and another
// conversation's are unchanged.
func TestConversationSummarizesItsOwnWindow(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{
		LLMConfig: json.RawMessage(`{"model":"gpt-4o-mini","model_endpoint_type":"openai","context_window":3000,"handle":"openai/gpt-4o-mini"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	convA, convB := r.conversation(t, a.ID), r.conversation(t, a.ID)
	r.llm.Push(llmtest.Step{Content: "noted"})
	send(t, r, a.ID, "default marker")
	r.llm.Push(llmtest.Step{Content: "noted"})
	sendTo(t, r, a.ID, convB, "bananas marker")
	ownBefore, err := r.n.Service.ListContextMessages(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	bBefore, _ := r.n.Service.GetConversation(ctx, convB)

	long := strings.Repeat("lorem ipsum dolor sit amet ", 60)
	step := llmtest.Step{Content: "ok"}
	r.llm.SetDefault(&step) // the summarizer gets this reply too: its summary
	var summary *llmtest.Recorded
	for i := 0; i < 8 && summary == nil; i++ {
		sendTo(t, r, a.ID, convA, "apples "+long)
		for _, req := range r.llm.Requests() {
			if len(req.Tools) == 0 && strings.Contains(req.Messages[0].Content, "summarize") {
				summary = &req
			}
		}
	}
	if summary == nil {
		t.Fatal("conversation A grew past the window without a summary")
	}
	if got := seen(*summary); !strings.Contains(got, "apples") || strings.Contains(got, "bananas marker") || strings.Contains(got, "default marker") {
		t.Errorf("the summarizer was not given conversation A's history alone:\n%s", got)
	}
	convAfter, err := r.n.Service.GetConversation(ctx, convA)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.n.Service.ListConversationMessages(ctx, convA, api.Page{Order: "asc", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var summaryID string
	for _, m := range msgs {
		if m.Content != nil && strings.Contains(*m.Content, "The following is a summary of the previous") {
			summaryID = m.ID
		}
	}
	if summaryID == "" || len(convAfter.InContextMessageIDs) < 2 || convAfter.InContextMessageIDs[1] != summaryID {
		t.Errorf("conversation A's window %v does not begin with its summary %q after the system message", convAfter.InContextMessageIDs, summaryID)
	}
	ownAfter, err := r.n.Service.ListContextMessages(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ownAfter) != len(ownBefore) || strings.Contains(text(ownAfter), "summary of the previous") {
		t.Errorf("the agent's own window changed: %d → %d messages", len(ownBefore), len(ownAfter))
	}
	if bAfter, _ := r.n.Service.GetConversation(ctx, convB); !slices.Equal(bAfter.InContextMessageIDs, bBefore.InContextMessageIDs) {
		t.Errorf("conversation B's window changed: %v → %v", bBefore.InContextMessageIDs, bAfter.InContextMessageIDs)
	}
}

// TestApprovalWaitsInItsConversation: a client tool call waiting in one
// conversation refuses further messages there (409) but not in another
// conversation of the agent, nor in its default one, as Letta 0.16.8
// (the pending approval is the last message of that conversation's own
// context); the answer then resolves it in its conversation.
func TestApprovalWaitsInItsConversation(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	convA, convB := r.conversation(t, a.ID), r.conversation(t, a.ID)
	clientTools := []api.ClientTool{{Name: "exec_command", Parameters: json.RawMessage(`{"type":"object","properties":{"cmd":{"type":"string"}}}`)}}
	r.llm.Push(llmtest.Step{ToolCalls: []agents.ToolCall{{ID: "call_ls", Name: "exec_command", Arguments: `{"cmd":"ls"}`}}})
	resp, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "list my files"}},
		service.SendOptions{UseAssistantMessage: true, ConversationID: convA, ClientTools: clientTools})
	if err != nil || resp.StopReason.StopReason != "requires_approval" {
		t.Fatalf("stop %+v, err %v; want requires_approval", resp.StopReason, err)
	}
	if _, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hello?"}}, service.SendOptions{ConversationID: convA}); !fault.Is(err, fault.Conflict) {
		t.Fatalf("a message to conversation A while its call waits: %v; want Conflict (409)", err)
	}
	r.llm.Push(llmtest.Step{Content: "B answers"})
	if got := said(sendTo(t, r, a.ID, convB, "hello B")); got != "B answers" {
		t.Fatalf("conversation B answered %q", got)
	}
	wantSeen(t, "conversation B", lastRequest(t, r), []string{"hello B"}, []string{"list my files", "call_ls"})
	r.llm.Push(llmtest.Step{Content: "default answers"})
	if got := said(send(t, r, a.ID, "hello default")); got != "default answers" {
		t.Fatalf("the default conversation answered %q", got)
	}
	if _, err := r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_ls", Return: ptr("a.txt")}), service.SendOptions{}); err == nil {
		t.Fatal("an answer sent to the default conversation, where nothing waits, was accepted")
	}
	r.llm.Push(llmtest.Step{Content: "You have a.txt."})
	resp, err = r.n.Service.SendMessage(ctx, a.ID, approval(events.Approval{ToolCallID: "call_ls", Return: ptr("a.txt"), Status: "success"}),
		service.SendOptions{UseAssistantMessage: true, ConversationID: convA})
	if err != nil {
		t.Fatal(err)
	}
	if said(resp) != "You have a.txt." {
		t.Fatalf("after the answer: %+v", resp.Messages)
	}
	wantSeen(t, "conversation A after the answer", lastRequest(t, r), []string{"list my files", "a.txt"}, []string{"hello B", "hello default"})
}

// TestRunModel: a conversation's model (with its model_settings) and a
// send's override_model are what the run calls; an unknown override is
// not found and stores nothing.
func TestRunModel(t *testing.T) {
	ctx := context.Background()
	other := "openai/gpt-4o"
	r := startRig(t, t.TempDir(), nil, func(c *node.Config) {
		c.Service.Models = append(c.Service.Models, api.Model{LLMConfig: api.LLMConfig{Model: "gpt-4o", ModelEndpointType: "openai", ContextWindow: 8000, Handle: &other}, Name: "gpt-4o"})
	})
	a := r.modernAgent(t)
	conv, err := r.n.Service.CreateConversation(ctx, a.ID, api.CreateConversation{Model: &other, ModelSettings: json.RawMessage(`{"provider_type":"openai","temperature":0.25}`)})
	if err != nil {
		t.Fatal(err)
	}
	plain := r.conversation(t, a.ID)
	for _, c := range []struct {
		name, conv, override, model string
		temperature                 *float64
	}{
		{"the agent's", "", "", "gpt-4o-mini", nil},
		{"a conversation without one", plain, "", "gpt-4o-mini", nil},
		{"the conversation's", conv.ID, "", "gpt-4o", ptr(0.25)},
		{"override_model on the default conversation", "", other, "gpt-4o", nil},
		{"override_model over the conversation's", conv.ID, "openai/gpt-4o-mini", "gpt-4o-mini", nil},
	} {
		r.llm.Push(llmtest.Step{Content: "ok"})
		if _, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hi"}},
			service.SendOptions{ConversationID: c.conv, OverrideModel: c.override}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		req := lastRequest(t, r)
		if req.Model != c.model {
			t.Errorf("%s: the run called %q; want %q", c.name, req.Model, c.model)
		}
		if c.temperature != nil && (req.Temperature == nil || *req.Temperature != *c.temperature) {
			t.Errorf("%s: temperature %v; want %v", c.name, req.Temperature, *c.temperature)
		}
	}
	calls := len(r.llm.Requests())
	before, _ := r.n.Service.ListMessages(ctx, a.ID, api.Page{Limit: 1000})
	for _, bad := range []string{"openai/no-such-model", "nohandle"} {
		_, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hi"}}, service.SendOptions{ConversationID: conv.ID, OverrideModel: bad})
		if !fault.Is(err, fault.NotFound) && !fault.Is(err, fault.Invalid) {
			t.Errorf("override_model %q: %v; want not found or invalid", bad, err)
		}
	}
	after, _ := r.n.Service.ListMessages(ctx, a.ID, api.Page{Limit: 1000})
	if len(after) != len(before) || len(r.llm.Requests()) != calls {
		t.Errorf("a send with an unknown override_model stored %d messages and made %d model calls", len(after)-len(before), len(r.llm.Requests())-calls)
	}
}

// TestIsolatedBlocks: a conversation made with isolated_block_labels gets
// its own copy of those blocks, as Letta 0.16.8 makes it: an edit there is
// in its next request and not in another conversation's, nor in the
// agent's block; other blocks stay shared; deleting the conversation
// deletes its copies.
func TestIsolatedBlocks(t *testing.T) {
	ctx := context.Background()
	r := startRig(t, t.TempDir(), nil)
	a := r.modernAgent(t)
	iso, err := r.n.Service.CreateConversation(ctx, a.ID, api.CreateConversation{IsolatedBlockLabels: []string{"human"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.IsolatedBlockIDs) != 1 {
		t.Fatalf("isolated_block_ids = %v", iso.IsolatedBlockIDs)
	}
	copyID := iso.IsolatedBlockIDs[0]
	if b, err := r.n.Service.GetBlock(ctx, copyID); err != nil || b.Label != "human" || b.Value != "Name: Ada" {
		t.Fatalf("the copy: %+v %v", b, err)
	}
	other := r.conversation(t, a.ID)
	r.llm.Push(
		llmtest.Step{ToolCalls: []agents.ToolCall{call("memory_insert", map[string]any{"label": "human", "new_string": "Secret: kiwis"})}},
		llmtest.Step{ToolCalls: []agents.ToolCall{call("memory_insert", map[string]any{"label": "persona", "new_string": "Shared: tea"})}},
		llmtest.Step{Content: "noted"},
	)
	sendTo(t, r, a.ID, iso.ID, "remember")
	r.llm.Push(llmtest.Step{Content: "again"})
	sendTo(t, r, a.ID, iso.ID, "again")
	if sys := lastRequest(t, r).Messages[0].Content; !strings.Contains(sys, "Secret: kiwis") || !strings.Contains(sys, "Shared: tea") {
		t.Errorf("the isolated conversation's system message lacks its edits:\n%s", sys)
	}
	r.llm.Push(llmtest.Step{Content: "other"})
	sendTo(t, r, a.ID, other, "hello")
	if sys := lastRequest(t, r).Messages[0].Content; strings.Contains(sys, "Secret: kiwis") || !strings.Contains(sys, "Shared: tea") {
		t.Errorf("another conversation's system message shows the isolated edit, or lacks the shared one:\n%s", sys)
	}
	mem, err := r.n.Service.GetCoreMemory(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range mem.Blocks {
		if b.Label == "human" && strings.Contains(b.Value, "kiwis") {
			t.Errorf("the agent's own human block was edited: %q", b.Value)
		}
	}
	if err := r.n.Service.DeleteConversation(ctx, iso.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.Service.GetBlock(ctx, copyID); !fault.Is(err, fault.NotFound) {
		t.Errorf("the deleted conversation's block: %v; want not found", err)
	}
}

package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/pytool"
	"github.com/engram-dev/engram/service"
)

// TestRunStartsAheadOfTheDisk holds the log's fsync back while a message is
// sent (group commit, node.Config.BeforeSync). The agent's run starts on
// the input all the same — the model is asked while the input is not on
// disk, which is what spares a send one fsync round on its path — but
// nothing reaches a client before the disk has it: the sender hears
// nothing, a client's read of the agent's messages waits, the tool the
// model calls does not run, and the read models hold the input only for
// those who read ahead. Once the disk is released all of it goes through.
//
// It runs twice: with a sender that takes the tokens as the model writes
// them (a run's first report then waits for the disk), and with one that
// does not (the tool's own wait is what holds it back).
func TestRunStartsAheadOfTheDisk(t *testing.T) {
	for _, tokens := range []bool{true, false} {
		t.Run(map[bool]string{true: "tokens", false: "no tokens"}[tokens], func(t *testing.T) { runAheadOfTheDisk(t, tokens) })
	}
}

func runAheadOfTheDisk(t *testing.T, tokens bool) {
	ctx := context.Background()
	disk := newDiskHold()
	script := llmtest.NewServer(t)
	r := startRig(t, t.TempDir(), script, disk.edit)
	t.Cleanup(disk.free) // before the node's own cleanup, which waits for the disk
	a := r.agent(t)
	var toolRan atomic.Bool
	tool, err := r.n.AddGoTool(ctx, service.GoTool{Schema: pytool.Schema{Name: "ring_bell", Description: "Ring the bell."}},
		func(ctx context.Context, args json.RawMessage) (string, error) {
			toolRan.Store(true)
			return "rung", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.n.Service.AttachTool(ctx, a.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	modelGo := make(chan struct{}) // the model answers once the test watches the run
	script.Push(llmtest.Step{Hold: modelGo, Content: "Ring first.", ToolCalls: []agents.ToolCall{call("ring_bell", map[string]any{"request_heartbeat": true})}}, say("Rung, Ada."))
	asked := len(script.Requests())

	disk.hold()
	var heard atomic.Int32 // messages and tokens the sender heard while the disk was held
	type answer struct {
		resp api.LettaResponse
		err  error
	}
	sent := make(chan answer, 1)
	opts := service.SendOptions{
		UseAssistantMessage: true,
		OnMessage: func(api.LettaMessage) {
			if disk.held() {
				heard.Add(1)
			}
		},
	}
	if tokens {
		opts.OnDelta = func(agents.Delta) {
			if disk.held() {
				heard.Add(1)
			}
		}
	}
	go func() {
		resp, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "Ring the bell"}}, opts)
		sent <- answer{resp, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(script.Requests()) == asked {
		if time.Now().After(deadline) {
			t.Fatal("the model was not asked while the input's fsync was held: the run waited for the disk")
		}
		time.Sleep(time.Millisecond)
	}
	if got := script.Requests()[asked]; !strings.Contains(newestUser(got), "Ring the bell") {
		t.Fatalf("the model was asked %q, not the new message", newestUser(got))
	}
	// The read models hold the input, for those who read ahead only.
	var input string
	r.n.Projection.ReadAhead(func(st *projections.State) {
		if ag := st.Agents[events.AgentID(a.ID)]; ag != nil && len(ag.Messages) > 0 && ag.Messages[len(ag.Messages)-1].Input {
			input = ag.Messages[len(ag.Messages)-1].ID
		}
	})
	if input == "" {
		t.Fatal("the read models do not hold the input the run started on")
	}
	// Whoever watches the run on the bus (not only the sender, whose own
	// append waits for the disk) hears nothing yet, tokens included.
	var overheard atomic.Int32
	unwatch, err := r.n.NATS.WatchRun(r.n.Log.Tenant(), input, func([]byte) {
		if disk.held() {
			overheard.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unwatch()
	close(modelGo)
	listed := make(chan []api.LettaMessage, 1)
	go func() {
		msgs, err := r.n.Service.ListMessages(ctx, a.ID, api.Page{})
		if err != nil {
			t.Error(err)
		}
		listed <- msgs
	}()
	select {
	case <-sent:
		t.Fatal("the send was answered before its input was on disk")
	case <-listed:
		t.Fatal("a client's read returned while what it would show was not on disk")
	case <-time.After(300 * time.Millisecond):
	}
	if toolRan.Load() {
		t.Fatal("the tool ran for an input not yet on disk")
	}
	if n := overheard.Load(); n != 0 {
		t.Fatalf("the run reported %d times on the bus before its input was on disk", n)
	}

	disk.free()
	got := <-sent
	if got.err != nil {
		t.Fatal(got.err)
	}
	if n := heard.Load(); n != 0 {
		t.Fatalf("the sender heard %d messages or tokens while the disk was held", n)
	}
	if !toolRan.Load() {
		t.Fatal("the tool never ran")
	}
	if !slices.ContainsFunc(got.resp.Messages, func(m api.LettaMessage) bool {
		return m.MessageType == api.AssistantMessageType && m.Content != nil && strings.Contains(*m.Content, "Rung, Ada.")
	}) {
		t.Fatalf("the send's answer lacks the agent's reply: %+v", got.resp.Messages)
	}
	msgs := <-listed
	if !slices.ContainsFunc(msgs, func(m api.LettaMessage) bool {
		return m.MessageType == api.UserMessageType && m.Content != nil && strings.Contains(*m.Content, "Ring the bell")
	}) {
		t.Fatalf("the read that waited for the disk does not show the message: %+v", msgs)
	}
}

// TestIndexWaitsForTheDisk: the node's follower reads ahead of the disk,
// but the search index applies a passage only once it is on disk.
func TestIndexWaitsForTheDisk(t *testing.T) {
	ctx := context.Background()
	disk := newDiskHold()
	n := startAt(t, t.TempDir(), disk.edit, func(c *node.Config) {
		c.IndexLinger = -1 // the index applies what it is handed at once
	})
	defer n.Close(ctx)
	defer disk.free() // before the node closes, which waits for the disk
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{})
	if err != nil {
		t.Fatal(err)
	}
	before := n.Projection.Applied()
	disk.hold()
	inserted := make(chan error, 1)
	go func() {
		_, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "The lighthouse is painted red."})
		inserted <- err
	}()
	appliedPast(t, n, before, "the passage")
	time.Sleep(200 * time.Millisecond) // time enough for the index to apply it, were it allowed
	if got := n.IndexedSeq(); got > before {
		t.Fatalf("the index holds %d, past %d, the last event on disk", got, before)
	}
	disk.free()
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
	hits, err := n.Service.SearchArchival(ctx, a.ID, service.ArchivalQuery{Query: "lighthouse"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits.Results) != 1 {
		t.Fatalf("after the disk the search finds %d passages, want 1", len(hits.Results))
	}
}

// TestRefusalWaitsForTheDisk: a command is decided from the read models as
// they are, ahead of the disk, and an answer that appends nothing — here a
// refusal of an idempotency key reused for another request, judged from a
// write still on its way to the disk — waits until what it read is on
// disk: after a power failure that write might not exist.
func TestRefusalWaitsForTheDisk(t *testing.T) {
	ctx := context.Background()
	disk := newDiskHold()
	n := startAt(t, t.TempDir(), disk.edit)
	defer n.Close(ctx)
	defer disk.free()
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{MemoryBlocks: []api.CreateBlock{{Label: "human", Value: "?"}}})
	if err != nil {
		t.Fatal(err)
	}
	keyed := func(body string) context.Context {
		return service.WithRequestDigest(service.WithIdempotencyKey(ctx, "key-1"), func() string { return body })
	}
	before := n.Projection.Applied()
	disk.hold()
	first := make(chan error, 1)
	go func() {
		_, err := n.Service.UpdateAgentBlock(keyed("Ada"), a.ID, "human", api.UpdateBlock{Value: ptr("Ada")})
		first <- err
	}()
	appliedPast(t, n, before, "the update")
	second := make(chan error, 1)
	go func() {
		_, err := n.Service.UpdateAgentBlock(keyed("Bob"), a.ID, "human", api.UpdateBlock{Value: ptr("Bob")})
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("the reused key was answered (%v) while the write it names was not on disk", err)
	case <-time.After(200 * time.Millisecond):
	}
	disk.free()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; !fault.Is(err, fault.Unprocessable) {
		t.Fatalf("the reused key: %v, want a refusal", err)
	}
}

// diskHold holds the log's fsync rounds back while it is on: a node whose
// config it edits (group commit, node.Config.BeforeSync) acknowledges no
// write and syncs nothing until free.
type diskHold struct {
	on      atomic.Bool
	release chan struct{}
	once    sync.Once
}

func newDiskHold() *diskHold { return &diskHold{release: make(chan struct{})} }

// edit makes a node's config sync the log itself, through the hold.
func (d *diskHold) edit(c *node.Config) {
	c.SyncAlways = true // group commit: engram syncs the log itself
	c.BeforeSync = func() {
		if d.on.Load() {
			<-d.release
		}
	}
}

func (d *diskHold) hold()      { d.on.Store(true) }
func (d *diskHold) held() bool { return d.on.Load() }

// free lets the disk go on, for good; it may be called more than once.
func (d *diskHold) free() {
	d.once.Do(func() {
		d.on.Store(false)
		close(d.release)
	})
}

// appliedPast waits until n's read models apply past before, ahead of the
// disk: what names what they should apply.
func appliedPast(t *testing.T, n *node.Node, before events.Seq, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Projection.Applied() == before {
		if time.Now().After(deadline) {
			t.Fatalf("the read models never applied %s ahead of the disk", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A send that waits for its answer appends its input ahead of the disk
// (events.Batch.Ahead): the step's fsync covers the input too, so a send
// costs one fsync round, not two. (The answer still waits for both:
// TestRunStartsAheadOfTheDisk.)
func TestSendsInputRidesTheStepsFsync(t *testing.T) {
	var rounds atomic.Int32
	var counting atomic.Bool
	script := llmtest.NewServer(t)
	step := say("Hello, Ada.")
	script.SetDefault(&step)
	r := startRig(t, t.TempDir(), script, func(c *node.Config) {
		c.SyncAlways = true
		c.BeforeSync = func() {
			if counting.Load() {
				rounds.Add(1)
			}
		}
	})
	a := r.agent(t)
	send(t, r, a.ID, "warm up")
	const sends = 20
	counting.Store(true)
	for i := 0; i < sends; i++ {
		if resp := send(t, r, a.ID, fmt.Sprint("message ", i)); resp.Usage.StepCount != 1 {
			t.Fatalf("send %d ran %d steps", i, resp.Usage.StepCount)
		}
	}
	counting.Store(false)
	// A little slack for writes of the node's own (a log checkpoint).
	if got := rounds.Load(); got > sends+3 {
		t.Fatalf("%d sends took %d fsync rounds; want one each", sends, got)
	}
}

// A sender that stops waiting is told its message was accepted only once
// the input is on disk.
func TestStoppedSenderHearsAcceptedOnceOnDisk(t *testing.T) {
	disk := newDiskHold()
	script := llmtest.NewServer(t)
	r := startRig(t, t.TempDir(), script, disk.edit)
	t.Cleanup(disk.free)
	a := r.agent(t)
	modelGo := make(chan struct{})
	t.Cleanup(func() { close(modelGo) })
	script.Push(llmtest.Step{Hold: modelGo, Content: "Thinking.", ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": "hi"})}})
	before := r.n.Projection.Applied()
	disk.hold()
	ctx, cancel := context.WithCancel(context.Background())
	answered := make(chan error, 1)
	go func() {
		_, err := r.n.Service.SendMessage(ctx, a.ID, []service.Input{{Role: "user", Text: "hello"}}, service.SendOptions{UseAssistantMessage: true})
		answered <- err
	}()
	appliedPast(t, r.n, before, "the input")
	cancel()
	select {
	case err := <-answered:
		t.Fatalf("the stopped sender was answered (%v) while its input was not on disk", err)
	case <-time.After(300 * time.Millisecond):
	}
	disk.free()
	select {
	case err := <-answered:
		if err == nil || !strings.Contains(err.Error(), "accepted") {
			t.Fatalf("the stopped sender heard %v; want that its message was accepted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stopped sender was not answered once the disk was free")
	}
}

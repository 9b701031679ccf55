package service_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// Benchmarks of the agent step against an instant scripted model: engram's
// own time per step (p50, p99) and steps per second across many agents. The
// target is under 1 ms p50 of engram's own time.
//
//	go test ./service -run '^$' -bench Step -benchtime 200x
//
// One iteration is one SendMessage whose model reply is an immediate
// send_message, so it is one step but two appends to the event log: the
// user's message (appendInputs), then the step's batch (the assistant's
// call and the tool's return), each waited for in the projection. The
// fsync sub-benchmarks pay two fsyncs per iteration.
//
// Engram's own time is the wall time of SendMessage minus the wall time
// spent inside the model's Complete, measured by timedModel. That removes
// the loopback HTTP round trip to the scripted server (which runs in this
// process), the OpenAI SDK's JSON encoding and decoding, and engram's small
// llm adapter (agents.Request to SDK params and back), leaving the
// service: loading the context, compiling the system prompt, running the
// tool, deciding and appending events, and waiting for the projection.
//
// History: every SendMessage adds three messages to the agent's context
// (user, assistant, tool return), and each step loads every in-context
// message back from the log, so a step's cost grows with the history. That
// is realistic (a real agent's context grows until it is summarized at its
// context window), but a long run on one agent would measure ever longer
// histories and the result would depend on -benchtime. So an agent is
// retired after sendsPerAgent sends and the next iteration moves to a
// fresh one: the context holds between 0 and 3*sendsPerAgent messages
// besides the system message, ~100 on average, whatever b.N is. The
// agents are created before the timer starts. The scripted reply also
// reports a fixed, small token usage, so the growing request never trips
// the memory-pressure warning (which would chain a second step).

// sendsPerAgent is how many sends an agent gets before a fresh one takes
// over; see above.
const sendsPerAgent = 32

// timedModel is an agents.Model that calls the real provider and adds up
// the wall time spent inside Complete: in total, and in the accumulator
// registered for the send the request answers, so that each SendMessage
// knows its own model time even when many run at once. The step runs on
// the node's worker goroutine, not the caller's (the input travels through
// its partition consumer), so a context value would not reach Complete: the
// send is found by the token in its user message instead.
type timedModel struct {
	m     agents.Model
	total atomic.Int64 // nanoseconds inside Complete, all calls
	calls atomic.Int64
	sends sync.Map // token → *int64 nanoseconds
}

var _ agents.Model = (*timedModel)(nil)

func (t *timedModel) reset() {
	t.total.Store(0)
	t.calls.Store(0)
}

var sendToken = regexp.MustCompile(`send-token-[0-9]+`)

func (t *timedModel) Complete(ctx context.Context, req agents.Request) (agents.Response, error) {
	start := time.Now()
	resp, err := t.m.Complete(ctx, req)
	d := int64(time.Since(start))
	t.total.Add(d)
	t.calls.Add(1)
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			if acc, ok := t.sends.Load(sendToken.FindString(req.Messages[i].Content)); ok {
				atomic.AddInt64(acc.(*int64), d)
			}
			break
		}
	}
	return resp, err
}

var sendCount atomic.Int64

// stepRig is a node whose only model is an instant scripted one that always
// answers send_message, seen through a timedModel.
type stepRig struct {
	n     *node.Node
	model *timedModel
}

func startStepRig(b *testing.B, syncAlways bool, withMetrics ...bool) *stepRig {
	b.Helper()
	script := llmtest.NewServer(b)
	script.SetDefault(&llmtest.Step{
		Content:   "I should answer.",
		ToolCalls: []agents.ToolCall{call("send_message", map[string]any{"message": "ok"})},
		Usage:     agents.Usage{PromptTokens: 1000, CompletionTokens: 20, TotalTokens: 1020},
	})
	tm := &timedModel{m: llm.NewOpenAI(llm.OpenAIConfig{APIKey: "test", BaseURL: script.URL, MaxRetries: -1, Timeout: 5 * time.Second})}
	reg := llm.NewRegistry()
	reg.Add("openai", tm)
	handle := "openai/gpt-4o-mini"
	cfg := node.DefaultConfig(b.TempDir())
	cfg.SyncAlways = syncAlways
	if len(withMetrics) > 0 && withMetrics[0] {
		cfg.Metrics = metrics.New()
	}
	cfg.Service.Providers = reg
	cfg.Service.Models = []api.Model{{LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 8000, Handle: &handle}, Name: "gpt-4o-mini"}}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(context.Background()) })
	return &stepRig{n: n, model: tm}
}

// newAgents creates k agents like rig.agent does.
func (r *stepRig) newAgents(b *testing.B, k int) []string {
	b.Helper()
	limit := 200
	ids := make([]string, k)
	for i := range ids {
		a, err := r.n.Service.CreateAgent(context.Background(), api.CreateAgent{
			Model: ptr("openai/gpt-4o-mini"),
			MemoryBlocks: []api.CreateBlock{
				{Label: "persona", Value: "I am Sam.", Limit: &limit},
				{Label: "human", Value: "Name: Ada", Limit: &limit},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = a.ID
	}
	return ids
}

// sendTimed sends one message and returns the SendMessage's engram time
// (wall time minus time inside the model) and its model time.
func (r *stepRig) sendTimed(agentID string, i int) (engram, model time.Duration, err error) {
	var acc int64
	token := fmt.Sprint("send-token-", sendCount.Add(1))
	r.model.sends.Store(token, &acc)
	defer r.model.sends.Delete(token)
	start := time.Now()
	resp, err := r.n.Service.SendMessage(context.Background(), agentID, []service.Input{{Role: "user", Text: fmt.Sprint("message ", i, " ", token)}}, service.SendOptions{UseAssistantMessage: true})
	wall := time.Since(start)
	if err == nil && resp.Usage.StepCount != 1 {
		err = fmt.Errorf("send %d ran %d steps, want 1", i, resp.Usage.StepCount)
	}
	model = time.Duration(atomic.LoadInt64(&acc))
	if err == nil && model == 0 {
		err = fmt.Errorf("send %d: its model call was not seen", i)
	}
	return wall - model, model, err
}

// drive sends n messages from one goroutine, moving to the next of its
// agents every sendsPerAgent sends, and returns each send's engram time.
func (r *stepRig) drive(ids []string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		d, _, err := r.sendTimed(ids[i/sendsPerAgent], i)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// agentsFor is how many agents n sends need.
func agentsFor(n int) int { return max(1, (n+sendsPerAgent-1)/sendsPerAgent) }

// reportLatency reports the p50 and p99 of engram's own time per step, and
// the mean model time. Each step must have made exactly one model call.
func reportLatency(b *testing.B, ds []time.Duration, model *timedModel) {
	if len(ds) == 0 {
		return
	}
	if c := model.calls.Load(); c != int64(len(ds)) {
		b.Fatalf("%d model calls for %d steps", c, len(ds))
	}
	slices.Sort(ds)
	pct := func(p float64) float64 {
		i := int(float64(len(ds))*p+0.999999) - 1
		return float64(ds[min(max(i, 0), len(ds)-1)]) / float64(time.Microsecond)
	}
	b.ReportMetric(pct(0.50), "engram-µs-p50")
	b.ReportMetric(pct(0.99), "engram-µs-p99")
	b.ReportMetric(float64(model.total.Load())/float64(time.Microsecond)/float64(len(ds)), "model-µs/op")
}

// BenchmarkStep runs one agent at a time, one step per iteration, with a
// relaxed log (no fsync per event) and with fsync on; relaxed+metrics
// records every series, as a server does.
func BenchmarkStep(b *testing.B) {
	for _, mode := range []struct {
		name    string
		sync    bool
		metrics bool
	}{{"relaxed", false, false}, {"relaxed+metrics", false, true}, {"fsync", true, false}} {
		b.Run(mode.name, func(b *testing.B) {
			r := startStepRig(b, mode.sync, mode.metrics)
			ids := r.newAgents(b, agentsFor(b.N))
			r.model.reset()
			b.ReportAllocs()
			b.ResetTimer()
			ds, err := r.drive(ids, b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportLatency(b, ds, r.model)
		})
	}
}

// BenchmarkStepsParallel keeps 1, 16 and 100 agents busy at once, each
// driven by its own goroutine, b.N steps spread over them, on a relaxed
// log. steps/s is the whole throughput, model round trips included: the
// scripted server runs in this process and competes for the same CPUs, as
// does every other goroutine, so under load the engram-own times also
// include waiting for a CPU.
func BenchmarkStepsParallel(b *testing.B) {
	for _, busy := range []int{1, 16, 100} {
		b.Run(fmt.Sprintf("agents=%d", busy), func(b *testing.B) {
			r := startStepRig(b, false)
			shares := make([]int, busy) // sends per goroutine
			ids := make([][]string, busy)
			for g := range shares {
				shares[g] = b.N / busy
				if g < b.N%busy {
					shares[g]++
				}
				if shares[g] > 0 {
					ids[g] = r.newAgents(b, agentsFor(shares[g]))
				}
			}
			results := make([][]time.Duration, busy)
			errs := make([]error, busy)
			var wg sync.WaitGroup
			r.model.reset()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for g := range shares {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[g], errs[g] = r.drive(ids[g], shares[g])
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			var all []time.Duration
			for g := range results {
				if errs[g] != nil {
					b.Fatal(errs[g])
				}
				all = append(all, results[g]...)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "steps/s")
			reportLatency(b, all, r.model)
		})
	}
}

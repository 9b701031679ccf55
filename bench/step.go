package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
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
	"github.com/engram-dev/engram/runner"
	"github.com/engram-dev/engram/service"
)

// The step workload, and BenchmarkStep and BenchmarkStepsParallel, which
// run the same rig under go test:
//
// One send is one SendMessage whose model reply is an immediate
// send_message, so it is one step but two appends to the event log: the
// user's message, then the step's batch (the assistant's call and the
// tool's return), each waited for in the projection. With fsync on, a send
// pays two fsync rounds, the input's beside the model call (the run starts
// on the input ahead of the disk, bus.Log.Ahead) and the step's after it.
//
// Engram's own time is the wall time of SendMessage minus the wall time
// spent inside the model's Complete, measured by timedModel. That removes
// the loopback HTTP round trip to the scripted server (which runs in this
// process), the OpenAI SDK's JSON encoding and decoding, and engram's small
// llm adapter, leaving the service: loading the context, compiling the
// system prompt, running the tool, deciding and appending events, and
// waiting for the projection.
//
// History: every send adds three messages to the agent's context (user,
// assistant, tool return), and each step loads every in-context message
// back from the log, so a step's cost grows with the history. A long run on
// one agent would measure ever longer histories, and the figure would
// depend on the run's length; so an agent is retired after sendsPerAgent
// sends and the next send moves to a fresh one, created before timing
// starts. The scripted reply reports a fixed, small token usage, so the
// growing request never trips the memory-pressure warning (which would
// chain a second step).

// sendsPerAgent bounds an agent's history: after this many sends the next
// one moves to a fresh agent, so the context holds ~50 messages on average
// whatever the run's length.
const sendsPerAgent = 32

// timedModel calls the real provider (the scripted server over loopback
// HTTP, through the OpenAI SDK) and adds the wall time spent inside
// Complete, and the call, to the sendTime registered for the send. The step
// runs on the node's worker goroutine, not the sender's (the input travels
// through its partition consumer), so a context value would not reach
// Complete: the send is found by a token in its user message, the last user
// message of the request.
type timedModel struct {
	m     agents.Model
	sends sync.Map // token → *sendTime
}

// sendTime is what the model saw of one send.
type sendTime struct {
	ns    atomic.Int64 // inside Complete
	calls atomic.Int64
}

var tokenRE = regexp.MustCompile(`bench-token-[0-9]+`)

func (t *timedModel) Complete(ctx context.Context, req agents.Request) (agents.Response, error) {
	start := time.Now()
	resp, err := t.m.Complete(ctx, req)
	d := int64(time.Since(start))
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		if st, ok := t.sends.Load(tokenRE.FindString(req.Messages[i].Content)); ok {
			st.(*sendTime).ns.Add(d)
			st.(*sendTime).calls.Add(1)
		}
		break
	}
	return resp, err
}

var sendSeq atomic.Int64

// cleanupTB lets llmtest.NewServer, which wants a testing.TB for its
// cleanup, run outside a test: it implements only Helper and Cleanup,
// the two methods NewServer calls.
type cleanupTB struct {
	testing.TB
	fns []func()
}

func (c *cleanupTB) Helper()          {}
func (c *cleanupTB) Cleanup(f func()) { c.fns = append(c.fns, f) }
func (c *cleanupTB) close() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
}

// stepRig is a node in dir whose only model is an instant scripted one that
// always answers send_message, seen through a timedModel.
type stepRig struct {
	n     *node.Node
	model *timedModel
	tb    *cleanupTB
}

// startStepRig starts the rig: fsync per append if syncAlways, and every
// metrics series recorded (as a server does) if withMetrics.
func startStepRig(ctx context.Context, dir string, syncAlways, withMetrics bool) (*stepRig, error) {
	tb := &cleanupTB{}
	script := llmtest.NewServer(tb)
	args, _ := json.Marshal(map[string]any{"message": "ok"})
	script.SetDefault(&llmtest.Step{
		Content:   "I should answer.",
		ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: string(args)}},
		Usage:     agents.Usage{PromptTokens: 1000, CompletionTokens: 20, TotalTokens: 1020},
	})
	tm := &timedModel{m: llm.NewOpenAI(llm.OpenAIConfig{APIKey: "bench", BaseURL: script.URL, MaxRetries: -1, Timeout: 30 * time.Second})}
	reg := llm.NewRegistry()
	reg.Add("openai", tm)
	handle := "openai/gpt-4o-mini"
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = syncAlways
	if withMetrics {
		cfg.Metrics = metrics.New()
	}
	cfg.Service.Providers = reg
	cfg.Service.Models = []api.Model{{LLMConfig: api.LLMConfig{Model: "gpt-4o-mini", ModelEndpointType: "openai", ContextWindow: 8000, Handle: &handle}, Name: "gpt-4o-mini"}}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		tb.close()
		return nil, err
	}
	return &stepRig{n: n, model: tm, tb: tb}, nil
}

func (r *stepRig) close() {
	r.n.Close(context.Background())
	r.tb.close()
}

func (r *stepRig) newAgents(ctx context.Context, k int) ([]string, error) {
	limit := 200
	model, memgpt := "openai/gpt-4o-mini", "memgpt_agent"
	ids := make([]string, k)
	for i := range ids {
		a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{
			Model:     &model,
			AgentType: &memgpt, // the bench's scripts speak the MemGPT loop
			MemoryBlocks: []api.CreateBlock{
				{Label: "persona", Value: "I am Sam.", Limit: &limit},
				{Label: "human", Value: "Name: Ada", Limit: &limit},
			},
		})
		if err != nil {
			return nil, err
		}
		ids[i] = a.ID
	}
	return ids, nil
}

// drive sends n messages one after another over its agents and returns
// each send's engram time (wall time minus time inside the model) and
// model time. A send that is not exactly one step and one model call is an
// error: the figures would mean something else.
func (r *stepRig) drive(ctx context.Context, ids []string, n int) (eng, model latencies, err error) {
	for i := 0; i < n; i++ {
		var st sendTime
		token := fmt.Sprint("bench-token-", sendSeq.Add(1))
		r.model.sends.Store(token, &st)
		start := time.Now()
		resp, err := r.n.Service.SendMessage(ctx, ids[i/sendsPerAgent], []service.Input{{Role: "user", Text: "message " + token}}, service.SendOptions{UseAssistantMessage: true})
		wall := time.Since(start)
		r.model.sends.Delete(token)
		if c := st.calls.Load(); c != 1 && err == nil {
			err = fmt.Errorf("send %d made %d model calls, want 1", i, c)
		}
		if err != nil {
			return eng, model, err
		}
		if resp.Usage.StepCount != 1 {
			return eng, model, fmt.Errorf("send %d ran %d steps, want 1", i, resp.Usage.StepCount)
		}
		m := time.Duration(st.ns.Load())
		eng = append(eng, wall-m)
		model = append(model, m)
	}
	return eng, model, nil
}

func agentsFor(n int) int { return max(1, (n+sendsPerAgent-1)/sendsPerAgent) }

// busyAgents spreads total sends over k senders and creates the agents each
// needs; ids[g] are sender g's agents, shares[g] its sends.
func (r *stepRig) busyAgents(ctx context.Context, k, total int) (ids [][]string, shares []int, err error) {
	shares = make([]int, k)
	ids = make([][]string, k)
	for g := range shares {
		shares[g] = total / k
		if g < total%k {
			shares[g]++
		}
		if shares[g] > 0 {
			if ids[g], err = r.newAgents(ctx, agentsFor(shares[g])); err != nil {
				return nil, nil, err
			}
		}
	}
	return ids, shares, nil
}

// driveBusy runs the senders of busyAgents at once, each on its own
// goroutine, and returns every send's engram and model time and the wall
// time of the whole.
func (r *stepRig) driveBusy(ctx context.Context, ids [][]string, shares []int) (eng, model latencies, took time.Duration, err error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := time.Now()
	for g := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, m, gerr := r.drive(ctx, ids[g], shares[g])
			mu.Lock()
			defer mu.Unlock()
			eng, model = append(eng, e...), append(model, m...)
			if gerr != nil && err == nil {
				err = gerr
			}
		}()
	}
	wg.Wait()
	return eng, model, time.Since(start), err
}

// runStep measures the agent step: engram's own time per step, one agent
// at a time, relaxed and with fsync; then steps per second with 1, 16, 100
// and 1,000 agents busy at once (relaxed; --quick stops at 100).
func runStep(ctx context.Context, env *Env) ([]Row, error) {
	single := map[bool]int{false: 600, true: 600}
	counts := []int{1, 16, 100, 1000}
	busy := map[int]int{1: 200, 16: 800, 100: 1500, 1000: 3000}
	if env.Quick {
		single = map[bool]int{false: 20, true: 10}
		counts = counts[:3]
		busy = map[int]int{1: 10, 16: 32, 100: 100}
	}
	var rows []Row
	for _, sync := range []bool{false, true} {
		name := "relaxed"
		if sync {
			name = "fsync"
		}
		dir, err := env.Dir()
		if err != nil {
			return rows, err
		}
		r, err := startStepRig(ctx, dir, sync, false)
		if err != nil {
			return rows, err
		}
		n := single[sync]
		ids, err := r.newAgents(ctx, agentsFor(n))
		if err != nil {
			r.close()
			return rows, err
		}
		before, err := r.n.Log.Stats(ctx)
		if err != nil {
			r.close()
			return rows, err
		}
		eng, model, err := r.drive(ctx, ids, n)
		after, serr := r.n.Log.Stats(ctx)
		r.close()
		if err == nil {
			err = serr
		}
		if err != nil {
			return rows, err
		}
		// What one step writes to the log (its input and its step, as
		// stored: headers and JetStream's record framing included).
		stepBytes := int((after.Bytes - before.Bytes) / uint64(n))
		p50 := eng.pct(.5)
		row := Row{
			What:     fmt.Sprintf("agent step, instant scripted model, %s: engram's own time (wall − time inside the model call), p50 / p99", name),
			Engram:   fmt.Sprintf("%s / %s", dur(p50), dur(eng.pct(.99))),
			Baseline: fmt.Sprintf("the model call itself (loopback HTTP + OpenAI SDK + scripted server): p50 %s", dur(model.pct(.5))),
			Ratio:    "—",
			Target:   verdict("p50 < 1 ms", p50 < time.Millisecond),
			Note:     fmt.Sprintf("%d sends, one step each (user message + step: two appends); ≤ %d sends per agent", n, sendsPerAgent),
			Metrics:  map[string]float64{"engram_p50_us": us(p50), "engram_p99_us": us(eng.pct(.99)), "model_p50_us": us(model.pct(.5)), "steps": float64(n)},
		}
		if sync {
			// The floor of a durable step: one fsync on the same disk, now,
			// after a 300-byte write (the target's baseline) and after a
			// write of the bytes one step appends (the same floor for what a
			// step writes; for information, not the verdict).
			fs, err := bareFsyncs(dir, n, []int{300, stepBytes})
			if err != nil {
				return rows, err
			}
			f50, fb50 := fs[0].pct(.5), fs[1].pct(.5)
			row.Baseline += fmt.Sprintf("; a bare fsync in the same directory after a 300-byte write: p50 %s; after a %d-byte write (what one step appends to the log): p50 %s", dur(f50), stepBytes, dur(fb50))
			row.Ratio = fmt.Sprintf("%s over one fsync (%s over the fsync of a step's bytes)", dur(p50-f50), dur(p50-fb50))
			row.Target = verdict("p50 < one fsync + 0.5 ms", p50 < f50+500*time.Microsecond)
			row.Metrics["fsync_p50_us"] = us(f50)
			row.Metrics["fsync_step_bytes_p50_us"] = us(fb50)
			row.Metrics["step_bytes"] = float64(stepBytes)
		}
		rows = append(rows, row)
	}
	for _, k := range counts {
		dir, err := env.Dir()
		if err != nil {
			return rows, err
		}
		r, err := startStepRig(ctx, dir, false, false)
		if err != nil {
			return rows, err
		}
		total := busy[k]
		ids, shares, err := r.busyAgents(ctx, k, total)
		if err != nil {
			r.close()
			return rows, err
		}
		all, allModel, took, err := r.driveBusy(ctx, ids, shares)
		r.close()
		if err != nil {
			return rows, err
		}
		sps := float64(total) / took.Seconds()
		rows = append(rows, Row{
			What:     fmt.Sprintf("steps per second, %d agent(s) busy at once (relaxed), model round trips included", k),
			Engram:   fmt.Sprintf("%s (engram time p50 %s, p99 %s)", rate(sps, "steps/s"), dur(all.pct(.5)), dur(all.pct(.99))),
			Baseline: fmt.Sprintf("model call p50 %s", dur(allModel.pct(.5))),
			Ratio:    "—",
			Target:   "—",
			Note:     busyNote(k, total),
			Metrics:  map[string]float64{"steps_per_s": sps, "engram_p50_us": us(all.pct(.5)), "engram_p99_us": us(all.pct(.99)), "busy_agents": float64(k)},
		})
	}
	return rows, nil
}

// busyNote says what a busy-agents row ran and what bounds it.
func busyNote(k, total int) string {
	note := fmt.Sprintf("%d steps; the scripted model shares the CPUs, so under load engram time includes waiting for a CPU", total)
	if k > runner.DefaultMaxRuns {
		note += fmt.Sprintf("; at most %d agents run at once (--max-runs), the others wait their turn, so their time includes the wait", runner.DefaultMaxRuns)
	}
	return note
}

// bareFsyncs times appends to files in dir, each followed by an fsync:
// the disk's floor for a durable write, measured beside the step. For each
// size it makes n appends of that many bytes to a file of its own, taking
// the sizes in turn so that they share the disk's moods alike.
func bareFsyncs(dir string, n int, sizes []int) ([]latencies, error) {
	files := make([]*os.File, len(sizes))
	for i := range files {
		f, err := os.CreateTemp(dir, "fsync-*")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		files[i] = f
	}
	bufs := make([][]byte, len(sizes))
	for i, size := range sizes {
		bufs[i] = make([]byte, max(size, 1))
	}
	out := make([]latencies, len(sizes))
	for j := 0; j < n; j++ {
		for i, f := range files {
			t := time.Now()
			if _, err := f.Write(bufs[i]); err != nil {
				return nil, err
			}
			if err := f.Sync(); err != nil {
				return nil, err
			}
			out[i] = append(out[i], time.Since(t))
		}
	}
	return out, nil
}

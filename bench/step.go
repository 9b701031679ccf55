package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// sendsPerAgent bounds an agent's history: after this many sends the next
// one moves to a fresh agent, so the context holds ~50 messages on average
// whatever the run's length (as service's BenchmarkStep does).
const sendsPerAgent = 32

// timedModel calls the real provider (the scripted server over loopback
// HTTP, through the OpenAI SDK) and adds the wall time spent inside
// Complete to the accumulator registered for the send. The step runs on the
// node's worker goroutine, not the sender's, so the send is found by a token
// in its user message, the last user message of the request.
type timedModel struct {
	m     agents.Model
	sends sync.Map // token → *int64 nanoseconds
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
		if acc, ok := t.sends.Load(tokenRE.FindString(req.Messages[i].Content)); ok {
			atomic.AddInt64(acc.(*int64), d)
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

type stepRig struct {
	n     *node.Node
	model *timedModel
	tb    *cleanupTB
}

func startStepRig(ctx context.Context, env *Env, syncAlways bool) (*stepRig, error) {
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
	dir, err := env.Dir()
	if err != nil {
		tb.close()
		return nil, err
	}
	handle := "openai/gpt-4o-mini"
	cfg := node.DefaultConfig(dir)
	cfg.SyncAlways = syncAlways
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
	model := "openai/gpt-4o-mini"
	ids := make([]string, k)
	for i := range ids {
		a, err := r.n.Service.CreateAgent(ctx, api.CreateAgent{
			Model: &model,
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
// model time.
func (r *stepRig) drive(ctx context.Context, ids []string, n int) (eng, model latencies, err error) {
	for i := 0; i < n; i++ {
		var acc int64
		token := fmt.Sprint("bench-token-", sendSeq.Add(1))
		r.model.sends.Store(token, &acc)
		start := time.Now()
		resp, err := r.n.Service.SendMessage(ctx, ids[i/sendsPerAgent], []service.Input{{Role: "user", Text: "message " + token}}, service.SendOptions{UseAssistantMessage: true})
		wall := time.Since(start)
		r.model.sends.Delete(token)
		if atomic.LoadInt64(&acc) == 0 && err == nil {
			err = fmt.Errorf("send %d: no model call was seen for it", i)
		}
		if err != nil {
			return eng, model, err
		}
		if resp.Usage.StepCount != 1 {
			return eng, model, fmt.Errorf("send %d ran %d steps, want 1", i, resp.Usage.StepCount)
		}
		m := time.Duration(atomic.LoadInt64(&acc))
		eng = append(eng, wall-m)
		model = append(model, m)
	}
	return eng, model, nil
}

func agentsFor(n int) int { return max(1, (n+sendsPerAgent-1)/sendsPerAgent) }

// runStep measures the agent step: engram's own time per step, one agent
// at a time, relaxed and with fsync; then steps per second with 1, 16 and
// 100 agents busy at once (relaxed).
func runStep(ctx context.Context, env *Env) ([]Row, error) {
	single := map[bool]int{false: 300, true: 150}
	busy := map[int]int{1: 200, 16: 800, 100: 1500}
	if env.Quick {
		single = map[bool]int{false: 20, true: 10}
		busy = map[int]int{1: 10, 16: 32, 100: 100}
	}
	var rows []Row
	for _, sync := range []bool{false, true} {
		name := "relaxed"
		if sync {
			name = "fsync"
		}
		r, err := startStepRig(ctx, env, sync)
		if err != nil {
			return rows, err
		}
		n := single[sync]
		ids, err := r.newAgents(ctx, agentsFor(n))
		if err != nil {
			r.close()
			return rows, err
		}
		eng, model, err := r.drive(ctx, ids, n)
		r.close()
		if err != nil {
			return rows, err
		}
		p50 := eng.pct(.5)
		rows = append(rows, Row{
			What:     fmt.Sprintf("agent step, instant scripted model, %s: engram's own time (wall − time inside the model call), p50 / p99", name),
			Engram:   fmt.Sprintf("%s / %s", dur(p50), dur(eng.pct(.99))),
			Baseline: fmt.Sprintf("the model call itself (loopback HTTP + OpenAI SDK + scripted server): p50 %s", dur(model.pct(.5))),
			Ratio:    "—",
			Target:   verdict("p50 < 1 ms", p50 < time.Millisecond),
			Note:     fmt.Sprintf("%d sends, one step each (user message + step: two appends); ≤ %d sends per agent", n, sendsPerAgent),
			Metrics:  map[string]float64{"engram_p50_us": us(p50), "engram_p99_us": us(eng.pct(.99)), "model_p50_us": us(model.pct(.5)), "steps": float64(n)},
		})
	}
	for _, k := range []int{1, 16, 100} {
		r, err := startStepRig(ctx, env, false)
		if err != nil {
			return rows, err
		}
		total := busy[k]
		shares := make([]int, k)
		ids := make([][]string, k)
		for g := range shares {
			shares[g] = total / k
			if g < total%k {
				shares[g]++
			}
			if ids[g], err = r.newAgents(ctx, agentsFor(shares[g])); err != nil {
				r.close()
				return rows, err
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var all, allModel latencies
		var firstErr error
		start := time.Now()
		for g := range shares {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e, m, err := r.drive(ctx, ids[g], shares[g])
				mu.Lock()
				defer mu.Unlock()
				all, allModel = append(all, e...), append(allModel, m...)
				if err != nil && firstErr == nil {
					firstErr = err
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		r.close()
		if firstErr != nil {
			return rows, firstErr
		}
		sps := float64(total) / took.Seconds()
		rows = append(rows, Row{
			What:     fmt.Sprintf("steps per second, %d agent(s) busy at once (relaxed), model round trips included", k),
			Engram:   fmt.Sprintf("%s (engram time p50 %s, p99 %s)", rate(sps, "steps/s"), dur(all.pct(.5)), dur(all.pct(.99))),
			Baseline: fmt.Sprintf("model call p50 %s", dur(allModel.pct(.5))),
			Ratio:    "—",
			Target:   "—",
			Note:     fmt.Sprintf("%d steps; the scripted model shares the CPUs, so under load engram time includes waiting for a CPU", total),
			Metrics:  map[string]float64{"steps_per_s": sps, "engram_p50_us": us(all.pct(.5)), "engram_p99_us": us(all.pct(.99)), "busy_agents": float64(k)},
		})
	}
	return rows, nil
}

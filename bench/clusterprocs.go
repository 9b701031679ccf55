package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/freeport"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/verify"
)

// The cluster workload's rows that need real server processes: REST write
// throughput over three nodes against one node, and failover from a
// SIGKILL. They run `engram server` processes (Options.Server) on
// loopback, each with a scripted model (an llmtest server in this process)
// that answers every call with send_message.

// srvProc is one `engram server` child process.
type srvProc struct {
	name string
	url  string // REST, http://host:port
	argv []string
	env  []string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// start runs the process and waits until its health says it serves (on a
// cluster member: with a quorum).
func (p *srvProc) start(ctx context.Context) error {
	p.cmd = exec.Command(p.argv[0], p.argv[1:]...)
	p.cmd.Env = append(os.Environ(), p.env...)
	var out bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &limited{b: &out, n: 16 << 10}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start: %s", p.name, out.String())
		case <-ctx.Done():
			p.kill()
			return ctx.Err()
		default:
		}
		if code, _, err := call(client, "GET", p.url+"/v1/health/", nil); err == nil && code == 200 {
			return nil
		}
	}
	p.kill()
	return fmt.Errorf("%s did not serve within 90 s: %s", p.name, out.String())
}

// kill ends the process with SIGKILL and waits for it.
func (p *srvProc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// stop ends the process with SIGTERM (SIGKILL after 20 s) and waits.
func (p *srvProc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// limited keeps the first n bytes written to it.
type limited struct {
	mu sync.Mutex
	b  *bytes.Buffer
	n  int
}

func (l *limited) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// call sends one JSON request and reads the whole answer.
func call(client *http.Client, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// procRig is a set of server processes and the scripted model they share.
type procRig struct {
	procs  []*srvProc
	script *llmtest.Server
	tb     *cleanupTB
}

func (r *procRig) close() {
	var wg sync.WaitGroup
	for _, p := range r.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	r.tb.close()
}

// startProcs starts n servers: a cluster of n (n > 1) or one server alone,
// fsync relaxed, each with its own API key for the scripted model
// ("bench-n1", ...) so that a model call tells which node made it.
func startProcs(ctx context.Context, env *Env, n int) (*procRig, error) {
	tb := &cleanupTB{}
	script := llmtest.NewServer(tb)
	args, _ := json.Marshal(map[string]any{"message": "ok"})
	script.SetDefault(&llmtest.Step{Content: "answering", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: string(args)}}})
	rig := &procRig{script: script, tb: tb}
	ports, err := freeport.Take(2 * n)
	if err != nil {
		tb.close()
		return nil, err
	}
	base, err := env.Dir()
	if err != nil {
		tb.close()
		return nil, err
	}
	key := filepath.Join(base, verify.KeyFile)
	if _, _, err := verify.LoadOrCreateKey(key); err != nil {
		tb.close()
		return nil, err
	}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		argv := append(append([]string(nil), env.Server...), "--node-name", name, "--data-dir", filepath.Join(base, name),
			"--http-addr", fmt.Sprintf("127.0.0.1:%d", ports[i]), "--nats-addr", "", "--log-key-file", key, "--sync", "relaxed")
		if n > 1 {
			argv = append(argv, "--cluster-addr", fmt.Sprintf("127.0.0.1:%d", ports[n+i]), "--peers", strings.Join(peers, ","))
		}
		rig.procs = append(rig.procs, &srvProc{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", ports[i]), argv: argv,
			env: []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=bench-" + name, "ANTHROPIC_API_KEY="}})
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range rig.procs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		rig.close()
		return nil, err
	}
	return rig, nil
}

// newAgents creates n agents through url.
func (r *procRig) newAgents(url string, n int) ([]string, error) {
	client := &http.Client{Timeout: 60 * time.Second}
	var ids []string
	for i := range n {
		code, b, err := call(client, "POST", url+"/v1/agents/", map[string]any{
			"name": fmt.Sprintf("bench-%d", i), "agent_type": "memgpt_agent",
			"llm_config": map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
		})
		if err != nil || code != 200 {
			return nil, fmt.Errorf("create agent: %d %s %v", code, b, err)
		}
		var a api.AgentState
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, err
		}
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// writeLoad has clients write archival passages for d, client i through
// node i modulo the live nodes and to agent i modulo the agents, and
// counts the writes acknowledged and the others.
func writeLoad(ctx context.Context, urls []string, agentIDs []string, clients int, d time.Duration) (ok, failed int64) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			url, agent := urls[c%len(urls)], agentIDs[c%len(agentIDs)]
			for k := 0; time.Now().Before(end) && ctx.Err() == nil; k++ {
				code, _, err := call(client, "POST", url+"/v1/agents/"+agent+"/archival-memory", map[string]any{"text": fmt.Sprintf("client %d write %d", c, k)})
				if err == nil && code == 200 {
					atomic.AddInt64(&ok, 1)
				} else {
					atomic.AddInt64(&failed, 1)
				}
			}
		}()
	}
	wg.Wait()
	return ok, failed
}

// runClusterProcs measures REST write throughput at 16 clients over three
// server processes against one, and failover over kills of the event
// stream's leader (SIGKILL): to the first write acknowledged that was sent
// after the kill, and to the answer of a message sent, after the kill, to
// an agent the killed node owned.
func runClusterProcs(ctx context.Context, env *Env) ([]Row, error) {
	if len(env.Server) == 0 {
		return nil, nil // not from `engram bench`: no server command to run
	}
	const clients = 16
	d, kills := 10*time.Second, 5
	if env.Quick {
		d, kills = 2*time.Second, 1
	}
	// One node alone first, then three.
	one, err := startProcs(ctx, env, 1)
	if err != nil {
		return nil, fmt.Errorf("one node: %w", err)
	}
	ids, err := one.newAgents(one.procs[0].url, clients)
	if err != nil {
		one.close()
		return nil, err
	}
	writeLoad(ctx, []string{one.procs[0].url}, ids, clients, d/5) // warm up
	okOne, failOne := writeLoad(ctx, []string{one.procs[0].url}, ids, clients, d)
	one.close()

	rig, err := startProcs(ctx, env, 3)
	if err != nil {
		return nil, fmt.Errorf("three nodes: %w", err)
	}
	defer rig.close()
	if ids, err = rig.newAgents(rig.procs[0].url, clients); err != nil {
		return nil, err
	}
	urls := []string{rig.procs[0].url, rig.procs[1].url, rig.procs[2].url}
	writeLoad(ctx, urls, ids, clients, d/5)
	okThree, failThree := writeLoad(ctx, urls, ids, clients, d)
	perSec := func(n int64) float64 { return float64(n) / d.Seconds() }
	ratio := perSec(okThree) / perSec(okOne)
	rows := []Row{{
		What:     fmt.Sprintf("REST writes (archival inserts) at %d clients spread over three nodes (R3, relaxed fsync; separate processes)", clients),
		Engram:   fmt.Sprintf("%.0f writes/s", perSec(okThree)),
		Baseline: fmt.Sprintf("the same %d clients on one node alone (R1): %.0f writes/s", clients, perSec(okOne)),
		Ratio:    fmt.Sprintf("%.2f×", ratio),
		Target:   "—",
		Note:     fmt.Sprintf("%s each, one agent a client; not acknowledged: %d (three), %d (one)", d, failThree, failOne),
		Metrics:  map[string]float64{"three_writes_per_s": perSec(okThree), "one_writes_per_s": perSec(okOne), "ratio": ratio},
	}}

	writesBack, answered, err := rig.failovers(ctx, ids, kills)
	if err != nil {
		return rows, err
	}
	rows = append(rows, Row{
		What:     fmt.Sprintf("failover: the stream leader's process SIGKILLed → the first write sent after it acknowledged, over %d kills: p50 (max)", len(writesBack)),
		Engram:   fmt.Sprintf("%s (%s)", dur(writesBack.pct(.5)), dur(writesBack.pct(1))),
		Baseline: "—", Ratio: "—", Target: "—",
		Note:    "writers on the two survivors; JetStream elects a new stream leader",
		Metrics: map[string]float64{"writes_back_p50_s": writesBack.pct(.5).Seconds(), "writes_back_max_s": writesBack.pct(1).Seconds()},
	}, Row{
		What:     fmt.Sprintf("failover: the same kill → a message sent then, on a survivor, to an agent the killed node owned, answered, over %d kills: p50 (max)", len(answered)),
		Engram:   fmt.Sprintf("%s (%s)", dur(answered.pct(.5)), dur(answered.pct(1))),
		Baseline: "—", Ratio: "—", Target: "—",
		Note:    "the survivors pull the dead node's partitions once it is 3 s silent (its pins time out after 5 s)",
		Metrics: map[string]float64{"agent_answered_p50_s": answered.pct(.5).Seconds(), "agent_answered_max_s": answered.pct(1).Seconds()},
	})
	return rows, nil
}

// health reads a node's health (code 0 when it does not answer).
func health(url string) (int, api.Health) {
	var h api.Health
	code, b, err := call(&http.Client{Timeout: 3 * time.Second}, "GET", url+"/v1/health/", nil)
	if err != nil {
		return 0, h
	}
	json.Unmarshal(b, &h)
	return code, h
}

// settled waits until every node serves with a quorum and each pulls
// some of the partitions, and returns which node pulls each partition.
func (r *procRig) settled(ctx context.Context) (map[string]string, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(250 * time.Millisecond) {
		ok := true
		for _, p := range r.procs {
			if code, _ := health(p.url); code != 200 {
				ok = false
			}
		}
		if !ok {
			last = "a node is not healthy"
			continue
		}
		code, b, err := call(client, "GET", r.procs[0].url+"/v1/cluster", nil)
		if err != nil || code != 200 {
			last = fmt.Sprintf("cluster status: %d %v", code, err)
			continue
		}
		var st api.ClusterStatus
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, err
		}
		per := map[string]int{}
		for _, o := range st.Owners {
			per[o]++
		}
		if len(st.Owners) == bus.Partitions && len(per) == len(r.procs) {
			return st.Owners, nil
		}
		last = fmt.Sprintf("partitions pulled: %v", per)
	}
	return nil, fmt.Errorf("the cluster did not settle in 90 s: %s", last)
}

// failovers kills the event stream's leader kills times, restarting it
// after each, and measures the time from each kill to the first write
// acknowledged that was sent after it, and to the answer to a message
// sent after it to an agent the killed node owned.
func (r *procRig) failovers(ctx context.Context, ids []string, kills int) (writesBack, answered latencies, err error) {
	for k := range kills {
		owners, err := r.settled(ctx)
		if err != nil {
			return writesBack, answered, err
		}
		victim := -1
		for i, p := range r.procs {
			if _, h := health(p.url); h.StreamLeader {
				victim = i
			}
		}
		if victim < 0 {
			return writesBack, answered, errors.New("failover: no node says it leads the event stream")
		}
		agent := ""
		for _, id := range ids {
			if owners[fmt.Sprintf("%02x", bus.Partition(id))] == r.procs[victim].name {
				agent = id
				break
			}
		}
		var live []string
		for i, p := range r.procs {
			if i != victim {
				live = append(live, p.url)
			}
		}
		// Writers on the survivors, each recording when its writes were sent.
		var (
			mu      sync.Mutex
			firstOK time.Time
			killed  time.Time
			stop    = make(chan struct{})
			wg      sync.WaitGroup
		)
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 30 * time.Second}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					sent := time.Now()
					code, _, err := call(client, "POST", live[c%len(live)]+"/v1/agents/"+ids[c]+"/archival-memory", map[string]any{"text": fmt.Sprintf("failover %d client %d write %d", k, c, n)})
					if err != nil || code != 200 {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					mu.Lock()
					if !killed.IsZero() && sent.After(killed) && firstOK.IsZero() {
						firstOK = time.Now()
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Second)
		mu.Lock()
		killed = time.Now()
		mu.Unlock()
		r.procs[victim].kill()
		var answer time.Duration
		if agent != "" {
			client := &http.Client{Timeout: 120 * time.Second}
			text := fmt.Sprintf("after kill %d", k)
			for {
				code, b, err := call(client, "POST", live[0]+"/v1/agents/"+agent+"/messages",
					map[string]any{"messages": []any{map[string]any{"role": "user", "content": text, "otid": fmt.Sprintf("otid-kill-%d-%d", k, killed.UnixNano())}}})
				if err == nil && code == 200 {
					answer = time.Since(killed)
					break
				}
				if time.Since(killed) > 2*time.Minute {
					close(stop)
					wg.Wait()
					return writesBack, answered, fmt.Errorf("failover %d: the message to the killed node's agent was not answered in 2 min: %d %s %v", k+1, code, b, err)
				}
				time.Sleep(100 * time.Millisecond) // a 5xx or a lost connection: the same send again (same otid)
			}
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			got := !firstOK.IsZero()
			mu.Unlock()
			if got {
				break
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				return writesBack, answered, fmt.Errorf("failover %d: no write acknowledged in 2 min after the kill", k+1)
			}
		}
		close(stop)
		wg.Wait()
		writesBack = append(writesBack, firstOK.Sub(killed))
		if agent != "" {
			answered = append(answered, answer)
		}
		if err := r.procs[victim].start(ctx); err != nil {
			return writesBack, answered, fmt.Errorf("failover %d: restart: %w", k+1, err)
		}
	}
	return writesBack, answered, nil
}

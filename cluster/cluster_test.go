package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/freeport"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/server"
	"github.com/engram-dev/engram/verify"
)

// The tests run each node as a child process (this test binary,
// re-executed with childEnv set to the node's spec) so that it can be
// killed with SIGKILL, paused, or stopped with SIGTERM.

const childEnv = "ENGRAM_CLUSTER_CHILD"

// soakEnv lengthens the load phases: ENGRAM_SOAK=1 runs each for a minute,
// ENGRAM_SOAK=<duration> for that long.
const soakEnv = "ENGRAM_SOAK"

// spec is what a child needs to run one node.
type spec struct {
	Name  string
	Dir   string
	HTTP  string // host:port of the REST API
	Route string // host:port of the cluster route listener
	Peers []string
	Key   string // the sealing key's file, shared by the members
}

func TestMain(m *testing.M) {
	if s := os.Getenv(childEnv); s != "" {
		var sp spec
		if err := json.Unmarshal([]byte(s), &sp); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		runChild(sp)
		return
	}
	os.Exit(m.Run())
}

// nodeState is what a child's debug listener reports.
type nodeState struct {
	Name         string
	Applied      uint64
	Digest       string
	Meta, Stream bool // JetStream leaderships held
}

func runChild(sp spec) {
	cfg := server.DefaultConfig(sp.Dir)
	cfg.HTTPAddr, cfg.Node.NATSAddr = sp.HTTP, ""
	// A process killed by SIGKILL leaves its writes in the page cache; the
	// cluster's durability comes from three replicas, not from fsync.
	cfg.Node.SyncAlways = false
	cfg.Node.NodeName, cfg.Node.LogKeyFile = sp.Name, sp.Key
	cfg.Node.Cluster = &bus.Cluster{Name: "test", Addr: sp.Route, Peers: sp.Peers, Token: "cluster-test-token"}
	if os.Getenv("ENGRAM_TEST_LOG") != "" {
		cfg.Logger = slogToStderr(sp.Name)
	}
	if os.Getenv("OPENAI_BASE_URL") != "" {
		reg, err := llm.FromEnv(os.Getenv)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		cfg.Node.Service.Providers = reg
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	// A debug listener says how far this node has applied the log, the
	// digest of its projection there, and which leaderships it holds.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := nodeState{Name: sp.Name}
		var err error
		s.Node.Projection.Read(func(p *projections.State) {
			st.Applied = uint64(p.Applied)
			st.Digest, err = p.Digest()
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		st.Meta, st.Stream = s.Node.NATS.Leader()
		json.NewEncoder(w).Encode(st)
	}))
	fmt.Printf("READY %s http://%s %d\n", s.URL, ln.Addr(), s.Node.Ready.Microseconds())
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Close(closeCtx)
	fmt.Println("CLOSED")
	os.Exit(0)
}

// node is one child process of a test cluster.
type node struct {
	t     *testing.T
	spec  spec
	env   []string
	cmd   *exec.Cmd
	url   string // REST API
	debug string // debug listener
	ready time.Duration
	lines chan string // what the child prints after READY
}

// freePorts reserves n loopback ports and releases them for the children.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := freeport.Take(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// startCluster starts n nodes at once (each waits for a quorum to start)
// and returns them once all serve. env goes to every child, and the
// child's own extra environment from each(i), when not nil.
func startCluster(t *testing.T, n int, each func(i int) []string, env ...string) []*node {
	t.Helper()
	ports := freePorts(t, 2*n)
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	// The members share one sealing key, made before any starts.
	key := filepath.Join(t.TempDir(), "log.key")
	if _, _, err := verify.LoadOrCreateKey(key); err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = &node{t: t, spec: spec{Name: fmt.Sprintf("n%d", i+1), Dir: t.TempDir(),
			HTTP: fmt.Sprintf("127.0.0.1:%d", ports[i]), Route: fmt.Sprintf("127.0.0.1:%d", ports[n+i]), Peers: peers, Key: key}}
		nodes[i].env = env
		if each != nil {
			nodes[i].env = append(append([]string(nil), env...), each(i)...)
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = nd.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d nodes serving %s after the first was started", n, time.Since(began).Round(time.Millisecond))
	return nodes
}

// start runs the node's process and waits until it serves.
func (nd *node) start() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	b, _ := json.Marshal(nd.spec)
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(b)), nd.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	nd.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("%s did not start: %q %v", nd.spec.Name, line, err)
	}
	var us int64
	fmt.Sscanf(strings.TrimPrefix(line, "READY "), "%s %s %d", &nd.url, &nd.debug, &us)
	nd.cmd, nd.ready = cmd, time.Duration(us)*time.Microsecond
	nd.lines = make(chan string, 16)
	go func() {
		defer close(nd.lines)
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case nd.lines <- l:
			default:
			}
		}
	}()
	return nil
}

// kill ends the process with SIGKILL and waits for it.
func (nd *node) kill() {
	nd.cmd.Process.Signal(syscall.SIGKILL)
	nd.cmd.Wait()
}

// term stops the process with SIGTERM (a graceful Close) and waits for it.
func (nd *node) term() {
	nd.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { nd.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		nd.t.Errorf("%s did not stop within 30 s of SIGTERM", nd.spec.Name)
		nd.kill()
	}
}

// state asks the node's debug listener.
func (nd *node) state() (nodeState, error) {
	var st nodeState
	resp, err := http.Get(nd.debug)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("%s: %d %s", nd.spec.Name, resp.StatusCode, b)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// converge waits until every node has applied the same sequence, twice in
// a row a little apart (nothing is being written), and returns their states.
func converge(t *testing.T, nodes []*node, within time.Duration) []nodeState {
	t.Helper()
	var last []nodeState
	stable := 0
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		sts := make([]nodeState, len(nodes))
		ok := true
		for i, nd := range nodes {
			st, err := nd.state()
			if err != nil {
				ok = false
				break
			}
			sts[i] = st
			if st.Applied != sts[0].Applied {
				ok = false
			}
		}
		if ok && last != nil && sts[0].Applied == last[0].Applied {
			stable++
			if stable >= 2 {
				return sts
			}
		} else {
			stable = 0
		}
		last = sts
	}
	t.Fatalf("nodes did not converge within %s: %+v", within, last)
	return nil
}

// do sends a JSON request and returns the status and body; err is a
// transport failure.
func do(client *http.Client, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// must sends a request that must succeed.
func must(t *testing.T, method, url string, body any) []byte {
	t.Helper()
	code, b, err := do(&http.Client{Timeout: 60 * time.Second}, method, url, body)
	if err != nil || code != 200 {
		t.Fatalf("%s %s: %d %s %v", method, url, code, b, err)
	}
	return b
}

func newAgent(t *testing.T, url string) string {
	t.Helper()
	var a api.AgentState
	json.Unmarshal(must(t, "POST", url+"/v1/agents/", map[string]any{
		"agent_type": "memgpt_agent", // the scripted model answers with send_message
		"llm_config": map[string]any{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000},
	}), &a)
	if a.ID == "" {
		t.Fatal("no agent created")
	}
	return a.ID
}

// passages lists the texts of an agent's archival memory on one node.
func passages(t *testing.T, url, agentID string) []string {
	t.Helper()
	var ps []api.Passage
	if err := json.Unmarshal(must(t, "GET", url+"/v1/agents/"+agentID+"/archival-memory?limit=10000", nil), &ps); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Text
	}
	return out
}

func loadFor(short time.Duration) time.Duration {
	v := os.Getenv(soakEnv)
	if v == "" {
		return short
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return time.Minute
}

// writes is the load of the durability tests: writers on every node insert
// archival passages (each a new text, never resent) and record what they
// were told.
type writes struct {
	t      *testing.T
	nodes  []*node
	agents []string

	mu       sync.Mutex
	acked    map[string]string // text → agent
	refused  map[string]string // text → the status and detail it was refused with (503, 409)
	failed   map[int]int       // status (0: transport) → count
	details  map[string]int    // 503 details → count
	wrong    []string          // answers that are neither 200, 503 nor a transport failure
	firstAck map[string]time.Time
	k        int
}

func newWrites(t *testing.T, nodes []*node, agents []string) *writes {
	return &writes{t: t, nodes: nodes, agents: agents, acked: map[string]string{}, refused: map[string]string{}, failed: map[int]int{}, details: map[string]int{}}
}

// writePause is how long each writer waits after an acknowledged write.
const writePause = 20 * time.Millisecond

// run starts two writers per node and returns a function that stops them
// and waits for them.
func (w *writes) run(phase string) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for ni, nd := range w.nodes {
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 25 * time.Second}
				for k := 0; ; k++ {
					select {
					case <-done:
						return
					default:
					}
					agent := w.agents[k%len(w.agents)]
					text := fmt.Sprintf("%s n%d-g%d-%d", phase, ni+1, g, k)
					sent := time.Now()
					code, body, err := do(client, "POST", nd.url+"/v1/agents/"+agent+"/archival-memory", map[string]any{"text": text})
					w.mu.Lock()
					switch {
					case err == nil && code == 200:
						w.acked[text] = agent
						for name, at := range w.firstAck {
							if sent.After(at) {
								delete(w.firstAck, name)
								w.t.Logf("%s: the first write sent after it was acknowledged %s after it", name, time.Since(at).Round(time.Millisecond))
							}
						}
					case err != nil:
						w.failed[0]++
					case code == 503 || code == 409:
						// 409: the agent changed under the write too often
						// (six writers on three agents); nothing is stored
						// and the client is told to retry.
						w.failed[code]++
						var e struct{ Detail string }
						json.Unmarshal(body, &e)
						w.details[detailKind(e.Detail)]++
						w.refused[text] = fmt.Sprintf("%d %s (on %s)", code, e.Detail, nd.spec.Name)
					default:
						w.failed[code]++
						w.wrong = append(w.wrong, fmt.Sprintf("%s on %s: %d %s", text, nd.spec.Name, code, body))
					}
					w.mu.Unlock()
					if err != nil || code != 200 {
						time.Sleep(100 * time.Millisecond)
					} else {
						// A steady load, not a flood: the writes in flight at
						// each kill are what the test is about, and a shorter
						// log keeps the checks, restarts and replays quick.
						time.Sleep(writePause)
					}
				}
			}()
		}
	}
	return func() { close(done); wg.Wait() }
}

// detailKind is a failure's detail without the ids in it, to count alike
// failures together.
func detailKind(d string) string {
	return regexp.MustCompile(`[a-z]+-[0-9a-f]{8}-[0-9a-f-]{27}`).ReplaceAllString(d, "<id>")
}

// mark makes the first acknowledged write sent after now log how long
// after now it came back, under name.
func (w *writes) mark(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.firstAck == nil {
		w.firstAck = map[string]time.Time{}
	}
	w.firstAck[name] = time.Now()
}

// check fails the test unless every acknowledged write is on every node of
// nds exactly once, no write is there twice, every failure was a 503 with a
// detail, a 409 telling the client to retry, or a transport failure (the
// node asked was down), and no write refused with a 503 or a 409 is stored:
// a client is never told something false.
func (w *writes) check(t *testing.T, nds []*node) {
	t.Helper()
	// A node has another's write once it has applied it (usually
	// milliseconds later): compare once they hold the same log.
	converge(t, nds, 60*time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d writes acknowledged; failures by status %v (0: the node asked was down); 503 details: %v", len(w.acked), w.failed, w.details)
	for _, s := range w.wrong {
		t.Errorf("wrong answer: %s", s)
	}
	w.wrong = nil
	if w.details[""] > 0 {
		t.Errorf("%d answers 503 without a detail", w.details[""])
	}
	for _, nd := range nds {
		seen := map[string]int{}
		for _, a := range w.agents {
			for _, text := range passages(t, nd.url, a) {
				seen[text]++
			}
		}
		lost, twice, wrongly := 0, 0, 0
		for text, why := range w.refused {
			if seen[text] > 0 {
				wrongly++
				if wrongly <= 5 {
					t.Errorf("%s: write %q was refused with %s, but it is stored", nd.spec.Name, text, why)
				}
			}
		}
		for text := range w.acked {
			if seen[text] != 1 {
				lost++
				if lost <= 5 {
					t.Errorf("%s: acknowledged write %q present %d times", nd.spec.Name, text, seen[text])
				}
			}
		}
		for text, n := range seen {
			if n > 1 {
				twice++
				if twice <= 5 {
					t.Errorf("%s: write %q present %d times", nd.spec.Name, text, n)
				}
			}
		}
		if lost > 0 || twice > 0 || wrongly > 0 {
			t.Fatalf("%s: %d acknowledged writes missing or duplicated, %d writes stored more than once, %d refused writes stored", nd.spec.Name, lost, twice, wrongly)
		}
	}
}

// sameDigests waits until nds converge and fails unless their projections'
// digests are equal at the sequence they reached.
func sameDigests(t *testing.T, nds []*node) {
	t.Helper()
	sts := converge(t, nds, 60*time.Second)
	for _, st := range sts[1:] {
		if st.Digest != sts[0].Digest {
			t.Fatalf("digests at sequence %d differ: %+v", sts[0].Applied, sts)
		}
	}
	t.Logf("%d nodes at sequence %d, digests equal", len(nds), sts[0].Applied)
}

// leaders says which nodes lead the meta layer and the event stream (-1:
// none says so).
func leaders(nodes []*node) (meta, stream int) {
	meta, stream = -1, -1
	for i, nd := range nodes {
		if st, err := nd.state(); err == nil {
			if st.Meta {
				meta = i
			}
			if st.Stream {
				stream = i
			}
		}
	}
	return meta, stream
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// status asks a node for GET /v1/cluster.
func status(nd *node) (api.ClusterStatus, error) {
	var st api.ClusterStatus
	code, b, err := do(&http.Client{Timeout: 10 * time.Second}, "GET", nd.url+"/v1/cluster", nil)
	if err != nil || code != 200 {
		return st, fmt.Errorf("%s: %d %s %v", nd.spec.Name, code, b, err)
	}
	return st, json.Unmarshal(b, &st)
}

// owned waits until live nodes other than gone pull every partition
// between them (as node asked sees it), and returns how many each pulls.
func owned(t *testing.T, asked *node, within time.Duration, gone ...string) map[string]int {
	t.Helper()
	var last api.ClusterStatus
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		st, err := status(asked)
		if err != nil {
			continue
		}
		last = st
		count := map[string]int{}
		for _, n := range st.Owners {
			if !slices.Contains(gone, n) {
				count[n]++
			}
		}
		if len(st.Owners) == bus.Partitions && len(count) > 0 && sum(count) == bus.Partitions {
			return count
		}
	}
	t.Fatalf("the partitions were not all pulled within %s: %+v", within, last)
	return nil
}

// TestClusterSurvives is issue 14's durability test, one cluster of three
// processes under a write load through every phase: writers on all three
// nodes insert archival passages (each a new text, never resent) while
// nodes are killed, paused and restarted. After each phase every
// acknowledged write is on every live node exactly once, no write is
// stored twice, every failed request failed with 503 and a detail (or 409
// telling the client to retry, or could not reach a node that was down), and the nodes' projections reach the
// same digest at the same sequence.
func TestClusterSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-process cluster")
	}
	nodes := startCluster(t, 3, nil)
	agents := []string{newAgent(t, nodes[0].url), newAgent(t, nodes[1].url), newAgent(t, nodes[2].url)}
	w := newWrites(t, nodes, agents)
	others := func(skip ...int) []*node {
		var out []*node
		for i, nd := range nodes {
			if !slices.Contains(skip, i) {
				out = append(out, nd)
			}
		}
		return out
	}
	restart := func(t *testing.T, i int) {
		t.Helper()
		began := time.Now()
		if err := nodes[i].start(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s restarted: serving after %s (start-up %s)", nodes[i].spec.Name, time.Since(began).Round(time.Millisecond), nodes[i].ready.Round(time.Millisecond))
	}
	// kill SIGKILLs node i mid-load, checks the survivors, restarts it.
	kill := func(t *testing.T, phase string, i int) {
		stop := w.run(phase)
		time.Sleep(time.Second)
		w.mark("kill " + nodes[i].spec.Name)
		killed := time.Now()
		nodes[i].kill()
		t.Logf("killed %s", nodes[i].spec.Name)
		counts := owned(t, others(i)[0], 15*time.Second, nodes[i].spec.Name)
		t.Logf("the survivors pull every partition %s after the kill: %v", time.Since(killed).Round(time.Millisecond), counts)
		time.Sleep(loadFor(2 * time.Second))
		stop()
		w.check(t, others(i))
		restart(t, i)
		sameDigests(t, nodes)
		// It gets its share of the partitions back.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			counts := owned(t, nodes[i], 15*time.Second)
			if counts[nodes[i].spec.Name] > 0 {
				t.Logf("%s pulls partitions again: %v", nodes[i].spec.Name, counts)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s pulls no partition after its restart: %v", nodes[i].spec.Name, counts)
			}
		}
	}

	t.Run("partitions spread", func(t *testing.T) {
		counts := owned(t, nodes[0], 15*time.Second)
		t.Logf("partitions pulled per node: %v", counts)
		for _, nd := range nodes {
			if counts[nd.spec.Name] == 0 {
				t.Fatalf("%s pulls no partition: %v", nd.spec.Name, counts)
			}
		}
	})
	t.Run("SIGKILL the stream leader", func(t *testing.T) {
		_, stream := leaders(nodes)
		if stream < 0 {
			t.Fatal("no node says it leads the event stream")
		}
		kill(t, "stream", stream)
	})
	t.Run("SIGKILL the meta leader", func(t *testing.T) {
		meta, stream := leaders(nodes)
		if meta < 0 {
			t.Fatal("no node says it leads the meta layer")
		}
		if meta == stream {
			t.Logf("%s leads the event stream too", nodes[meta].spec.Name)
		}
		kill(t, "meta", meta)
	})
	t.Run("SIGKILL a follower", func(t *testing.T) {
		meta, stream := leaders(nodes)
		follower := -1
		for i := range nodes {
			if i != meta && i != stream {
				follower = i
			}
		}
		if follower < 0 {
			t.Fatalf("every node leads something (meta %d, stream %d)", meta, stream)
		}
		kill(t, "follower", follower)
	})
	t.Run("SIGSTOP the stream leader past the election timeout", func(t *testing.T) {
		_, stream := leaders(nodes)
		if stream < 0 {
			t.Fatal("no node says it leads the event stream")
		}
		nd := nodes[stream]
		stop := w.run("paused")
		time.Sleep(time.Second)
		w.mark("SIGSTOP " + nd.spec.Name)
		nd.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(10 * time.Second) // JetStream's election timeout is 4-9 s
		nd.cmd.Process.Signal(syscall.SIGCONT)
		t.Logf("%s paused for 10 s and resumed", nd.spec.Name)
		time.Sleep(2 * time.Second)
		stop()
		w.check(t, nodes)
		sameDigests(t, nodes)
	})
	t.Run("rolling restart", func(t *testing.T) {
		stop := w.run("rolling")
		for i, nd := range nodes {
			time.Sleep(time.Second)
			began := time.Now()
			nd.term()
			t.Logf("%s stopped (SIGTERM) in %s", nd.spec.Name, time.Since(began).Round(time.Millisecond))
			restart(t, i)
		}
		time.Sleep(2 * time.Second)
		stop()
		w.check(t, nodes)
		sameDigests(t, nodes)
	})
	t.Run("no quorum", func(t *testing.T) {
		nodes[1].kill()
		nodes[2].kill()
		alone := nodes[0]
		var h api.Health
		var code int
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			var b []byte
			var err error
			if code, b, err = do(&http.Client{Timeout: 10 * time.Second}, "GET", alone.url+"/v1/health/", nil); err == nil {
				json.Unmarshal(b, &h)
				if code == 503 {
					break
				}
			}
		}
		if code != 503 || h.Quorum == nil || *h.Quorum || h.Status != "no quorum" {
			t.Fatalf("health of a node alone out of three: %d %+v", code, h)
		}
		code, b, err := do(&http.Client{Timeout: 10 * time.Second}, "POST", alone.url+"/v1/agents/"+agents[0]+"/archival-memory", map[string]any{"text": "without quorum"})
		if err != nil || code != 503 || !strings.Contains(string(b), "no quorum") {
			t.Fatalf("a write without quorum: %d %s %v", code, b, err)
		}
		t.Logf("a write without quorum: %d %s", code, b)
		req, _ := http.NewRequest("GET", alone.url+"/v1/agents/"+agents[0]+"/archival-memory?limit=1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Engram-No-Quorum") == "" {
			t.Fatalf("a read without quorum: %d, Engram-No-Quorum %q", resp.StatusCode, resp.Header.Get("Engram-No-Quorum"))
		}
		// Both at once: each waits for a quorum to start.
		var wg sync.WaitGroup
		errs := make([]error, 3)
		began := time.Now()
		for _, i := range []int{1, 2} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = nodes[i].start() }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		t.Logf("n2 and n3 restarted: serving after %s", time.Since(began).Round(time.Millisecond))
		stop := w.run("after")
		time.Sleep(3 * time.Second)
		stop()
		w.check(t, nodes)
		sameDigests(t, nodes)
	})
	// The members share one sealing key (--log-key-file), so each node
	// verifies every message in the log, whichever member appended it.
	t.Run("verify on every node", func(t *testing.T) {
		for _, nd := range nodes {
			var rep api.LogVerification
			if err := json.Unmarshal(must(t, "GET", nd.url+"/v1/admin/log/verify", nil), &rep); err != nil {
				t.Fatal(err)
			}
			if !rep.Verified || rep.Sealed != rep.Messages || rep.Messages == 0 {
				t.Fatalf("%s: %+v", nd.spec.Name, rep)
			}
			t.Logf("%s: %s", nd.spec.Name, rep.Summary)
		}
	})
}

// echo is a model that answers each call with send_message "re: <text>",
// where text is the newest user message in the context, after delay (and
// hold(text), when it is not nil, blocks first).
func echo(delay time.Duration, hold func(text string)) func(llmtest.Recorded) llmtest.Step {
	return func(rec llmtest.Recorded) llmtest.Step {
		var env struct{ Type string }
		if n := len(rec.Messages); n == 0 || json.Unmarshal([]byte(rec.Messages[n-1].Content), &env) != nil || env.Type != "user_message" {
			return llmtest.Step{Delay: delay, Content: "noted"}
		}
		text := newestInput(rec)
		if hold != nil {
			hold(text)
		}
		b, _ := json.Marshal(map[string]any{"message": "re: " + text})
		return llmtest.Step{Delay: delay, Content: "thinking", ToolCalls: []agents.ToolCall{{Name: "send_message", Arguments: string(b)}}}
	}
}

// newestInput is the newest user message a model call sees.
func newestInput(rec llmtest.Recorded) string {
	for i := len(rec.Messages) - 1; i >= 0; i-- {
		var env struct{ Type, Message string }
		if m := rec.Messages[i]; m.Role == "user" && json.Unmarshal([]byte(m.Content), &env) == nil && env.Type == "user_message" {
			return env.Message
		}
	}
	return ""
}

// caller names the node ("n2") that made a model call: each node has its
// own API key.
func caller(rec llmtest.Recorded) string {
	return strings.TrimPrefix(rec.Header.Get("Authorization"), "Bearer key-")
}

// nodeKeys gives node i the API key "key-n<i+1>".
func nodeKeys(i int) []string { return []string{fmt.Sprintf("OPENAI_API_KEY=key-n%d", i+1)} }

// sent is what a client was told about one send.
type sent struct {
	code int
	body string
	resp api.LettaResponse
	err  error
}

func (s sent) answered(want string) bool {
	var replies []string
	for _, m := range s.resp.Messages {
		if m.MessageType == api.AssistantMessageType && m.Content != nil {
			replies = append(replies, *m.Content)
		}
	}
	return s.err == nil && s.code == 200 && len(replies) == 1 && replies[0] == want
}

// send sends one user message with an otid (a resend of it is the same send).
func send(url, agentID, text string) sent {
	code, b, err := do(&http.Client{Timeout: 90 * time.Second}, "POST", url+"/v1/agents/"+agentID+"/messages",
		map[string]any{"messages": []any{map[string]any{"role": "user", "content": text, "otid": "otid-" + text}}})
	out := sent{code: code, body: string(b), err: err}
	if err == nil && code == 200 {
		out.err = json.Unmarshal(b, &out.resp)
	}
	return out
}

// deliver sends until the send is answered (resending on a lost connection
// or a 5xx), and reports what the client finally got.
func deliver(url, agentID, text string) (sent, int) {
	for tries := 1; ; tries++ {
		r := send(url, agentID, text)
		if os.Getenv("ENGRAM_TEST_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "DEBUGSEND %s %q try %d: %d %.200s %v\n", time.Now().Format("15:04:05.000"), text, tries, r.code, r.body, r.err)
		}
		if (r.err != nil && r.code == 0 || r.code >= 500) && tries < 20 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		return r, tries
	}
}

// turns counts an agent's user messages and replies by text, on one node.
func turns(t *testing.T, url, agentID string) (inputs, replies map[string]int) {
	t.Helper()
	var ms []api.LettaMessage
	json.Unmarshal(must(t, "GET", url+"/v1/agents/"+agentID+"/messages?order=asc&limit=10000", nil), &ms)
	inputs, replies = map[string]int{}, map[string]int{}
	for _, m := range ms {
		switch {
		case m.MessageType == api.UserMessageType && m.Content != nil && !strings.HasPrefix(*m.Content, "{"):
			inputs[*m.Content]++
		case m.MessageType == api.AssistantMessageType && m.Content != nil:
			replies[*m.Content]++
		}
	}
	return inputs, replies
}

// readBack reads an agent's history on one node and says what is wrong
// with the send of text in it ("" when its input and reply are each there
// once).
func readBack(url, agentID, text string) string {
	code, b, err := do(&http.Client{Timeout: 30 * time.Second}, "GET", url+"/v1/agents/"+agentID+"/messages?order=asc&limit=10000", nil)
	if err != nil || code != 200 {
		return fmt.Sprintf("history: %d %s %v", code, b, err)
	}
	var ms []api.LettaMessage
	if err := json.Unmarshal(b, &ms); err != nil {
		return err.Error()
	}
	inputs, replies := 0, 0
	for _, m := range ms {
		switch {
		case m.MessageType == api.UserMessageType && m.Content != nil && *m.Content == text:
			inputs++
		case m.MessageType == api.AssistantMessageType && m.Content != nil && *m.Content == "re: "+text:
			replies++
		}
	}
	if inputs != 1 || replies != 1 {
		return fmt.Sprintf("input there %d times, reply %d times", inputs, replies)
	}
	return ""
}

// TestClusterAgentsRunOnceAcrossNodes: clients on all three nodes send to
// four agents at once. Each agent runs on the node that owns its
// partition, so most sends are answered on a node that did not run them
// (the node asked waits for the run's reports over NATS). Every send is
// answered with its own reply, which the node asked has in its history at
// once (it answers after its projection applied the run), each input and reply is stored once, every
// node's history agrees, and each input reached the model once.
func TestClusterAgentsRunOnceAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-process cluster")
	}
	script := llmtest.NewServer(t)
	script.SetResponder(echo(20*time.Millisecond, nil))
	nodes := startCluster(t, 3, nodeKeys, "OPENAI_BASE_URL="+script.URL)
	var ids []string
	for i := range 4 {
		ids = append(ids, newAgent(t, nodes[i%3].url))
	}
	// A client reads its own writes on the node it asked; another node
	// has them once it has applied them.
	converge(t, nodes, 30*time.Second)
	const perPair = 3
	type result struct {
		node, agent, text string
		r                 sent
		readBack          string // what reading the history on the node asked found wrong, at once after the answer
	}
	results := make(chan result, 3*len(ids)*perPair)
	var wg sync.WaitGroup
	began := time.Now()
	for ni, nd := range nodes {
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perPair {
					text := fmt.Sprintf("from n%d to %s #%d", ni+1, id[len(id)-4:], k)
					r, _ := deliver(nd.url, id, text)
					results <- result{nd.spec.Name, id, text, r, readBack(nd.url, id, text)}
				}
			}()
		}
	}
	wg.Wait()
	close(results)
	took := time.Since(began)
	asked := map[string]string{} // text → node asked
	n := 0
	for res := range results {
		n++
		if !res.r.answered("re: " + res.text) {
			t.Errorf("send %q on %s: %d %s %v", res.text, res.node, res.r.code, res.r.body, res.r.err)
		}
		if res.readBack != "" {
			t.Errorf("send %q answered on %s, then read there at once: %s", res.text, res.node, res.readBack)
		}
		asked[res.text] = res.node
	}
	ran := map[string][]string{} // text → nodes whose model call answered it
	for _, rec := range script.Requests() {
		if text := newestInput(rec); text != "" {
			ran[text] = append(ran[text], caller(rec))
		}
	}
	remote := 0
	for text, node := range asked {
		if len(ran[text]) != 1 {
			t.Errorf("input %q reached the model %d times (from %v)", text, len(ran[text]), ran[text])
			continue
		}
		if ran[text][0] != node {
			remote++
		}
	}
	t.Logf("%d sends answered in %s; %d of them run on another node than the one asked", n, took.Round(time.Millisecond), remote)
	if remote == 0 {
		t.Error("no send was answered on a node other than the one that ran it; the test proves nothing about remote answers")
	}
	converge(t, nodes, 30*time.Second)
	for _, id := range ids {
		var first string
		for _, nd := range nodes {
			inputs, replies := turns(t, nd.url, id)
			for text := range asked {
				if !strings.Contains(text, id[len(id)-4:]) {
					continue
				}
				if inputs[text] != 1 || replies["re: "+text] != 1 {
					t.Errorf("%s, agent %s: input %q stored %d times, its reply %d times", nd.spec.Name, id, text, inputs[text], replies["re: "+text])
				}
			}
			got := fmt.Sprint(inputs, replies)
			if first == "" {
				first = got
			} else if got != first {
				t.Errorf("agent %s: history on %s differs from the first node's", id, nd.spec.Name)
			}
		}
	}
}

// TestClusterOwnerDiesMidRun: an agent's run is in a model call on the
// node that owns its partition when that node dies (SIGKILL) or stops
// (SIGTERM, which hands its partitions over): after its first step was
// stored (the model stored a passage and asked for a heartbeat; the next
// step's call is held), or, with ENGRAM_CLUSTER_LONG=1, also during the
// first step's call. Two more agents the node owns are in their first
// model call then. Each client, sending on another node, is answered,
// exactly once, by a survivor, on its first send: no run is failed or
// reported as failed; the survivor continues the run from its last stored
// step, so the stored step is not taken again (its passage is stored once,
// the model is asked for it once) and only the step cut short is asked
// again. The time from the kill to each answer is logged.
func TestClusterOwnerDiesMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-process cluster")
	}
	cases := []struct {
		name      string
		how       string
		afterStep bool // the owner dies after the run's first step was stored
	}{
		{"SIGKILL_after_a_step", "SIGKILL", true},
		{"SIGTERM_after_a_step", "SIGTERM", true},
	}
	if long() {
		cases = append(cases, struct {
			name      string
			how       string
			afterStep bool
		}{"SIGKILL_in_the_first_step", "SIGKILL", false}, struct {
			name      string
			how       string
			afterStep bool
		}{"SIGTERM_in_the_first_step", "SIGTERM", false})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			how := tc.how
			// The run of "slow": with afterStep, its first step stores a
			// passage and asks for a heartbeat; the first call for the step
			// after is held (the llmtest server waits the step's Delay). Without,
			// the first call of its first step is held.
			var (
				mu      sync.Mutex
				held    = make(chan string, 4) // the node whose model call is held
				holding bool
				// Once set, every call the node named makes for a "busy"
				// send is held, once.
				holdBusy  string
				heldBusy  = make(chan string, 8)
				busyCalls = map[string]bool{}
			)
			hold := func(rec llmtest.Recorded) (llmtest.Step, bool) {
				mu.Lock()
				defer mu.Unlock()
				if holding {
					return llmtest.Step{}, false
				}
				holding = true
				held <- caller(rec)
				return llmtest.Step{Delay: 10 * time.Minute}, true
			}
			script := llmtest.NewServer(t)
			script.SetResponder(func(rec llmtest.Recorded) llmtest.Step {
				if text := newestInput(rec); strings.HasPrefix(text, "busy") {
					mu.Lock()
					first := !busyCalls[text]
					busyCalls[text] = true
					who := holdBusy
					mu.Unlock()
					if first && who != "" && caller(rec) == who {
						heldBusy <- text
						return llmtest.Step{Delay: 10 * time.Minute}
					}
				}
				if newestInput(rec) != "slow" {
					return echo(10*time.Millisecond, nil)(rec)
				}
				if lastKind(rec) == "user_message" { // the first step
					if !tc.afterStep {
						if st, ok := hold(rec); ok {
							return st
						}
						return echo(10*time.Millisecond, nil)(rec)
					}
					return llmtest.Step{Delay: 10 * time.Millisecond, Content: "keeping it", ToolCalls: []agents.ToolCall{
						{Name: "archival_memory_insert", Arguments: `{"content":"a passage of slow","request_heartbeat":true}`}}}
				}
				if st, ok := hold(rec); ok { // the step after the heartbeat
					return st
				}
				return llmtest.Step{Delay: 10 * time.Millisecond, Content: "answering", ToolCalls: []agents.ToolCall{
					{Name: "send_message", Arguments: `{"message":"re: slow"}`}}}
			})
			nodes := startCluster(t, 3, nodeKeys, "OPENAI_BASE_URL="+script.URL)
			id := newAgent(t, nodes[0].url)
			converge(t, nodes, 30*time.Second)
			// A first send shows which node owns the agent.
			if r, _ := deliver(nodes[0].url, id, "hello"); !r.answered("re: hello") {
				t.Fatalf("first send: %d %s %v", r.code, r.body, r.err)
			}
			var owner *node
			for _, rec := range script.Requests() {
				if newestInput(rec) == "hello" {
					for _, nd := range nodes {
						if caller(rec) == nd.spec.Name {
							owner = nd
						}
					}
				}
			}
			if owner == nil {
				t.Fatal("cannot tell which node ran the agent")
			}
			asked := nodes[0]
			if asked == owner {
				asked = nodes[1]
			}
			// Two more agents whose partitions the owner pulls.
			var busy []string
			for len(busy) < 2 {
				other := newAgent(t, asked.url)
				st, err := status(asked)
				if err != nil {
					t.Fatal(err)
				}
				if st.Owners[fmt.Sprintf("%02x", bus.Partition(other))] == owner.spec.Name {
					busy = append(busy, other)
				}
			}
			mu.Lock()
			holdBusy = owner.spec.Name
			mu.Unlock()
			busyAnswers := make([]chan sent, len(busy))
			busyTries := make([]chan int, len(busy))
			for i, b := range busy {
				busyAnswers[i], busyTries[i] = make(chan sent, 1), make(chan int, 1)
				go func() {
					r, n := deliver(asked.url, b, fmt.Sprintf("busy-%d", i))
					busyAnswers[i] <- r
					busyTries[i] <- n
				}()
			}
			for range busy {
				select {
				case <-heldBusy:
				case <-time.After(20 * time.Second):
					t.Fatal("a busy send never reached the owner's model")
				}
			}
			answer := make(chan sent, 1)
			tries := make(chan int, 1)
			go func() { r, n := deliver(asked.url, id, "slow"); answer <- r; tries <- n }()
			select {
			case who := <-held:
				if who != owner.spec.Name {
					t.Fatalf("the slow send ran on %s, not on the owner %s", who, owner.spec.Name)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the slow send never reached the held model call")
			}
			stopped := time.Now()
			if how == "SIGKILL" {
				owner.kill()
			} else {
				owner.term()
			}
			t.Logf("%s %s: owner gone after %s", time.Now().Format("15:04:05.000"), how, time.Since(stopped).Round(time.Millisecond))
			var r sent
			select {
			case r = <-answer:
			case <-time.After(60 * time.Second):
				for _, rec := range script.Requests() {
					t.Logf("model call from %s for %q after a %s", caller(rec), newestInput(rec), lastKind(rec))
				}
				inputs, replies := turns(t, asked.url, id)
				t.Fatalf("the send was not answered within 60 s of its owner stopping; history on %s: %v %v", asked.spec.Name, inputs, replies)
			}
			took := time.Since(stopped)
			if !r.answered("re: slow") {
				t.Fatalf("send on %s after %s of its owner: %d %s %v", asked.spec.Name, how, r.code, r.body, r.err)
			}
			// The run the owner's end cut short is not failed: it is left
			// to the next owner, and the client waiting is answered by it.
			if n := <-tries; n != 1 {
				t.Fatalf("the client had to send %d times; want its first send answered", n)
			}
			t.Logf("owner %s stopped by %s mid-run; the send on %s was answered %s later", owner.spec.Name, how, asked.spec.Name, took.Round(time.Millisecond))
			for i := range busy {
				var r sent
				select {
				case r = <-busyAnswers[i]:
				case <-time.After(60 * time.Second):
					t.Fatalf("busy-%d was not answered within 60 s of its owner stopping", i)
				}
				if !r.answered(fmt.Sprintf("re: busy-%d", i)) || <-busyTries[i] != 1 {
					t.Fatalf("busy-%d on %s: %d %s %v; want answered on its first send", i, asked.spec.Name, r.code, r.body, r.err)
				}
				t.Logf("busy-%d, in its first model call on %s, answered %s after the %s", i, owner.spec.Name, time.Since(stopped).Round(time.Millisecond), how)
			}
			// The answer came from another node's run: the node asked has the
			// reply once it has applied that run's commit.
			var live []*node
			for _, nd := range nodes {
				if nd != owner {
					live = append(live, nd)
				}
			}
			converge(t, live, 30*time.Second)
			inputs, replies := turns(t, asked.url, id)
			if inputs["slow"] != 1 || replies["re: slow"] != 1 {
				t.Fatalf("input stored %d times, reply %d times; want once each", inputs["slow"], replies["re: slow"])
			}
			for i, b := range busy {
				if why := readBack(asked.url, b, fmt.Sprintf("busy-%d", i)); why != "" {
					t.Fatalf("busy-%d: %s", i, why)
				}
			}
			// No stored step was taken again: the model was asked for the
			// run's first step once (or, when the owner died in it, once
			// more by the survivor), and for the step after the heartbeat
			// twice (the call cut short, the survivor's).
			firsts, seconds := 0, 0
			for _, rec := range script.Requests() {
				if newestInput(rec) == "slow" {
					if lastKind(rec) == "user_message" {
						firsts++
					} else {
						seconds++
					}
				}
			}
			wantFirsts, wantSeconds := 1, 2
			if !tc.afterStep {
				wantFirsts, wantSeconds = 2, 0
			}
			if firsts != wantFirsts || seconds != wantSeconds {
				t.Fatalf("the model was asked %d times for the run's first step and %d times for the one after; want %d and %d", firsts, seconds, wantFirsts, wantSeconds)
			}
			if tc.afterStep {
				var ps []string
				for _, p := range passages(t, asked.url, id) {
					if p == "a passage of slow" {
						ps = append(ps, p)
					}
				}
				hb := 0
				var ms []api.LettaMessage
				json.Unmarshal(must(t, "GET", asked.url+"/v1/agents/"+id+"/messages?order=asc&limit=10000", nil), &ms)
				for _, m := range ms {
					if m.MessageType == api.UserMessageType && m.Content != nil && strings.Contains(*m.Content, `"heartbeat"`) {
						hb++
					}
				}
				if len(ps) != 1 || hb != 1 {
					t.Fatalf("the first step's passage is stored %d times and its heartbeat %d times; want once each", len(ps), hb)
				}
			}
		})
	}
}

// lastKind is the envelope type ("user_message", "heartbeat", ...) of the
// newest message a model call sees, or its role when it is no envelope.
func lastKind(rec llmtest.Recorded) string {
	n := len(rec.Messages)
	if n == 0 {
		return ""
	}
	var env struct{ Type string }
	if json.Unmarshal([]byte(rec.Messages[n-1].Content), &env) != nil || env.Type == "" {
		return rec.Messages[n-1].Role
	}
	return env.Type
}

// long reports whether ENGRAM_CLUSTER_LONG asks for the longer campaigns.
func long() bool { return os.Getenv("ENGRAM_CLUSTER_LONG") != "" }

// slogToStderr logs a child's server at debug level, for ENGRAM_TEST_LOG=1.
func slogToStderr(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/freeport"
)

// freePorts reserves n loopback ports and releases them for the caller to
// listen on (racy in theory, reliable in practice on a test machine).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.Take(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// clusterConfigs returns the configurations of an n-member cluster on
// loopback, each member listing every member (itself included).
func clusterConfigs(t testing.TB, n int) []Config {
	t.Helper()
	ports := freePorts(t, n)
	var peers []string
	for _, p := range ports {
		peers = append(peers, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = DefaultConfig(t.TempDir())
		cfgs[i].Name = fmt.Sprintf("n%d", i+1)
		cfgs[i].SyncAlways = false
		if os.Getenv("ENGRAM_TEST_NATS_LOG") != "" {
			cfgs[i].Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cfgs[i].Name)
		}
		cfgs[i].Cluster = &Cluster{Name: "test", Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]), Peers: peers, Token: "s3cret", Wait: 30 * time.Second}
	}
	return cfgs
}

// startCluster starts the members of cfgs at once (each waits for a meta
// leader, which needs a quorum) and opens the log on each with replicas.
func startCluster(t testing.TB, cfgs []Config, replicas int) ([]*Server, []*Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	servers := make([]*Server, len(cfgs))
	logs := make([]*Log, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := StartServer(ctx, cfg)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(s.Close)
			servers[i] = s
			logs[i], errs[i] = OpenLog(ctx, s, LogConfig{Replicas: replicas})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return servers, logs
}

// TestClusterRaceOnOneAggregate: two members append to one aggregate at
// once, both expecting the same version; exactly one wins and the other
// gets a conflict (clustered JetStream answers 10071 or 10164). A command
// retried on another member is recognised as done.
func TestClusterRaceOnOneAggregate(t *testing.T) {
	_, logs := startCluster(t, clusterConfigs(t, 3), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-0193a5b2-0000-7000-8000-00000000000a"}
	version, err := logs[0].Append(ctx, events.Batch{Command: "create", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: events.AgentID(a.ID), Name: "a"})}})
	if err != nil {
		t.Fatal(err)
	}
	// The creation retried on another member: the same sequence, nothing new.
	again, err := logs[2].Append(ctx, events.Batch{Command: "create", Expect: []events.Expectation{{Aggregate: a}},
		Events: []events.Envelope{agentEnv(a.ID, &events.AgentCreated{ID: events.AgentID(a.ID), Name: "a"})}})
	if err != nil || again != version {
		t.Fatalf("retried create on another member = %d, %v; want %d", again, err, version)
	}
	const rounds = 40
	wins := [3]int{}
	for r := range rounds {
		x, y := r%3, (r+1)%3 // the racing members change each round
		var (
			wg   sync.WaitGroup
			seqs [2]events.Seq
			errs [2]error
		)
		for k, m := range []int{x, y} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := events.Batch{Command: fmt.Sprintf("r%d-%d", r, m), Expect: []events.Expectation{{Aggregate: a, Version: version}},
					Events: []events.Envelope{agentEnv(a.ID, &events.MessageAppended{ID: events.MessageID(fmt.Sprintf("message-%d-%d", r, m)), Role: "user", Text: "x"})}}
				if k == 1 && r%2 == 0 {
					// Every other round the loser's batch holds two events (an
					// atomic batch rather than one packed message).
					b.Events = append(b.Events, agentEnv(a.ID, &events.MessageAppended{ID: events.MessageID(fmt.Sprintf("message-%d-%d-b", r, m)), Role: "user", Text: "y"}))
				}
				seqs[k], errs[k] = logs[m].Append(ctx, b)
			}()
		}
		wg.Wait()
		won := -1
		for k := range 2 {
			switch {
			case errs[k] == nil:
				if won >= 0 {
					t.Fatalf("round %d: both members won (%d and %d)", r, seqs[0], seqs[1])
				}
				won = k
			case errors.Is(errs[k], events.ErrConflict):
			default:
				t.Fatalf("round %d: member %d: %v", r, []int{x, y}[k], errs[k])
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither member won: %v; %v", r, errs[0], errs[1])
		}
		wins[[]int{x, y}[won]]++
		version = seqs[won]
	}
	last, err := logs[1].LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds, wins per member %v, last sequence %d", rounds, wins, last)
	if last != version {
		t.Fatalf("log ends at %d; the last winner wrote %d: a loser stored something", last, version)
	}
}

// TestClusterAdoptsTheStream: a member whose replicas setting differs from
// the existing stream's is refused with a message saying what to do, and
// nothing about the stream changes.
func TestClusterAdoptsTheStream(t *testing.T) {
	servers, logs := startCluster(t, clusterConfigs(t, 3), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := OpenLog(ctx, servers[1], LogConfig{Replicas: 1})
	var re *ReplicasError
	if !errors.As(err, &re) || re.Have != 3 || re.Set != 1 {
		t.Fatalf("opening with 1 replica over a 3-replica stream: %v; want a ReplicasError", err)
	}
	if !strings.Contains(err.Error(), "--replicas 3") {
		t.Fatalf("error does not say which setting to use: %v", err)
	}
	info, err := logs[0].stream.Info(ctx)
	if err != nil || info.Config.Replicas != 3 {
		t.Fatalf("stream replicas after the refused open: %v, %v", info, err)
	}
	// The same setting adopts the stream.
	if _, err := OpenLog(ctx, servers[2], LogConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
}

// TestClusterStartNeedsAQuorum: one member of three alone never sees a meta
// leader; it gives up after its wait with an error saying why.
func TestClusterStartNeedsAQuorum(t *testing.T) {
	cfg := clusterConfigs(t, 3)[0]
	cfg.Cluster.Wait = 2 * time.Second
	began := time.Now()
	_, err := StartServer(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "no JetStream meta leader") || !strings.Contains(err.Error(), "quorum (2 of 3)") {
		t.Fatalf("start alone = %v; want a clear no-quorum error", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("gave up after %s; want about 2 s", d)
	}
	t.Log(err)
}

// TestClusterInputsMoveOnHandover: three members consume agent inputs; each
// input reaches exactly one member. The owner of a partition stops and
// hands over: the input it held unacknowledged and new inputs of that
// partition reach a survivor at once, well before the pin's timeout.
func TestClusterInputsMoveOnHandover(t *testing.T) {
	_, logs := startCluster(t, clusterConfigs(t, 3), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type got struct {
		member int
		in     Input
	}
	deliveries := make(chan got, 1024)
	inputs := make([]*Inputs, 3)
	for i, l := range logs {
		var err error
		inputs[i], err = l.ConsumeInputs(ctx, func(in Input) { deliveries <- got{i, in} })
		if err != nil {
			t.Fatal(err)
		}
		defer inputs[i].Stop()
	}
	send := func(agent, id string) events.Seq {
		seq, err := logs[0].Append(ctx, events.Batch{Command: "cmd-" + id, Events: []events.Envelope{
			agentEnv(agent, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(id), Role: "user", Text: "hi"}})}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	next := func(what string) got {
		select {
		case g := <-deliveries:
			return g
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: nothing delivered", what)
		}
		return got{}
	}
	// Agents in several partitions; each input once, acknowledged.
	var agents []string
	owner := map[int]int{} // partition → member
	for k := range 8 {
		agent := fmt.Sprintf("agent-0193a5b2-0000-7000-8000-0000000001%02d", k)
		agents = append(agents, agent)
		seq := send(agent, fmt.Sprintf("message-a%d", k))
		g := next("first input")
		if g.in.Seq != seq {
			t.Fatalf("delivered %d; want %d", g.in.Seq, seq)
		}
		owner[Partition(agent)] = g.member
		g.in.Ack()
	}
	select {
	case g := <-deliveries:
		t.Fatalf("input %d delivered twice (again to member %d)", g.in.Seq, g.member)
	case <-time.After(500 * time.Millisecond):
	}
	t.Logf("owners by partition: %v", owner)

	// The owner of agents[0]'s partition takes an input and stops without
	// acknowledging it, then hands over.
	agent := agents[0]
	held := send(agent, "message-held")
	g := next("held input")
	from := g.member
	inputs[from].Stop()
	began := time.Now()
	n, err := inputs[from].Handover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("handover unpinned nothing")
	}
	after := send(agent, "message-after")
	seen := map[events.Seq]int{}
	for len(seen) < 2 {
		g := next("inputs after the handover")
		if g.member == from {
			t.Fatalf("input %d delivered to the member that handed over", g.in.Seq)
		}
		seen[g.in.Seq] = g.member
		g.in.Ack()
	}
	took := time.Since(began)
	if _, ok := seen[held]; !ok {
		t.Fatalf("the held input %d did not come again; got %v", held, seen)
	}
	if _, ok := seen[after]; !ok {
		t.Fatalf("the new input %d did not come; got %v", after, seen)
	}
	t.Logf("member %d handed over %d partitions; a survivor had both inputs %s later", from+1, n, took.Round(time.Millisecond))
	if took >= pinnedTTL {
		t.Fatalf("handover took %s; want well under the pin's timeout %s", took, pinnedTTL)
	}
}

// TestClusterPartitionsSpread: three members pull the agents' partitions
// by Owner: each pulls some, none the same, all together every one, and an
// input reaches the member that pulls its partition. A member that leaves
// gracefully has its partitions taken at once, well before its pins time
// out; one that dies (falls silent, its server gone) has them taken within
// seconds.
func TestClusterPartitionsSpread(t *testing.T) {
	servers, logs := startCluster(t, clusterConfigs(t, 3), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	type got struct {
		member int
		in     Input
	}
	deliveries := make(chan got, 1024)
	members := make([]*Members, 3)
	inputs := make([]*Inputs, 3)
	for i, l := range logs {
		var err error
		if members[i], err = servers[i].StartMembers(l.Tenant(), nil); err != nil {
			t.Fatal(err)
		}
		defer members[i].Close()
	}
	for i, l := range logs {
		if !members[i].WaitFor(ctx, 3) {
			t.Fatalf("member %d did not hear the others", i+1)
		}
		var err error
		if inputs[i], err = l.ConsumeOwnInputs(ctx, members[i], func(in Input) { deliveries <- got{i, in} }); err != nil {
			t.Fatal(err)
		}
		defer inputs[i].Stop()
	}
	// placed waits until the members in live pull every partition between
	// them, each once, and returns who pulls which.
	placed := func(live []int, within time.Duration) map[int]int {
		t.Helper()
		var last map[int]int
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			owner := map[int]int{}
			twice := false
			for _, i := range live {
				for _, p := range inputs[i].Pulled() {
					if _, ok := owner[p]; ok {
						twice = true
					}
					owner[p] = i
				}
			}
			last = owner
			if !twice && len(owner) == Partitions {
				return owner
			}
		}
		t.Fatalf("members %v did not pull every partition once within %s: %v", live, within, last)
		return nil
	}
	owner := placed([]int{0, 1, 2}, 10*time.Second)
	count := map[int]int{}
	for _, i := range owner {
		count[i]++
	}
	t.Logf("partitions pulled per member: %v", count)
	for i := range 3 {
		if count[i] == 0 {
			t.Fatalf("member %d pulls no partition: %v", i+1, count)
		}
	}
	// agentOf finds an agent id whose partition member i pulls.
	agentOf := func(owner map[int]int, i int) string {
		for k := 0; ; k++ {
			a := fmt.Sprintf("agent-0193a5b2-0000-7000-8000-%012d", k)
			if owner[Partition(a)] == i {
				return a
			}
		}
	}
	msgs := 0
	send := func(agent string) events.Seq {
		msgs++
		seq, err := logs[2].Append(ctx, events.Batch{Command: fmt.Sprintf("cmd-%d", msgs), Events: []events.Envelope{
			agentEnv(agent, &events.MessageReceived{MessageAppended: events.MessageAppended{ID: events.MessageID(fmt.Sprintf("message-%d", msgs)), Role: "user", Text: "hi"}})}})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	next := func(what string, within time.Duration) got {
		t.Helper()
		select {
		case g := <-deliveries:
			return g
		case <-time.After(within):
			t.Fatalf("%s: nothing delivered within %s", what, within)
		}
		return got{}
	}
	agents := make([]string, 3)
	for i := range 3 {
		agents[i] = agentOf(owner, i)
		seq := send(agents[i])
		g := next("first input", 15*time.Second)
		if g.in.Seq != seq || g.member != i {
			t.Fatalf("input %d went to member %d; want %d to member %d", g.in.Seq, g.member+1, seq, i+1)
		}
		g.in.Ack()
	}

	// Member 2 leaves gracefully: the others pull its partitions at once,
	// and its input goes to the new owner well before the pin's timeout.
	began := time.Now()
	members[1].Leave()
	inputs[1].Stop()
	if _, err := inputs[1].Handover(ctx); err != nil {
		t.Fatal(err)
	}
	owner = placed([]int{0, 2}, 2*time.Second)
	seq := send(agents[1])
	g := next("input after a graceful leave", 15*time.Second)
	took := time.Since(began)
	if g.in.Seq != seq || g.member != owner[Partition(agents[1])] {
		t.Fatalf("input %d went to member %d; want %d to member %d", g.in.Seq, g.member+1, seq, owner[Partition(agents[1])]+1)
	}
	g.in.Ack()
	t.Logf("member 2 left: its partition's input reached member %d %s later", g.member+1, took.Round(time.Millisecond))
	if took >= pinnedTTL {
		t.Fatalf("took %s; want well under the pin's timeout %s", took, pinnedTTL)
	}

	// Member 1 dies: it falls silent and its server goes; member 3 pulls
	// everything within seconds and runs its agent's input.
	began = time.Now()
	members[0].Close()
	inputs[0].Stop()
	servers[0].Close()
	placed([]int{2}, memberTimeout+5*time.Second)
	pulled := time.Since(began)
	seq = send(agents[0])
	g = next("input after a member died", 3*pinnedTTL)
	if g.in.Seq != seq || g.member != 2 {
		t.Fatalf("input %d went to member %d; want %d to member 3", g.in.Seq, g.member+1, seq)
	}
	g.in.Ack()
	t.Logf("member 1 died: member 3 pulled its partitions %s later, and had its agent's input %s after the death",
		pulled.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

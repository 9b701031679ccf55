package server

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/llmtest"
)

// soakEnv lengthens TestCrashCampaign: ENGRAM_SOAK=1 runs it for ten
// minutes, ENGRAM_SOAK=<duration> (e.g. 30m) for that long.
const soakEnv = "ENGRAM_SOAK"

// TestCrashCampaign is issue 12's crash campaign as a test. Senders send
// messages with otids to two agents, two senders an agent, sometimes two
// copies of one send at once, and resend each send (same otid) until it is
// answered 200, while the server process is killed with SIGKILL again and
// again and restarted on the same data. Then every acknowledged send is in
// its agent's history exactly once, with exactly one reply, after its
// input; and every response a client received was the reply to its own
// message. It runs about 30 s of kills (ENGRAM_SOAK for longer).
func TestCrashCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash campaign runs a server process and kills it repeatedly")
	}
	kills := 30 * time.Second
	if v := os.Getenv(soakEnv); v != "" {
		kills = 10 * time.Minute
		if d, err := time.ParseDuration(v); err == nil {
			kills = d
		}
	}
	dir := t.TempDir()
	script := llmtest.NewServer(t)
	script.SetResponder(func(rec llmtest.Recorded) llmtest.Step {
		return echo(time.Duration(rand.IntN(300)) * time.Millisecond)(rec)
	})
	env := []string{"OPENAI_BASE_URL=" + script.URL, "OPENAI_API_KEY=test"}
	c := startChild(t, dir, env...)
	var url atomic.Pointer[string]
	url.Store(&c.url)
	ids := []string{newAgent(t, c.url), newAgent(t, c.url)}

	var (
		mu      sync.Mutex              // guards the fields below
		acked   = map[string][]string{} // agent → texts acknowledged with 200
		wrong   []string                // responses that were not the reply to their own message
		retried int                     // attempts that failed (connection lost, 5xx) and were sent again
		sends   sync.WaitGroup
	)
	stop := make(chan struct{})
	// deliver sends one copy of a send until the server answers it.
	deliver := func(agentID, text string) {
		defer sends.Done()
		for {
			r := sendText(*url.Load(), agentID, text, "otid-"+text, "")
			mu.Lock()
			switch {
			case r.err != nil || r.code >= 500:
				retried++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
				continue
			case !r.answered("re: " + text):
				wrong = append(wrong, fmt.Sprintf("%s: %v", text, r))
			default:
				acked[agentID] = append(acked[agentID], text)
			}
			mu.Unlock()
			return
		}
	}
	for g := 0; g < 2*len(ids); g++ {
		sends.Add(1)
		go func() {
			defer sends.Done()
			agentID := ids[g%len(ids)]
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("s%d-%d", g, n)
				copies := 1
				if rand.IntN(4) == 0 {
					copies = 2 // a concurrent duplicate, as an impatient client makes
				}
				var one sync.WaitGroup
				for range copies {
					sends.Add(1)
					one.Add(1)
					go func() {
						defer one.Done()
						deliver(agentID, text)
					}()
				}
				one.Wait()
			}
		}()
	}

	killed := 0
	for deadline := time.Now().Add(kills); time.Now().Before(deadline); killed++ {
		time.Sleep(time.Duration(300+rand.IntN(1500)) * time.Millisecond)
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
		c = startChild(t, dir, env...)
		url.Store(&c.url)
	}
	close(stop)
	done := make(chan struct{})
	go func() { sends.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("sends still unanswered a minute after the last restart")
	}

	total := 0
	for _, id := range ids {
		mu.Lock()
		texts := append([]string(nil), acked[id]...)
		mu.Unlock()
		slices.Sort(texts)
		texts = slices.Compact(texts) // both copies of a duplicated send
		total += len(texts)
		h := history(t, c.url, id)
		at := map[turn]int{}
		for i, x := range h {
			if _, dup := at[x]; dup {
				t.Errorf("agent %s: %s %q is in the history twice", id, x.kind, x.text)
			}
			at[x] = i
		}
		for _, text := range texts {
			in, stored := at[turn{"user", text}]
			out, answered := at[turn{"reply", "re: " + text}]
			if !stored || !answered || out < in {
				t.Errorf("agent %s: acknowledged %q: stored %v, answered %v (input at %d, reply at %d)", id, text, stored, answered, in, out)
			}
		}
	}
	for _, w := range wrong {
		t.Errorf("wrong response: %s", w)
	}
	t.Logf("%d SIGKILLs, %d acknowledged sends, %d attempts sent again, %d model calls", killed, total, retried, len(script.Requests()))
	if total == 0 || killed == 0 {
		t.Fatal("the campaign acknowledged nothing or killed nothing")
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/server"
)

// restBaseline names the floor the REST rows stand on.
const restBaseline = "bare net/http handler on loopback (reads the body, answers 200 bytes of JSON)"

// runREST measures four REST operations over loopback HTTP against a
// server on its defaults (fsync before ack), at 1 and 16 concurrent
// clients, each client on its own agent; and, as the baseline, the same
// client load against a trivial HTTP handler, which is what HTTP alone
// costs on this machine.
func runREST(ctx context.Context, env *Env) ([]Row, error) {
	span := 3 * time.Second
	if env.Quick {
		span = 300 * time.Millisecond
	}
	dir, err := env.Dir()
	if err != nil {
		return nil, err
	}
	cfg := server.DefaultConfig(dir)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.Close(context.Background())

	base, stopBase, err := trivialServer()
	if err != nil {
		return nil, err
	}
	defer stopBase()

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	const maxClients = 16
	agentIDs := make([]string, maxClients)
	for i := range agentIDs {
		var a api.AgentState
		body := fmt.Sprintf(`{"name":"bench-%d","memory_blocks":[{"label":"human","value":"Name: Ada","limit":5000}]}`, i)
		if err := do(client, "POST", srv.URL+"/v1/agents", body, &a); err != nil {
			return nil, fmt.Errorf("create agent: %w", err)
		}
		agentIDs[i] = a.ID
	}
	value := strings.Repeat("The user likes green tea. ", 8)
	ops := []struct {
		what string
		req  func(g, i int) (method, url, body string)
	}{
		{"block update (PATCH /v1/agents/{id}/core-memory/blocks/{label})", func(g, i int) (string, string, string) {
			return "PATCH", srv.URL + "/v1/agents/" + agentIDs[g] + "/core-memory/blocks/human", fmt.Sprintf(`{"value":%q}`, fmt.Sprint(value, i))
		}},
		{"archival insert (POST /v1/agents/{id}/archival-memory)", func(g, i int) (string, string, string) {
			return "POST", srv.URL + "/v1/agents/" + agentIDs[g] + "/archival-memory", fmt.Sprintf(`{"text":%q}`, fmt.Sprint(value, i))
		}},
		{"agent retrieve (GET /v1/agents/{id})", func(g, i int) (string, string, string) {
			return "GET", srv.URL + "/v1/agents/" + agentIDs[g], ""
		}},
		{"agent create (POST /v1/agents, two new blocks)", func(g, i int) (string, string, string) {
			return "POST", srv.URL + "/v1/agents", fmt.Sprintf(`{"name":"made-%d-%d","memory_blocks":[{"label":"human","value":"Name: Ada"},{"label":"persona","value":"I am Sam."}]}`, g, i)
		}},
	}
	var rows []Row
	for _, clients := range []int{1, maxClients} {
		bl, bn, bt, err := load(client, clients, span, func(g, i int) (string, string, string) {
			return "POST", base, fmt.Sprintf(`{"value":%q}`, value)
		})
		if err != nil {
			return rows, fmt.Errorf("baseline: %w", err)
		}
		bRate := float64(bn) / bt.Seconds()
		for _, op := range ops {
			l, n, took, err := load(client, clients, span, op.req)
			if err != nil {
				return rows, fmt.Errorf("%s: %w", op.what, err)
			}
			r := float64(n) / took.Seconds()
			rows = append(rows, Row{
				What:     fmt.Sprintf("REST %s, %d client(s): throughput, p50 / p99", op.what, clients),
				Engram:   fmt.Sprintf("%s, %s / %s", rate(r, "ops/s"), dur(l.pct(.5)), dur(l.pct(.99))),
				Baseline: fmt.Sprintf("%s: %s, %s / %s", restBaseline, rate(bRate, "req/s"), dur(bl.pct(.5)), dur(bl.pct(.99))),
				Ratio:    "p50 " + ratio(float64(l.pct(.5)), float64(bl.pct(.5))),
				Target:   "—",
				Note:     "server defaults (fsync before ack); one agent per client",
				Metrics: map[string]float64{"ops_per_s": r, "p50_us": us(l.pct(.5)), "p99_us": us(l.pct(.99)),
					"baseline_per_s": bRate, "baseline_p50_us": us(bl.pct(.5)), "baseline_p99_us": us(bl.pct(.99)), "clients": float64(clients)},
			})
		}
	}
	return rows, nil
}

// load runs clients goroutines, each sending requests back to back for
// span, and returns every request's latency, the count and the time taken.
func load(client *http.Client, clients int, span time.Duration, req func(g, i int) (method, url, body string)) (latencies, int, time.Duration, error) {
	var mu sync.Mutex
	var all latencies
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(span)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine latencies
			for i := 0; time.Now().Before(deadline); i++ {
				method, url, body := req(g, i)
				t := time.Now()
				if err := do(client, method, url, body, nil); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, len(all), time.Since(start), firstErr
}

// do sends one request and decodes a 2xx JSON answer into out (when set).
func do(client *http.Client, method, url, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// trivialServer serves the REST baseline on a loopback port.
func trivialServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	answer := []byte(`{"id":"block-00000000-0000-4000-8000-000000000000","label":"human","value":"` + strings.Repeat("x", 120) + `","limit":5000}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	return "http://" + ln.Addr().String() + "/", func() { s.Close() }, nil
}

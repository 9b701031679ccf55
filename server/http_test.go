package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

func startInProcess(t testing.TB, sync bool) *Server {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	cfg.Node.SyncAlways = sync
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

func do(t testing.TB, client *http.Client, method, url string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Fifty clients edit one agent's block at once through REST. Every edit is
// acknowledged and appended: appends conflict, re-decide and retry.
func TestConcurrentRESTBlockUpdates(t *testing.T) {
	s := startInProcess(t, false)
	code, body := do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/", map[string]any{
		"memory_blocks": []map[string]any{{"label": "human", "value": ""}},
	})
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	var agent struct{ ID string }
	json.Unmarshal(body, &agent)
	before := s.Node.Projection.Applied()
	const writers = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var values []string
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprint("fact ", i)
			code, body := do(t, http.DefaultClient, "PATCH", s.URL+"/v1/agents/"+agent.ID+"/core-memory/blocks/human", map[string]any{"value": v})
			if code != 200 {
				t.Errorf("update %d: %d %s", i, code, body)
				return
			}
			mu.Lock()
			values = append(values, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(values) != writers {
		t.Fatalf("%d of %d updates acknowledged", len(values), writers)
	}
	if got := s.Node.Projection.Applied() - before; got != writers {
		t.Fatalf("%d events appended for %d acknowledged updates", got, writers)
	}
	// The log holds each acknowledged value exactly once.
	var logged []string
	for seq := before + 1; seq <= s.Node.Projection.Applied(); seq++ {
		env, err := s.Node.Log.Load(context.Background(), seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env.Event)
		var u struct{ Value string }
		json.Unmarshal(b, &u)
		logged = append(logged, u.Value)
	}
	sort.Strings(values)
	sort.Strings(logged)
	if fmt.Sprint(values) != fmt.Sprint(logged) {
		t.Fatalf("log holds %v, acknowledged %v", logged, values)
	}
	t.Logf("%d conflicts were retried", s.Node.Service.Conflicts())
}

// BenchmarkRESTBlockUpdate is the round trip of one core-memory edit over
// loopback HTTP: decode, validate, append (with fsync or relaxed), wait for
// the projection, encode.
func BenchmarkRESTBlockUpdate(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "relaxed"
		}
		b.Run(name, func(b *testing.B) {
			s := startInProcess(b, sync)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			code, body := do(b, client, "POST", s.URL+"/v1/agents/", map[string]any{
				"memory_blocks": []map[string]any{{"label": "human", "value": ""}},
			})
			if code != 200 {
				b.Fatalf("create: %d %s", code, body)
			}
			var agent struct{ ID string }
			json.Unmarshal(body, &agent)
			url := s.URL + "/v1/agents/" + agent.ID + "/core-memory/blocks/human"
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if code, body := do(b, client, "PATCH", url, map[string]any{"value": fmt.Sprint("The user likes tea, fact ", i)}); code != 200 {
					b.Fatalf("%d %s", code, body)
				}
			}
		})
	}
}

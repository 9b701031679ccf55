package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/node"
)

// TestStartProgress: while a restart replays a long log, the health check
// answers "replaying N%" (503) instead of leaving clients waiting, and the
// log reports done/total, rate and time left.
func TestStartProgress(t *testing.T) {
	const blocks, rounds = 1000, 20 // 21,000 events
	dir := t.TempDir()
	ctx := context.Background()
	nc := node.DefaultConfig(dir)
	nc.SyncAlways, nc.SnapshotEvery = false, -1
	n, err := node.Start(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ids := make([]events.BlockID, blocks)
	batch := make([]events.Envelope, blocks)
	for i := range ids {
		ids[i] = events.BlockID(events.NewID(events.PrefixBlock, now))
		batch[i] = events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: string(ids[i])}, Time: now,
			Event: &events.BlockCreated{ID: ids[i], Label: fmt.Sprint("b", i), Value: "v", Limit: 100}}
	}
	for r := 0; r <= rounds; r++ {
		if r > 0 {
			for i, id := range ids {
				v := fmt.Sprint("value ", r)
				batch[i] = events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: string(id)}, Time: now, Event: &events.BlockUpdated{Value: &v}}
			}
		}
		if _, err := n.Log.Append(ctx, events.Batch{Command: events.NewID("cmd", now), Events: batch}); err != nil {
			t.Fatal(err)
		}
	}
	n.Close(ctx)

	logs := &lockedBuffer{}
	cfg := DefaultConfig(dir)
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "", false
	cfg.Node.NoRestore, cfg.Node.SnapshotEvery, cfg.Node.ProgressEvery = true, -1, 20*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	var (
		mu       sync.Mutex // guards statuses
		statuses []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	cfg.OnListen = func(url string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(url + "/v1/health/")
				if err != nil {
					t.Errorf("health during start: %v", err)
					return
				}
				var h api.Health
				json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
				mu.Lock()
				statuses = append(statuses, fmt.Sprint(resp.StatusCode, " ", h.Status))
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	s, err := Start(ctx, cfg)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)

	replaying := regexp.MustCompile(`^503 replaying (\d+)%$`)
	seen := false
	for _, st := range statuses {
		if replaying.MatchString(st) {
			seen = true
		} else if st != "503 starting" && !strings.HasPrefix(st, "200 ") {
			t.Errorf("health during start: %q", st)
		}
	}
	if !seen {
		t.Errorf("health never said replaying: %q", statuses)
	}
	resp, err := http.Get(s.URL + "/v1/health/")
	if err != nil {
		t.Fatal(err)
	}
	var h api.Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.Status != "ok" {
		t.Errorf("health once started: %d %q", resp.StatusCode, h.Status)
	}
	out := logs.String()
	if !regexp.MustCompile(`msg="replaying the log" done=\d+ total=\d+ percent=\d+ rate=\d+ eta=`).MatchString(out) || !regexp.MustCompile(`msg="replaying the log done" events=\d+`).MatchString(out) {
		t.Errorf("no replay progress in the log:\n%.2000s", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.WriteString(string(p))
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

package rest

import (
	"bytes"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
)

// point is what the API answered at one moment of a conversation.
type point struct {
	step    string
	seq     uint64
	at      time.Time
	answers map[string][]byte // by path
}

var statePaths = []string{"", "/core-memory", "/core-memory/blocks", "/messages?limit=1000", "/archival-memory"}

func (x *harness) record(agentID, step string) point {
	x.t.Helper()
	p := point{step: step, seq: x.lastSeq(), answers: map[string][]byte{}}
	for _, path := range statePaths {
		code, body := x.call("GET", "/v1/agents/"+agentID+path, nil)
		if code != 200 {
			x.t.Fatalf("GET %s = %d %s", path, code, body)
		}
		p.answers[path] = body
	}
	p.at = time.Now().UTC()
	return p
}

// withAt adds at to a path that may already have a query.
func withAt(path, at string) string {
	sep := "?"
	if bytes.ContainsRune([]byte(path), '?') {
		sep = "&"
	}
	return path + sep + "at=" + url.QueryEscape(at)
}

// The state at each recorded point of a scripted conversation, asked by
// sequence and by time, is what the API answered then.
func TestStateAt(t *testing.T) {
	x, script := newModelHarness(t)
	var points []point
	other := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini")})
	a := conversation(t, x, script, func(agentID, step string) {
		// Events of another agent interleave.
		x.do("PATCH", "/v1/agents/"+other.ID, map[string]any{"description": step}, 200, nil)
		points = append(points, x.record(agentID, step))
		x.do("PATCH", "/v1/agents/"+agentID, map[string]any{"tags": []string{"noise-" + step}}, 200, nil)
		points = append(points, x.record(agentID, step+", tagged"))
	})
	for _, p := range points {
		for _, by := range []struct{ name, at string }{
			{"seq", fmt.Sprint(p.seq)},
			{"time", p.at.Format(time.RFC3339Nano)},
		} {
			t.Run(p.step+"/"+by.name, func(t *testing.T) {
				for _, path := range statePaths {
					code, got := x.call("GET", withAt("/v1/agents/"+a.ID+path, by.at), nil)
					if code != 200 {
						t.Fatalf("GET %s at %s = %d %s", path, by.at, code, got)
					}
					if !bytes.Equal(got, p.answers[path]) {
						t.Errorf("GET %s at %s:\n got %s\nwant %s", path, by.at, got, p.answers[path])
					}
				}
			})
		}
	}
	t.Run("before the agent", func(t *testing.T) {
		code, body := x.call("GET", "/v1/agents/"+a.ID+"?at=1", nil)
		if code != 404 {
			t.Fatalf("at=1: %d %s, want 404", code, body)
		}
	})
	t.Run("bad at", func(t *testing.T) {
		code, _ := x.call("GET", "/v1/agents/"+a.ID+"?at=yesterday", nil)
		if code != 422 {
			t.Fatalf("at=yesterday: %d, want 422", code)
		}
	})
}

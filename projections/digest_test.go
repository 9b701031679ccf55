package projections

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// TestDigestSurvivesASnapshot: a state and its snapshot (gob, which drops
// empty collections) have one digest; a change makes another.
func TestDigestSurvivesASnapshot(t *testing.T) {
	st := NewState()
	st.Applied = 7
	st.Agents["agent-1"] = &Agent{ID: "agent-1", Name: "a", Tags: []string{}, Keys: map[string]Ref{},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Passages: []Ref{{ID: "passage-1", Seq: 5}}}
	st.Kinds[events.KindAgent] = 7
	before, err := st.Digest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	var back State
	if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
		t.Fatal(err)
	}
	after, err := back.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Fatalf("digest %s before the snapshot, %s after", before, after)
	}
	again, _ := st.Digest()
	if again != before {
		t.Fatalf("digest not deterministic: %s then %s", before, again)
	}
	st.Agents["agent-1"].Name = "b"
	if changed, _ := st.Digest(); changed == before {
		t.Fatal("a renamed agent has the same digest")
	}
}

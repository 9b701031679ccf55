package node

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/search"
)

// The batcher folds messages into the batch that merging each event's
// batch in turn gives (puts compared by id: it keeps them in place).
func TestBatcherMatchesMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	for round := range 200 {
		var (
			w    batcher
			want search.Batch
		)
		for seq := events.Seq(1); seq <= 40; seq++ {
			var envs []events.Envelope
			for range 1 + r.IntN(3) {
				owner := fmt.Sprint("agent-", r.IntN(3))
				id := events.PassageID(fmt.Sprint("passage-", r.IntN(12)))
				var ev events.Event
				switch k := r.IntN(10); {
				case k < 6:
					ev = &events.PassageInserted{ID: id, AgentID: events.AgentID(owner), Text: fmt.Sprint("text ", round, seq)}
				case k < 8:
					ev = &events.PassageDeleted{ID: id}
				case k < 9:
					ev = &events.AgentDeleted{}
				default:
					ev = &events.MessageAppended{ID: events.MessageID(fmt.Sprint("message-", r.IntN(5))), Role: "user", Text: "hi"}
				}
				envs = append(envs, events.Envelope{Seq: seq, Aggregate: events.Aggregate{Kind: events.KindAgent, ID: owner}, Time: now, Event: ev})
			}
			w.add(seq, envs)
			for _, env := range envs {
				if eb, ok := search.FromEvent(env); ok {
					want.Merge(eb)
				}
			}
			want.Seq = uint64(seq)
		}
		byID := func(docs []search.Doc) map[string]search.Doc {
			m := map[string]search.Doc{}
			for _, d := range docs {
				if _, dup := m[d.ID]; dup {
					t.Fatalf("round %d: %s put twice", round, d.ID)
				}
				m[d.ID] = d
			}
			return m
		}
		got := w.b
		if !reflect.DeepEqual(byID(got.Put), byID(want.Put)) || !reflect.DeepEqual(got.Delete, want.Delete) ||
			!reflect.DeepEqual(got.DeleteOwner, want.DeleteOwner) || got.Seq != want.Seq {
			t.Fatalf("round %d:\ngot  %+v\nwant %+v", round, got, want)
		}
	}
}

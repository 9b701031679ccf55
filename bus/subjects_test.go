package bus

import (
	"fmt"
	"testing"

	"github.com/engram-dev/engram/events"
)

// The subjects are permanent: the concatenated form must equal the
// documented layout for every partition.
func TestSubjectLayout(t *testing.T) {
	for p := 0; p < Partitions; p++ {
		if got, want := partitionToken(p), fmt.Sprintf(partitionFormat, p); got != want {
			t.Fatalf("partition %d: %q, want %q", p, got, want)
		}
	}
	a := events.Aggregate{Kind: events.KindAgent, ID: "agent-1"}
	want := fmt.Sprintf("ev.default.agent.%02x.agent-1.message_appended", Partition("agent-1"))
	if got := Subject(DefaultTenant, a, events.TypeMessageAppended); got != want {
		t.Fatalf("agent subject %q, want %q", got, want)
	}
	b := events.Aggregate{Kind: events.KindBlock, ID: "block-1"}
	if got := AggregateFilter("t1", b); got != "ev.t1.block.block-1.>" {
		t.Fatalf("block filter %q", got)
	}
}

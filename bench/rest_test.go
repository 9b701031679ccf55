package bench

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/server"
)

// BenchmarkInsertVsUpdate drives one client against a server on its
// defaults (fsync before ack), as the rest workload's one-client rows do,
// but alternates REST block updates and archival inserts in rounds of 500
// on the same agent, so that whatever else runs on the machine weighs on
// both alike; a round is long enough that the background work an insert
// leaves (the search index's writes and merges) falls mostly in its own
// round. b.N is the number of requests of each kind. It reports each one's
// mean, p50 and p99 and the ratio of their means (the insert's time over the
// update's: the inverse of their throughputs' ratio):
//
//	go test ./bench -run '^$' -bench InsertVsUpdate -benchtime 2000x
func BenchmarkInsertVsUpdate(b *testing.B) {
	cfg := server.DefaultConfig(b.TempDir())
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	srv, err := server.Start(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(b.Context()) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	var a api.AgentState
	if err := do(client, "POST", srv.URL+"/v1/agents", `{"name":"ab","memory_blocks":[{"label":"human","value":"Name: Ada","limit":5000}]}`, &a); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("The user likes green tea. ", 8)
	update := func(i int) error {
		return do(client, "PATCH", srv.URL+"/v1/agents/"+a.ID+"/core-memory/blocks/human", fmt.Sprintf(`{"value":%q}`, fmt.Sprint(value, i)), nil)
	}
	insert := func(i int) error {
		return do(client, "POST", srv.URL+"/v1/agents/"+a.ID+"/archival-memory", fmt.Sprintf(`{"text":%q}`, fmt.Sprint(value, i)), nil)
	}
	// Warm up both paths (connections, the index's first segments).
	for i := range 50 {
		if err := update(-i - 1); err != nil {
			b.Fatal(err)
		}
		if err := insert(-i - 1); err != nil {
			b.Fatal(err)
		}
	}
	const round = 500
	var upd, ins latencies
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		for _, op := range []struct {
			do  func(int) error
			lat *latencies
		}{{update, &upd}, {insert, &ins}} {
			for j := i; j < min(i+round, b.N); j++ {
				t := time.Now()
				if err := op.do(j); err != nil {
					b.Fatal(err)
				}
				*op.lat = append(*op.lat, time.Since(t))
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(us(upd.mean()), "update-µs-mean")
	b.ReportMetric(us(upd.pct(.5)), "update-µs-p50")
	b.ReportMetric(us(upd.pct(.99)), "update-µs-p99")
	b.ReportMetric(us(ins.mean()), "insert-µs-mean")
	b.ReportMetric(us(ins.pct(.5)), "insert-µs-p50")
	b.ReportMetric(us(ins.pct(.99)), "insert-µs-p99")
	b.ReportMetric(float64(ins.mean())/float64(upd.mean()), "insert/update-mean")
}

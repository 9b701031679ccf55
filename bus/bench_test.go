package bus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// benchEvent is a typical small event: a core-memory edit of ~200 bytes.
func benchEvent() events.Event {
	v := strings.Repeat("The user likes green tea. ", 8)
	return &events.BlockUpdated{Value: &v}
}

// BenchmarkAppend measures one engram append (encode, concurrency check,
// idempotency id, publish, ack) and, as the baseline, a raw JetStream
// publish of the same bytes to the same stream.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "relaxed"
		}
		b.Run(name+"/engram", func(b *testing.B) {
			ctx := context.Background()
			_, l := startLog(b, sync)
			agg := events.Aggregate{Kind: events.KindBlock, ID: "block-bench"}
			var version events.Seq
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq, err := l.Append(ctx, events.Batch{
					Command: fmt.Sprint("c", i),
					Expect:  []events.Expectation{{Aggregate: agg, Version: version}},
					Events:  []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: benchEvent()}},
				})
				if err != nil {
					b.Fatal(err)
				}
				version = seq
			}
		})
		b.Run(name+"/raw-publish", func(b *testing.B) {
			ctx := context.Background()
			s, l := startLog(b, sync)
			agg := events.Aggregate{Kind: events.KindBlock, ID: "block-bench"}
			data, err := events.Encode(events.Envelope{Aggregate: agg, Command: "c", Time: time.Now(), Event: benchEvent()})
			if err != nil {
				b.Fatal(err)
			}
			subj := Subject(l.Tenant(), agg, events.TypeBlockUpdated)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.JetStream().Publish(ctx, subj, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFollow measures replay: reading the whole log back in order.
func BenchmarkFollow(b *testing.B) {
	ctx := context.Background()
	s, l := startLog(b, false)
	const n = 100_000
	agg := events.Aggregate{Kind: events.KindBlock, ID: "block-bench"}
	data, _ := events.Encode(events.Envelope{Aggregate: agg, Command: "c", Time: time.Now(), Event: benchEvent()})
	subj := Subject(l.Tenant(), agg, events.TypeBlockUpdated)
	js := s.JetStream()
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(subj, data); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fctx, cancel := context.WithCancel(ctx)
		count := 0
		err := l.Follow(fctx, 1, func(seq events.Seq, data []byte) error {
			if _, err := events.Decode(data); err != nil {
				return err
			}
			count++
			if count == n {
				cancel()
			}
			return nil
		})
		cancel()
		if count != n {
			b.Fatalf("followed %d of %d: %v", count, n, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

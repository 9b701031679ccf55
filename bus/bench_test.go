package bus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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

// BenchmarkSeal is the MAC Append adds to each message: HMAC-SHA256 over
// a ~260-byte event's subject, headers and payload.
func BenchmarkSeal(b *testing.B) {
	s, _ := NewSealer(make([]byte, SealKeySize))
	data, err := events.Encode(events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: "block-1"}, Command: "cmd-1", Event: benchEvent()})
	if err != nil {
		b.Fatal(err)
	}
	m := nats.NewMsg("ev.default.block.block-1.block_updated")
	m.Data = data
	m.Header.Set(hdrCommand, "cmd-1")
	m.Header.Set(hdrExpectSeq, "41")
	m.Header.Set(hdrExpectSubj, "ev.default.block.block-1.>")
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(m)
	}
}

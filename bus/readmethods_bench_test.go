package bus

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/events"
)

// BenchmarkReadMethods reads a whole log of 200,000 small events, raw (no
// decoding), by each read method JetStream offers a replay: the ordered
// consumer Follow uses (pulling up to followBytes at a time), and batched
// direct gets (STREAM.DIRECT.GET with a batch, one request at a time) of
// several sizes, and FollowPending, which reads with direct gets and then
// follows with an ordered consumer.
func BenchmarkReadMethods(b *testing.B) {
	ctx := context.Background()
	s, l := startLog(b, false)
	const n = 200_000
	agg := events.Aggregate{Kind: events.KindAgent, ID: "agent-bench"}
	data, _ := events.Encode(events.Envelope{Aggregate: agg, Command: "c", Time: time.Now(),
		Event: &events.MessageAppended{ID: "message-1", Role: "user", Text: "hello there, how are you today?"}})
	subj := Subject(l.Tenant(), agg, events.TypeMessageAppended)
	js := s.JetStream()
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(subj, data); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	b.Run("ordered-consumer", func(b *testing.B) {
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			fctx, cancel := context.WithCancel(ctx)
			count := 0
			l.Follow(fctx, 1, func(events.Seq, []byte) error {
				if count++; count == n {
					cancel()
				}
				return nil
			})
			cancel()
			if count != n {
				b.Fatalf("read %d of %d", count, n)
			}
		}
		reportRead(b, n, cpu)
	})
	b.Run("follow-pending", func(b *testing.B) {
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			fctx, cancel := context.WithCancel(ctx)
			count := 0
			l.FollowPending(fctx, 1, func(events.Seq, []byte, uint64) error {
				if count++; count == n {
					cancel()
				}
				return nil
			})
			cancel()
			if count != n {
				b.Fatalf("read %d of %d", count, n)
			}
		}
		reportRead(b, n, cpu)
	})
	for _, headers := range []bool{true, false} {
		for _, batch := range []int{256, 1000, 4000, 10_000} {
			name := fmt.Sprintf("direct-get-batch=%d", batch)
			if !headers {
				name += "-no-headers"
			}
			b.Run(name, func(b *testing.B) {
				defer func(was bool) { directHeaders = was }(directHeaders)
				directHeaders = headers
				cpu := cpuTime()
				for i := 0; i < b.N; i++ {
					if got, err := directRead(l, n, batch); err != nil || got != n {
						b.Fatalf("read %d of %d: %v", got, n, err)
					}
				}
				reportRead(b, n, cpu)
			})
		}
	}
}

// reportRead reports the rate of reading n events b.N times and the CPU
// time of the process (the embedded server's included) per event since
// cpu.
func reportRead(b *testing.B, n int, cpu time.Duration) {
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n*b.N), "cpu-µs/event")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// directRead reads the first n messages with batched direct gets of batch
// messages and returns how many it read.
func directRead(l *Log, n, batch int) (int, error) {
	defer func(was int) { directBatch = was }(directBatch)
	directBatch = batch
	count := 0
	_, err := l.readDirect(context.Background(), 1, events.Seq(n), func(events.Seq, []byte) error {
		count++
		return nil
	})
	return count, err
}

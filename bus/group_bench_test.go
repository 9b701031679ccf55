package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-dev/engram/events"
)

// BenchmarkCommitFloor measures, for N concurrent writers on N aggregates
// with every write on disk before it is acknowledged:
//
//   - own-publish: each writer's own JetStream publish with nats-server
//     fsyncing every message (SyncInServer), which it does one message at
//     a time inside the stream's lock;
//   - atomic-batch: one atomic batch carrying the N messages, each with its
//     own expectation, the one path on which nats-server shares one fsync
//     among messages (plus the temporary file store it makes for every
//     atomic batch on a single-replica stream);
//   - append/in-server and append/group: engram's Append, with nats-server
//     fsyncing each write, and with group commit (durable.go).
//
// Figures are per message.
func BenchmarkCommitFloor(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("own-publish/writers=%d", n), func(b *testing.B) {
			l := floorLog(b, true)
			data := floorData(b)
			concurrently(b, n, func(w, per int) error {
				subj := Subject(l.Tenant(), events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprint("block-", w)}, events.TypeBlockUpdated)
				var last uint64
				for i := 0; i < per; i++ {
					m := nats.NewMsg(subj)
					m.Data = data
					m.Header.Set(hdrExpectSeq, fmt.Sprint(last))
					m.Header.Set(hdrExpectSubj, subj)
					ack, err := l.publish(context.Background(), []*nats.Msg{m})
					if err != nil {
						return err
					}
					if ack.Error != nil {
						return fmt.Errorf("%+v", ack.Error)
					}
					last = ack.Seq
				}
				return nil
			})
		})
		for _, group := range []bool{false, true} {
			mode := "in-server"
			if group {
				mode = "group"
			}
			b.Run(fmt.Sprintf("append/%s/writers=%d", mode, n), func(b *testing.B) {
				l := floorLog(b, !group)
				concurrently(b, n, func(w, per int) error {
					agg := events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprint("block-", w)}
					var version events.Seq
					for i := 0; i < per; i++ {
						seq, err := l.Append(context.Background(), events.Batch{
							Command: fmt.Sprint("c", w, "-", i),
							Expect:  []events.Expectation{{Aggregate: agg, Version: version}},
							Events:  []events.Envelope{{Aggregate: agg, Time: time.Now(), Event: benchEvent()}},
						})
						if err != nil {
							return err
						}
						version = seq
					}
					return nil
				})
			})
		}
		if n == 1 {
			continue
		}
		b.Run(fmt.Sprintf("atomic-batch/size=%d", n), func(b *testing.B) {
			l := floorLog(b, true)
			data := floorData(b)
			last := make([]uint64, n)
			rounds := b.N/n + 1
			b.ResetTimer()
			for r := 0; r < rounds; r++ {
				msgs := make([]*nats.Msg, n)
				for w := range msgs {
					subj := Subject(l.Tenant(), events.Aggregate{Kind: events.KindBlock, ID: fmt.Sprint("block-", w)}, events.TypeBlockUpdated)
					m := nats.NewMsg(subj)
					m.Data = data
					m.Header.Set(hdrExpectSeq, fmt.Sprint(last[w]))
					m.Header.Set(hdrExpectSubj, subj)
					msgs[w] = m
				}
				ack, err := l.publish(context.Background(), msgs)
				if err != nil || ack.Error != nil {
					b.Fatal(err, ack.Error)
				}
				for w := range last {
					last[w] = ack.Seq - uint64(n-1-w)
				}
			}
			b.ReportMetric(float64(rounds*n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// floorLog starts a log whose writes are on disk before they are
// acknowledged: by nats-server (inServer) or by group commit.
func floorLog(b *testing.B, inServer bool) *Log {
	cfg := DefaultConfig(b.TempDir())
	cfg.SyncInServer = inServer
	s, err := StartServer(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	l, err := OpenLog(context.Background(), s, LogConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// concurrently runs n writers, each writing b.N/n+1 messages, and reports
// the rate of all of them.
func concurrently(b *testing.B, n int, write func(w, per int) error) {
	per := b.N/n + 1
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := write(w, per); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*n)/b.Elapsed().Seconds(), "msgs/s")
}

func floorData(b *testing.B) []byte {
	data, err := events.Encode(events.Envelope{Aggregate: events.Aggregate{Kind: events.KindBlock, ID: "block-0"}, Command: "c", Time: time.Now(), Event: benchEvent()})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

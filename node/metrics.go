package node

import (
	"context"
	"time"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/metrics"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/service"
	"github.com/prometheus/client_golang/prometheus"
)

// timedLog is the service's log with each append's latency recorded.
type timedLog struct {
	service.Log
	m *metrics.Metrics
}

func (l timedLog) Append(ctx context.Context, b events.Batch) (events.Seq, error) {
	began := time.Now()
	seq, err := l.Log.Append(ctx, b)
	l.m.Append(time.Since(began))
	return seq, err
}

// collector reports, at each scrape, what is cheaper to read then than to
// keep up to date: the stream's size, how far the projections and the
// search index are behind it, what the follower of the log has decoded and
// how often the index fell behind it, jobs by state, and append conflicts.
type collector struct {
	n *Node
}

var (
	descStreamMessages = prometheus.NewDesc("engram_jetstream_stream_messages", "Messages in the JetStream stream.", []string{"stream"}, nil)
	descStreamBytes    = prometheus.NewDesc("engram_jetstream_stream_bytes", "Bytes in the JetStream stream.", []string{"stream"}, nil)
	descLastSeq        = prometheus.NewDesc("engram_log_last_sequence", "The sequence of the last message in the log.", nil, nil)
	descProjectionLag  = prometheus.NewDesc("engram_projection_lag_events", "Log sequences the read models have not applied yet.", nil, nil)
	descIndexLag       = prometheus.NewDesc("engram_search_index_lag_events", "Log sequences the search index has not applied yet.", nil, nil)
	descDecoded        = prometheus.NewDesc("engram_log_decoded_messages_total", "Log messages decoded by the node's follower of the log, for the read models and the search index.", nil, nil)
	descIndexBehind    = prometheus.NewDesc("engram_search_index_fell_behind_total", "Times the search index fell further behind the log than its queue holds and read the log on its own.", nil, nil)
	descJobs           = prometheus.NewDesc("engram_jobs", "Jobs by state (created, running, completed, failed, …).", []string{"state"}, nil)
	descConflicts      = prometheus.NewDesc("engram_log_append_conflicts_total", "Appends that lost a race with another write and were decided again.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreamMessages, descStreamBytes, descLastSeq, descProjectionLag, descIndexLag, descDecoded, descIndexBehind, descJobs, descConflicts} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := n.Log.Stats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descStreamMessages, prometheus.GaugeValue, float64(st.Messages), st.Stream)
		ch <- prometheus.MustNewConstMetric(descStreamBytes, prometheus.GaugeValue, float64(st.Bytes), st.Stream)
		ch <- prometheus.MustNewConstMetric(descLastSeq, prometheus.GaugeValue, float64(st.LastSeq))
		ch <- prometheus.MustNewConstMetric(descProjectionLag, prometheus.GaugeValue, behind(st.LastSeq, n.Projection.Applied()))
		if n.index != nil {
			ch <- prometheus.MustNewConstMetric(descIndexLag, prometheus.GaugeValue, behind(st.LastSeq, n.index.Applied()))
		}
	} else {
		ch <- prometheus.NewInvalidMetric(descStreamMessages, err)
	}
	if n.follower != nil {
		ch <- prometheus.MustNewConstMetric(descDecoded, prometheus.CounterValue, float64(n.follower.Decoded()))
	}
	if n.index != nil && n.index.queue != nil {
		ch <- prometheus.MustNewConstMetric(descIndexBehind, prometheus.CounterValue, float64(n.index.queue.Dropped()))
	}
	jobs := map[string]int{}
	n.Projection.Read(func(st *projections.State) {
		for _, j := range st.Jobs {
			jobs[j.Status]++
		}
	})
	for state, k := range jobs {
		ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(k), state)
	}
	if n.Service != nil {
		ch <- prometheus.MustNewConstMetric(descConflicts, prometheus.CounterValue, float64(n.Service.Conflicts()))
	}
}

func behind(last, applied events.Seq) float64 {
	if applied >= last {
		return 0
	}
	return float64(last - applied)
}

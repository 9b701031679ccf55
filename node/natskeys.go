package node

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/limits"
	"github.com/engram-dev/engram/service"
)

// orgKeys checks organizations' API keys for the embedded NATS server, and
// records the CONNECTs it refuses in the access record (events.AccessDenied
// with method CONNECT and path nats), as REST records refused requests: at
// most refusedRate a second (refusedBurst at once), the rest counted in the
// next record's Suppressed.
type orgKeys struct {
	svc     *service.Service
	log     *slog.Logger
	refused chan bus.Refusal
	dropped atomic.Int64 // refusals the channel had no room for
}

const (
	refusedRate  = 10
	refusedBurst = 50
)

var _ bus.Keys = (*orgKeys)(nil)

func newOrgKeys(svc *service.Service, log *slog.Logger) *orgKeys {
	return &orgKeys{svc: svc, log: log, refused: make(chan bus.Refusal, refusedBurst)}
}

func (k *orgKeys) Authenticate(key string) (org, keyID, refused string) {
	p, reason := k.svc.Authenticate(context.Background(), key)
	return p.Org, p.KeyID, reason
}

func (k *orgKeys) Active(keyID string) bool { return k.svc.KeyActive(keyID) }

// Refused hands r to record without waiting.
func (k *orgKeys) Refused(r bus.Refusal) {
	select {
	case k.refused <- r:
	default:
		k.dropped.Add(1)
	}
}

// record appends the refusals until ctx ends.
func (k *orgKeys) record(ctx context.Context) {
	limit := rate.NewLimiter(refusedRate, refusedBurst)
	skipped := 0
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-k.refused:
			if !limit.Allow() {
				skipped++
				continue
			}
			e := events.AccessDenied{Method: "CONNECT", Path: "nats", Remote: r.Remote, Reason: r.Reason, KeyID: r.KeyID,
				Suppressed: skipped + int(k.dropped.Swap(0))}
			skipped = 0
			rctx, cancel := context.WithTimeout(service.WithActor(ctx, "engram"), 5*time.Second)
			if err := k.svc.RecordDenied(rctx, e); err != nil && ctx.Err() == nil {
				k.log.Warn("cannot record a refused NATS connection", "err", err)
			}
			cancel()
		}
	}
}

// natsLimits bound each organization's sends over NATS (Config.NATSRateLimit,
// NATSRateBurst, MaxRunsPerOrg).
type natsLimits struct {
	rates   *limits.Rates // by subject tenant, apart from REST's
	maxRuns int
}

func newNATSLimits(perSecond float64, burst, maxRuns int) *natsLimits {
	return &natsLimits{rates: limits.New(perSecond, burst), maxRuns: maxRuns}
}

// check answers Unavailable when the organization ctx runs as (tenant on
// the subject) is over its rate, which it then spends nothing of, or has
// maxRuns runs in progress.
func (l *natsLimits) check(ctx context.Context, tenant string, svc *service.Service) error {
	if d := l.rates.Wait(tenant); d > 0 {
		return fault.E(fault.Unavailable, "too many requests for this organization; retry in %d s", max(1, int(math.Ceil(d.Seconds()))))
	}
	if l.maxRuns > 0 {
		if n := svc.ActiveRuns(ctx); n >= l.maxRuns {
			return fault.E(fault.Unavailable, "this organization has %d runs in progress, its limit; retry when one ends", n)
		}
	}
	return nil
}

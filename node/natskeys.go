package node

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
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
	perSecond float64
	burst     int
	maxRuns   int
	mu        sync.Mutex               // guards orgs
	orgs      map[string]*rate.Limiter // by subject tenant
}

func newNATSLimits(perSecond float64, burst, maxRuns int) *natsLimits {
	if burst <= 0 && perSecond > 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &natsLimits{perSecond: perSecond, burst: burst, maxRuns: maxRuns, orgs: map[string]*rate.Limiter{}}
}

// check answers Unavailable when the organization ctx runs as (tenant on
// the subject) is over its rate, which it then spends nothing of, or has
// maxRuns runs in progress.
func (l *natsLimits) check(ctx context.Context, tenant string, svc *service.Service) error {
	if l.perSecond > 0 {
		l.mu.Lock()
		b := l.orgs[tenant]
		if b == nil {
			b = rate.NewLimiter(rate.Limit(l.perSecond), l.burst)
			l.orgs[tenant] = b
		}
		l.mu.Unlock()
		res := b.Reserve()
		if d := res.Delay(); d > 0 {
			res.Cancel()
			return fault.E(fault.Unavailable, "too many requests for this organization; retry in %d s", max(1, int(math.Ceil(d.Seconds()))))
		}
	}
	if l.maxRuns > 0 {
		if n := svc.ActiveRuns(ctx); n >= l.maxRuns {
			return fault.E(fault.Unavailable, "this organization has %d runs in progress, its limit; retry when one ends", n)
		}
	}
	return nil
}

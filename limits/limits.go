// Package limits holds each organization's request rate: one token bucket
// an organization, shared by nothing else, for the REST API and for sends
// over NATS alike.
package limits

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rates is a token bucket per organization. A nil *Rates limits nothing.
type Rates struct {
	perSecond float64
	burst     int
	mu        sync.Mutex // guards orgs
	orgs      map[string]*rate.Limiter
}

// New returns buckets refilled at perSecond requests a second, holding
// burst (at least one second's worth when burst is not positive); nil when
// perSecond is not positive.
func New(perSecond float64, burst int) *Rates {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &Rates{perSecond: perSecond, burst: burst, orgs: map[string]*rate.Limiter{}}
}

// Wait reports how long org must wait before its next request is served:
// zero when it may be served now (and the request is counted); a refused
// request spends nothing.
func (l *Rates) Wait(org string) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	b := l.orgs[org]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(l.perSecond), l.burst)
		l.orgs[org] = b
	}
	l.mu.Unlock()
	res := b.Reserve()
	d := res.Delay()
	if d > 0 {
		res.Cancel()
	}
	return d
}

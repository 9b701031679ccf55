package service

import (
	"context"
	"sync"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// bodyCache keeps recently read message events, keyed by stream sequence
// and index in the message.
// Events never change, so a cached one is always right; the cache only
// saves the log round trip and the decoding for the messages every step of
// an agent reads again (its context window). It is bounded: when full it is
// emptied, which costs a few reloads and keeps memory flat.
type bodyCache struct {
	mu sync.Mutex // guards m
	m  map[bodyKey]events.Envelope
}

type bodyKey struct {
	seq  events.Seq
	part int32
}

// maxCachedBodies bounds the cache (a message event is ~1 KB).
const maxCachedBodies = 20_000

// load reads the event r refers to, from the cache when it holds a message.
func (s *Service) load(ctx context.Context, r projections.Ref) (events.Envelope, error) {
	c := &s.bodies
	key := bodyKey{r.Seq, r.Part}
	c.mu.Lock()
	env, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return env, nil
	}
	env, err := s.log.Load(ctx, r.Seq, int(r.Part))
	if err != nil {
		return env, err
	}
	if _, msg := events.AsMessage(env.Event); msg {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedBodies {
			c.m = make(map[bodyKey]events.Envelope, 1024)
		}
		c.m[key] = env
		c.mu.Unlock()
	}
	return env, nil
}

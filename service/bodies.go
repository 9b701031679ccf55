package service

import (
	"context"
	"sync"

	"github.com/engram-dev/engram/events"
)

// bodyCache keeps recently read message events, keyed by stream sequence.
// Events never change, so a cached one is always right; the cache only
// saves the log round trip and the decoding for the messages every step of
// an agent reads again (its context window). It is bounded: when full it is
// emptied, which costs a few reloads and keeps memory flat.
type bodyCache struct {
	mu sync.Mutex // guards m
	m  map[events.Seq]events.Envelope
}

// maxCachedBodies bounds the cache (a message event is ~1 KB).
const maxCachedBodies = 20_000

// load reads the event at seq, from the cache when it holds a message.
func (s *Service) load(ctx context.Context, seq events.Seq) (events.Envelope, error) {
	c := &s.bodies
	c.mu.Lock()
	env, ok := c.m[seq]
	c.mu.Unlock()
	if ok {
		return env, nil
	}
	env, err := s.log.Load(ctx, seq)
	if err != nil {
		return env, err
	}
	if _, msg := events.AsMessage(env.Event); msg {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedBodies {
			c.m = make(map[events.Seq]events.Envelope, 1024)
		}
		c.m[seq] = env
		c.mu.Unlock()
	}
	return env, nil
}

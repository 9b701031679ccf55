package service

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// Bodies keeps recently stored or read message events, keyed by stream
// sequence and index in the message.
// Events never change, so a cached one is always right; the cache only
// saves the log round trip and the decoding for the messages every step of
// an agent reads again (its context window). It is bounded: when full it is
// emptied, which costs a few reloads and keeps memory flat.
//
// It is also a projections.Sink: fed by the log's follower ahead of the read
// models, it holds every message event but system messages as it is stored, so the step after a
// send reads the user's message, and the one after a step the step's own
// messages, without a round trip to the log. Its checkpoint starts at the
// end of the log when the node starts: the backlog a starting node replays
// is not cached as it streams by.
type Bodies struct {
	mu      sync.Mutex // guards m
	m       map[bodyKey]events.Envelope
	applied atomic.Uint64
}

// NewBodies returns an empty cache whose follower checkpoint is from.
func NewBodies(from events.Seq) *Bodies {
	b := &Bodies{}
	b.applied.Store(uint64(from))
	return b
}

var _ projections.Sink = (*Bodies)(nil)

// Applied is the sink's checkpoint: the last message it was handed.
func (c *Bodies) Applied() events.Seq { return events.Seq(c.applied.Load()) }

// Apply caches the message events of msgs.
func (c *Bodies) Apply(ctx context.Context, msgs []projections.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c.mu.Lock()
	for _, m := range msgs {
		for _, env := range m.Events {
			// A system message (an agent's compiled prompt, the largest
			// message, stored when it is created) is left to the first
			// read: caching every new agent's would fill the cache with
			// what idle agents never read.
			if e, msg := events.AsMessage(env.Event); msg && e.Role != "system" {
				c.putLocked(bodyKey{env.Seq, int32(env.Part)}, env)
			}
		}
	}
	c.mu.Unlock()
	c.applied.Store(uint64(msgs[len(msgs)-1].Seq))
	return nil
}

// Get returns the message event at seq and part, if the cache holds it.
func (c *Bodies) Get(seq events.Seq, part int) (events.Envelope, bool) {
	c.mu.Lock()
	env, ok := c.m[bodyKey{seq, int32(part)}]
	c.mu.Unlock()
	return env, ok
}

func (c *Bodies) putLocked(key bodyKey, env events.Envelope) {
	if c.m == nil || len(c.m) >= maxCachedBodies {
		c.m = make(map[bodyKey]events.Envelope, 1024)
	}
	c.m[key] = env
}

type bodyKey struct {
	seq  events.Seq
	part int32
}

// maxCachedBodies bounds the cache (a message event is ~1 KB).
const maxCachedBodies = 20_000

// load reads the event r refers to, from the cache when it holds a message.
func (s *Service) load(ctx context.Context, r projections.Ref) (events.Envelope, error) {
	c := s.bodies
	key := bodyKey{r.Seq, r.Part}
	if env, ok := c.Get(r.Seq, int(r.Part)); ok {
		return env, nil
	}
	env, err := s.log.Load(ctx, r.Seq, int(r.Part))
	if err != nil {
		return env, err
	}
	if _, msg := events.AsMessage(env.Event); msg {
		c.mu.Lock()
		c.putLocked(key, env)
		c.mu.Unlock()
	}
	return env, nil
}

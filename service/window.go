package service

import (
	"sync"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/projections"
)

// windowCache remembers, for each context window (an agent's own, or one
// of its conversations'), the messages the last step read from it as the
// model reads them. A step's window is the last step's and what that step
// added, so the next step converts only the messages after the part it
// shares with the last (the same ref at the same place), instead of looking
// every message up and rendering it again. Events never change, so what a
// ref converted to is always right for that ref at that place, read by the
// same loop. It is bounded: past maxWindowEntries messages it starts again.
type windowCache struct {
	mu      sync.Mutex // guards m and entries
	m       map[windowKey]*readWindow
	entries int // held in all windows
}

type windowKey struct {
	agent string
	conv  string
}

// readWindow is a window as one step read it: never changed once stored
// (a step stores a new one).
type readWindow struct {
	loop    string // the loop it was read for (modelText depends on it)
	entries []windowEntry
}

// windowEntry is one message of a window: its ref and what the step made
// of it.
type windowEntry struct {
	ref    projections.Ref
	msg    agents.Message
	shown  bool // the model reads it (not the stored system message, nor an approval)
	warned bool // it is a memory-pressure warning
}

// maxWindowEntries bounds the messages a windowCache holds: an entry is
// about 250 bytes besides its text (shared with the message cache), so
// about 8 MB, as each of the step's memos (package memo).
const maxWindowEntries = 32_768

// get returns the window last stored under k, or nil.
func (c *windowCache) get(k windowKey) *readWindow {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// put stores w as the window under k.
func (c *windowCache) put(k windowKey, w *readWindow) {
	if len(w.entries) > maxWindowEntries/8 {
		return // too big to be worth holding
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil {
		c.entries -= len(old.entries)
	}
	if c.m == nil || c.entries+len(w.entries) > maxWindowEntries {
		c.m, c.entries = map[windowKey]*readWindow{}, 0
	}
	c.m[k] = w
	c.entries += len(w.entries)
}

// len is how many messages w holds (none when w is nil).
func (w *readWindow) len() int {
	if w == nil {
		return 0
	}
	return len(w.entries)
}

// shared returns how many leading entries of w the refs keep, read by
// loop: the same ref at the same place.
func (w *readWindow) shared(refs []projections.Ref, loop string) int {
	if w == nil || w.loop != loop {
		return 0
	}
	n := 0
	for n < len(refs) && n < len(w.entries) && w.entries[n].ref == refs[n] {
		n++
	}
	return n
}

package bus

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The members of a cluster say that they are alive, and what they hold, in
// heartbeats over core NATS (memberSubject), every heartbeatEvery. A member
// not heard from for memberTimeout is taken for gone. Heartbeats only steer
// where agents' partitions are pulled (Owner): which node runs an agent at
// a time is still decided by JetStream's pinned consumers, so members that
// disagree for a moment about who is alive cost a delay, never a second
// run. A member that stops gracefully says so (Leave), and the others take
// its partitions at once.
const (
	heartbeatEvery = 500 * time.Millisecond
	// memberTimeout is under pinnedTTL, so the survivors pull a dead
	// member's partitions before its pins time out; and it is several
	// heartbeats, so that a busy machine's pauses do not move partitions.
	memberTimeout = 3 * time.Second
)

// Member is what a member says about itself in its heartbeat.
type Member struct {
	Name string `json:"name"`
	// Leaving: the member is stopping; its partitions are the others'.
	Leaving bool `json:"leaving,omitempty"`
	// Partitions are the partitions whose inputs it pulls.
	Partitions []int `json:"partitions"`
	// Applied is the last log sequence its projections hold.
	Applied uint64 `json:"applied"`
	// MetaLeader and StreamLeader say which JetStream leaderships it holds.
	MetaLeader   bool `json:"meta_leader"`
	StreamLeader bool `json:"stream_leader"`
	// Quorum: its JetStream meta layer is current with a leader.
	Quorum bool `json:"quorum"`
	// Age is how long ago it was last heard from (set by the receiver).
	Age time.Duration `json:"-"`
}

// Members tracks the live members of a cluster by their heartbeats and
// sends this member's own. Its methods are safe for concurrent use.
type Members struct {
	conn   *nats.Conn
	tenant string
	self   string
	status func(*Member) // fills in this member's heartbeat; may be nil

	mu      sync.Mutex // guards heard, leaving and changed
	heard   map[string]heard
	leaving bool
	changed chan struct{} // closed and replaced when the live set changes

	sub  *nats.Subscription
	stop chan struct{}
	done chan struct{}
}

type heard struct {
	m  Member
	at time.Time
}

// StartMembers joins the heartbeats of tenant's members as self. status,
// when not nil, fills in each heartbeat (it must not block for long).
// The caller must Close it.
func (s *Server) StartMembers(tenant string, status func(*Member)) (*Members, error) {
	m := &Members{conn: s.conn, tenant: tenant, self: s.Name(), status: status,
		heard: map[string]heard{}, changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	sub, err := s.conn.Subscribe(memberSubject(tenant, "*"), m.receive)
	if err != nil {
		return nil, err
	}
	if err := s.conn.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	m.sub = sub
	m.beat()
	go m.run()
	return m, nil
}

// Self is this member's name.
func (m *Members) Self() string { return m.self }

func (m *Members) receive(msg *nats.Msg) {
	var got Member
	if json.Unmarshal(msg.Data, &got) != nil || got.Name == "" || memberSubject(m.tenant, got.Name) != msg.Subject {
		return
	}
	if got.Name == m.self {
		return
	}
	m.mu.Lock()
	old, known := m.heard[got.Name]
	wasLive := known && !old.m.Leaving && time.Since(old.at) < memberTimeout
	m.heard[got.Name] = heard{got, time.Now()}
	changed := wasLive != !got.Leaving
	if changed {
		m.signalLocked()
	}
	m.mu.Unlock()
	if !known && !got.Leaving {
		m.beat() // a newcomer hears from this member at once, not a heartbeat later
	}
}

// signalLocked wakes whoever waits on the live set. m.mu must be held.
func (m *Members) signalLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// run sends heartbeats and notices members that fell silent.
func (m *Members) run() {
	defer close(m.done)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	live := m.Live()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.beat()
		if now := m.Live(); !slices.Equal(now, live) {
			live = now
			m.mu.Lock()
			m.signalLocked()
			m.mu.Unlock()
		}
	}
}

// beat publishes this member's heartbeat.
func (m *Members) beat() {
	me := Member{Name: m.self}
	if m.status != nil {
		m.status(&me)
	}
	m.mu.Lock()
	me.Leaving = m.leaving
	m.mu.Unlock()
	b, _ := json.Marshal(me)
	m.conn.Publish(memberSubject(m.tenant, m.self), b)
}

// Live lists the members heard from within memberTimeout that are not
// leaving, this one included unless it is leaving, sorted by name.
func (m *Members) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	if !m.leaving {
		out = append(out, m.self)
	}
	for name, h := range m.heard {
		if !h.m.Leaving && time.Since(h.at) < memberTimeout {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Heard returns the last heartbeat of every other member heard from,
// live or not, with its age, sorted by name.
func (m *Members) Heard() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.heard))
	for _, h := range m.heard {
		mm := h.m
		mm.Age = time.Since(h.at)
		out = append(out, mm)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Changed returns a channel closed at the next change of the live set.
func (m *Members) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// WaitFor waits until n members are live (this one included), or ctx ends.
func (m *Members) WaitFor(ctx context.Context, n int) bool {
	for {
		ch := m.Changed()
		if len(m.Live()) >= n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// Leave tells the other members that this one is stopping, so that they
// take its partitions now. It keeps saying so until Close.
func (m *Members) Leave() {
	m.mu.Lock()
	m.leaving = true
	m.signalLocked()
	m.mu.Unlock()
	m.beat()
	m.conn.Flush()
}

// Close stops the heartbeats (after Leave, the others take this member for
// gone at once; without, after memberTimeout).
func (m *Members) Close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.done
	m.sub.Unsubscribe()
}

// Owner is the member that should pull partition p, among live (as Live
// returns them): the one ranked highest for p by rendezvous hashing, so
// that members share the partitions about evenly and a member's going or
// coming moves only the partitions it gains or loses. "" if live is empty.
func Owner(p int, live []string) string {
	var best string
	var top uint64
	for _, name := range live {
		h := fnv.New64a()
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, int64(p), 10))
		// fnv's last bytes mix weakly into the high bits; finish with a
		// multiply-xorshift so that rankings differ per partition.
		x := h.Sum64()
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		if best == "" || x > top {
			best, top = name, x
		}
	}
	return best
}

// Cover waits until other live members say they pull every partition in
// ps (a member leaving waits so before it gives its partitions back, so
// that they go to a member's waiting pull at once), or ctx ends. With no
// other live member it returns false at once.
func (m *Members) Cover(ctx context.Context, ps []int) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		covered := map[int]bool{}
		others := 0
		for _, o := range m.Heard() {
			if !o.Leaving && o.Age < memberTimeout {
				others++
				for _, p := range o.Partitions {
					covered[p] = true
				}
			}
		}
		if others == 0 {
			return false
		}
		all := true
		for _, p := range ps {
			all = all && covered[p]
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

package node

import (
	"strings"
	"time"
)

// Phase is one step of a node's start and how long it took.
type Phase struct {
	Name string
	Took time.Duration
}

// startPhases records the steps of Start as they end.
type startPhases struct {
	last time.Time
	done []Phase
}

// mark ends the step called name, begun when the previous one ended.
func (p *startPhases) mark(name string) {
	now := time.Now()
	p.done = append(p.done, Phase{Name: name, Took: now.Sub(p.last)})
	p.last = now
}

// String lists the steps as "name=took", for the log.
func (p *startPhases) String() string {
	var b strings.Builder
	for i, ph := range p.done {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(ph.Name)
		b.WriteByte('=')
		b.WriteString(ph.Took.Round(100 * time.Microsecond).String())
	}
	return b.String()
}

package node

import (
	"context"
	"fmt"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/fault"
)

// A cluster member has a quorum when it hears a majority of the members
// configured (itself included): only then can JetStream decide its writes.
// Its heartbeats tell it whom it hears (bus.Members), so a member that is
// cut off refuses writes at once, with a reason, instead of letting each
// wait out JetStream's timeouts; and an election among the others (the
// meta or stream leader died) does not count as a lost quorum, since
// writes resume after it.

// quorum reports whether this node hears a majority of the cluster.
func (n *Node) quorum() bool {
	if n.members == nil || n.cluster == nil {
		return true // alone, or on an external NATS whose quorum is its own affair
	}
	return len(n.members.Live()) > n.cluster.Size()/2
}

// Writable is nil when this node can decide writes, or a fault.Unavailable
// error saying why not.
func (n *Node) Writable() error {
	if n.quorum() {
		return nil
	}
	size := n.cluster.Size()
	return fault.E(fault.Unavailable, "node %s has no quorum: it hears %d of the cluster's %d members and writes need %d; "+
		"it answers reads from what it holds (log sequence %d) and takes writes again once a majority is back",
		n.NATS.Name(), len(n.members.Live()), size, size/2+1, n.Projection.Applied())
}

// Health fills in a cluster member's fields of GET /v1/health/; a node
// alone adds nothing.
func (n *Node) Health(h *api.Health) {
	if n.members == nil {
		return
	}
	me := n.Self()
	q := me.Quorum
	h.Node, h.Quorum, h.StreamLeader, h.Applied = me.Name, &q, me.StreamLeader, me.Applied
	h.Role = "follower"
	if me.MetaLeader {
		h.Role = "leader"
	}
}

// Status is the cluster as this node sees it: JetStream's leaders and the
// event stream's copies (without a quorum the copies are unknown), and
// each member as its last heartbeat describes it.
func (n *Node) Status(ctx context.Context) (api.ClusterStatus, error) {
	me := n.Self()
	st := api.ClusterStatus{Clustered: n.members != nil, Node: me.Name, Quorum: me.Quorum,
		Replicas: []api.ClusterReplica{}, Owners: map[string]string{}}
	vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	view, err := n.NATS.View(vctx)
	cancel()
	if err != nil {
		n.log.Debug("cluster status: the event stream's copies are unknown", "err", err)
	}
	st.MetaLeader, st.StreamLeader = view.MetaLeader, view.StreamLeader
	for _, r := range view.Replicas {
		st.Replicas = append(st.Replicas, api.ClusterReplica{Name: r.Name, Leader: r.Leader, Current: r.Current, Offline: r.Offline,
			Lag: r.Lag, Active: r.Active.Round(time.Millisecond).String()})
	}
	members := []bus.Member{me}
	if n.members != nil {
		members = append(members, n.members.Heard()...)
	}
	live := map[string]bool{}
	if n.members != nil {
		for _, name := range n.members.Live() {
			live[name] = true
		}
	} else {
		live[me.Name] = true
	}
	for _, m := range members {
		st.Nodes = append(st.Nodes, api.ClusterNode{Name: m.Name, Live: live[m.Name], Leaving: m.Leaving, LastSeen: m.Age.Seconds(),
			Applied: m.Applied, Partitions: len(m.Partitions), MetaLeader: m.MetaLeader, StreamLeader: m.StreamLeader, Quorum: m.Quorum})
		if live[m.Name] {
			for _, p := range m.Partitions {
				st.Owners[fmt.Sprintf("%02x", p)] = m.Name
			}
		}
	}
	return st, nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/node"
)

// clusterFlags are the server's cluster flags. A node is a cluster member
// when it has --cluster-addr; it then needs --peers.
type clusterFlags struct {
	nodeName, addr, advertise, peers, name, tokenFile string
	replicas                                          int
}

func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nodeName, "node-name", "", "this node's name in the cluster: unique, and the same across restarts (default: the host name)")
	fs.StringVar(&f.addr, "cluster-addr", "", "HOST:PORT the cluster's routes listen on (e.g. 0.0.0.0:6222); makes this node a cluster member")
	fs.StringVar(&f.advertise, "cluster-advertise", "", "HOST:PORT the other members reach --cluster-addr by, when it differs")
	fs.StringVar(&f.peers, "peers", "", "route URLs of every member, nats://h1:6222,nats://h2:6222,... (this node's own may be listed; list the same set on every member)")
	fs.StringVar(&f.name, "cluster-name", "engram", "the cluster's name, the same on every member")
	fs.StringVar(&f.tokenFile, "cluster-token-file", "", "file holding the token cluster routes authenticate with, the same on every member (required unless every address is loopback); $ENGRAM_CLUSTER_TOKEN works too")
	fs.IntVar(&f.replicas, "replicas", 0, "copies JetStream keeps of the event log and files (default 3 in a cluster, 1 alone; at most the cluster's size)")
}

// apply sets the node's cluster configuration from the flags.
func (f *clusterFlags) apply(n *node.Config) error {
	n.Replicas = f.replicas
	if f.addr == "" {
		if f.peers != "" {
			return errors.New("--peers needs --cluster-addr: the address this node's routes listen on")
		}
		if f.nodeName != "" {
			n.NodeName = f.nodeName
		}
		return nil // alone; node.Start refuses --replicas above 1
	}
	name := f.nodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return errors.New("--node-name: the host name is unknown; name this node explicitly")
		}
		name = h
	}
	if strings.ContainsAny(name, " \t.*>") {
		return fmt.Errorf("--node-name %q: no spaces, dots, * or >", name)
	}
	token := os.Getenv("ENGRAM_CLUSTER_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return fmt.Errorf("--cluster-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" || strings.ContainsAny(token, "\r\n") {
			return fmt.Errorf("--cluster-token-file %s: want one line holding the token", f.tokenFile)
		}
	}
	var peers []string
	for _, p := range strings.Split(f.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			peers = append(peers, p)
		}
	}
	n.NodeName = name
	n.Cluster = &bus.Cluster{Name: f.name, Addr: f.addr, Advertise: f.advertise, Peers: peers, Token: token}
	return nil
}

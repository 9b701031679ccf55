package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
)

// runStatus prints the cluster as one node sees it (GET /v1/cluster).
func runStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL (any member)")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c := &apiClient{base: strings.TrimRight(*base, "/"), token: *token}
	resp, err := c.do("GET", "/v1/cluster", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st api.ClusterStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("read the status: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(os.Stdout, st)
	return nil
}

// printStatus writes a cluster status for people.
func printStatus(w io.Writer, st api.ClusterStatus) {
	if !st.Clustered {
		fmt.Fprintf(w, "%s: a node alone (no cluster)\n", orDash(st.Node))
		return
	}
	q := "has a quorum"
	if !st.Quorum {
		q = "has NO quorum: it refuses writes"
	}
	fmt.Fprintf(w, "asked %s, which %s\nmeta leader: %s\nevent stream leader: %s\n\n", st.Node, q, orDash(st.MetaLeader), orDash(st.StreamLeader))
	owned := map[string]int{}
	for _, n := range st.Owners {
		owned[n]++
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tLAST HEARD\tAPPLIED\tPARTITIONS\tLEADS\tQUORUM")
	for _, n := range st.Nodes {
		state := "live"
		switch {
		case n.Leaving:
			state = "leaving"
		case !n.Live:
			state = "gone"
		}
		var leads []string
		if n.MetaLeader {
			leads = append(leads, "meta")
		}
		if n.StreamLeader {
			leads = append(leads, "stream")
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs ago\t%d\t%d\t%s\t%v\n", n.Name, state, n.LastSeen, n.Applied, n.Partitions, orDash(strings.Join(leads, ",")), n.Quorum)
	}
	tw.Flush()
	if missing := bus.Partitions - len(st.Owners); missing > 0 {
		fmt.Fprintf(w, "%d partitions are pulled by no live node: their agents wait\n", missing)
	}
	if len(st.Replicas) > 0 {
		fmt.Fprintln(w, "\nevent stream copies:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tROLE\tCURRENT\tLAG\tLAST SEEN")
		for _, r := range st.Replicas {
			role := "follower"
			if r.Leader {
				role = "leader"
			}
			if r.Offline {
				role = "offline"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", r.Name, role, r.Current, r.Lag, r.Active)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(w, "\nevent stream copies: unknown (its leader did not answer)")
	}
	names := make([]string, 0, len(owned))
	for n := range owned {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s pulls %d partitions\n", n, owned[n])
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

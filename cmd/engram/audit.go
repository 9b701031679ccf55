package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/audit"
)

// runAudit prints an agent's history: a readable timeline, or with --json
// the raw events, one JSON object a line; --follow keeps printing new ones.
func runAudit(args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	asJSON := fs.Bool("json", false, "print the raw events, one JSON object a line")
	follow := fs.Bool("follow", false, "keep printing events as they are written")
	after := fs.Uint64("after", 0, "start after this log sequence")
	var types multi
	fs.Var(&types, "type", "only events of this type (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: engram audit [--url URL] [--token T] [--json] [--follow] [--after SEQ] [--type T]... AGENT (id or name)")
	}
	c := &apiClient{base: strings.TrimRight(*base, "/"), token: *token}
	id, err := c.resolve(fs.Arg(0))
	if err != nil {
		return err
	}
	tl := audit.NewTimeline(os.Stdout)
	enc := json.NewEncoder(os.Stdout)
	last := *after
	for {
		q := url.Values{"after": {strconv.FormatUint(last, 10)}, "limit": {"1000"}, "types": types}
		resp, err := c.do("GET", "/v1/agents/"+id+"/events?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var page []api.Event
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for _, e := range page {
			if *asJSON {
				err = enc.Encode(e)
			} else {
				err = tl.Write(e)
			}
			if err != nil {
				return err
			}
		}
		if len(page) > 0 {
			last = page[len(page)-1].Seq
		}
		if len(page) < 1000 { // the last page
			if !*follow {
				return nil
			}
			time.Sleep(time.Second)
		}
	}
}

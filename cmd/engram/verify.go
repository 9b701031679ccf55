package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/node"
)

// errUnverified makes engram verify exit 1 when the log fails, after the
// report has been printed.
var errUnverified = errors.New("the log did not verify")

// runVerify walks the log and checks its seals: in the data directory of
// a stopped node (--data-dir), or through a running server's API (--url).
func runVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "verify the log in this data directory; the server must be stopped")
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "otherwise, ask the server at this URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	keyPath := fs.String("log-key-file", "", "with --data-dir: the sealing key the server was given with --log-key-file (default DIR/log.key)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("usage: engram verify [--data-dir DIR [--log-key-file FILE] | --url URL [--token T]] [--json]")
	}
	var rep api.LogVerification
	if *dataDir != "" {
		var err error
		if rep, err = node.VerifyDir(context.Background(), *dataDir, *keyPath); err != nil {
			return err
		}
	} else {
		c := &apiClient{base: strings.TrimRight(*base, "/"), token: *token}
		resp, err := c.do("GET", "/v1/admin/log/verify", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Println(string(b))
	} else {
		fmt.Println(rep.Summary)
	}
	if !rep.Verified {
		return errUnverified
	}
	return nil
}

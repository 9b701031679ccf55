package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFile: a TOML file sets the flags it names, a list sets a
// repeatable flag once per item, a flag given on the command line wins,
// and an unknown key or a bad value is refused naming it.
func TestConfigFile(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *string, *int, *bool, *multi) {
		fs := flag.NewFlagSet("server", flag.ContinueOnError)
		var models multi
		name := fs.String("node-name", "", "")
		addr := fs.String("http-addr", "127.0.0.1:8283", "")
		replicas := fs.Int("replicas", 0, "")
		verbose := fs.Bool("v", false, "")
		fs.Var(&models, "model", "")
		fs.String("config", "", "")
		return fs, name, addr, replicas, verbose, &models
	}
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "engram.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write(`node-name = "n1"
http-addr = "0.0.0.0:9000"
replicas = 3
v = true
model = ["openai/a", "openai/b"]
`)
	fs, name, addr, replicas, verbose, models := newFS()
	if err := fs.Parse([]string{"--http-addr", "127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, good); err != nil {
		t.Fatal(err)
	}
	if *name != "n1" || *addr != "127.0.0.1:1234" || *replicas != 3 || !*verbose || strings.Join(*models, ",") != "openai/a,openai/b" {
		t.Fatalf("got node-name %q http-addr %q replicas %d v %v models %v", *name, *addr, *replicas, *verbose, *models)
	}
	for _, c := range []struct{ body, want string }{
		{`nodes = 3`, `"nodes" is not a flag`},
		{`replicas = "three"`, `replicas`},
		{`[cluster]
name = "x"`, `not a flag`},
		{`config = "other.toml"`, `cannot name another`},
		{`node-name = `, `engram.toml`},
	} {
		fs, _, _, _, _, _ := newFS()
		fs.Parse(nil)
		err := applyConfig(fs, write(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want an error saying %q", c.body, err, c.want)
		}
	}
}

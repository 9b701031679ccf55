package main

import (
	"flag"
	"fmt"
	"slices"

	"github.com/BurntSushi/toml"
)

// applyConfig sets the flags of fs from a TOML file whose keys are the
// flags' names, for those not given on the command line (which wins):
//
//	node-name = "n1"
//	cluster-addr = "10.0.0.1:6222"
//	peers = "nats://10.0.0.1:6222,nats://10.0.0.2:6222,nats://10.0.0.3:6222"
//	model = ["openai/gpt-4o-mini", "openai/gpt-4o"]   # a repeatable flag takes a list
//
// An unknown key, or a value that is not a string, number, boolean or list
// of them, is an error naming the key.
func applyConfig(fs *flag.FlagSet, path string) error {
	var values map[string]any
	md, err := toml.DecodeFile(path, &values)
	if err != nil {
		return fmt.Errorf("--config %s: %w", path, err)
	}
	if len(md.Undecoded()) > 0 {
		return fmt.Errorf("--config %s: %s is not a flag (tables are not used)", path, md.Undecoded()[0])
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "config" {
			return fmt.Errorf("--config %s: a config file cannot name another", path)
		}
		if fs.Lookup(k) == nil {
			return fmt.Errorf("--config %s: %q is not a flag of engram %s", path, k, fs.Name())
		}
		if given[k] {
			continue
		}
		var vs []any
		switch v := values[k].(type) {
		case []any:
			vs = v
		case map[string]any:
			return fmt.Errorf("--config %s: %s: want a value, not a table", path, k)
		default:
			vs = []any{v}
		}
		for _, v := range vs {
			switch v.(type) {
			case string, int64, float64, bool:
			default:
				return fmt.Errorf("--config %s: %s: want a string, number or boolean, not %T", path, k, v)
			}
			if err := fs.Set(k, fmt.Sprint(v)); err != nil {
				return fmt.Errorf("--config %s: %s: %w", path, k, err)
			}
		}
	}
	return nil
}

package server

import (
	"strings"
	"testing"
)

func TestValidateListen(t *testing.T) {
	cases := []struct {
		http, nats, token string
		ok                bool
	}{
		{"127.0.0.1:8283", "127.0.0.1:4222", "", true},
		{"localhost:8283", "", "", true},
		{"[::1]:8283", "", "", true},
		{"0.0.0.0:8283", "", "", false},
		{":8283", "", "", false},
		{"127.0.0.1:8283", "0.0.0.0:4222", "", false},
		{"0.0.0.0:8283", "0.0.0.0:4222", "s3cret", true},
		{"nonsense", "", "", false},
	}
	for _, c := range cases {
		cfg := DefaultConfig(t.TempDir())
		cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Token = c.http, c.nats, c.token
		err := cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("http %q nats %q token %q: err = %v, want ok=%v", c.http, c.nats, c.token, err, c.ok)
		}
		if err != nil && c.ok == false && strings.Contains(c.http+c.nats, "0.0.0.0") && !strings.Contains(err.Error(), "token") {
			t.Errorf("refusal should say how to fix it: %v", err)
		}
	}
}

package memo

import (
	"strings"
	"testing"
	"time"
)

// TestCacheIsBounded: a cache answers what its function answers, once per
// key, holds no more than its budget, and does not hold a value too big to
// be worth it.
func TestCacheIsBounded(t *testing.T) {
	var c Cache[string]
	calls := 0
	f := func(v string) func() (string, int) { return func() (string, int) { calls++; return v, len(v) } }
	if got := c.Get("a", f("A")); got != "A" {
		t.Fatalf("Get = %q", got)
	}
	if got := c.Get("a", f("other")); got != "A" || calls != 1 {
		t.Fatalf("a second Get = %q after %d calls; want the remembered A after 1", got, calls)
	}
	big := strings.Repeat("x", MaxBytes/32)
	c.Get("big", f(big))
	if c.Len() != 1 {
		t.Fatalf("the cache holds %d values after a value of 1/32 of the budget; want 1 (it is not held)", c.Len())
	}
	value := strings.Repeat("y", 1000)
	for i := range 20_000 {
		c.Get(strings.Repeat("k", 10)+string(rune('a'+i%26))+time.Duration(i).String(), f(value))
		if c.Bytes() > MaxBytes {
			t.Fatalf("the cache holds %d bytes, over its %d", c.Bytes(), MaxBytes)
		}
	}
}

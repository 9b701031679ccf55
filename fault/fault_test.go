package fault

import (
	"errors"
	"testing"
)

// Every kind crosses the bus and comes back as itself, under its wire name
// or the display string older nodes sent. (Parsing by looping over kinds up
// to Unprocessable once turned TooLarge and Unsupported into Internal.)
func TestKindsRoundTripTheWire(t *testing.T) {
	kinds := []Kind{Internal, Invalid, NotFound, Conflict, Permission, Unavailable, Unprocessable, TooLarge, Unsupported}
	if len(kinds) != len(names) {
		t.Fatalf("%d kinds listed here, %d with wire names: name every kind", len(kinds), len(names))
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.Name()] {
			t.Errorf("wire name %q used twice", k.Name())
		}
		seen[k.Name()] = true
		if got := ParseKind(k.Name()); got != k {
			t.Errorf("ParseKind(%q) = %v; want %v", k.Name(), got, k)
		}
		if got := ParseKind(k.String()); got != k {
			t.Errorf("ParseKind(%q) (display string) = %v; want %v", k.String(), got, k)
		}
		msg := "a message for " + k.String()
		back := ToWire(E(k, "%s", msg)).Err()
		if KindOf(back) != k || (k != Internal && Message(back) != msg) {
			t.Errorf("%v through the wire came back as %v %q", k, KindOf(back), Message(back))
		}
	}
	if got := ParseKind("no such kind"); got != Internal {
		t.Errorf("an unknown name parses as %v; want internal", got)
	}
	if w := ToWire(errors.New("secret path /etc/x")); w.Detail != "internal error" || w.Kind != "internal" {
		t.Errorf("a plain error crosses as %+v; its text must not", w)
	}
}

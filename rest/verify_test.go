package rest

import (
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
)

// TestVerifyLog walks a log written through the whole stack — a scripted
// conversation with tool calls, client edits, a passage — and finds every
// message sealed and in place: no path of the service appends around the
// seal, and no append order trips the checker.
func TestVerifyLog(t *testing.T) {
	x, script := newModelHarness(t)
	conversation(t, x, script, func(string, string) {})
	var rep api.LogVerification
	x.do("GET", "/v1/admin/log/verify", nil, 200, &rep)
	if !rep.Verified || rep.Problem != nil || rep.Unsealed != 0 || rep.FirstSealed != 1 || rep.Sealed != rep.Messages || rep.LastSeq != x.lastSeq() {
		t.Fatalf("verify: %+v", rep)
	}
	if !strings.HasPrefix(rep.Summary, "verified ") {
		t.Fatalf("summary %q", rep.Summary)
	}
	t.Log(rep.Summary)
}

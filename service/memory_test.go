package service_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/service"
)

var large = flag.Bool("large", false, "run the slow tests that load tens of megabytes")

// rssKB is this process's resident set size.
func rssKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestLargeLoadReturnsMemory loads a 40 MB text file and checks that, once
// the load and its indexing are done, the server's RSS comes back near what
// it was before (measured: 115 MB after, against 208 MB when memory was left
// to the runtime, from 90 MB before). Run it alone:
//
//	go test ./service -run TestLargeLoadReturnsMemory -large -v
func TestLargeLoadReturnsMemory(t *testing.T) {
	if !*large {
		t.Skip("loads 40 MB; run with -large")
	}
	ctx := context.Background()
	n := start(t)
	src := newSource(t, n.Service, "docs")
	words := strings.Fields("the quick brown fox jumps over lazy dog engram agent memory archival passage source stream event projection index search token chunk file job")
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < 40<<20 {
		fmt.Fprintf(&b, "%s%d", words[r.IntN(len(words))], r.IntN(1000))
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	data := []byte(b.String())
	b.Reset()
	debug.FreeOSMemory()
	before := rssKB(t)
	_, job, err := n.Service.UploadFile(ctx, src.ID, service.Upload{Name: "big.txt", MIME: "text/plain", Data: data}, "")
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	j, err := n.Service.WaitJob(ctx2, job.ID)
	if err != nil || j.Status != api.JobCompleted {
		t.Fatalf("job %+v, %v", j, err)
	}
	peak := rssKB(t)
	const slack = 64 << 10 // kB
	deadline := time.Now().Add(2 * time.Minute)
	for {
		now := rssKB(t)
		if now <= before+slack {
			t.Logf("RSS: %d MB before, %d MB when the job completed, %d MB after", before>>10, peak>>10, now>>10)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS %d MB two minutes after the load, %d MB before it (%d MB at its end)", now>>10, before>>10, peak>>10)
		}
		time.Sleep(time.Second)
	}
}

// TestInsertArchivalAnswersAsStored checks that the passage an insert
// answers with (built from the event it appended, not read back) is the
// passage the log holds, field for field.
func TestInsertArchivalAnswersAsStored(t *testing.T) {
	ctx := context.Background()
	n := start(t)
	a, err := n.Service.CreateAgent(ctx, api.CreateAgent{Name: ptr("keeper")})
	if err != nil {
		t.Fatal(err)
	}
	at := "2026-01-02T03:04:05.123456789Z"
	got, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "The lighthouse is red. <&>", Tags: []string{"b", "a", "b"}, CreatedAt: &at})
	if err != nil || len(got) != 1 {
		t.Fatalf("insert: %v %v", got, err)
	}
	plain, err := n.Service.InsertArchival(ctx, a.ID, api.CreatePassage{Text: "no tags, no time"})
	if err != nil || len(plain) != 1 {
		t.Fatalf("insert: %v %v", plain, err)
	}
	stored, err := n.Service.ListArchival(ctx, a.ID, api.Page{})
	if err != nil || len(stored) != 2 {
		t.Fatalf("list: %d passages, %v", len(stored), err)
	}
	for i, want := range stored {
		have := []api.Passage{got[0], plain[0]}[i]
		if d := cmp.Diff(want, have); d != "" {
			t.Errorf("passage %d answered unlike the log holds it (-log +answer):\n%s", i, d)
		}
	}
}

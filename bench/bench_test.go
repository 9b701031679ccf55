package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestQuick runs every workload with Quick and checks that each produces its
// rows, that none failed, and that the Markdown and JSON carry them. It
// asserts no timings.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every workload")
	}
	r, err := Run(context.Background(), Options{Quick: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"append": 6, "rest": 8, "step": 5, "search": 10, "replay": 2, "verify": 1, "memory": 4, "ingest": 1}
	got := map[string]int{}
	for _, row := range r.Rows {
		got[row.Workload]++
		switch row.Status {
		case "ok":
			if len(row.Metrics) == 0 || row.Engram == "" {
				t.Errorf("%s: %q has no figures", row.Workload, row.What)
			}
		default:
			t.Errorf("%s: %s: %s", row.Workload, row.Status, row.Note)
		}
	}
	for w, n := range want {
		if got[w] != n {
			t.Errorf("workload %s: %d rows, want %d", w, got[w], n)
		}
	}
	md := r.Markdown()
	if lines := strings.Count(md, "\n| "); lines != len(r.Rows)+1 {
		t.Errorf("markdown has %d table lines for %d rows:\n%s", lines, len(r.Rows), md)
	}
	data, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || len(back.Rows) != len(r.Rows) {
		t.Fatalf("JSON round trip: %v, %d rows", err, len(back.Rows))
	}
	t.Log("\n" + md)
}

func TestRunRejectsUnknownWorkload(t *testing.T) {
	if _, err := Run(context.Background(), Options{Only: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want one naming the workload", err)
	}
}

// A workload whose package is not in the build reports its rows as not
// built, without figures.
func TestOnlyNotBuilt(t *testing.T) {
	saved := Workloads
	defer func() { Workloads = saved }()
	Workloads = append(Workloads, Workload{Name: "future", Doc: "not yet", NotBuilt: []string{"a", "b"}})
	r, err := Run(context.Background(), Options{Only: []string{"future"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 2 {
		t.Fatalf("%d rows, want 2", len(r.Rows))
	}
	for _, row := range r.Rows {
		if row.Status != "not built" || row.Engram != "not built" || len(row.Metrics) != 0 {
			t.Errorf("%+v: want a not-built row without figures", row)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- {
		l = append(l, timeIn(i))
	}
	if l.pct(.5) != timeIn(50) || l.pct(.99) != timeIn(99) || l.pct(1) != timeIn(100) {
		t.Fatalf("p50 %v p99 %v p100 %v", l.pct(.5), l.pct(.99), l.pct(1))
	}
	if thousands(1234567) != "1,234,567" || thousands(999) != "999" {
		t.Fatal(thousands(1234567), thousands(999))
	}
}

func timeIn(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

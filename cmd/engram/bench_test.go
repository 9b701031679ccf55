package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchMemoryInChildProcesses: engram bench runs the memory workload's
// sizes each in a fresh process of its own (itself, with the hidden
// --memory-child flag) and reports their rows; bad sizes are refused.
func TestBenchMemoryInChildProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("creates agents in two child processes")
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "bench.json")
	out, code := engram(t, "bench", "--quick", "--only", "memory", "--memory-agents", "200,400", "--tmp", dir, "--json", report)
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Rows []struct {
			Workload, What, Status, Note string
			Metrics                      map[string]float64
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 4 {
		t.Fatalf("%d rows, want 4 (two per size):\n%s", len(r.Rows), out)
	}
	for i, row := range r.Rows {
		want := []float64{200, 200, 400, 400}[i]
		if row.Workload != "memory" || row.Status != "ok" || row.Metrics["agents"] != want || row.Metrics["fresh_process"] != 1 ||
			!strings.Contains(row.Note, "fresh process") {
			t.Errorf("row %d: %+v; want an ok memory row of %v agents measured in a fresh process", i, row, want)
		}
	}
	if per := r.Rows[0].Metrics["per_agent_bytes"]; per <= 0 {
		t.Errorf("per agent: %v bytes", per)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "engram-bench-") {
			t.Errorf("child left its data directory %s", e.Name())
		}
	}
	for _, bad := range []string{"0", "-5", "10,x"} {
		if out, code := engram(t, "bench", "--only", "memory", "--memory-agents", bad); code == 0 || !strings.Contains(out, "--memory-agents") {
			t.Errorf("--memory-agents %s: exit %d: %s", bad, code, out)
		}
	}
	if out, code := engram(t, "bench", "--help"); strings.Contains(out, "memory-child") {
		t.Errorf("bench --help shows the hidden flag (exit %d): %s", code, out)
	}
}

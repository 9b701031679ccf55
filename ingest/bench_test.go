package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkIngest10MB reads, extracts and chunks a generated 10 MB text
// file with Letta's defaults (300 tokens, overlap 20), as loading it into a
// source would, less the embedding. The MB/s column is the throughput.
func BenchmarkIngest10MB(b *testing.B) {
	const size = 10 << 20
	text := prose(9, size/6)
	for len(text) < size {
		text += prose(uint64(len(text)), 1000)
	}
	text = text[:size]
	path := filepath.Join(b.TempDir(), "big.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	var doc Document
	for d, err := range FileConnector(path).Documents(context.Background()) {
		if err != nil {
			b.Fatal(err)
		}
		doc = d
	}
	opt := DefaultPassageOptions()
	opt.MaxSize = 2 * size
	b.SetBytes(size)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p, err := Passages(context.Background(), doc, opt)
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	b.ReportMetric(float64(n), "passages")
}

package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/ingest"
	"github.com/engram-dev/engram/service"
)

// BenchmarkLoad10MB loads a 10 MB text file into a source, end to end:
// the object store, extraction, chunking, every passage appended to the log
// (fsync off) and the job completed. Beside it, the same extraction and
// chunking alone (ingest.Extract + ingest.Chunk), the floor the loader
// stands on.
func BenchmarkLoad10MB(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 10<<20; i++ {
		fmt.Fprintf(&sb, "Line %d of the manual explains how valve %d connects to pipe %d in the east wing. ", i, i%97, i%89)
		if i%8 == 7 {
			sb.WriteString("\n")
		}
	}
	data := []byte(sb.String())
	b.Run("engram", func(b *testing.B) {
		ctx := context.Background()
		n := start(b)
		b.SetBytes(int64(len(data)))
		for i := 0; b.Loop(); i++ {
			src, err := n.Service.CreateSource(ctx, api.CreateSource{Name: fmt.Sprintf("big%d", i)})
			if err != nil {
				b.Fatal(err)
			}
			res, err := n.Service.LoadFiles(ctx, src.ID, []service.Upload{{Name: "manual.txt", Data: data}}, "")
			if err != nil {
				b.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			j, err := n.Service.WaitJob(wctx, res.Job.ID)
			cancel()
			if err != nil || j.Status != api.JobCompleted {
				b.Fatalf("job %v %s", err, j.Metadata)
			}
		}
	})
	b.Run("extract+chunk", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			text, err := ingest.Extract("manual.txt", "", data)
			if err != nil {
				b.Fatal(err)
			}
			if len(ingest.Chunk(text, ingest.DefaultChunkOptions())) == 0 {
				b.Fatal("no chunks")
			}
		}
	})
}

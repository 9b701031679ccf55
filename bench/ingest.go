package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/ingest"
	"github.com/engram-dev/engram/service"
)

// runIngest loads a text file into a source through the service (object
// store, extraction, chunking, every passage appended to the log, the job
// completed), without embeddings, beside extraction and chunking alone
// (the ingest package on the same bytes): the floor the loader stands on.
func runIngest(ctx context.Context, env *Env) ([]Row, error) {
	size := 10 << 20
	if env.Quick {
		size = 1 << 20
	}
	var sb strings.Builder
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "Line %d of the manual explains how valve %d connects to pipe %d in the east wing. ", i, i%97, i%89)
		if i%8 == 7 {
			sb.WriteString("\n")
		}
	}
	data := []byte(sb.String())
	mb := float64(len(data)) / (1 << 20)

	nd, err := env.quietNode(ctx)
	if err != nil {
		return nil, err
	}
	defer nd.Close(context.Background())
	src, err := nd.Service.CreateSource(ctx, api.CreateSource{Name: "manuals"})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := nd.Service.LoadFiles(ctx, src.ID, []service.Upload{{Name: "manual.txt", Data: data}}, "")
	if err != nil {
		return nil, err
	}
	job, err := nd.Service.WaitJob(ctx, res.Job.ID)
	if err != nil {
		return nil, err
	}
	if job.Status != api.JobCompleted {
		return nil, fmt.Errorf("load job %s: %s", job.Status, job.Metadata)
	}
	took := time.Since(start)

	start = time.Now()
	text, err := ingest.Extract("manual.txt", "", data)
	if err != nil {
		return nil, err
	}
	chunks := ingest.Chunk(text, ingest.DefaultChunkOptions())
	floor := time.Since(start)

	eng, base := mb/took.Seconds(), mb/floor.Seconds()
	r := took.Seconds() / floor.Seconds()
	return []Row{{
		What:     fmt.Sprintf("load a %.0f MB text file into a source (no embeddings): stored, split, %d passages appended, job completed", mb, len(chunks)),
		Engram:   rate(eng, "MB/s") + " (" + took.Round(time.Millisecond).String() + ")",
		Baseline: "extraction + chunking alone (ingest package): " + rate(base, "MB/s"),
		Ratio:    fmt.Sprintf("%.1f× the time", r),
		Target:   "—",
		Note:     "fsync relaxed; the search index follows the log meanwhile",
		Metrics:  map[string]float64{"engram_mb_per_s": eng, "baseline_mb_per_s": base, "ratio": r},
	}}, nil
}

package bench

// Workloads are the benchmarks Run knows, in the order it runs them (the
// numbering follows issue 7).
//
// REGISTRATION POINT for the search and ingestion workloads: their packages
// (search, ingest) are built in other branches. Until the lead merges them,
// these entries have no Run and report "not built" rows, never figures. To
// register one, set its Run to a function in this package (e.g. runSearch in
// bench/search.go, runIngest in bench/ingest.go) and keep its Name.
var Workloads = []Workload{
	{Name: "append", Doc: "engram command → event vs raw JetStream publish", Run: runAppend},
	{Name: "rest", Doc: "REST operations over loopback HTTP", Run: runREST},
	{Name: "step", Doc: "agent step with an instant scripted model", Run: runStep},
	{Name: "search", Doc: "archival search: BM25, vector 384d, hybrid vs raw Bleve", Run: nil, // lead: Run: runSearch
		NotBuilt: []string{
			"archival search, 10k passages: BM25 / vector 384d / hybrid top-10 p50, p99 vs raw Bleve",
			"archival search, 100k passages: BM25 / vector 384d / hybrid top-10 p50, p99 vs raw Bleve",
		}},
	{Name: "replay", Doc: "projection rebuild and restart", Run: runReplay},
	{Name: "memory", Doc: "resident memory per idle agent", Run: runMemory},
	{Name: "ingest", Doc: "10 MB text into a source, without embeddings", Run: nil, // lead: Run: runIngest
		NotBuilt: []string{"ingest a 10 MB text file into a source (MB/s), no embeddings"}},
}

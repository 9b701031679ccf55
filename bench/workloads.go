package bench

// Workloads are the benchmarks Run knows, in the order it runs them (the
// numbering follows issue 7).
//
// A workload without Run reports "not built" rows (its NotBuilt), never
// figures; every workload is built now.
var Workloads = []Workload{
	{Name: "append", Doc: "engram command → event vs raw JetStream publish", Run: runAppend},
	{Name: "rest", Doc: "REST operations over loopback HTTP", Run: runREST},
	{Name: "step", Doc: "agent step with an instant scripted model", Run: runStep},
	{Name: "search", Doc: "archival search: BM25, vector 384d, hybrid vs raw Bleve", Run: runSearch},
	{Name: "replay", Doc: "projection rebuild and restart", Run: runReplay},
	{Name: "verify", Doc: "engram verify (seals, expectations, checkpoints) vs a raw read of the log", Run: runVerify},
	{Name: "memory", Doc: "resident memory per idle agent", Run: runMemory},
	{Name: "ingest", Doc: "10 MB text into a source, without embeddings", Run: runIngest},
	{Name: "cluster", Doc: "appends on a 3-node R3 cluster vs raw R3 publish and R1; REST writes over three server processes vs one; failover from SIGKILL", Run: runCluster},
}

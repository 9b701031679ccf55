// Package search ranks an agent's archival passages and messages: a Bleve
// index with BM25 scoring, exact vector search over stored embeddings, and
// reciprocal rank fusion of the two.
//
// An [Index] is a projection of the event log like any other: [Index.Apply]
// takes one [Batch] of changes (made from events by [FromEvent]) and records
// the log sequence it reached inside the index, so a restart resumes from
// [Index.Seq] and a rebuild ([OpenFresh], [Index.SwapInto]) replays the log
// into a fresh directory. Message and passage bodies are not stored: the
// index answers ids, and callers read the bodies from the log.
//
// Vectors live in memory, one contiguous dim-strided slice per owner and
// dimension, and are ranked exactly by dot product (normalised on insert, so
// dot = cosine) with viterin/vek's AVX2 kernel. A large scan first reads an
// int8 copy of the rows (a quarter of the bytes) with an AVX2 kernel of its
// own, then re-ranks exactly every row whose error bound lets it reach the
// top k, so it returns the same hits as scoring every row. They are persisted in the
// index directory, written before the Bleve batch that carries the
// checkpoint, and cut back to the checkpoint on open, so Seq never claims a
// vector that was not durably written.
//
// Embeddings come from an [Embedder]; [OpenAIEmbedder] speaks any
// OpenAI-compatible /v1/embeddings endpoint. Without one, callers search
// text only.
package search

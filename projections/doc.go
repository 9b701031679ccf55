// Package projections folds the event log into the read models every node
// serves: agents, blocks, tools, sources, jobs, and per-agent indexes of
// passages and messages. Apply is deterministic (no I/O, clock or
// randomness: time and ids come from events), records the sequence it has
// applied, and the whole state can be snapshotted and restored.
//
// Message and passage bodies are not kept here: the indexes hold ids and
// stream sequences, and readers load bodies from the log.
package projections

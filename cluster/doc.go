// Package cluster tests engram as a cluster: three engram server processes
// on loopback, each with its embedded NATS server joined to the others'
// and the event log replicated three times, killed and restarted under
// load. It has no code of its own; the code is in bus (membership,
// replicated log, partition handover), node and cmd/engram (the flags).
package cluster

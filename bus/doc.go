// Package bus is engram's connection to NATS: the embedded server, the event
// stream and its subjects, and the JetStream implementation of the event log
// (append with optimistic concurrency, read by sequence, follow, snapshots).
//
// Nothing outside bus and the wiring in node/ and cmd/ imports NATS.
package bus

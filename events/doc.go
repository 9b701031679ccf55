// Package events is engram's vocabulary: typed identifiers, the envelope that
// wraps every event in the log, one struct per event type with a constant wire
// name, and the codec between them and bytes.
//
// It imports no NATS, HTTP or LLM code. The log is forever: event structs
// only ever gain optional fields, and every type has a golden JSON file under
// testdata/ (refresh with `go test ./events -update`).
package events

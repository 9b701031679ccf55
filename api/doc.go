// Package api is engram's wire schema: the JSON objects of Letta's REST API
// (agents, blocks, tools, sources, jobs, passages, messages, models) and the
// request bodies that create and change them, shared by the service, the
// REST transport and the Go client.
//
// Where Letta's 0.5 and modern shapes disagree, these are the modern shapes
// (what the official SDKs expect); request types accept the old field names
// as aliases where that costs nothing.
package api

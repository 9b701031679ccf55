package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/api/letta05"
)

// The OpenAPI document is generated, never written: its paths are the
// patterns the handler registered (h.patterns, in the order routes() and
// routes05() registered them), and its schemas are reflected from the Go
// types in api/ and api/letta05 that each route reads and answers
// (modernIO and oldIO). A route missing from those tables is still
// documented, with no schema; TestOpenAPI refuses that. The tables also
// declare the query parameters each route's handler reads (routeIO.query
// and paged); TestQueryParams compares them with the keys the handler's
// code reads through the query helper, so the two cannot drift.

// routeIO is what one route reads and answers.
type routeIO struct {
	req    reflect.Type // the JSON body; nil: none
	upload bool         // the body is multipart/form-data with a "file" part
	resp   reflect.Type // the 200 answer; nil with noBody: 204
	noBody bool         // answers 204 No Content
	stream bool         // may answer text/event-stream (Server-Sent Events)
	text   bool         // answers text/plain (Prometheus's text format)
	sum    string       // summary
	params []queryParam // the query parameters its handler reads
}

// queryParam is a query parameter a route's handler reads; its kind (a key
// of queryKinds) follows the query getter that reads it (decode.go).
type queryParam struct{ name, kind string }

// query declares the query parameters a route's handler reads, each
// "name" (a string, q.str) or "name:kind". TestQueryParams checks the
// declarations against the handlers' code, so they cannot drift.
func (r routeIO) query(specs ...string) routeIO {
	r.params = slices.Clone(r.params)
	for _, s := range specs {
		name, kind, _ := strings.Cut(s, ":")
		r.params = append(r.params, queryParam{name, kind})
	}
	return r
}

// agentFilters and blockFilters are what listing agents and blocks filter
// by, on both surfaces.
var (
	agentFilters = []string{"name", "tags:strs", "match_all_tags:bool", "query_text"}
	blockFilters = []string{
		"label", "templates_only:bool", "name", "label_search", "value_search", "description_search",
		"tags:strs", "match_all_tags:bool",
		"connected_to_agents_count_gt:int", "connected_to_agents_count_lt:int", "connected_to_agents_count_eq:ints",
	}
)

// paged declares a page's parameters (query.page) and specs.
func (r routeIO) paged(specs ...string) routeIO {
	return r.query("before", "after", "cursor", "limit:int", "order").query(specs...)
}

// queryKinds maps a declared kind to its schema and what a client needs
// to know beyond it. Each kind is named for the getter that reads it:
// "" is str (or has), int intp (or atLeast), bool boolean, time datetime.
var queryKinds = map[string]struct {
	schema map[string]any
	note   string
}{
	"":     {map[string]any{"type": "string"}, ""},
	"strs": {arrayOf("string"), "Repeat the key for more than one value."},
	"list": {arrayOf("string"), "Repeat the key, or separate the values with commas."},
	"int":  {map[string]any{"type": "integer"}, ""},
	"ints": {arrayOf("integer"), "Repeat the key for more than one value."},
	"bool": {map[string]any{"type": "boolean"}, "true or false in any case, or 1 or 0."},
	"seq":  {map[string]any{"type": "integer", "minimum": 0}, "A log sequence, as the agent's events carry."},
	"time": {map[string]any{"type": "string", "format": "date-time"}, "ISO 8601; a date alone is its midnight UTC."},
}

func arrayOf(item string) map[string]any {
	return map[string]any{"type": "array", "items": map[string]any{"type": item}}
}

// queryNotes explains the parameters whose name means one thing on every
// route that reads them.
var queryNotes = map[string]string{
	"cursor": "The old name of after.",
	"order":  "asc or desc.",
	"at":     "The point of the log to answer as of: a log sequence, or an RFC 3339 time (engram).",
}

// queryParams documents a route's query parameters; an unknown kind or a
// parameter declared twice is an error, for the test to catch.
func queryParams(pattern string, params []queryParam) ([]any, error) {
	var out []any
	seen := map[string]bool{}
	for _, p := range params {
		k, ok := queryKinds[p.kind]
		if !ok {
			return nil, fmt.Errorf("%s: query parameter %s has an unknown kind %q", pattern, p.name, p.kind)
		}
		if seen[p.name] {
			return nil, fmt.Errorf("%s: query parameter %s is declared twice", pattern, p.name)
		}
		seen[p.name] = true
		param := map[string]any{"name": p.name, "in": "query", "schema": k.schema}
		if note := strings.TrimSpace(queryNotes[p.name] + " " + k.note); note != "" {
			param["description"] = note
		}
		out = append(out, param)
	}
	return out, nil
}

func typ[T any]() reflect.Type { return reflect.TypeFor[T]() }

// rw is a route that reads Req (nil-typed when the route reads no body:
// pass struct{}) and answers Resp.
func rw[Req, Resp any](summary string) routeIO {
	var req reflect.Type
	if t := typ[Req](); t != typ[struct{}]() {
		req = t
	}
	return routeIO{req: req, resp: typ[Resp](), sum: summary}
}

type none = struct{}

// errorBody is every error's answer.
type errorBody struct {
	Detail string `json:"detail"`
}

// modernIO lists the modern surface's routes by pattern.
func modernIO() map[string]routeIO {
	m := map[string]routeIO{
		"GET /v1/health":                 rw[none, api.Health]("Health check (no token needed)"),
		"GET /v1/models":                 rw[none, []api.Model]("List the chat models this server runs"),
		"GET /v1/admin/log/verify":       rw[none, api.LogVerification]("Walk the log and check every message's seal and place: the first message engram did not write as it stands, or what was verified (engram)"),
		"GET /v1/models/embedding":       rw[none, []api.EmbeddingModel]("List the embedding models this server serves"),
		"GET /v1/admin/orgs":             rw[none, []api.Organization]("List organizations, the default one first (admin key only)").paged(),
		"POST /v1/admin/orgs":            rw[api.OrganizationCreate, api.Organization]("Create an organization (admin key only)"),
		"PATCH /v1/admin/orgs":           rw[api.OrganizationUpdate, api.Organization]("Rename an organization (admin key only)").query("org_id"),
		"DELETE /v1/admin/orgs":          rw[none, api.Organization]("Delete an organization: its keys stop working (admin key only)").query("org_id"),
		"GET /v1/admin/keys":             rw[none, []api.APIKey]("List API keys, without their secrets (admin key only; engram)").query("org_id"),
		"POST /v1/admin/keys":            rw[api.APIKeyCreate, api.APIKey]("Create an organization's API key; the answer is the only time its secret is shown (admin key only; engram)"),
		"DELETE /v1/admin/keys/{key_id}": rw[none, api.APIKey]("Revoke an API key (admin key only; engram)"),
		"GET /v1/admin/audit": rw[none, []api.Event]("The access record: organizations and keys made, changed and revoked, and refused requests, in log order (admin key only; engram)").query(
			"after:seq", "before:seq", "limit:int", "types:list", "since:time", "until:time"),
		"GET /v1/cluster": rw[none, api.ClusterStatus]("The cluster as the node asked sees it: members, leaders, the event stream's copies, who pulls each partition (engram)"),

		"POST /v1/agents":                                                  rw[api.CreateAgent, api.AgentState]("Create an agent"),
		"GET /v1/agents":                                                   rw[none, []api.AgentState]("List agents").paged(agentFilters...),
		"GET /v1/agents/{agent_id}":                                        rw[none, api.AgentState]("Get an agent").query("at"),
		"PATCH /v1/agents/{agent_id}":                                      rw[api.UpdateAgent, api.AgentState]("Update an agent"),
		"DELETE /v1/agents/{agent_id}":                                     rw[none, message]("Delete an agent"),
		"GET /v1/agents/{agent_id}/core-memory":                            rw[none, api.Memory]("Get an agent's core memory").query("at"),
		"GET /v1/agents/{agent_id}/core-memory/blocks":                     rw[none, []api.Block]("List an agent's memory blocks").paged("at"),
		"GET /v1/agents/{agent_id}/core-memory/blocks/{block_label}":       rw[none, api.Block]("Get an agent's block by label"),
		"PATCH /v1/agents/{agent_id}/core-memory/blocks/{block_label}":     rw[api.UpdateBlock, api.Block]("Update an agent's block by label"),
		"PATCH /v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}": rw[none, api.AgentState]("Attach a block"),
		"PATCH /v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}": rw[none, api.AgentState]("Detach a block"),
		"GET /v1/agents/{agent_id}/memory":                                 rw[none, oldMemory]("Core memory as a label → block map (Letta 0.5)"),
		"PATCH /v1/agents/{agent_id}/memory":                               rw[map[string]string, oldMemory]("Set blocks by label (Letta 0.5)"),
		"GET /v1/agents/{agent_id}/tools":                                  rw[none, []api.Tool]("List an agent's tools").paged(),
		"PATCH /v1/agents/{agent_id}/tools/attach/{tool_id}":               rw[none, api.AgentState]("Attach a tool"),
		"PATCH /v1/agents/{agent_id}/tools/detach/{tool_id}":               rw[none, api.AgentState]("Detach a tool"),
		"PATCH /v1/agents/{agent_id}/add-tool/{tool_id}":                   rw[none, api.AgentState]("Attach a tool (Letta 0.5)"),
		"PATCH /v1/agents/{agent_id}/remove-tool/{tool_id}":                rw[none, api.AgentState]("Detach a tool (Letta 0.5)"),
		"GET /v1/agents/{agent_id}/folders":                                rw[none, []api.Source]("List the folders attached to an agent").paged(),
		"GET /v1/agents/{agent_id}/sources":                                rw[none, []api.Source]("List the sources attached to an agent (Letta 0.5)").paged(),
		"GET /v1/agents/{agent_id}/files":                                  rw[none, api.FilesPage]("List the files an agent sees").paged("is_open:bool"),
		"PATCH /v1/agents/{agent_id}/folders/attach/{source_id}":           rw[none, api.AgentState]("Attach a folder"),
		"PATCH /v1/agents/{agent_id}/folders/detach/{source_id}":           rw[none, api.AgentState]("Detach a folder"),
		"PATCH /v1/agents/{agent_id}/sources/attach/{source_id}":           rw[none, api.AgentState]("Attach a source (deprecated alias)"),
		"PATCH /v1/agents/{agent_id}/sources/detach/{source_id}":           rw[none, api.AgentState]("Detach a source (deprecated alias)"),
		"POST /v1/agents/{agent_id}/archival-memory":                       rw[api.CreatePassage, []api.Passage]("Insert archival memory"),
		"GET /v1/agents/{agent_id}/archival-memory":                        rw[none, []api.Passage]("List archival memory").paged("ascending:bool", "at", "search"),
		"DELETE /v1/agents/{agent_id}/archival-memory/{memory_id}":         rw[none, message]("Delete a passage"),
		"POST /v1/agents/{agent_id}/archival":                              rw[api.CreatePassage, []api.Passage]("Insert archival memory (Letta 0.5 path)"),
		"GET /v1/agents/{agent_id}/archival":                               rw[none, []api.Passage]("List archival memory (Letta 0.5 path)").paged("ascending:bool", "at", "search"),
		"DELETE /v1/agents/{agent_id}/archival/{memory_id}":                rw[none, message]("Delete a passage (Letta 0.5 path)"),
		"GET /v1/agents/{agent_id}/archival-memory/search": rw[none, api.ArchivalSearch]("Search archival memory (BM25, vectors, or both fused)").query(
			"query", "tags:strs", "tag_match_mode", "top_k:int", "start_datetime:time", "end_datetime:time"),
		"GET /v1/agents/{agent_id}/memory/archival": rw[none, api.ArchivalMemorySummary]("Archival memory size (Letta 0.5)"),
		"GET /v1/agents/{agent_id}/memory/recall":   rw[none, api.RecallMemorySummary]("Recall memory size (Letta 0.5)"),
		"GET /v1/agents/{agent_id}/context":         rw[none, contextOverview]("Context window overview"),
		"GET /v1/agents/{agent_id}/events": rw[none, []api.Event]("An agent's history from the log: its events and its blocks' and files', in log order (engram)").query(
			"after:seq", "before:seq", "limit:int", "types:list", "since:time", "until:time"),
		"POST /v1/agents/{agent_id}/fork":            rw[api.ForkAgent, api.AgentState]("A new agent from another's state at a point (engram)"),
		"GET /v1/agents/{agent_id}/export":           rw[none, api.AgentFileSchema]("Export an agent as a Letta Agent File").query("scrub_messages:bool", "use_legacy_format:bool", "max_steps:int"),
		"POST /v1/agents/import":                     rw[api.AgentFileSchema, api.ImportedAgents]("Import a Letta Agent File (multipart file, or the file as a JSON body)"),
		"GET /v1/agents/{agent_id}/messages":         rw[none, []api.LettaMessage]("List an agent's messages (conversation_id: one conversation's)").paged("at", "include_return_message_types:strs", "conversation_id", "use_assistant_message:bool"),
		"POST /v1/agents/{agent_id}/messages":        streaming(rw[api.SendMessage, api.LettaResponse]("Send messages to an agent; \"streaming\": true answers Server-Sent Events")),
		"POST /v1/agents/{agent_id}/messages/stream": streaming(rw[api.SendMessage, api.LettaMessage]("Send messages and stream the answer as Server-Sent Events")),
		"POST /v1/agents/{agent_id}/messages/async":  rw[api.SendMessage, api.Run]("Store a send and return its run at once; the agent runs it"),
		"POST /v1/agents/{agent_id}/messages/cancel": rw[cancelRuns, map[string]string]("Cancel runs (all active ones without run_ids); each stops at its next step boundary"),
		"GET /v1/agents/{agent_id}/memory/messages":  rw[none, []api.LettaMessage]("The messages in the agent's context (Letta 0.5)"),
		"POST /v1/agents/{agent_id}/command":         rw[command, api.LettaResponse]("Run a command in the agent's chat, as the seed client's run_command (engram)"),

		"POST /v1/blocks":                  rw[api.CreateBlock, api.Block]("Create a block"),
		"GET /v1/blocks":                   rw[none, []api.Block]("List blocks").paged(blockFilters...),
		"GET /v1/blocks/{block_id}":        rw[none, api.Block]("Get a block"),
		"PATCH /v1/blocks/{block_id}":      rw[api.UpdateBlock, api.Block]("Update a block"),
		"DELETE /v1/blocks/{block_id}":     rw[none, any]("Delete a block (answers null)"),
		"GET /v1/blocks/{block_id}/agents": rw[none, []api.AgentState]("List the agents that hold a block").paged(),
		"POST /v1/tools":                   rw[api.CreateTool, api.Tool]("Create a tool").query("update:bool"),
		"PUT /v1/tools":                    rw[api.CreateTool, api.Tool]("Create or replace a tool").query("update:bool"),
		"GET /v1/tools": rw[none, []api.Tool]("List tools").paged(
			"name", "names:list", "tool_ids:list", "search", "tool_types:list", "exclude_tool_types:list", "return_only_letta_tools:bool"),
		"GET /v1/tools/{tool_id}":             rw[none, api.Tool]("Get a tool"),
		"PATCH /v1/tools/{tool_id}":           rw[api.UpdateTool, api.Tool]("Update a tool"),
		"DELETE /v1/tools/{tool_id}":          rw[none, any]("Delete a tool (answers null)"),
		"GET /v1/tools/name/{tool_name}":      rw[none, string]("A tool's id by name (Letta 0.5)"),
		"POST /v1/tools/generate-schema":      rw[api.CodeInput, map[string]any]("Derive the JSON schema of Python source without creating a tool"),
		"POST /v1/sources/{source_id}/attach": rw[none, api.Source]("Attach a source to ?agent_id= (Letta 0.5)").query("agent_id"),
		"POST /v1/sources/{source_id}/detach": rw[none, api.Source]("Detach a source from ?agent_id= (Letta 0.5)").query("agent_id"),
		"GET /v1/runs": rw[none, []api.Run]("List runs (agent_id, statuses, stop_reason, active, paging)").paged(
			"agent_id:list", "agent_ids:list", "statuses:list", "stop_reason", "active:bool", "ascending:bool", "order_by"),
		"GET /v1/runs/{run_id}":          rw[none, api.Run]("Get a run"),
		"GET /v1/runs/{run_id}/messages": rw[none, []api.LettaMessage]("List a run's messages: its inputs, then what its steps stored").paged(),
		"GET /v1/runs/{run_id}/usage":    rw[none, api.Usage]("A run's token usage"),
		"GET /v1/runs/{run_id}/steps":    rw[none, []api.Step]("List a run's steps: one a model call, with its usage").paged(),
		"GET /v1/jobs":                   rw[none, []api.Job]("List jobs").paged("source_id"),
		"GET /v1/jobs/active":            rw[none, []api.Job]("List running jobs").query("source_id"),
		"GET /v1/jobs/{job_id}":          rw[none, api.Job]("Get a job"),

		"POST /v1/conversations":                     rw[api.CreateConversation, api.Conversation]("Start a conversation with ?agent_id= (the body may be empty)").query("agent_id"),
		"GET /v1/conversations":                      rw[none, []api.Conversation]("List conversations, newest first").paged("agent_id", "summary_search", "order_by"),
		"GET /v1/conversations/{conversation_id}":    rw[none, api.Conversation]("Get a conversation"),
		"PATCH /v1/conversations/{conversation_id}":  rw[api.UpdateConversation, api.Conversation]("Update a conversation's summary or model"),
		"DELETE /v1/conversations/{conversation_id}": rw[none, any]("Delete a conversation; its messages stay with the agent (answers null)"),
		"GET /v1/conversations/{conversation_id}/messages": rw[none, []api.LettaMessage]("List a conversation's messages (\"default\" with agent_id: the agent's)").paged(
			"agent_id", "include_return_message_types:strs"),
		"POST /v1/conversations/{conversation_id}/messages": streaming(rw[conversationSend, api.LettaResponse]("Send messages in a conversation (\"default\" with agent_id in the body: the agent's main one); streams unless \"streaming\": false")),
		"GET /v1/messages/{message_id}":                     rw[none, []api.LettaMessage]("Get a message, as the messages it shows as"),

		"GET /metrics":      {text: true, sum: "Prometheus metrics in the text format (engram)"},
		"GET /openapi.json": {resp: typ[map[string]any](), sum: "This document (engram)"},
	}
	// Folders (modern) and sources (0.5) are one set of routes.
	for _, p := range []string{"/v1/folders", "/v1/sources"} {
		for k, v := range map[string]routeIO{
			"POST " + p:                                 rw[api.CreateSource, api.Source]("Create a folder"),
			"GET " + p:                                  rw[none, []api.Source]("List folders").paged("name"),
			"GET " + p + "/{source_id}":                 rw[none, api.Source]("Get a folder"),
			"PATCH " + p + "/{source_id}":               rw[api.UpdateSource, api.Source]("Update a folder"),
			"DELETE " + p + "/{source_id}":              rw[none, any]("Delete a folder (answers null)"),
			"GET " + p + "/{first}/{second}":            routeIO{resp: typ[oneOf[string, []api.AgentState]](), sum: "A folder's id by name (/name/{name}), or the agents a folder is attached to (/{source_id}/agents, paged)"}.paged(),
			"POST " + p + "/{source_id}/upload":         routeIO{upload: true, resp: typ[api.FileMetadata](), sum: "Upload a file into a folder; loading is a job"}.query("duplicate_handling", "name"),
			"GET " + p + "/{source_id}/files":           rw[none, []api.FileMetadata]("List a folder's files").paged("include_content:bool"),
			"GET " + p + "/{source_id}/files/{file_id}": rw[none, api.FileMetadata]("Get a file").query("include_content:bool"),
			"DELETE " + p + "/{source_id}/{file_id}":    {noBody: true, sum: "Delete a file and its passages"},
			"GET " + p + "/{source_id}/passages":        rw[none, []api.Passage]("List a folder's passages").paged(),
		} {
			m[k] = v
		}
	}
	return m
}

// oldIO lists Letta 0.5's routes by pattern below "<prefix>/v1".
var oldIO = map[string]routeIO{
	"GET /health":           rw[none, api.Health]("Health check (no token needed)"),
	"GET /models":           rw[none, []letta05.LLMConfig]("List the chat models"),
	"GET /models/embedding": rw[none, []letta05.EmbeddingConfig]("List the embedding models"),

	"GET /agents":                                    rw[none, []letta05.AgentState]("List agents").paged(agentFilters...),
	"POST /agents":                                   rw[letta05.CreateAgent, letta05.AgentState]("Create an agent"),
	"GET /agents/{agent_id}":                         rw[none, letta05.AgentState]("Get an agent").query("at"),
	"PATCH /agents/{agent_id}":                       rw[letta05.UpdateAgent, letta05.AgentState]("Update an agent"),
	"DELETE /agents/{agent_id}":                      rw[none, message]("Delete an agent"),
	"GET /agents/{agent_id}/tools":                   rw[none, []letta05.Tool]("List an agent's tools"),
	"PATCH /agents/{agent_id}/add-tool/{tool_id}":    rw[none, letta05.AgentState]("Attach a tool"),
	"PATCH /agents/{agent_id}/remove-tool/{tool_id}": rw[none, letta05.AgentState]("Detach a tool"),
	"GET /agents/{agent_id}/sources":                 rw[none, []letta05.Source]("List an agent's sources"),
	"GET /agents/{agent_id}/memory":                  rw[none, letta05.Memory]("Get core memory").query("at"),
	"PATCH /agents/{agent_id}/memory":                rw[map[string]string, letta05.Memory]("Set blocks by label"),
	"GET /agents/{agent_id}/memory/archival":         rw[none, api.ArchivalMemorySummary]("Archival memory size"),
	"GET /agents/{agent_id}/memory/recall":           rw[none, api.RecallMemorySummary]("Recall memory size"),
	"GET /agents/{agent_id}/memory/messages":         rw[none, []letta05.Message]("The messages in context"),
	"GET /agents/{agent_id}/archival":                rw[none, []letta05.Passage]("List archival memory").paged(),
	"POST /agents/{agent_id}/archival":               rw[letta05.CreateArchival, []letta05.Passage]("Insert archival memory"),
	"DELETE /agents/{agent_id}/archival/{memory_id}": rw[none, message]("Delete a passage"),
	"GET /agents/{agent_id}/messages": rw[none, oneOf[[]letta05.Message, []letta05.LettaMessage]]("List messages (stored messages, or LettaMessages with ?use_assistant_message)").query(
		"before", "after", "limit:int", "msg_object:bool",
		"use_assistant_message:bool", "assistant_message_function_name", "assistant_message_function_kwarg"),
	"POST /agents/{agent_id}/messages":               streaming(rw[letta05.SendMessage, letta05.LettaResponse]("Send messages; stream_steps or stream_tokens answer Server-Sent Events")),
	"PATCH /agents/{agent_id}/messages/{message_id}": rw[letta05.UpdateMessage, letta05.Message]("Update a stored message"),

	"GET /blocks":               rw[none, []letta05.Block]("List blocks (humans and personas are template blocks)").paged(blockFilters...),
	"POST /blocks":              rw[letta05.CreateBlock, letta05.Block]("Create a block"),
	"GET /blocks/{block_id}":    rw[none, letta05.Block]("Get a block"),
	"POST /blocks/{block_id}":   rw[letta05.UpdateBlock, letta05.Block]("Update a block"),
	"PATCH /blocks/{block_id}":  rw[letta05.UpdateBlock, letta05.Block]("Update a block"),
	"DELETE /blocks/{block_id}": rw[none, letta05.Block]("Delete a block"),

	"GET /tools":                  rw[none, []letta05.Tool]("List tools").paged(),
	"POST /tools":                 rw[letta05.CreateTool, letta05.Tool]("Create a tool"),
	"GET /tools/{tool_id}":        rw[none, letta05.Tool]("Get a tool"),
	"PATCH /tools/{tool_id}":      rw[letta05.UpdateTool, letta05.Tool]("Update a tool"),
	"DELETE /tools/{tool_id}":     rw[none, any]("Delete a tool (answers null)"),
	"GET /tools/name/{tool_name}": rw[none, string]("A tool's id by name"),
	"POST /tools/add-base-tools":  rw[none, []letta05.Tool]("Add the base tools"),

	"GET /sources":                          rw[none, []letta05.Source]("List sources").paged("name"),
	"POST /sources":                         rw[letta05.CreateSource, letta05.Source]("Create a source"),
	"GET /sources/{source_id}":              rw[none, letta05.Source]("Get a source"),
	"PATCH /sources/{source_id}":            rw[letta05.UpdateSource, letta05.Source]("Update a source"),
	"DELETE /sources/{source_id}":           rw[none, any]("Delete a source (answers null)"),
	"GET /sources/{first}/{second}":         routeIO{resp: typ[oneOf[string, []letta05.AgentState]](), sum: "A source's id by name (/name/{name}), or the agents it is attached to (/{source_id}/agents, paged)"}.paged(),
	"POST /sources/{source_id}/upload":      routeIO{upload: true, resp: typ[letta05.Job](), sum: "Upload a file; answers the load job"}.query("duplicate_handling", "name"),
	"GET /sources/{source_id}/files":        rw[none, []letta05.FileMetadata]("List a source's files").paged("include_content:bool"),
	"DELETE /sources/{source_id}/{file_id}": {noBody: true, sum: "Delete a file"},
	"POST /sources/{source_id}/attach":      rw[none, letta05.Source]("Attach a source to ?agent_id=").query("agent_id"),
	"POST /sources/{source_id}/detach":      rw[none, letta05.Source]("Detach a source from ?agent_id=").query("agent_id"),

	"GET /jobs":             rw[none, []letta05.Job]("List jobs").paged("source_id"),
	"GET /jobs/active":      rw[none, []letta05.Job]("List running jobs").query("source_id"),
	"GET /jobs/{job_id}":    rw[none, letta05.Job]("Get a job"),
	"DELETE /jobs/{job_id}": rw[none, letta05.Job]("Delete a finished job"),

	"GET /admin/orgs":    rw[none, []letta05.Organization]("List organizations (engram has one)"),
	"POST /admin/orgs":   rw[letta05.CreateOrg, letta05.Organization]("Create an organization (refused: engram has one)"),
	"DELETE /admin/orgs": rw[none, letta05.Organization]("Delete an organization (refused)").query("org_id"),
}

func streaming(r routeIO) routeIO { r.stream = true; return r }

// oneOf marks a route that answers either A or B; schemaGen.schema
// expands it from its fields' types. It is never made.
type oneOf[A, B any] struct {
	A A
	B B
}

// ioFor finds a pattern's routeIO and the tag it is listed under.
func ioFor(pattern string) (routeIO, string, bool) {
	method, path, _ := strings.Cut(pattern, " ")
	for _, p := range []string{Prefix051, Prefix05} {
		if rest, ok := strings.CutPrefix(path, p+"/v1"); ok {
			r, found := oldIO[method+" "+rest]
			return r, strings.TrimPrefix(p, "/"), found
		}
	}
	r, found := modernIO()[pattern]
	tag := "engram"
	if seg := strings.Split(strings.TrimPrefix(path, "/v1/"), "/"); strings.HasPrefix(path, "/v1/") {
		tag = seg[0]
	}
	if strings.HasSuffix(path, "/command") || strings.HasSuffix(path, "/events") || strings.HasSuffix(path, "/fork") {
		tag = "engram"
	}
	return r, tag, found
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// openAPI builds the document for a list of registered patterns.
func openAPI(version string, patterns []string) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, pattern := range patterns {
		method, path, _ := strings.Cut(pattern, " ")
		rio, tag, _ := ioFor(pattern)
		op := map[string]any{
			"operationId": operationID(method, path),
			"tags":        []string{tag},
			"summary":     rio.sum,
		}
		if strings.HasPrefix(path, Prefix051+"/") {
			op["description"] = "Letta 0.5.1's shapes (a few objects differ from 0.5.5's; see api/letta05.Dialect051)."
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		query, err := queryParams(pattern, rio.params)
		if err != nil {
			return nil, err
		}
		if params = append(params, query...); len(params) > 0 {
			op["parameters"] = params
		}
		switch {
		case rio.upload:
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"multipart/form-data": map[string]any{
				"schema": map[string]any{"type": "object", "required": []string{"file"}, "properties": map[string]any{"file": map[string]any{"type": "string", "contentMediaType": "application/octet-stream"}}},
			}}}
		case rio.req != nil:
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(rio.req)}}}
		}
		responses := map[string]any{"default": map[string]any{"description": "An error: 4xx for input a retry cannot fix, 5xx otherwise", "content": map[string]any{"application/json": map[string]any{"schema": g.schema(typ[errorBody]())}}}}
		switch {
		case rio.noBody:
			responses["204"] = map[string]any{"description": "Done"}
		case rio.text:
			responses["200"] = map[string]any{"description": "OK", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}}
		case rio.resp != nil:
			content := map[string]any{"application/json": map[string]any{"schema": g.schema(rio.resp)}}
			if rio.stream {
				content["text/event-stream"] = map[string]any{"schema": map[string]any{"type": "string", "description": "Server-Sent Events: one JSON message per data line, then [DONE]"}}
			}
			responses["200"] = map[string]any{"description": "OK", "content": content}
		default:
			responses["200"] = map[string]any{"description": "OK"}
		}
		op["responses"] = responses
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	tags := []any{
		map[string]any{"name": "engram", "description": "engram's own additions: /metrics, /openapi.json, an agent's command"},
		map[string]any{"name": "letta-0.5", "description": "Letta 0.5.5's API, for its Python RESTClient pointed at /letta-0.5"},
		map[string]any{"name": "letta-0.5.1", "description": "Letta 0.5.1's API, for its Python RESTClient pointed at /letta-0.5.1"},
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "engram",
			"version":     version,
			"description": "Stateful LLM agents in the style of Letta, event-sourced on NATS JetStream. Generated from the routes the server registers and the Go types they read and answer. Every path also answers with a trailing slash.",
		},
		"servers":    []any{map[string]any{"url": "/"}},
		"tags":       tags,
		"paths":      paths,
		"components": map[string]any{"schemas": g.defs, "securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"security":   []any{map[string]any{"bearer": []any{}}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	// invopop/jsonschema refers to its definitions under $defs; OpenAPI
	// keeps them in components.
	return bytes.ReplaceAll(b, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`)), nil
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '-' || r == '.' || r == '{' || r == '}' || r == '_' }) {
		b.WriteString(strings.ToUpper(seg[:1]) + seg[1:])
	}
	return b.String()
}

// schemaGen reflects Go types into JSON Schema (2020-12, which OpenAPI 3.1
// uses), gathering named types' definitions in defs.
type schemaGen struct {
	defs map[string]any
}

func (g *schemaGen) schema(t reflect.Type) any {
	if t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), "oneOf[") {
		return map[string]any{"oneOf": []any{g.schema(t.Field(0).Type), g.schema(t.Field(1).Type)}}
	}
	if t.Kind() == reflect.Interface {
		return map[string]any{}
	}
	r := &jsonschema.Reflector{Anonymous: true, AllowAdditionalProperties: true, Namer: schemaName}
	s := r.ReflectFromType(t)
	for name, d := range s.Definitions {
		g.defs[name] = d
	}
	s.Definitions = nil
	s.Version = ""
	return s
}

// schemaName names a type's schema: Letta 0.5's objects are prefixed so
// they do not collide with the modern ones of the same name.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if strings.HasSuffix(t.PkgPath(), "/api/letta05") {
		return "Letta05" + name
	}
	if strings.HasSuffix(t.PkgPath(), "/rest") {
		return "Engram" + strings.ToUpper(name[:1]) + name[1:]
	}
	return name
}

// serveOpenAPI answers the document, generated once.
func (h *handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h.docOnce.Do(func() {
		h.doc, h.docErr = openAPI(h.svc.Health(r.Context()).Version, h.patterns)
	})
	if h.docErr != nil {
		h.fail(w, r, h.docErr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(h.doc)
}

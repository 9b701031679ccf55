package agents

import "encoding/json"

// Names of the base tools, as Letta spells them.
const (
	ToolSendMessage            = "send_message"
	ToolPauseHeartbeats        = "pause_heartbeats"
	ToolConversationSearch     = "conversation_search"
	ToolConversationSearchDate = "conversation_search_date"
	ToolArchivalMemoryInsert   = "archival_memory_insert"
	ToolArchivalMemorySearch   = "archival_memory_search"
	ToolCoreMemoryAppend       = "core_memory_append"
	ToolCoreMemoryReplace      = "core_memory_replace"
)

// BaseTool is a tool every engram server provides, implemented in Go.
type BaseTool struct {
	Name        string
	Description string
	Tags        []string
	ToolType    string          // Letta's tool_type; "" means letta_core
	Schema      json.RawMessage // OpenAI function schema
}

// heartbeatParam is appended to every base tool that may chain.
const heartbeatParam = `"request_heartbeat":{"type":"boolean","description":"Request an immediate heartbeat after function execution. Set to ` + "`True`" + ` if you want to send a follow-up message or run a follow-up function."}`

const pageParam = `"page":{"type":"integer","description":"Page of results to return, counting from 0. Use it only to continue an earlier search."}`

func schema(name, desc, props string, required ...string) json.RawMessage {
	req, _ := json.Marshal(required)
	return json.RawMessage(`{"name":"` + name + `","description":` + quote(desc) +
		`,"parameters":{"type":"object","properties":{` + props + `},"required":` + string(req) + `}}`)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// BaseTools returns the base tools in a fixed order. The descriptions are
// engram's own; the names and parameters are Letta's, so agents and
// clients written for Letta work unchanged.
func BaseTools() []BaseTool {
	base := []string{"base", "letta-base"}
	memory := []string{"memory", "letta-base"}
	return []BaseTool{
		{ToolSendMessage, "Send a message to the user. This is the only way the user sees anything you say.", base, "",
			schema(ToolSendMessage, "Send a message to the user. This is the only way the user sees anything you say.",
				`"message":{"type":"string","description":"The text to send. Any unicode, emojis included."}`, "message")},
		{ToolPauseHeartbeats, "Stop timed heartbeats for a while. Messages and requested heartbeats still arrive.", base, "",
			schema(ToolPauseHeartbeats, "Stop timed heartbeats for a while. Messages and requested heartbeats still arrive.",
				`"minutes":{"type":"integer","description":"How many minutes to pause, at most 360."}`, "minutes")},
		{ToolConversationSearch, "Search earlier messages of the conversation for a phrase (case does not matter).", base, "",
			schema(ToolConversationSearch, "Search earlier messages of the conversation for a phrase (case does not matter).",
				`"query":{"type":"string","description":"The phrase to look for."},`+pageParam+`,`+heartbeatParam,
				"query", "request_heartbeat")},
		{ToolConversationSearchDate, "Search earlier messages of the conversation by the date they were sent.", base, "",
			schema(ToolConversationSearchDate, "Search earlier messages of the conversation by the date they were sent.",
				`"start_date":{"type":"string","description":"First day to include, as YYYY-MM-DD."},`+
					`"end_date":{"type":"string","description":"Last day to include, as YYYY-MM-DD."},`+pageParam+`,`+heartbeatParam,
				"start_date", "end_date", "request_heartbeat")},
		{ToolArchivalMemoryInsert, "Store a memory in archival memory. Write it so that a later search will find it.", base, "",
			schema(ToolArchivalMemoryInsert, "Store a memory in archival memory. Write it so that a later search will find it.",
				`"content":{"type":"string","description":"What to remember. Any unicode, emojis included."},`+heartbeatParam,
				"content", "request_heartbeat")},
		{ToolArchivalMemorySearch, "Search archival memory by meaning and by words.", base, "",
			schema(ToolArchivalMemorySearch, "Search archival memory by meaning and by words.",
				`"query":{"type":"string","description":"What to look for."},`+pageParam+`,`+heartbeatParam,
				"query", "request_heartbeat")},
		{ToolCoreMemoryAppend, "Add a line to a section of your core memory.", memory, "",
			schema(ToolCoreMemoryAppend, "Add a line to a section of your core memory.",
				`"name":{"type":"string","description":"The section to edit, such as persona or human."},`+
					`"content":{"type":"string","description":"The text to add. Any unicode, emojis included."},`+heartbeatParam,
				"name", "content", "request_heartbeat")},
		{ToolCoreMemoryReplace, "Replace text in a section of your core memory. Use an empty new_content to delete.", memory, "",
			schema(ToolCoreMemoryReplace, "Replace text in a section of your core memory. Use an empty new_content to delete.",
				`"name":{"type":"string","description":"The section to edit, such as persona or human."},`+
					`"old_content":{"type":"string","description":"The exact text to replace."},`+
					`"new_content":{"type":"string","description":"The text to put in its place. Any unicode, emojis included."},`+heartbeatParam,
				"name", "old_content", "new_content", "request_heartbeat")},
	}
}

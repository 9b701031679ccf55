package rest

// routes registers every route. Patterns carry no trailing slash: ServeHTTP
// strips the client's, so "/v1/agents/" and "/v1/agents" are one route.
//
// Routes marked 0.5 keep the shapes of Letta 0.5.1 for its Python
// RESTClient; the modern SDKs never call them.
func (h *handler) routes() {
	h.handle("GET /v1/health", h.health)
	h.handle("GET /v1/models", h.listModels)
	h.handle("GET /v1/models/embedding", h.listEmbeddingModels)
	h.handle("GET /v1/admin/log/verify", h.verifyLog) // engram: tamper evidence

	// Agents.
	h.handle("POST /v1/agents", h.createAgent)
	h.handle("GET /v1/agents", h.listAgents)
	h.handle("GET /v1/agents/{agent_id}", h.getAgent)
	h.handle("PATCH /v1/agents/{agent_id}", h.updateAgent)
	h.handle("DELETE /v1/agents/{agent_id}", h.deleteAgent)
	h.handle("GET /v1/agents/{agent_id}/events", h.listEvents)  // engram: the agent's history
	h.handle("POST /v1/agents/{agent_id}/fork", h.forkAgent)    // engram: a new agent from a past state
	h.handle("GET /v1/agents/{agent_id}/export", h.exportAgent) // a Letta Agent File
	h.handle("POST /v1/agents/import", h.importAgent)

	// Core memory. attach/{id} and detach/{id} have one segment more than
	// {block_label}, so the patterns do not overlap; a label containing "/"
	// arrives as %2F and stays one segment.
	h.handle("GET /v1/agents/{agent_id}/core-memory", h.getCoreMemory)
	h.handle("GET /v1/agents/{agent_id}/core-memory/blocks", h.listAgentBlocks)
	h.handle("GET /v1/agents/{agent_id}/core-memory/blocks/{block_label}", h.getAgentBlock)
	h.handle("PATCH /v1/agents/{agent_id}/core-memory/blocks/{block_label}", h.updateAgentBlock)
	h.handle("PATCH /v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}", h.attachBlock)
	h.handle("PATCH /v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}", h.detachBlock)
	h.handle("GET /v1/agents/{agent_id}/memory", h.getOldMemory)      // 0.5
	h.handle("PATCH /v1/agents/{agent_id}/memory", h.updateOldMemory) // 0.5

	// Agent tools.
	h.handle("GET /v1/agents/{agent_id}/tools", h.listAgentTools)
	h.handle("PATCH /v1/agents/{agent_id}/tools/attach/{tool_id}", h.attachTool)
	h.handle("PATCH /v1/agents/{agent_id}/tools/detach/{tool_id}", h.detachTool)
	h.handle("PATCH /v1/agents/{agent_id}/add-tool/{tool_id}", h.addTool)       // 0.5
	h.handle("PATCH /v1/agents/{agent_id}/remove-tool/{tool_id}", h.removeTool) // 0.5

	// Agent sources (folders).
	h.handle("GET /v1/agents/{agent_id}/folders", h.listAgentSources)
	h.handle("GET /v1/agents/{agent_id}/sources", h.listAgentSources) // 0.5
	h.handle("GET /v1/agents/{agent_id}/files", h.listAgentFiles)
	h.handle("PATCH /v1/agents/{agent_id}/folders/attach/{source_id}", h.attachSource)
	h.handle("PATCH /v1/agents/{agent_id}/folders/detach/{source_id}", h.detachSource)
	h.handle("PATCH /v1/agents/{agent_id}/sources/attach/{source_id}", h.attachSource) // deprecated alias
	h.handle("PATCH /v1/agents/{agent_id}/sources/detach/{source_id}", h.detachSource) // deprecated alias

	// Archival memory, and the 0.5 paths for it.
	for _, p := range []string{"archival-memory", "archival"} {
		h.handle("POST /v1/agents/{agent_id}/"+p, h.insertArchival)
		h.handle("GET /v1/agents/{agent_id}/"+p, h.listArchival)
		h.handle("DELETE /v1/agents/{agent_id}/"+p+"/{memory_id}", h.deleteArchival)
	}
	h.handle("GET /v1/agents/{agent_id}/archival-memory/search", h.searchArchival)
	h.handle("GET /v1/agents/{agent_id}/memory/archival", h.archivalSummary) // 0.5
	h.handle("GET /v1/agents/{agent_id}/memory/recall", h.recallSummary)     // 0.5
	h.handle("GET /v1/agents/{agent_id}/context", h.contextSummary)

	// Messages.
	h.handle("GET /v1/agents/{agent_id}/messages", h.listMessages)
	h.handleFunc("POST /v1/agents/{agent_id}/messages", h.sendMessage)
	h.handleFunc("POST /v1/agents/{agent_id}/messages/stream", h.streamMessage) // deprecated: always streams
	h.handle("POST /v1/agents/{agent_id}/messages/async", h.sendAsync)
	h.handle("POST /v1/agents/{agent_id}/messages/cancel", h.cancel)
	h.handle("GET /v1/agents/{agent_id}/memory/messages", h.listContextMessages) // 0.5
	h.handle("POST /v1/agents/{agent_id}/command", h.runCommand)                 // engram: the seed's run_command

	// Blocks.
	h.handle("POST /v1/blocks", h.createBlock)
	h.handle("GET /v1/blocks", h.listBlocks)
	h.handle("GET /v1/blocks/{block_id}", h.getBlock)
	h.handle("PATCH /v1/blocks/{block_id}", h.updateBlock)
	h.handle("DELETE /v1/blocks/{block_id}", h.deleteBlock)
	h.handle("GET /v1/blocks/{block_id}/agents", h.listBlockAgents)

	// Tools.
	h.handle("POST /v1/tools", h.upsertTool)
	h.handle("PUT /v1/tools", h.upsertTool)
	h.handle("GET /v1/tools", h.listTools)
	h.handle("GET /v1/tools/{tool_id}", h.getTool)
	h.handle("PATCH /v1/tools/{tool_id}", h.updateTool)
	h.handle("DELETE /v1/tools/{tool_id}", h.deleteTool)
	h.handle("GET /v1/tools/name/{tool_name}", h.toolIDByName) // 0.5
	h.handle("POST /v1/tools/generate-schema", h.generateToolSchema)

	// Sources: /v1/folders/ is the modern name, /v1/sources/ the 0.5 one.
	for _, p := range []string{"/v1/folders", "/v1/sources"} {
		h.handle("POST "+p, h.createSource)
		h.handle("GET "+p, h.listSources)
		h.handle("GET "+p+"/{source_id}", h.getSource)
		h.handle("PATCH "+p+"/{source_id}", h.updateSource)
		h.handle("DELETE "+p+"/{source_id}", h.deleteSource)
		// GET /name/{name} and GET /{source_id}/agents both match
		// /name/agents, which ServeMux refuses to register; one
		// pattern serves both.
		h.handle("GET "+p+"/{first}/{second}", h.sourceByNameOrAgents)
		h.handle("POST "+p+"/{source_id}/upload", h.uploadFile)
		h.handle("GET "+p+"/{source_id}/files", h.listFiles)
		h.handle("GET "+p+"/{source_id}/files/{file_id}", h.getFile)
		h.handle("DELETE "+p+"/{source_id}/{file_id}", h.deleteFile)
		h.handle("GET "+p+"/{source_id}/passages", h.listSourcePassages)
	}
	h.handle("POST /v1/sources/{source_id}/attach", h.attachSourceOld) // 0.5
	h.handle("POST /v1/sources/{source_id}/detach", h.detachSourceOld) // 0.5

	// Runs: one per send, a projection of its events.
	h.handle("GET /v1/runs", h.listRuns)
	h.handle("GET /v1/runs/{run_id}", h.getRun)
	h.handle("GET /v1/runs/{run_id}/messages", h.listRunMessages)
	h.handle("GET /v1/runs/{run_id}/usage", h.getRunUsage)
	h.handle("GET /v1/runs/{run_id}/steps", h.listRunSteps)

	// Jobs (0.5; modern Letta keeps them server-side).
	h.handle("GET /v1/jobs", h.listJobs)
	h.handle("GET /v1/jobs/active", h.listActiveJobs)
	h.handle("GET /v1/jobs/{job_id}", h.getJob)
}

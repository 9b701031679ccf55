// Package agents is the agent runtime's logic: the Model interface, one step
// of either of Letta's loops (Letta 0.5's MemGPT loop: the request with the
// compiled system prompt, one tool call, heartbeats; modern Letta's
// letta_v1_agent loop: plain answers, native tool calls), the base tools,
// what is fed back to the model, memory rendering, and the texts the model
// sees. It stores nothing: a step returns what it produced
// and the service commits it as events.
package agents

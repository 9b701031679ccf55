// Package agents is the agent runtime: the step loop, the model interface,
// the base tools an agent calls, memory rendering and context management.
//
// So far it holds the definitions other packages need before the loop
// exists: the base tools' names and schemas and the default system prompt.
package agents

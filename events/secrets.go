package events

// AgentSecretsSet replaces an agent's tool environment variables (Letta's
// secrets, or tool_exec_environment_variables): each value is sealed
// (package secrets) for the agent and the variable's name, so the log never
// holds it in clear. An empty map removes them all.
type AgentSecretsSet struct {
	Secrets map[string]string `json:"secrets"` // name → sealed value
}

func (AgentSecretsSet) EventType() Type { return TypeAgentSecretsSet }

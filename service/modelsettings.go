package service

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/engram-dev/engram/agents"
	"github.com/engram-dev/engram/api"
)

// Letta 0.16 configures an agent's model with model_settings, a
// provider-typed object, and keeps it nowhere: it is merged into the
// llm_config (with the defaults of its provider's class for what it leaves
// out, except max_output_tokens), and the model_settings an agent shows are
// derived back from the llm_config. engram does the same for the two
// provider types it runs.

// AgentTypes are the agent types Letta 0.16.8 accepts. engram runs
// letta_v1_agent with the modern loop and every other with the MemGPT loop;
// memgpt_v2_agent differs from memgpt_agent in its base tools.
var AgentTypes = []string{
	"memgpt_agent", "memgpt_v2_agent", "letta_v1_agent", "react_agent", "workflow_agent", "split_thread_agent",
	"sleeptime_agent", "voice_convo_agent", "voice_sleeptime_agent",
}

// loopOf is the loop an agent type runs.
func loopOf(agentType string) string {
	if agentType == agents.LoopV1 {
		return agents.LoopV1
	}
	return agents.LoopMemGPT
}

// baseToolsOf names the base tools an agent of a type gets with
// include_base_tools, as Letta 0.16.8 chooses them (agent_manager.py,
// calculate_base_tools); memgpt_agent and the other types keep engram's
// Letta 0.5 set.
func baseToolsOf(agentType string) []string {
	switch agentType {
	case agents.LoopV1:
		return agents.V1BaseTools
	case "memgpt_v2_agent":
		return []string{agents.ToolSendMessage, agents.ToolConversationSearch, agents.ToolMemoryReplace, agents.ToolMemoryInsert}
	}
	var out []string
	for _, bt := range agents.BaseTools() {
		out = append(out, bt.Name)
	}
	return out
}

// modelSettings is the union of the model_settings fields engram reads.
type modelSettings struct {
	ProviderType      string   `json:"provider_type"`
	Strict            *bool    `json:"strict"`
	Temperature       *float64 `json:"temperature"`
	MaxOutputTokens   *int     `json:"max_output_tokens"`
	ParallelToolCalls *bool    `json:"parallel_tool_calls"`
	Reasoning         *struct {
		ReasoningEffort *string `json:"reasoning_effort"`
	} `json:"reasoning"`
	Thinking *struct {
		Type         *string `json:"type"`
		BudgetTokens *int    `json:"budget_tokens"`
	} `json:"thinking"`
}

var reasoningEfforts = []string{"none", "minimal", "low", "medium", "high", "xhigh"}

// applyModelSettings merges a client's model_settings into cfg as Letta
// merges them: the fields left out take the defaults of the provider's
// settings class (temperature 0.7 for OpenAI, 1.0 for Anthropic; parallel
// tool calls on; reasoning effort high; thinking enabled, 1024 tokens;
// strict on for OpenAI, off for Anthropic),
// except max_output_tokens, which changes max_tokens only when given.
func applyModelSettings(cfg *api.LLMConfig, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var ms modelSettings
	if err := json.Unmarshal(raw, &ms); err != nil {
		return unprocessable("model_settings: %v", jsonProblem(err))
	}
	f := func(v float64) *float64 { return &v }
	yes := true
	switch ms.ProviderType {
	case "openai", "":
		cfg.Temperature = cmpOr(ms.Temperature, f(0.7))
		effort := "high"
		if ms.Reasoning != nil && ms.Reasoning.ReasoningEffort != nil {
			effort = *ms.Reasoning.ReasoningEffort
		}
		if !slices.Contains(reasoningEfforts, effort) {
			return unprocessable("model_settings.reasoning.reasoning_effort must be one of none, minimal, low, medium, high, xhigh, not %q", effort)
		}
		cfg.ReasoningEffort = &effort
		cfg.Strict = cmpOr(ms.Strict, &yes) // OpenAIModelSettings' default
	case "anthropic":
		cfg.Temperature = cmpOr(ms.Temperature, f(1.0))
		on, budget := true, 1024
		if t := ms.Thinking; t != nil {
			if t.Type != nil {
				if *t.Type != "enabled" && *t.Type != "disabled" {
					return unprocessable("model_settings.thinking.type must be enabled or disabled, not %q", *t.Type)
				}
				on = *t.Type == "enabled"
			}
			if t.BudgetTokens != nil {
				budget = *t.BudgetTokens
			}
		}
		cfg.EnableReasoner, cfg.MaxReasoningTokens = &on, &budget
		no := false
		cfg.Strict = cmpOr(ms.Strict, &no)
	default:
		if ms.Temperature != nil {
			cfg.Temperature = ms.Temperature
		}
	}
	if t := cfg.Temperature; t != nil && (*t < 0 || *t > 2) {
		return unprocessable("model_settings.temperature must be between 0 and 2")
	}
	if ms.MaxOutputTokens != nil {
		if *ms.MaxOutputTokens <= 0 {
			return unprocessable("model_settings.max_output_tokens must be positive")
		}
		cfg.MaxTokens = ms.MaxOutputTokens
	}
	cfg.ParallelToolCalls = cmpOr(ms.ParallelToolCalls, &yes)
	return nil
}

func cmpOr[T any](p, def *T) *T {
	if p != nil {
		return p
	}
	return def
}

// modelSettingsView derives an agent's model_settings from its llm_config
// as Letta's LLMConfig._to_model_settings does, for OpenAI-shaped and
// Anthropic endpoints. nil without a model.
func modelSettingsView(cfg *api.LLMConfig) json.RawMessage {
	if cfg == nil {
		return json.RawMessage("null")
	}
	maxTokens := 4096
	if cfg.MaxTokens != nil && *cfg.MaxTokens > 0 {
		maxTokens = *cfg.MaxTokens
	}
	temp := 1.0 // LLMConfig's default
	if cfg.Temperature != nil {
		temp = *cfg.Temperature
	}
	parallel := cfg.ParallelToolCalls == nil || *cfg.ParallelToolCalls
	strict := cfg.Strict != nil && *cfg.Strict // LLMConfig's default: off
	var v any
	if cfg.ModelEndpointType == "anthropic" {
		thinking := "disabled"
		if cfg.EnableReasoner != nil && *cfg.EnableReasoner {
			thinking = "enabled"
		}
		budget := 1024
		if cfg.MaxReasoningTokens != nil && *cfg.MaxReasoningTokens > 0 {
			budget = *cfg.MaxReasoningTokens
		}
		v = map[string]any{
			"max_output_tokens": maxTokens, "parallel_tool_calls": parallel, "provider_type": "anthropic",
			"temperature": temp, "thinking": map[string]any{"type": thinking, "budget_tokens": budget},
			"response_format": nil, "verbosity": nil, "effort": nil, "strict": strict,
		}
	} else {
		effort := "minimal"
		if cfg.ReasoningEffort != nil {
			effort = *cfg.ReasoningEffort
		}
		v = map[string]any{
			"max_output_tokens": maxTokens, "parallel_tool_calls": parallel, "provider_type": "openai",
			"temperature": temp, "reasoning": map[string]any{"reasoning_effort": effort},
			"response_format": nil, "strict": strict,
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// configureModel applies the model fields of a create or update request to
// the stored llm_config raw (nil: none, and then the fields are refused).
func configureModel(raw json.RawMessage, settings json.RawMessage, window, maxTokens *int, parallel *bool) (json.RawMessage, error) {
	given := (len(bytes.TrimSpace(settings)) > 0 && !bytes.Equal(bytes.TrimSpace(settings), []byte("null"))) ||
		window != nil || maxTokens != nil || parallel != nil
	if !given {
		return raw, nil
	}
	cfg := llmConfig(raw)
	if cfg == nil {
		return nil, invalid("Must specify either model or llm_config in request (model_settings, context_window_limit, max_tokens and parallel_tool_calls configure a model)")
	}
	if err := applyModelSettings(cfg, settings); err != nil {
		return nil, err
	}
	if window != nil {
		if *window <= 0 {
			return nil, unprocessable("context_window_limit must be positive")
		}
		cfg.ContextWindow = *window
	}
	if maxTokens != nil {
		if *maxTokens <= 0 {
			return nil, unprocessable("max_tokens must be positive")
		}
		cfg.MaxTokens = maxTokens
	}
	if parallel != nil {
		cfg.ParallelToolCalls = parallel
	}
	return json.Marshal(cfg)
}

// noRules reports whether an agent's tool_rules hold no rule.
func noRules(raw json.RawMessage) bool {
	var rules []json.RawMessage
	return len(raw) == 0 || json.Unmarshal(raw, &rules) != nil || len(rules) == 0
}

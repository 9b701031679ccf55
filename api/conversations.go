package api

import (
	"encoding/json"
	"time"
)

// DefaultConversation names an agent's main conversation in the
// conversation routes (with the agent's id beside it).
const DefaultConversation = "default"

// Conversation is a thread of messages with one agent (Letta's
// Conversation). Its agent's memory is shared by all its conversations.
type Conversation struct {
	ID                  string          `json:"id"`
	AgentID             string          `json:"agent_id"`
	Summary             *string         `json:"summary"`
	InContextMessageIDs []string        `json:"in_context_message_ids"`
	IsolatedBlockIDs    []string        `json:"isolated_block_ids"`
	Model               *string         `json:"model"`
	ModelSettings       json.RawMessage `json:"model_settings"`
	LastMessageAt       *time.Time      `json:"last_message_at"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
	CreatedByID         *string         `json:"created_by_id"`
	LastUpdatedByID     *string         `json:"last_updated_by_id"`
}

// CreateConversation is the body of POST /v1/conversations/?agent_id=.
type CreateConversation struct {
	Summary             *string         `json:"summary,omitempty"`
	IsolatedBlockLabels []string        `json:"isolated_block_labels,omitempty"`
	Model               *string         `json:"model,omitempty"`
	ModelSettings       json.RawMessage `json:"model_settings,omitempty"`
}

// UpdateConversation is the body of PATCH /v1/conversations/{id}.
type UpdateConversation struct {
	Summary       *string         `json:"summary,omitempty"`
	Model         *string         `json:"model,omitempty"`
	ModelSettings json.RawMessage `json:"model_settings,omitempty"`
}

// ConversationFilter selects the conversations a list returns.
type ConversationFilter struct {
	AgentID       string // "" for every agent's
	SummarySearch string // a case-insensitive substring of the summary
}

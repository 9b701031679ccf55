package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
)

func TestChronological(t *testing.T) {
	msg := func(id, typ string) api.LettaMessage { return api.LettaMessage{ID: id, MessageType: typ} }
	// Newest first, as the server pages them; message-3 and message-1 each
	// expand into a reasoning and a tool call, in that order.
	in := []api.LettaMessage{
		msg("message-3", api.ReasoningMessageType), msg("message-3", api.ToolCallMessageType),
		msg("message-2", api.UserMessageType),
		msg("message-1", api.ReasoningMessageType), msg("message-1", api.ToolCallMessageType),
	}
	want := []api.LettaMessage{
		msg("message-1", api.ReasoningMessageType), msg("message-1", api.ToolCallMessageType),
		msg("message-2", api.UserMessageType),
		msg("message-3", api.ReasoningMessageType), msg("message-3", api.ToolCallMessageType),
	}
	if d := cmp.Diff(want, chronological(in)); d != "" {
		t.Errorf("chronological (-want +got):\n%s", d)
	}
	if got := chronological(nil); got == nil || len(got) != 0 {
		t.Errorf("chronological(nil) = %#v; want an empty list", got)
	}
}

func TestAPIError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		detail string
		kind   fault.Kind
	}{
		{400, `{"detail":"bad name"}`, "bad name", fault.Invalid},
		{401, `{"detail":"Unauthorized"}`, "Unauthorized", fault.Permission},
		{403, `{"detail":"no"}`, "no", fault.Permission},
		{404, `{"detail":"Agent with ID x not found"}`, "Agent with ID x not found", fault.NotFound},
		{409, `{"detail":{"code":"PENDING_APPROVAL","message":"approve first"}}`, "approve first", fault.Conflict},
		{413, `{"detail":"too large"}`, "too large", fault.TooLarge},
		{415, `{"detail":"unsupported"}`, "unsupported", fault.Unsupported},
		{422, `{"detail":[{"loc":["body"],"msg":"x"}]}`, `[{"loc":["body"],"msg":"x"}]`, fault.Unprocessable},
		{429, ``, "Too Many Requests", fault.Unavailable},
		{500, `{"detail":"internal error"}`, "internal error", fault.Internal},
		{502, `<html>bad gateway</html>`, "<html>bad gateway</html>", fault.Unavailable},
		{503, `{"detail":"the event log is unavailable"}`, "the event log is unavailable", fault.Unavailable},
	} {
		resp := &http.Response{StatusCode: tc.status, Body: io.NopCloser(strings.NewReader(tc.body))}
		var err error = apiError(resp)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Detail != tc.detail {
			t.Errorf("%d %s: APIError = %+v; want detail %q", tc.status, tc.body, ae, tc.detail)
		}
		if !fault.Is(err, tc.kind) {
			t.Errorf("%d: kind %v; want %v", tc.status, fault.KindOf(err), tc.kind)
		}
		if !errors.Is(err, &fault.Error{Kind: tc.kind}) {
			t.Errorf("%d: errors.Is(err, fault kind %v) = false", tc.status, tc.kind)
		}
	}
}

func TestRoute(t *testing.T) {
	got, err := route("/v1/agents/%s/core-memory/blocks/%s", "agent-1", "a/b c")
	if err != nil || got != "/v1/agents/agent-1/core-memory/blocks/a%2Fb%20c" {
		t.Errorf("route = %q, %v", got, err)
	}
	for _, bad := range []string{"", ".", ".."} {
		if _, err := route("/v1/agents/%s", bad); !fault.Is(err, fault.Unprocessable) {
			t.Errorf("route with %q: %v; want fault.Unprocessable", bad, err)
		}
	}
}

func TestCreateAgentRequest(t *testing.T) {
	req, err := CreateAgentOptions{}.request()
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != nil || req.System != nil || req.Description != nil || req.LLMConfig != nil ||
		req.EmbeddingConfig != nil || req.IncludeBaseTools != nil || req.Tools != nil {
		t.Errorf("zero options set fields: %+v", req)
	}
	var meta map[string]string
	if err := json.Unmarshal(req.Metadata, &meta); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"human:": "basic", "persona": "sam_pov"}, meta); d != "" {
		t.Errorf("default metadata (-want +got):\n%s", d)
	}
	if len(req.MemoryBlocks) != 2 || req.MemoryBlocks[0].Label != "persona" || req.MemoryBlocks[1].Label != "human" {
		t.Errorf("default memory = %+v", req.MemoryBlocks)
	}
	if _, err := (CreateAgentOptions{Metadata: map[string]any{"f": func() {}}}).request(); !fault.Is(err, fault.Invalid) {
		t.Errorf("metadata that is not JSON: %v; want fault.Invalid", err)
	}
}

package rest

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/engram-dev/engram/api"
)

// importFile posts an agent file as Letta's clients do: a multipart form
// with the file and options as fields.
func (x *harness) importFile(data []byte, fields map[string]string) api.ImportedAgents {
	x.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("file", "agent.af")
	if err != nil {
		x.t.Fatal(err)
	}
	fw.Write(data)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	var out api.ImportedAgents
	x.do("POST", "/v1/agents/import", body.String(), 200, &out, "Content-Type", w.FormDataContentType())
	return out
}

func labelsValues(bs []api.Block) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Label+"="+b.Value)
	}
	return out
}

func toolNames(ts []api.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

// everyMessage is contextOf over all of an agent's stored messages.
func everyMessage(ms []api.LettaMessage) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return contextOf(ms, ids)
}

func TestAgentFileRoundTrip(t *testing.T) {
	x, script := newModelHarness(t)
	dice := x.tool("roll_die")
	src := x.source("notes")
	a := x.agent(api.CreateAgent{AgentType: strp("memgpt_agent"), Model: strp("openai/gpt-4o-mini"), ToolIDs: []string{dice.ID}, Tags: []string{"demo"},
		MemoryBlocks: []api.CreateBlock{{Label: "persona", Value: "I am Sam."}, {Label: "human", Value: "Name: Ada"}}})
	base := "/v1/agents/" + a.ID
	x.do("PATCH", base+"/folders/attach/"+src.ID, nil, 200, nil)
	script.Push(memoryEdit("human", "Likes tea"), say("Noted, Ada!"))
	x.do("POST", base+"/messages", map[string]any{"input": "I like tea"}, 200, nil)

	code, file := x.call("GET", base+"/export", nil)
	if code != 200 {
		t.Fatalf("export = %d %s", code, file)
	}
	// The file is Letta's shape: its required fields are there.
	var raw map[string]json.RawMessage
	decodeInto(t, file, &raw)
	for _, k := range []string{"agents", "groups", "blocks", "files", "sources", "tools", "mcp_servers"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the agent file lacks %q", k)
		}
	}
	imported := x.importFile(file, nil)
	if len(imported.AgentIDs) != 1 || imported.AgentIDs[0] == a.ID {
		t.Fatalf("imported %v", imported.AgentIDs)
	}
	var before, after api.AgentState
	x.do("GET", base, nil, 200, &before)
	x.do("GET", "/v1/agents/"+imported.AgentIDs[0], nil, 200, &after)
	if after.Name != before.Name+"_copy" {
		t.Errorf("imported name %q", after.Name)
	}
	if got, want := labelsValues(after.Blocks), labelsValues(before.Blocks); !slices.Equal(got, want) {
		t.Errorf("memory %q, want %q", got, want)
	}
	if got, want := toolIDs(after.Tools), toolIDs(before.Tools); !slices.Equal(got, want) {
		t.Errorf("tools %q, want %q (the same tools, found by name)", got, want)
	}
	if got := sourceIDs(after.Sources); !slices.Equal(got, []string{src.ID}) {
		t.Errorf("sources %q", got)
	}
	if !slices.Equal(after.Tags, before.Tags) || after.System != before.System || after.LLMConfig.Model != before.LLMConfig.Model {
		t.Errorf("settings differ: %q %q", after.Tags, before.Tags)
	}
	var oldMsgs, newMsgs []api.LettaMessage
	x.do("GET", base+"/messages?order=asc&limit=1000", nil, 200, &oldMsgs)
	x.do("GET", "/v1/agents/"+after.ID+"/messages?order=asc&limit=1000", nil, 200, &newMsgs)
	if got, want := everyMessage(newMsgs), everyMessage(oldMsgs); !slices.Equal(got, want) {
		t.Errorf("messages:\n%q\nwant\n%q", got, want)
	}
	if got, want := contextOf(newMsgs, after.MessageIDs), contextOf(oldMsgs, before.MessageIDs); !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("context:\n%q\nwant\n%q", got, want)
	}

	t.Run("scrubbed", func(t *testing.T) {
		var f api.AgentFileSchema
		x.do("GET", base+"/export?scrub_messages=true", nil, 200, &f)
		if len(f.Agents[0].Messages) != 0 {
			t.Fatalf("%d messages in a scrubbed export", len(f.Agents[0].Messages))
		}
	})
	t.Run("bad files", func(t *testing.T) {
		for _, body := range []string{`[]`, `{"agents": []}`, `{"agents": [{"id": "agent-0", "name": "x", "block_ids": ["block-9"]}]}`} {
			if code, resp := x.call("POST", "/v1/agents/import", body); code != 422 {
				t.Errorf("import %s = %d %s, want 422", body, code, resp)
			}
		}
	})
}

// A file written by a Letta server (made by hand from Letta 0.16.8's
// AgentFileSchema, with Letta's uuid ids) imports, and the agent runs.
func TestAgentFileFromLetta(t *testing.T) {
	x, script := newModelHarness(t)
	data, err := os.ReadFile("testdata/letta_agent.af")
	if err != nil {
		t.Fatal(err)
	}
	imported := x.importFile(data, map[string]string{"append_copy_suffix": "false"})
	var a api.AgentState
	x.do("GET", "/v1/agents/"+imported.AgentIDs[0], nil, 200, &a)
	if a.Name != "ada_helper" || a.Description == nil || *a.Description != "A helper exported from a Letta server" {
		t.Errorf("agent %q %v", a.Name, a.Description)
	}
	if got := labelsValues(a.Blocks); !slices.Equal(got, []string{"persona=I am a patient helper.", "human=Name: Ada"}) {
		t.Errorf("memory %q", got)
	}
	if got := toolNames(a.Tools); !slices.Equal(got, []string{"roll_engine_die", "send_message"}) {
		t.Errorf("tools %q", got)
	}
	if len(a.Sources) != 1 || a.Sources[0].Name != "engine_notes" {
		t.Errorf("sources %+v", a.Sources)
	}
	if a.LLMConfig == nil || a.LLMConfig.Model != "gpt-4o-mini" || !slices.Equal(a.Tags, []string{"imported", "letta"}) {
		t.Errorf("settings %+v %q", a.LLMConfig, a.Tags)
	}
	var msgs []api.LettaMessage
	x.do("GET", "/v1/agents/"+a.ID+"/messages?order=asc&limit=1000&use_assistant_message=false", nil, 200, &msgs)
	got := contextOf(msgs, a.MessageIDs)
	want := []string{
		"system_message:You are Letta",
		"user_message:I study the Analytical Engine.",
		"reasoning_message:She studies the Engine; I should answer warmly.",
		"assistant_message:How wonderful! Tell me more.",
		"tool_return_message:{\n  \"status\": \"OK\"",
	}
	if len(got) != len(want) {
		t.Fatalf("context %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("context[%d] = %q, want %q…", i, got[i], want[i])
		}
	}
	script.Push(say("Hello again, Ada."))
	var resp api.LettaResponse
	x.do("POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"input": "hello"}, 200, &resp)
	reqs := script.Requests()
	if last := reqs[len(reqs)-1]; !strings.Contains(last.Messages[0].Content, "I am a patient helper.") {
		t.Errorf("the imported memory is not in the prompt:\n%s", last.Messages[0].Content)
	}
}

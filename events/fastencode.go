package events

import (
	"encoding/json"
	"strconv"
)

// The events a send and its steps store every time (the input, the inputs
// taken, the model's turn and the tools' returns), and a block's update
// (a memory edit, a REST block update), are written here by hand, byte
// for byte as encoding/json writes them (the field order, the omitempty
// rules, HTML-escaped strings); TestFastEncodeIsMarshal checks
// every field of each against json.Marshal, so a field added to one of
// these structs fails it until it is written here too. Any other event, or
// one of these with parts not written here, goes to json.Marshal.

// appendData appends the JSON of ev to buf, as json.Marshal writes it.
func appendData(buf []byte, ev Event) ([]byte, error) {
	switch e := ev.(type) {
	case *MessageAppended:
		if e != nil {
			return append(appendMessageFields(buf, e), '}'), nil
		}
	case *MessageReceived:
		if e != nil && len(e.Approvals) == 0 && len(e.ClientTools) == 0 {
			buf = appendMessageFields(buf, &e.MessageAppended)
			buf = appendField(buf, "key", e.Key)
			buf = appendField(buf, "digest", e.Digest)
			if e.MaxSteps != 0 {
				buf = strconv.AppendInt(append(buf, `,"max_steps":`...), int64(e.MaxSteps), 10)
			}
			buf = appendField(buf, "conversation_id", string(e.ConversationID))
			buf = appendField(buf, "override_model", e.OverrideModel)
			return append(buf, '}'), nil
		}
	case *BlockUpdated:
		// Metadata is raw JSON, which json.Marshal compacts and escapes:
		// left to it.
		if e != nil && len(e.Metadata) == 0 {
			return appendBlockUpdated(buf, e), nil
		}
	case *InputTaken:
		if e == nil {
			break
		}
		if e.IDs == nil {
			return append(buf, `{"ids":null}`...), nil
		}
		buf = append(buf, `{"ids":[`...)
		for i, id := range e.IDs {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, string(id))
		}
		return append(buf, "]}"...), nil
	}
	data, err := json.Marshal(ev)
	return append(buf, data...), err
}

// dataSize is a guess of ev's encoded size, to size a buffer for it.
func dataSize(ev Event) int {
	switch e := ev.(type) {
	case *MessageAppended:
		if e != nil {
			return messageSize(e)
		}
	case *MessageReceived:
		if e != nil {
			return messageSize(&e.MessageAppended) + len(e.Key) + len(e.Digest) + 96
		}
	case *InputTaken:
		if e != nil {
			return 16 + len(e.IDs)*48
		}
	case *BlockUpdated:
		if e != nil && e.Value != nil {
			return 160 + len(*e.Value)
		}
	}
	return 512
}

// messageSize is a guess of m's encoded size.
func messageSize(m *MessageAppended) int {
	n := 160 + len(m.ID) + len(m.Role) + len(m.Kind) + len(m.Text) + len(m.Reply) + len(m.Reasoning) + len(m.Name) +
		len(m.ToolCallID) + len(m.Model) + len(m.Otid) + len(m.RunID) + len(m.StepID) + len(m.StopReason)
	for _, tc := range m.ToolCalls {
		n += 40 + len(tc.ID) + len(tc.Name) + len(tc.Arguments)
	}
	return n
}

// appendBlockUpdated appends e's JSON object; e has no metadata.
func appendBlockUpdated(buf []byte, e *BlockUpdated) []byte {
	buf = append(buf, '{')
	fields := len(buf)
	if e.Label != nil {
		buf = appendString(append(buf, `,"label":`...), *e.Label)
	}
	if e.Value != nil {
		buf = appendString(append(buf, `,"value":`...), *e.Value)
	}
	if e.Limit != nil {
		buf = strconv.AppendInt(append(buf, `,"limit":`...), int64(*e.Limit), 10)
	}
	if e.Name != nil {
		buf = appendString(append(buf, `,"name":`...), *e.Name)
	}
	if e.IsTemplate != nil {
		buf = strconv.AppendBool(append(buf, `,"is_template":`...), *e.IsTemplate)
	}
	if e.ReadOnly != nil {
		buf = strconv.AppendBool(append(buf, `,"read_only":`...), *e.ReadOnly)
	}
	if e.Description != nil {
		buf = appendString(append(buf, `,"description":`...), *e.Description)
	}
	if e.Tags != nil {
		buf = append(buf, `,"tags":`...)
		if *e.Tags == nil {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, '[')
			for i, t := range *e.Tags {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendString(buf, t)
			}
			buf = append(buf, ']')
		}
	}
	return append(dropComma(buf, fields), '}')
}

// appendMessageFields appends m's JSON object without its closing brace.
func appendMessageFields(buf []byte, m *MessageAppended) []byte {
	buf = append(buf, `{"id":`...)
	buf = appendString(buf, string(m.ID))
	buf = append(buf, `,"role":`...)
	buf = appendString(buf, m.Role)
	buf = appendField(buf, "kind", m.Kind)
	buf = appendField(buf, "text", m.Text)
	buf = appendField(buf, "reply", m.Reply)
	buf = appendField(buf, "reasoning", m.Reasoning)
	if len(m.Thinking) > 0 {
		buf = append(buf, `,"thinking":[`...)
		for i, th := range m.Thinking {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '{')
			fields := len(buf)
			buf = appendField(buf, "text", th.Text)
			buf = appendField(buf, "signature", th.Signature)
			buf = appendField(buf, "redacted", th.Redacted)
			buf = append(dropComma(buf, fields), '}')
		}
		buf = append(buf, ']')
	}
	buf = appendField(buf, "name", m.Name)
	if len(m.ToolCalls) > 0 {
		buf = append(buf, `,"tool_calls":[`...)
		for i, tc := range m.ToolCalls {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"id":`...)
			buf = appendString(buf, tc.ID)
			buf = append(buf, `,"name":`...)
			buf = appendString(buf, tc.Name)
			buf = append(buf, `,"arguments":`...)
			buf = appendString(buf, tc.Arguments)
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	buf = appendField(buf, "tool_call_id", m.ToolCallID)
	buf = appendField(buf, "model", m.Model)
	buf = appendField(buf, "otid", m.Otid)
	buf = appendField(buf, "run_id", m.RunID)
	buf = appendField(buf, "step_id", m.StepID)
	buf = appendStrings(buf, "stdout", m.Stdout)
	buf = appendStrings(buf, "stderr", m.Stderr)
	if u := m.Usage; u != nil {
		buf = strconv.AppendInt(append(buf, `,"usage":{"prompt_tokens":`...), int64(u.PromptTokens), 10)
		buf = strconv.AppendInt(append(buf, `,"completion_tokens":`...), int64(u.CompletionTokens), 10)
		buf = strconv.AppendInt(append(buf, `,"total_tokens":`...), int64(u.TotalTokens), 10)
		buf = append(buf, '}')
	}
	buf = appendField(buf, "stop_reason", m.StopReason)
	if t := m.Then; t != nil {
		buf = append(buf, `,"then":{`...)
		fields := len(buf)
		buf = appendField(buf, "kind", t.Kind)
		buf = appendField(buf, "words", t.Words)
		buf = appendStrings(buf, "calls", t.Calls)
		buf = appendField(buf, "last_output", t.LastOutput)
		buf = append(dropComma(buf, fields), '}')
	}
	return buf
}

// dropComma drops the comma of an object's first field, written at
// buf[from] by appendField, if any field was written.
func dropComma(buf []byte, from int) []byte {
	if len(buf) > from {
		return append(buf[:from], buf[from+1:]...)
	}
	return buf
}

// appendField appends ,"name":value unless value is empty (omitempty).
func appendField(buf []byte, name, value string) []byte {
	if value == "" {
		return buf
	}
	buf = append(append(append(buf, `,"`...), name...), `":`...)
	return appendString(buf, value)
}

// appendStrings appends ,"name":[values...] unless values is empty
// (omitempty).
func appendStrings(buf []byte, name string, values []string) []byte {
	if len(values) == 0 {
		return buf
	}
	buf = append(append(append(buf, `,"`...), name...), `":[`...)
	for i, v := range values {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, v)
	}
	return append(buf, ']')
}

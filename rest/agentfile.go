package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/engram-dev/engram/api"
)

// exportAgent serves GET /v1/agents/{id}/export: the agent as a Letta Agent
// File. scrub_messages leaves its messages out; Letta's deprecated
// max_steps and use_legacy_format are accepted and ignored.
func (h *handler) exportAgent(r *http.Request) (any, error) {
	q := queryOf(r)
	scrub := q.boolean("scrub_messages", false)
	q.boolean("use_legacy_format", false)
	q.intp("max_steps")
	if q.err != nil {
		return nil, q.err
	}
	f, err := h.svc.ExportAgent(r.Context(), r.PathValue("agent_id"))
	if err != nil {
		return nil, err
	}
	if scrub {
		for i := range f.Agents {
			f.Agents[i].Messages = []api.AgentFileMessage{}
			f.Agents[i].InContextMessageIDs = []string{}
		}
	}
	return f, nil
}

// importAgent serves POST /v1/agents/import: a multipart form with the
// agent file in the part "file" and Letta's options as fields
// (append_copy_suffix, override_name or name, override_model_handle or
// model, strip_messages). A JSON body is read as the agent file itself,
// with Letta's defaults.
func (h *handler) importAgent(r *http.Request) (any, error) {
	opts := api.ImportAgentFile{AppendCopySuffix: true}
	var file []byte
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "multipart/form-data" && params["boundary"] != "":
		fields := map[string]string{}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, bodyError(err, "malformed multipart body")
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return nil, bodyError(err, "cannot read the multipart body")
			}
			if part.FormName() == "file" {
				file = data
			} else {
				fields[part.FormName()] = string(data)
			}
		}
		if file == nil {
			return nil, unprocessable("the import has no part named \"file\"")
		}
		flag := func(key string, def bool) (bool, error) {
			switch strings.ToLower(fields[key]) {
			case "":
				return def, nil
			case "true", "1":
				return true, nil
			case "false", "0":
				return false, nil
			}
			return def, unprocessable("field %s must be true or false, not %q", key, fields[key])
		}
		var err error
		if opts.AppendCopySuffix, err = flag("append_copy_suffix", true); err != nil {
			return nil, err
		}
		if opts.StripMessages, err = flag("strip_messages", false); err != nil {
			return nil, err
		}
		for _, k := range []string{"override_name", "name"} {
			if v := fields[k]; v != "" && opts.OverrideName == nil {
				opts.OverrideName = &v
			}
		}
		for _, k := range []string{"override_model_handle", "model"} {
			if v := fields[k]; v != "" && opts.OverrideModel == nil {
				opts.OverrideModel = &v
			}
		}
	default:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, bodyError(err, "cannot read the request body")
		}
		file = data
	}
	var f api.AgentFileSchema
	if err := decodeAgentFile(file, &f); err != nil {
		return nil, err
	}
	return h.svc.ImportAgent(r.Context(), f, opts)
}

// decodeAgentFile reads an agent file, leniently: Letta's schema has many
// fields engram has no use for, and future versions add more.
func decodeAgentFile(data []byte, f *api.AgentFileSchema) error {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return unprocessable("an agent file is a JSON object")
	}
	if err := json.Unmarshal(data, f); err != nil {
		return jsonError(err)
	}
	return nil
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// REST is a Client of an engram server over HTTP, speaking the modern Letta
// routes under /v1, as the seed's RESTClient does. It does not retry: a
// failed call returns its error. Close closes the idle connections of the
// client's own HTTP transport (not of one given with WithHTTPClient); it is
// safe to call more than once.
type REST struct {
	core
}

var _ Client = (*REST)(nil)

// NewREST returns a client of the server at baseURL (for example
// "http://localhost:8283"; a trailing "/v1" is dropped). A non-empty token
// is sent as "Authorization: Bearer <token>". Of the options only
// WithHTTPClient applies. It makes no request.
func NewREST(baseURL, token string, opts ...Option) *REST {
	o := collectOptions(opts)
	base := strings.TrimRight(baseURL, "/")
	base = strings.TrimRight(strings.TrimSuffix(base, "/v1"), "/")
	t := &transport{base: base, token: token, hc: o.httpClient}
	if t.hc == nil {
		t.hc = &http.Client{}
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			// A transport of its own, so Close closes only its connections.
			t.hc.Transport, t.own = dt.Clone(), true
		}
	}
	return &REST{core: core{b: t, pageSize: o.pageSize}}
}

// APIError is an error answer of the server: its HTTP status and the detail
// text of its {"detail": ...} body. It wraps the fault kind that matches the
// status, so fault.Is and fault.KindOf work on it as on an in-process error.
type APIError struct {
	Status int
	Detail string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// Unwrap returns the *fault.Error of the status's kind, with the detail as
// its message.
func (e *APIError) Unwrap() error { return &fault.Error{Kind: statusKind(e.Status), Msg: e.Detail} }

// statusKind maps an HTTP status to the fault kind the server meant by it:
// the inverse of the server's mapping, with every other 4xx Invalid and
// every other 5xx Internal.
func statusKind(status int) fault.Kind {
	switch status {
	case http.StatusBadRequest:
		return fault.Invalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return fault.Permission
	case http.StatusNotFound:
		return fault.NotFound
	case http.StatusConflict:
		return fault.Conflict
	case http.StatusUnprocessableEntity:
		return fault.Unprocessable
	case http.StatusRequestEntityTooLarge:
		return fault.TooLarge
	case http.StatusUnsupportedMediaType:
		return fault.Unsupported
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fault.Unavailable
	}
	if status >= 400 && status < 500 {
		return fault.Invalid
	}
	return fault.Internal
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// apiError reads an error answer. The detail is the body's "detail" string,
// the "message" of an object detail, the JSON of any other detail, or the
// body's text.
func apiError(resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var env struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Detail) > 0 {
		var s string
		var obj struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(env.Detail, &s) == nil:
			e.Detail = s
		case json.Unmarshal(env.Detail, &obj) == nil && obj.Message != "":
			e.Detail = obj.Message
		default:
			e.Detail = string(env.Detail)
		}
	} else {
		e.Detail = strings.TrimSpace(string(body))
	}
	if e.Detail == "" {
		e.Detail = http.StatusText(resp.StatusCode)
	}
	return e
}

// transport is the backend that speaks HTTP to a server.
type transport struct {
	base  string // scheme://host[:port][/prefix], without "/v1"
	token string
	hc    *http.Client
	own   bool // hc is the client's own, so Close may close its connections
}

var _ Backend = (*transport)(nil)

// route fills a path pattern's %s verbs with escaped path parameters. An
// empty, "." or ".." parameter cannot name anything (and would change the
// route), so it is refused as the server refuses a malformed id.
func route(pattern string, params ...string) (string, error) {
	args := make([]any, len(params))
	for i, p := range params {
		if p == "" || p == "." || p == ".." {
			return "", fault.E(fault.Unprocessable, "%q is not a valid path parameter", p)
		}
		args[i] = url.PathEscape(p)
	}
	return fmt.Sprintf(pattern, args...), nil
}

// call sends one request and decodes a 2xx answer into out (when out is not
// nil and the body is not empty or null). The path is pattern with params.
func (t *transport) call(ctx context.Context, method string, q url.Values, in, out any, pattern string, params ...string) error {
	resp, path, err := t.do(ctx, method, q, in, "application/json", pattern, params...)
	if err != nil {
		return err
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // let the connection be reused
		resp.Body.Close()
	}()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "%s %s: the answer was cut off", method, path)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fault.Wrap(fault.Internal, err, "%s %s: malformed answer", method, path)
	}
	return nil
}

// do sends one request and returns its 2xx answer, whose body the caller
// must close; any other answer is its *APIError.
func (t *transport) do(ctx context.Context, method string, q url.Values, in any, accept, pattern string, params ...string) (*http.Response, string, error) {
	path, err := route(pattern, params...)
	if err != nil {
		return nil, "", err
	}
	u := t.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	ctype := "application/json"
	if raw, ok := in.(rawBody); ok {
		body, ctype = bytes.NewReader(raw.data), raw.contentType
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, path, fault.Wrap(fault.Invalid, err, "%s %s: cannot encode the request", method, path)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, path, fault.Wrap(fault.Invalid, err, "%s %s: bad request", method, path)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "engram-go-client")
	if in != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, path, fault.Wrap(fault.Unavailable, err, "%s %s: cannot reach the server at %s", method, path, t.base)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, path, apiError(resp)
	}
	return resp, path, nil
}

// Stream sends with "streaming": true and reads the server-sent events:
// each data event is a LettaMessage, a stop reason or the usage (both
// skipped), an "error" event ends the stream with its detail, "[DONE]"
// ends it.
func (t *transport) Stream(ctx context.Context, agentID string, req api.SendMessage, tokens bool, emit func(api.LettaMessage) bool) error {
	yes := true
	req.Streaming = &yes
	if tokens {
		req.StreamTokens = &yes
	}
	resp, path, err := t.do(ctx, http.MethodPost, nil, req, "text/event-stream", "/v1/agents/%s/messages", agentID)
	if err != nil {
		return err
	}
	dec := ssestream.NewDecoder(resp)
	defer dec.Close()
	for dec.Next() {
		ev := dec.Event()
		data := bytes.TrimSpace(ev.Data)
		if bytes.Equal(data, []byte("[DONE]")) {
			return nil
		}
		if ev.Type == "error" {
			var e struct {
				Detail  string `json:"detail"`
				Message string `json:"message"`
			}
			json.Unmarshal(data, &e)
			if e.Detail == "" {
				e.Detail = e.Message
			}
			return fault.E(fault.Unavailable, "%s: the run failed: %s", path, e.Detail)
		}
		var m api.LettaMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fault.Wrap(fault.Internal, err, "%s: malformed event %.200s", path, data)
		}
		switch m.MessageType {
		case "stop_reason", "usage_statistics", "ping":
			continue
		}
		if !emit(m) {
			return nil
		}
	}
	if err := dec.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, err, "%s: the stream was cut off", path)
	}
	return fault.E(fault.Unavailable, "%s: the stream ended before [DONE]", path)
}

// fetch is call for a typed answer.
func fetch[T any](ctx context.Context, t *transport, method string, q url.Values, in any, pattern string, params ...string) (T, error) {
	var out T
	err := t.call(ctx, method, q, in, &out, pattern, params...)
	return out, err
}

// list is fetch for a list answer: never nil on success.
func list[T any](ctx context.Context, t *transport, q url.Values, pattern string, params ...string) ([]T, error) {
	out, err := fetch[[]T](ctx, t, http.MethodGet, q, nil, pattern, params...)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// pageQuery adds a page's before, after, limit and order to q.
func pageQuery(q url.Values, p api.Page) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if p.Before != "" {
		q.Set("before", p.Before)
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Order != "" {
		q.Set("order", p.Order)
	}
	return q
}

// nameQuery is the query of a list filtered by name, if one is given.
func nameQuery(name string) url.Values {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return q
}

func (t *transport) CreateAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error) {
	return fetch[api.AgentState](ctx, t, http.MethodPost, nil, req, "/v1/agents/")
}

func (t *transport) GetAgent(ctx context.Context, id string) (api.AgentState, error) {
	return fetch[api.AgentState](ctx, t, http.MethodGet, nil, nil, "/v1/agents/%s", id)
}

func (t *transport) ListAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error) {
	q := nameQuery(f.Name)
	for _, tag := range f.Tags {
		q.Add("tags", tag)
	}
	if f.MatchAllTag {
		q.Set("match_all_tags", "true")
	}
	if f.QueryText != "" {
		q.Set("query_text", f.QueryText)
	}
	return list[api.AgentState](ctx, t, pageQuery(q, p), "/v1/agents/")
}

func (t *transport) UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error) {
	return fetch[api.AgentState](ctx, t, http.MethodPatch, nil, req, "/v1/agents/%s", id)
}

func (t *transport) DeleteAgent(ctx context.Context, id string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/agents/%s", id)
}

func (t *transport) CoreMemory(ctx context.Context, agentID string) (api.Memory, error) {
	return fetch[api.Memory](ctx, t, http.MethodGet, nil, nil, "/v1/agents/%s/core-memory", agentID)
}

func (t *transport) UpdateCoreBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error) {
	return fetch[api.Block](ctx, t, http.MethodPatch, nil, req, "/v1/agents/%s/core-memory/blocks/%s", agentID, label)
}

func (t *transport) AttachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return fetch[api.AgentState](ctx, t, http.MethodPatch, nil, nil, "/v1/agents/%s/core-memory/blocks/attach/%s", agentID, blockID)
}

func (t *transport) DetachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return fetch[api.AgentState](ctx, t, http.MethodPatch, nil, nil, "/v1/agents/%s/core-memory/blocks/detach/%s", agentID, blockID)
}

func (t *transport) AttachTool(ctx context.Context, agentID, toolID string) error {
	return t.call(ctx, http.MethodPatch, nil, nil, nil, "/v1/agents/%s/tools/attach/%s", agentID, toolID)
}

func (t *transport) DetachTool(ctx context.Context, agentID, toolID string) error {
	return t.call(ctx, http.MethodPatch, nil, nil, nil, "/v1/agents/%s/tools/detach/%s", agentID, toolID)
}

func (t *transport) AttachSource(ctx context.Context, agentID, sourceID string) error {
	return t.call(ctx, http.MethodPatch, nil, nil, nil, "/v1/agents/%s/folders/attach/%s", agentID, sourceID)
}

func (t *transport) DetachSource(ctx context.Context, agentID, sourceID string) error {
	return t.call(ctx, http.MethodPatch, nil, nil, nil, "/v1/agents/%s/folders/detach/%s", agentID, sourceID)
}

func (t *transport) AgentSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error) {
	return list[api.Source](ctx, t, pageQuery(nil, p), "/v1/agents/%s/folders", agentID)
}

func (t *transport) InsertPassage(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error) {
	return fetch[[]api.Passage](ctx, t, http.MethodPost, nil, req, "/v1/agents/%s/archival-memory", agentID)
}

func (t *transport) ListPassages(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error) {
	// This route takes ascending=true|false where the others take order.
	order := p.Order
	p.Order = ""
	q := pageQuery(nil, p)
	if order != "" {
		q.Set("ascending", strconv.FormatBool(order == "asc"))
	}
	return list[api.Passage](ctx, t, q, "/v1/agents/%s/archival-memory", agentID)
}

func (t *transport) DeletePassage(ctx context.Context, agentID, passageID string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/agents/%s/archival-memory/%s", agentID, passageID)
}

func (t *transport) ArchivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error) {
	return fetch[api.ArchivalMemorySummary](ctx, t, http.MethodGet, nil, nil, "/v1/agents/%s/memory/archival", agentID)
}

func (t *transport) RecallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error) {
	return fetch[api.RecallMemorySummary](ctx, t, http.MethodGet, nil, nil, "/v1/agents/%s/memory/recall", agentID)
}

func (t *transport) ListMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error) {
	// The seed's get_messages shows every stored message, send_message's
	// returns too, which the REST listing leaves out unless asked.
	q := url.Values{"use_assistant_message": {"false"}}
	return list[api.LettaMessage](ctx, t, pageQuery(q, p), "/v1/agents/%s/messages", agentID)
}

func (t *transport) Send(ctx context.Context, agentID string, req api.SendMessage) (api.LettaResponse, error) {
	return fetch[api.LettaResponse](ctx, t, http.MethodPost, nil, req, "/v1/agents/%s/messages", agentID)
}

func (t *transport) ContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error) {
	return fetch[[]api.LettaMessage](ctx, t, http.MethodGet, nil, nil, "/v1/agents/%s/memory/messages", agentID)
}

func (t *transport) RunCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error) {
	return fetch[api.LettaResponse](ctx, t, http.MethodPost, nil, map[string]string{"command": command}, "/v1/agents/%s/command", agentID)
}

func (t *transport) CreateBlock(ctx context.Context, req api.CreateBlock) (api.Block, error) {
	return fetch[api.Block](ctx, t, http.MethodPost, nil, req, "/v1/blocks/")
}

func (t *transport) GetBlock(ctx context.Context, id string) (api.Block, error) {
	return fetch[api.Block](ctx, t, http.MethodGet, nil, nil, "/v1/blocks/%s", id)
}

func (t *transport) ListBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error) {
	q := nameQuery(f.Name)
	if f.Label != "" {
		q.Set("label", f.Label)
	}
	// Always explicit: Letta 0.5 defaulted templates_only to true, modern
	// servers to false.
	q.Set("templates_only", strconv.FormatBool(f.TemplatesOnly))
	return list[api.Block](ctx, t, pageQuery(q, p), "/v1/blocks/")
}

func (t *transport) UpdateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error) {
	return fetch[api.Block](ctx, t, http.MethodPatch, nil, req, "/v1/blocks/%s", id)
}

func (t *transport) DeleteBlock(ctx context.Context, id string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/blocks/%s", id)
}

// createTool posts the tool; the server upserts by name unless told
// update=false, in which case an existing name is refused atomically.
func (t *transport) CreateTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error) {
	var q url.Values
	if !upsert {
		q = url.Values{"update": {"false"}}
	}
	return fetch[api.Tool](ctx, t, http.MethodPost, q, req, "/v1/tools/")
}

func (t *transport) GetTool(ctx context.Context, id string) (api.Tool, error) {
	return fetch[api.Tool](ctx, t, http.MethodGet, nil, nil, "/v1/tools/%s", id)
}

func (t *transport) ListTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error) {
	return list[api.Tool](ctx, t, pageQuery(nameQuery(name), p), "/v1/tools/")
}

func (t *transport) UpdateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error) {
	return fetch[api.Tool](ctx, t, http.MethodPatch, nil, req, "/v1/tools/%s", id)
}

func (t *transport) DeleteTool(ctx context.Context, id string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/tools/%s", id)
}

func (t *transport) CreateSource(ctx context.Context, req api.CreateSource) (api.Source, error) {
	return fetch[api.Source](ctx, t, http.MethodPost, nil, req, "/v1/folders/")
}

func (t *transport) GetSource(ctx context.Context, id string) (api.Source, error) {
	return fetch[api.Source](ctx, t, http.MethodGet, nil, nil, "/v1/folders/%s", id)
}

func (t *transport) ListSources(ctx context.Context, name string, p api.Page) ([]api.Source, error) {
	return list[api.Source](ctx, t, pageQuery(nameQuery(name), p), "/v1/folders/")
}

func (t *transport) UpdateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error) {
	return fetch[api.Source](ctx, t, http.MethodPatch, nil, req, "/v1/folders/%s", id)
}

func (t *transport) DeleteSource(ctx context.Context, id string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/folders/%s", id)
}

func (t *transport) GetJob(ctx context.Context, id string) (api.Job, error) {
	return fetch[api.Job](ctx, t, http.MethodGet, nil, nil, "/v1/jobs/%s", id)
}

// rawBody is a request body that is not JSON (a multipart upload).
type rawBody struct {
	contentType string
	data        []byte
}

// loadFiles uploads each file with 0.5's route, which answers the job.
func (t *transport) SearchPassages(ctx context.Context, agentID string, q api.ArchivalQuery) (api.ArchivalSearch, error) {
	v := url.Values{"query": {q.Query}}
	for _, tag := range q.Tags {
		v.Add("tags", tag)
	}
	if q.TagMatch != "" {
		v.Set("tag_match_mode", q.TagMatch)
	}
	if q.Limit != 0 {
		v.Set("top_k", strconv.Itoa(q.Limit))
	}
	if !q.After.IsZero() {
		v.Set("start_datetime", q.After.UTC().Format(time.RFC3339Nano))
	}
	if !q.Before.IsZero() {
		v.Set("end_datetime", q.Before.UTC().Format(time.RFC3339Nano))
	}
	return fetch[api.ArchivalSearch](ctx, t, http.MethodGet, v, nil, "/v1/agents/%s/archival-memory/search", agentID)
}

func (t *transport) LoadFiles(ctx context.Context, sourceID string, files []api.Upload) ([]api.Job, []api.Refusal, error) {
	var (
		jobs    []api.Job
		refused []api.Refusal
	)
	for _, f := range files {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.Name))
		typ := f.MIME
		if typ == "" {
			typ = "application/octet-stream"
		}
		h.Set("Content-Type", typ)
		part, err := w.CreatePart(h)
		if err == nil {
			_, err = part.Write(f.Data)
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			return jobs, refused, fault.Wrap(fault.Invalid, err, "cannot encode the upload of %s", f.Name)
		}
		job, err := fetch[api.Job](ctx, t, http.MethodPost, nil, rawBody{w.FormDataContentType(), buf.Bytes()}, "/v1/sources/%s/upload", sourceID)
		if k := fault.KindOf(err); k == fault.TooLarge || k == fault.Unsupported {
			refused = append(refused, api.Refusal{Name: f.Name, Error: fault.Message(err)})
			continue
		}
		if err != nil {
			return jobs, refused, err
		}
		jobs = append(jobs, job)
	}
	return jobs, refused, nil
}

func (t *transport) ListFiles(ctx context.Context, sourceID string, p api.Page) ([]api.FileMetadata, error) {
	return list[api.FileMetadata](ctx, t, pageQuery(nil, p), "/v1/folders/%s/files", sourceID)
}

func (t *transport) DeleteFile(ctx context.Context, sourceID, fileID string) error {
	return t.call(ctx, http.MethodDelete, nil, nil, nil, "/v1/folders/%s/%s", sourceID, fileID)
}

func (t *transport) SourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error) {
	return list[api.Passage](ctx, t, pageQuery(nil, p), "/v1/folders/%s/passages", sourceID)
}

func (t *transport) ListJobs(ctx context.Context, p api.Page) ([]api.Job, error) {
	return list[api.Job](ctx, t, pageQuery(nil, p), "/v1/jobs/")
}

func (t *transport) ListModels(ctx context.Context) ([]api.Model, error) {
	return list[api.Model](ctx, t, nil, "/v1/models/")
}

func (t *transport) ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error) {
	return list[api.EmbeddingModel](ctx, t, nil, "/v1/models/embedding")
}

func (t *transport) Close() error {
	if t.own {
		t.hc.CloseIdleConnections()
	}
	return nil
}

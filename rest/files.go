package rest

import (
	"errors"
	"github.com/engram-dev/engram/api"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/engram-dev/engram/service"
)

// DefaultMaxUploadBytes is the upload body limit when Config.MaxUploadBytes
// is 0: a file at the default ingest limit plus the multipart framing.
const DefaultMaxUploadBytes = 50<<20 + 1<<20

// noContent is an endpoint's answer when the route replies 204.
type noContent struct{}

// upload reads the multipart part "file" of an upload request.
func (h *handler) upload(r *http.Request) (string, string, []byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", "", nil, unprocessable("an upload is multipart/form-data with a part named \"file\"")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", "", nil, unprocessable("the upload has no part named \"file\"")
		}
		if err != nil {
			return "", "", nil, bodyError(err, "malformed multipart body")
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		name := part.FileName()
		if name == "" {
			return "", "", nil, unprocessable("the \"file\" part needs a filename")
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return "", "", nil, bodyError(err, "cannot read the uploaded file")
		}
		typ := part.Header.Get("Content-Type")
		if typ == "application/octet-stream" {
			typ = "" // says nothing: detect from the name and the bytes
		}
		return name, typ, data, nil
	}
}

// bodyError is the answer to a failed read of a request body: 413 over the
// limit, 408 past the deadline, 400 otherwise.
func bodyError(err error, what string) error {
	var (
		tooLarge *http.MaxBytesError
		status   *statusError
	)
	switch {
	case errors.As(err, &tooLarge):
		return errTooLarge(tooLarge.Limit)
	case errors.As(err, &status):
		return status
	}
	return invalid("%s: %v", what, err)
}

// uploadFile serves POST /v1/folders/{source_id}/upload (FileMetadata) and
// 0.5's POST /v1/sources/{source_id}/upload (the Job to poll).
func (h *handler) uploadFile(r *http.Request) (any, error) {
	f, job, err := h.upload1(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.URL.Path, "/v1/sources/") {
		return job, nil
	}
	return f, nil
}

// uploadJob answers an upload with its job, as Letta 0.5 did.
func (h *handler) uploadJob(r *http.Request) (any, error) {
	_, job, err := h.upload1(r)
	return job, err
}

// upload1 stores one uploaded file in a source and starts its load.
func (h *handler) upload1(r *http.Request) (api.FileMetadata, api.Job, error) {
	q := queryOf(r)
	dup := q.str("duplicate_handling")
	rename := q.str("name")
	if q.err != nil {
		return api.FileMetadata{}, api.Job{}, q.err
	}
	name, typ, data, err := h.upload(r)
	if err != nil {
		return api.FileMetadata{}, api.Job{}, err
	}
	if rename != "" {
		name = rename
	}
	return h.svc.UploadFile(r.Context(), r.PathValue("source_id"), service.Upload{Name: name, MIME: typ, Data: data}, dup)
}

func (h *handler) listFiles(r *http.Request) (any, error) {
	q := queryOf(r)
	content := q.boolean("include_content", false)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListFiles(r.Context(), r.PathValue("source_id"), p, content)
}

func (h *handler) getFile(r *http.Request) (any, error) {
	q := queryOf(r)
	content := q.boolean("include_content", false)
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.GetFile(r.Context(), r.PathValue("source_id"), r.PathValue("file_id"), content)
}

func (h *handler) deleteFile(r *http.Request) (any, error) {
	if err := h.svc.DeleteFile(r.Context(), r.PathValue("source_id"), r.PathValue("file_id")); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (h *handler) listSourcePassages(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListSourcePassages(r.Context(), r.PathValue("source_id"), p)
}

// listAgentFiles serves GET /v1/agents/{agent_id}/files: the files of the
// agent's sources, in Letta's NextFilesPage shape.
func (h *handler) listAgentFiles(r *http.Request) (any, error) {
	q := queryOf(r)
	p := q.page()
	q.boolean("is_open", false) // accepted; engram keeps no open-file state
	if q.err != nil {
		return nil, q.err
	}
	return h.svc.ListAgentFiles(r.Context(), r.PathValue("agent_id"), p)
}

package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/engram-dev/engram/fault"
)

// statusError is a transport error whose status has no fault kind.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

var (
	errUnauthorized     = &statusError{http.StatusUnauthorized, "Unauthorized"}
	errMethodNotAllowed = &statusError{http.StatusMethodNotAllowed, "Method Not Allowed"}
	errNotFound         = fault.E(fault.NotFound, "Not Found")
)

func errTooLarge(limit int64) error {
	return &statusError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit)}
}

func invalid(format string, args ...any) error { return fault.E(fault.Invalid, format, args...) }

func unprocessable(format string, args ...any) error {
	return fault.E(fault.Unprocessable, format, args...)
}

// detail is the body of every error response.
type detail struct {
	Detail string `json:"detail"`
}

// fail answers r with err. It is the one place an error becomes a status and
// a body: the status comes from the fault kind, the message from
// fault.Message; internal errors are logged and answered with a fixed text.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := http.StatusInternalServerError, "internal error"
	var se *statusError
	if errors.As(err, &se) {
		code, msg = se.code, se.msg
	} else {
		switch fault.KindOf(err) {
		case fault.Invalid:
			code = http.StatusBadRequest
		case fault.NotFound:
			code = http.StatusNotFound
		case fault.Unprocessable:
			code = http.StatusUnprocessableEntity
		case fault.Permission:
			code = http.StatusForbidden
		case fault.Conflict:
			code = http.StatusConflict
		case fault.Unavailable:
			code = http.StatusServiceUnavailable
		case fault.TooLarge:
			code = http.StatusRequestEntityTooLarge
		case fault.Unsupported:
			code = http.StatusUnsupportedMediaType
		}
		if code != http.StatusInternalServerError {
			msg = fault.Message(err)
		}
	}
	switch code {
	case http.StatusInternalServerError:
		h.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case http.StatusServiceUnavailable, http.StatusConflict:
		h.log.Warn(msg, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if data := fault.DataOf(err); data != nil && se == nil {
		h.reply(w, r, code, map[string]any{"detail": data})
		return
	}
	h.reply(w, r, code, detail{msg})
}

// reply sends v as JSON with the given status.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, code int, v any) {
	buf := replyBufs.Get().(*bytes.Buffer)
	defer putReplyBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // "<ULID>", not "\u003cULID\u003e"
	if err := enc.Encode(v); err != nil {
		h.fail(w, r, fmt.Errorf("encode %T response: %w", v, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if _, err := w.Write(buf.Bytes()); err != nil {
		h.log.Debug("write response", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// replyBufs holds the buffers answers are encoded into, so that an answer
// does not grow a new one from nothing.
var replyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putReplyBuf returns buf to replyBufs, unless a large answer grew it.
func putReplyBuf(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	buf.Reset()
	replyBufs.Put(buf)
}

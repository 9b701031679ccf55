package rest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Reading request bodies: every body is read under a size limit and a
// deadline of its own, set when the handler starts (uploads get a longer
// one than JSON bodies, which a server-wide ReadTimeout could not do).
// net/http lifts the deadline once the body is in, so it never cuts short a
// long agent step or an SSE stream.
//
// A body over the limit is still read, up to drainLimit, before the 413 is
// sent: a client sends its whole body before it reads the answer, and
// net/http closes a connection with unread data, which the kernel answers
// with a TCP reset, so the client would see the reset and not the 413.

// Bounds on reading what is left of a body over its limit, so that the
// client sees the 413. Past them the connection is closed unread.
const (
	drainLimit   = 64 << 20
	drainTimeout = 30 * time.Second
)

// errBodyTimeout is the answer to a body that did not arrive in time.
func errBodyTimeout(d time.Duration) error {
	return &statusError{http.StatusRequestTimeout, fmt.Sprintf("the request body did not arrive within %v", d)}
}

// limitBody wraps body: at most limit bytes may be read, within timeout.
func limitBody(w http.ResponseWriter, body io.ReadCloser, limit int64, timeout time.Duration) io.ReadCloser {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		rc = nil // not on a connection that takes deadlines (a test recorder)
	}
	return &boundedBody{ReadCloser: http.MaxBytesReader(w, body, limit), raw: body, rc: rc, timeout: timeout}
}

// boundedBody is a body read under a limit and a deadline.
type boundedBody struct {
	io.ReadCloser           // the MaxBytesReader over raw
	raw           io.Reader // the body itself, drained past the limit
	rc            *http.ResponseController
	timeout       time.Duration
	done          bool // an error was seen: the outcome is settled
}

func (b *boundedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil || b.done {
		return n, err
	}
	b.done = true
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		drain(b.rc, b.raw)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout(b.timeout)
	}
	return n, err
}

// refuseBody is for a body whose declared length is over limit: it is read
// and discarded (when the client is not waiting for "100 Continue" before
// sending it) so that the client reads the 413 that follows.
func refuseBody(w http.ResponseWriter, r *http.Request, limit int64) {
	w.Header().Set("Connection", "close")
	if r.Header.Get("Expect") != "" || r.ContentLength-limit > drainLimit {
		return // the client waits, or the body is too large to read for nothing
	}
	drain(http.NewResponseController(w), r.Body)
}

// drain reads and discards what is left of body, within drainLimit and
// drainTimeout.
func drain(rc *http.ResponseController, body io.Reader) {
	if rc != nil {
		rc.SetReadDeadline(time.Now().Add(drainTimeout))
	}
	io.CopyN(io.Discard, body, drainLimit)
}

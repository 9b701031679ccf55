package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

// startWith starts a server on loopback with cfg edited by edit.
func startWith(t *testing.T, edit func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	cfg.Node.SyncAlways = false
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// rawRequest writes a request with the given body on a new connection, the
// whole body before reading anything, and reads the response. A write error
// is an error, as it is for Python's requests, which then reads nothing.
func rawRequest(t *testing.T, base, method, path string, hdr map[string]string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, path)
	if body == nil || hdr["Transfer-Encoding"] == "" {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(body))
	} else {
		var chunked bytes.Buffer
		cw := httputil.NewChunkedWriter(&chunked)
		for b := body; len(b) > 0; b = b[min(len(b), 64<<10):] {
			cw.Write(b[:min(len(b), 64<<10)])
		}
		cw.Close()
		chunked.WriteString("\r\n")
		body = chunked.Bytes()
	}
	for k, v := range hdr {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.Copy(conn, io.MultiReader(strings.NewReader(head.String()), bytes.NewReader(body))); err != nil {
		return nil, nil, fmt.Errorf("sending the body: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, data, err
}

func checkDetail(t *testing.T, data []byte, want string) {
	t.Helper()
	var d map[string]string
	if err := json.Unmarshal(data, &d); err != nil || len(d) != 1 || !strings.Contains(d["detail"], want) {
		t.Errorf("body %s, want {\"detail\": \"...%s...\"}", data, want)
	}
}

// TestOversizedBodyIs413 sends a 10 MB JSON body to a JSON route (limit
// 4 MiB) many times: every time the client sends it all and reads a 413
// {"detail"}, instead of a TCP reset.
func TestOversizedBodyIs413(t *testing.T) {
	s := startWith(t, nil)
	body := []byte(`{"name": "` + strings.Repeat("x", 10<<20) + `"}`)
	for i := range 14 {
		resp, data, err := rawRequest(t, s.URL, "POST", "/v1/agents/", map[string]string{"Content-Type": "application/json"}, body)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("try %d: %d %s", i, resp.StatusCode, data)
		}
		checkDetail(t, data, "larger than")
	}
	// Without a Content-Length: the limit is found while reading.
	for i := range 5 {
		resp, data, err := rawRequest(t, s.URL, "POST", "/v1/agents/", map[string]string{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}, body)
		if err != nil {
			t.Fatalf("chunked, try %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked, try %d: %d %s", i, resp.StatusCode, data)
		}
		checkDetail(t, data, "larger than")
	}
	// A client that waits for "100 Continue" (curl does, over 1 MB) is
	// answered at once, without sending its body.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /v1/agents/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("100-continue: %d %s", resp.StatusCode, data)
	}
	checkDetail(t, data, "larger than")
	// Through Go's client, chunked.
	req, _ := http.NewRequest("POST", s.URL+"/v1/agents/", io.MultiReader(bytes.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d %s", resp.StatusCode, data)
	}
	checkDetail(t, data, "larger than")
	// The server still answers.
	if code, data := do(t, http.DefaultClient, "GET", s.URL+"/v1/health/", nil); code != 200 {
		t.Fatalf("health after: %d %s", code, data)
	}
}

// TestPartialBodyTimesOut sends half a body and stops: the server gives up
// after its body timeout, answering 408 and closing the connection.
func TestPartialBodyTimesOut(t *testing.T) {
	s := startWith(t, func(c *Config) { c.BodyTimeout = time.Second })
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(20 * time.Second))
	fmt.Fprintf(conn, "POST /v1/blocks/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"label\": ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("answer %d %s, want 408", resp.StatusCode, data)
	}
	checkDetail(t, data, "did not arrive")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v; the body timeout is 1 s", d)
	}
}

// TestIdleConnectionTimesOut leaves a keep-alive connection idle: the
// server closes it after its idle timeout.
func TestIdleConnectionTimesOut(t *testing.T) {
	s := startWith(t, func(c *Config) { c.IdleTimeout = time.Second })
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(20 * time.Second))
	fmt.Fprintf(conn, "GET /v1/health/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("health: %d, close %v", resp.StatusCode, resp.Close)
	}
	idle := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	if d := time.Since(idle); d > 5*time.Second || d < 500*time.Millisecond {
		t.Errorf("closed after %v idle; the idle timeout is 1 s", d)
	}
}

// TestSlowUploadOutlastsBodyTimeout sends an upload more slowly than the
// JSON body timeout allows: uploads have their own, longer timeout. And a
// 50 MB upload at full speed is accepted.
func TestSlowUploadOutlastsBodyTimeout(t *testing.T) {
	s := startWith(t, func(c *Config) { c.BodyTimeout = time.Second })
	code, data := do(t, http.DefaultClient, "POST", s.URL+"/v1/folders/", map[string]any{"name": "docs"})
	if code != 200 {
		t.Fatalf("create folder: %d %s", code, data)
	}
	var src struct{ ID string }
	json.Unmarshal(data, &src)
	multipartBody := func(name string, content []byte) (string, []byte) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		part, _ := w.CreateFormFile("file", name)
		part.Write(content)
		w.Close()
		return w.FormDataContentType(), buf.Bytes()
	}
	ctype, body := multipartBody("slow.txt", []byte(strings.Repeat("The spare key is under the mat. ", 1000)))
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(body); i += len(body) / 10 {
			pw.Write(body[i:min(i+len(body)/10, len(body))])
			time.Sleep(250 * time.Millisecond) // 2.5 s in all
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", s.URL+"/v1/folders/"+src.ID+"/upload", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("slow upload: %d %s", resp.StatusCode, data)
	}

	ctype, body = multipartBody("big.bin", bytes.Repeat([]byte{0xff, 0x00}, 25<<20))
	req, _ = http.NewRequest("POST", s.URL+"/v1/folders/"+src.ID+"/upload", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// The whole body was read (a binary file is refused by its content, 415).
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("50 MB upload: %d %s", resp.StatusCode, data)
	}
}

// TestLongStepOutlastsBodyTimeout sends a message whose step takes longer
// than the body timeout: the timeout covers the body only, so the step is
// not cancelled and the reply arrives, plain and streamed.
func TestLongStepOutlastsBodyTimeout(t *testing.T) {
	s, script, id := startWithModel(t, func(c *Config) { c.BodyTimeout = 500 * time.Millisecond })
	for _, streaming := range []bool{false, true} {
		step := reply("Hello Ada")
		step.Delay = 1500 * time.Millisecond
		script.Push(step)
		code, body := do(t, http.DefaultClient, "POST", s.URL+"/v1/agents/"+id+"/messages", map[string]any{
			"messages": []map[string]any{{"role": "user", "content": "hi"}}, "streaming": streaming,
		})
		if code != 200 || !strings.Contains(string(body), "Hello Ada") {
			t.Fatalf("streaming %v: %d %s", streaming, code, body)
		}
	}
}

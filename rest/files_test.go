package rest

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
)

// upload posts a multipart body with one "file" part.
func (x *harness) upload(path, name, ctype string, data []byte) (int, []byte) {
	x.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
	h["Content-Type"] = []string{ctype}
	part, err := w.CreatePart(h)
	if err != nil {
		x.t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, x.srv.URL+path, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := x.client.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestFolderUploadAndFiles(t *testing.T) {
	x := newHarness(t, Config{MaxUploadBytes: 1 << 20})
	src := x.source("docs")
	code, body := x.upload("/v1/folders/"+src.ID+"/upload", "notes.md", "text/markdown", []byte("# Notes\n\nThe spare key is under the third flowerpot."))
	if code != 200 {
		t.Fatalf("upload = %d %s", code, body)
	}
	f := decodeAs[api.FileMetadata](t, body)
	if f.SourceID != src.ID || f.FileName != "docs/notes.md" || f.ProcessingStatus == "" || f.FileType != "text/markdown" {
		t.Fatalf("upload answered %s", body)
	}
	// Poll the file as the SDK does until it is completed.
	deadline := time.Now().Add(20 * time.Second)
	for f.ProcessingStatus != "completed" {
		if time.Now().After(deadline) || f.ProcessingStatus == "error" {
			t.Fatalf("file stuck: %+v", f)
		}
		time.Sleep(20 * time.Millisecond)
		x.do("GET", "/v1/folders/"+src.ID+"/files/"+f.ID, nil, 200, &f)
	}
	var files []api.FileMetadata
	x.do("GET", "/v1/folders/"+src.ID+"/files", nil, 200, &files)
	if len(files) != 1 || files[0].ID != f.ID || *files[0].TotalChunks != 1 {
		t.Fatalf("files %+v", files)
	}
	var withContent api.FileMetadata
	x.do("GET", "/v1/folders/"+src.ID+"/files/"+f.ID+"?include_content=true", nil, 200, &withContent)
	if withContent.Content == nil || !strings.Contains(*withContent.Content, "third flowerpot") {
		t.Fatalf("content %+v", withContent)
	}
	var passages []api.Passage
	x.do("GET", "/v1/folders/"+src.ID+"/passages", nil, 200, &passages)
	if len(passages) != 1 || *passages[0].FileID != f.ID {
		t.Fatalf("passages %+v", passages)
	}

	// An agent with the folder attached finds it; its file list shows it.
	a := x.agent(api.CreateAgent{Name: strp("finder")})
	x.do("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+src.ID, nil, 200, nil)
	var found api.ArchivalSearch
	x.do("GET", "/v1/agents/"+a.ID+"/archival-memory/search?query=spare+key&top_k=3", nil, 200, &found)
	if found.Count != 1 || found.Results[0].ID != passages[0].ID || found.Results[0].Tags == nil {
		t.Fatalf("search %+v", found)
	}
	var page api.FilesPage
	x.do("GET", "/v1/agents/"+a.ID+"/files", nil, 200, &page)
	if len(page.Files) != 1 || page.Files[0].FolderName != "docs" || page.HasMore {
		t.Fatalf("agent files %+v", page)
	}

	// 0.5's upload route answers the job.
	code, body = x.upload("/v1/sources/"+src.ID+"/upload", "more.txt", "text/plain", []byte("more words"))
	if code != 200 || !strings.Contains(string(body), `"job_type":"load_files"`) {
		t.Fatalf("0.5 upload = %d %s", code, body)
	}

	// Delete a file: 204 and no body.
	req, _ := http.NewRequest(http.MethodDelete, x.srv.URL+"/v1/folders/"+src.ID+"/"+f.ID, nil)
	resp, err := x.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("delete file = %d", resp.StatusCode)
	}
	x.do("GET", "/v1/folders/"+src.ID+"/files/"+f.ID, nil, 404, nil)
}

func TestUploadBadInput(t *testing.T) {
	x := newHarness(t, Config{MaxUploadBytes: 1 << 20})
	src := x.source("docs")
	before, _ := x.n.Log.LastSeq(t.Context())
	cases := []struct {
		name       string
		path, file string
		ctype      string
		data       []byte
		want       int
	}{
		{"unsupported type", "/v1/folders/" + src.ID + "/upload", "photo.png", "image/png", []byte("\x89PNG\r\n\x1a\n"), 415},
		{"over the upload limit", "/v1/folders/" + src.ID + "/upload", "big.txt", "text/plain", bytes.Repeat([]byte("a"), 2<<20), 413},
		{"unknown folder", "/v1/folders/source-00000000000000000000000000/upload", "a.txt", "text/plain", []byte("x"), 404},
		{"bad duplicate handling", "/v1/folders/" + src.ID + "/upload?duplicate_handling=maybe", "a.txt", "text/plain", []byte("x"), 422},
	}
	for _, tc := range cases {
		code, body := x.upload(tc.path, tc.file, tc.ctype, tc.data)
		var e struct {
			Detail string `json:"detail"`
		}
		if code != tc.want || json.Unmarshal(body, &e) != nil || e.Detail == "" {
			t.Errorf("%s: %d %s, want %d with a detail", tc.name, code, body, tc.want)
		}
	}
	x.do("POST", "/v1/folders/"+src.ID+"/upload", map[string]string{"file": "x"}, 415, nil) // JSON where multipart belongs
	if after, _ := x.n.Log.LastSeq(t.Context()); after != before {
		t.Fatalf("bad uploads appended %d events", after-before)
	}
	a := x.agent(api.CreateAgent{Name: strp("s")})
	before, _ = x.n.Log.LastSeq(t.Context())
	x.do("GET", "/v1/agents/"+a.ID+"/archival-memory/search", nil, 422, nil)
	x.do("GET", "/v1/agents/"+a.ID+"/archival-memory/search?query=x&top_k=zero", nil, 422, nil)
	x.do("GET", "/v1/agents/"+a.ID+"/archival-memory/search?query=x&start_datetime=yesterday", nil, 422, nil)
	x.do("GET", "/v1/agents/"+a.ID+"/archival-memory/search?query=x&tag_match_mode=some", nil, 422, nil)
	if after, _ := x.n.Log.LastSeq(t.Context()); after != before {
		t.Fatalf("bad searches appended %d events", after-before)
	}
}

// flatePDF writes a one-page PDF whose Flate-compressed content stream shows
// line n times: a small file with a great deal of text.
func flatePDF(t *testing.T, line string, n int) []byte {
	t.Helper()
	var content bytes.Buffer
	zw := zlib.NewWriter(&content)
	op := []byte("(" + line + ") Tj T*\n")
	zw.Write([]byte("BT\n"))
	for range n {
		zw.Write(op)
	}
	zw.Write([]byte("ET\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	var offsets []int
	for _, body := range []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", content.Len(), content.Bytes()),
	} {
		if b.Len() == 0 {
			b.WriteString("%PDF-1.4\n")
		}
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// TestUploadTextLimit uploads a 120 KB PDF whose content expands to 40 MB
// (the kind of file that once loaded 34,240 passages): the file fails with
// a message naming the limit, its job fails, and no passage is stored. A
// small PDF in the same folder still loads.
func TestUploadTextLimit(t *testing.T) {
	x := newHarness(t, Config{})
	src := x.source("docs")
	upload := func(name string, data []byte) api.FileMetadata {
		t.Helper()
		code, body := x.upload("/v1/folders/"+src.ID+"/upload", name, "application/pdf", data)
		if code != 200 {
			t.Fatalf("upload %s = %d %s", name, code, body)
		}
		f := decodeAs[api.FileMetadata](t, body)
		deadline := time.Now().Add(30 * time.Second)
		for f.ProcessingStatus != "completed" && f.ProcessingStatus != "error" {
			if time.Now().After(deadline) {
				t.Fatalf("file stuck: %+v", f)
			}
			time.Sleep(20 * time.Millisecond)
			x.do("GET", "/v1/folders/"+src.ID+"/files/"+f.ID, nil, 200, &f)
		}
		return f
	}
	const line = "All work and no play makes Jack a dull boy."
	bomb := flatePDF(t, line, 800_000)
	f := upload("bomb.pdf", bomb)
	if f.ProcessingStatus != "error" || f.ErrorMessage == nil || !strings.Contains(*f.ErrorMessage, "extracted text is over") {
		t.Fatalf("bomb.pdf: status %q, error %v", f.ProcessingStatus, f.ErrorMessage)
	}
	t.Logf("%d-byte PDF: %s", len(bomb), *f.ErrorMessage)
	var jobs []api.Job
	x.do("GET", "/v1/jobs/", nil, 200, &jobs)
	if len(jobs) != 1 || jobs[0].Status != api.JobFailed {
		t.Fatalf("jobs %+v", jobs)
	}
	ok := upload("small.pdf", flatePDF(t, line, 100))
	if ok.ProcessingStatus != "completed" {
		t.Fatalf("small.pdf: %+v", ok)
	}
	var passages []api.Passage
	x.do("GET", "/v1/folders/"+src.ID+"/passages", nil, 200, &passages)
	for _, p := range passages {
		if p.FileID == nil || *p.FileID != ok.ID {
			t.Errorf("passage %s of file %v", p.ID, p.FileID)
		}
	}
	if len(passages) == 0 {
		t.Error("small.pdf has no passages")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// runExport writes an agent as a Letta Agent File to standard output.
func runExport(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	scrub := fs.Bool("scrub-messages", false, "leave the messages out")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: engram export [--url URL] [--token T] [--scrub-messages] AGENT > agent.af")
	}
	c := &apiClient{base: strings.TrimRight(*base, "/"), token: *token}
	id, err := c.resolve(fs.Arg(0))
	if err != nil {
		return err
	}
	resp, err := c.do("GET", fmt.Sprintf("/v1/agents/%s/export?scrub_messages=%t", id, *scrub), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return fmt.Errorf("read export: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runImport creates the agents of a Letta Agent File and prints their ids.
func runImport(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	name := fs.String("name", "", "name of the imported agent (default: the file's, with _copy)")
	model := fs.String("model", "", "model handle for the imported agents (default: the file's)")
	keepName := fs.Bool("keep-name", false, "keep the file's names, without _copy")
	strip := fs.Bool("strip-messages", false, "import no messages")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: engram import [--url URL] [--token T] [--name N] [--model M] [--keep-name] [--strip-messages] FILE.af")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, err := w.CreateFormFile("file", filepath.Base(fs.Arg(0)))
	if err != nil {
		return err
	}
	fw.Write(data)
	fields := map[string]string{"append_copy_suffix": fmt.Sprint(!*keepName), "strip_messages": fmt.Sprint(*strip), "override_name": *name, "override_model_handle": *model}
	for k, v := range fields {
		if v != "" {
			w.WriteField(k, v)
		}
	}
	w.Close()
	req, err := http.NewRequest("POST", strings.TrimRight(*base, "/")+"/v1/agents/import", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Detail string }
		if json.Unmarshal(out, &e) == nil && e.Detail != "" {
			return errors.New(e.Detail)
		}
		return fmt.Errorf("%s: %s", resp.Status, out)
	}
	var r struct {
		AgentIDs []string `json:"agent_ids"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("read import answer: %w", err)
	}
	for _, id := range r.AgentIDs {
		fmt.Println(id)
	}
	return nil
}

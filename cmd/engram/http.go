package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/engram-dev/engram/client"
)

// apiClient makes the raw REST calls of the commands whose routes the Go
// client does not wrap (audit, export, import).
type apiClient struct{ base, token string }

// do sends a request and returns a 200 answer, whose body the caller
// closes; any other answer is an error carrying the server's detail.
func (c *apiClient) do(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Detail string }
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &e) == nil && e.Detail != "" {
			return nil, errors.New(e.Detail)
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return resp, nil
}

// resolve accepts an agent id or name.
func (c *apiClient) resolve(agent string) (string, error) {
	rc := client.NewREST(c.base, c.token)
	defer rc.Close()
	return resolveAgent(context.Background(), rc, agent)
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// runChat is an interactive terminal chat with one agent over the REST API.
// It streams the agent's thoughts, tool calls and replies as they happen.
// Lines starting with "/" are commands (run_command); /quit ends the chat.
func runChat(args []string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	base := fs.String("url", envOr("ENGRAM_URL", "http://127.0.0.1:8283"), "server URL")
	token := fs.String("token", os.Getenv("ENGRAM_TOKEN"), "server token")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: engram chat [--url URL] [--token T] AGENT (id or name)")
	}
	c := &chatClient{base: strings.TrimRight(*base, "/"), token: *token}
	id, err := c.resolve(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Printf("chatting with %s (%s); /quit to leave, /memory, /pop, /retry ... for commands\n", fs.Arg(0), id)
	in := bufio.NewScanner(os.Stdin)
	for {
		fmt.Print("> ")
		if !in.Scan() {
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		switch {
		case line == "":
			continue
		case line == "/quit" || line == "/exit":
			return nil
		case strings.HasPrefix(line, "/"):
			err = c.command(id, line)
		default:
			err = c.send(id, line)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type chatClient struct{ base, token string }

func (c *chatClient) do(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
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
func (c *chatClient) resolve(agent string) (string, error) {
	if strings.HasPrefix(agent, "agent-") {
		return agent, nil
	}
	resp, err := c.do("GET", "/v1/agents/?name="+url.QueryEscape(agent), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var list []struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", fmt.Errorf("no agent named %q", agent)
	}
	return list[0].ID, nil
}

type chatMessage struct {
	MessageType string `json:"message_type"`
	Content     string `json:"content"`
	Reasoning   string `json:"reasoning"`
	ToolCall    *struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"tool_call"`
	Name       string `json:"name"`
	ToolReturn string `json:"tool_return"`
	Status     string `json:"status"`
	StopReason string `json:"stop_reason"`
	StepCount  int    `json:"step_count"`
	Message    string `json:"message"`
	Detail     string `json:"detail"`
}

func (c *chatClient) send(id, text string) error {
	resp, err := c.do("POST", "/v1/agents/"+id+"/messages", map[string]any{"input": text, "streaming": true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			event = name
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return nil
		}
		var m chatMessage
		if json.Unmarshal([]byte(data), &m) != nil {
			continue
		}
		if event == "error" {
			return fmt.Errorf("%s %s", m.Message, m.Detail)
		}
		printMessage(m)
	}
	return sc.Err()
}

func (c *chatClient) command(id, line string) error {
	resp, err := c.do("POST", "/v1/agents/"+id+"/command", map[string]string{"command": line})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct{ Messages []chatMessage }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	for _, m := range r.Messages {
		printMessage(m)
	}
	fmt.Println("ok")
	return nil
}

func printMessage(m chatMessage) {
	switch m.MessageType {
	case "reasoning_message":
		fmt.Printf("  💭 %s\n", m.Reasoning)
	case "tool_call_message":
		if m.ToolCall != nil {
			fmt.Printf("  ⚙ %s(%s)\n", m.ToolCall.Name, m.ToolCall.Arguments)
		}
	case "tool_return_message":
		if m.Name == "send_message" && m.Status == "success" {
			return // the reply itself was shown
		}
		ret := m.ToolReturn
		if len(ret) > 200 {
			ret = ret[:200] + "…"
		}
		fmt.Printf("  ↩ [%s] %s\n", m.Status, strings.ReplaceAll(ret, "\n", " "))
	case "assistant_message":
		fmt.Printf("%s\n", m.Content)
	case "system_message":
		fmt.Println(m.Content)
	case "stop_reason":
		if m.StopReason != "end_turn" {
			fmt.Printf("  (stopped: %s)\n", m.StopReason)
		}
	}
}

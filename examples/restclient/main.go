// Command restclient shows a Go program that talks to an engram server over
// REST: it creates an agent (or reuses one of the same name), sends it a
// message and prints what the agent did. It imports only package client, so
// it links no NATS server and no Bleve index (client_test checks that).
//
//	go run ./examples/restclient -url http://localhost:8283 -message "Hi, I am Ada."
//
// The URL and token may also come from ENGRAM_URL and ENGRAM_TOKEN.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/fault"
)

func main() {
	url := flag.String("url", envOr("ENGRAM_URL", "http://localhost:8283"), "the server's base URL")
	token := flag.String("token", os.Getenv("ENGRAM_TOKEN"), "the server's bearer token, if it wants one")
	name := flag.String("agent", "restclient-example", "the agent's name; an agent of that name is reused")
	message := flag.String("message", "Hi, I am Ada.", "what to tell the agent")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *token, *name, *message); err != nil {
		fmt.Fprintln(os.Stderr, "restclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, token, name, message string) error {
	c := client.NewREST(url, token)
	defer c.Close()

	id, err := c.GetAgentID(ctx, name)
	if err != nil && !fault.Is(err, fault.NotFound) {
		return err // the server cannot be reached, or refused the token
	}
	if err != nil {
		a, err := c.CreateAgent(ctx, client.CreateAgentOptions{Name: name})
		if err != nil {
			return fmt.Errorf("create agent %s: %w", name, err)
		}
		id = a.ID
		fmt.Printf("created agent %s (%s)\n", name, id)
	}
	resp, err := c.UserMessage(ctx, id, message)
	if err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	for _, m := range resp.Messages {
		fmt.Println(describe(m))
	}
	return nil
}

// describe is one line for a message the agent produced.
func describe(m api.LettaMessage) string {
	switch m.MessageType {
	case api.ReasoningMessageType:
		return "thought: " + deref(m.Reasoning)
	case api.AssistantMessageType:
		return "agent: " + deref(m.Content)
	case api.ToolCallMessageType:
		if m.ToolCall != nil {
			return fmt.Sprintf("calls %s(%s)", m.ToolCall.Name, m.ToolCall.Arguments)
		}
	case api.ToolReturnMessageType:
		return fmt.Sprintf("tool %s: %s", deref(m.Status), deref(m.ToolReturn))
	}
	return m.MessageType + ": " + deref(m.Content)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

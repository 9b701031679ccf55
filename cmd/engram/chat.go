package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
)

// runChat is an interactive terminal chat with one agent over the REST API,
// through the Go client. It streams the agent's thoughts (token by token),
// tool calls and replies as they happen. Lines starting with "/" are
// commands (run_command); /quit ends the chat.
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
	ctx := context.Background()
	c := client.NewREST(strings.TrimRight(*base, "/"), *token)
	defer c.Close()
	id, err := resolveAgent(ctx, c, fs.Arg(0))
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
			err = command(ctx, c, id, line)
		default:
			err = say(ctx, c, id, line)
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

// resolveAgent accepts an agent id or name.
func resolveAgent(ctx context.Context, c client.Client, agent string) (string, error) {
	if strings.HasPrefix(agent, "agent-") {
		return agent, nil
	}
	id, err := c.GetAgentID(ctx, agent)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("no agent named %q", agent)
	}
	return id, nil
}

// say sends a line and prints the agent's work as it streams: thoughts as
// their tokens arrive, then each tool call, return and reply.
func say(ctx context.Context, c client.Client, id, text string) error {
	thinking := "" // the id of the thought being printed, if any
	for m, err := range c.SendMessageStream(ctx, id, "user", text, true) {
		if err != nil {
			if thinking != "" {
				fmt.Println()
			}
			return err
		}
		if m.MessageType == api.ReasoningMessageType && m.Reasoning != nil {
			if thinking != m.ID {
				if thinking != "" {
					fmt.Println()
				}
				fmt.Print("  💭 ")
				thinking = m.ID
			}
			fmt.Print(*m.Reasoning)
			continue
		}
		if thinking != "" {
			fmt.Println()
			thinking = ""
		}
		printMessage(m)
	}
	if thinking != "" {
		fmt.Println()
	}
	return nil
}

func command(ctx context.Context, c client.Client, id, line string) error {
	r, err := c.RunCommand(ctx, id, line)
	if err != nil {
		return err
	}
	for _, m := range r.Messages {
		printMessage(m)
	}
	fmt.Println("ok")
	return nil
}

func printMessage(m api.LettaMessage) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch m.MessageType {
	case api.ReasoningMessageType:
		fmt.Printf("  💭 %s\n", str(m.Reasoning))
	case api.ToolCallMessageType:
		if m.ToolCall != nil {
			fmt.Printf("  ⚙ %s(%s)\n", m.ToolCall.Name, m.ToolCall.Arguments)
		}
	case api.ToolReturnMessageType:
		if str(m.Name) == "send_message" && str(m.Status) == "success" {
			return // the reply itself was shown
		}
		ret := str(m.ToolReturn)
		if len(ret) > 200 {
			ret = ret[:200] + "…"
		}
		fmt.Printf("  ↩ [%s] %s\n", str(m.Status), strings.ReplaceAll(ret, "\n", " "))
	case api.AssistantMessageType, api.SystemMessageType:
		fmt.Println(str(m.Content))
	}
}

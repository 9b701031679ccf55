package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/engram-dev/engram/llm"
)

// runModels lists what each configured provider serves; with none
// configured, what the local servers that answer serve.
func runModels(args []string) error {
	fs := flag.NewFlagSet("models", flag.ContinueOnError)
	openaiURL := fs.String("openai-base-url", os.Getenv("OPENAI_BASE_URL"), "OpenAI-compatible endpoint; the key comes from OPENAI_API_KEY")
	anthropicURL := fs.String("anthropic-base-url", os.Getenv("ANTHROPIC_BASE_URL"), "Anthropic endpoint; the key comes from ANTHROPIC_API_KEY")
	local := fs.String("local-models", formatEndpoints(llm.LocalEndpoints()), `local OpenAI-compatible servers probed when no provider is configured, as name=URL,... ("" for none)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	reg, err := providersFrom(*openaiURL, *anthropicURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls := map[string]string{"openai": orString(*openaiURL, llm.OpenAIBaseURL), "anthropic": orString(*anthropicURL, llm.AnthropicBaseURL)}
	if len(reg.Providers()) == 0 {
		endpoints, err := parseEndpoints(*local)
		if err != nil {
			return fmt.Errorf("--local-models: %w", err)
		}
		for _, f := range llm.ProbeLocal(ctx, endpoints, 0) {
			reg.Add(f.Provider, f.Model)
			urls[f.Provider] = f.BaseURL
		}
		if len(reg.Providers()) == 0 {
			return errors.New("no model provider configured (OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY) and no local server answered at " + *local)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HANDLE\tPROVIDER URL")
	var failed []string
	for _, p := range reg.ListModels(ctx) {
		if p.Err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s): %v", p.Provider, urls[p.Provider], p.Err))
			continue
		}
		for _, m := range p.Models {
			fmt.Fprintf(w, "%s/%s\t%s\n", p.Provider, m, urls[p.Provider])
		}
	}
	w.Flush()
	if len(failed) > 0 {
		return errors.New("could not list the models of " + strings.Join(failed, "; "))
	}
	return nil
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// formatEndpoints writes endpoints as name=URL,...
func formatEndpoints(es []llm.LocalEndpoint) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Provider + "=" + e.BaseURL
	}
	return strings.Join(parts, ",")
}

// parseEndpoints reads name=URL,... ("" is none).
func parseEndpoints(s string) ([]llm.LocalEndpoint, error) {
	var out []llm.LocalEndpoint
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, url, ok := strings.Cut(part, "=")
		if !ok || name == "" || url == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("%q: want name=URL", part)
		}
		out = append(out, llm.LocalEndpoint{Provider: name, BaseURL: url})
	}
	return out, nil
}

// providersFrom makes the model providers the environment configures, with
// the --openai-base-url and --anthropic-base-url flags in place of their
// variables.
func providersFrom(openaiURL, anthropicURL string) (*llm.Registry, error) {
	return llm.FromEnv(func(k string) string {
		switch k {
		case "OPENAI_BASE_URL":
			return openaiURL
		case "ANTHROPIC_BASE_URL":
			return anthropicURL
		}
		return os.Getenv(k)
	})
}

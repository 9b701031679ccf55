// Command engram runs the engram server: stateful LLM agents in the style of
// Letta, event-sourced on embedded NATS JetStream.
//
//	engram server [--data-dir DIR] [--http-addr HOST:PORT] [--nats-addr HOST:PORT] [--token-file FILE] [--metrics-addr HOST:PORT]
//	              [--node-name N --cluster-addr HOST:PORT --peers nats://h1:6222,... --cluster-token-file FILE --replicas N]
//	              [--node-name N --nats-url nats://host:4222 --nats-creds FILE --replicas N]
//	engram chat [--url URL] [--token T] AGENT
//	engram models [--local-models LIST]
//	engram audit [--url URL] [--token T] [--json] [--follow] AGENT
//	engram export [--url URL] [--token T] AGENT > agent.af
//	engram import [--url URL] [--token T] agent.af
//	engram bench [--quick] [--json FILE] [--only a,b]
//	engram status [--url URL] [--token T] [--json]
//	engram cluster-local [--nodes 3] [--data-dir DIR] [--http-port 8283] [--route-port 6222] [-- server flags]
//	engram version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/runner"
	"github.com/engram-dev/engram/server"
	"github.com/engram-dev/engram/verify"
)

var version = "0.1.0-dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "chat":
		err = runChat(os.Args[2:])
	case "audit":
		err = runAudit(os.Args[2:])
	case "verify":
		err = runVerify(os.Args[2:])
	case "export":
		err = runExport(os.Args[2:])
	case "import":
		err = runImport(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "models":
		err = runModels(os.Args[2:])
	case "status":
		err = runStatus(os.Args[2:])
	case "cluster-local":
		err = runClusterLocal(os.Args[2:])
	case "version", "--version":
		fmt.Println("engram", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "engram: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "engram:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: engram <command> [flags]

commands:
  server    run the server (REST API on :8283, embedded NATS)
  load      load a file or directory into a source: engram load PATH --source NAME
  chat      chat with an agent in the terminal: engram chat AGENT
  models    list what each configured model provider serves (and local servers, when none is)
  audit     print an agent's history: engram audit [--json] [--follow] AGENT
  cluster-local  start a local cluster for a try: engram cluster-local --nodes 3 --data-dir DIR [-- server flags]
  status    show the cluster as a member sees it: engram status [--url URL] [--json]
  verify    check that every event in the log is as engram wrote it: engram verify [--data-dir DIR]
  export    write an agent as a Letta Agent File: engram export AGENT > agent.af
  import    create the agents of a Letta Agent File: engram import agent.af
  bench     run the benchmark suite: engram bench [--quick] [--json FILE] [--only a,b]
  version   print the version

run "engram server -h" for the server's flags.
`)
}

func defaultDataDir() string {
	if d := os.Getenv("ENGRAM_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".engram"
	}
	return filepath.Join(home, ".engram")
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	cfg := server.DefaultConfig(defaultDataDir())
	fs.StringVar(&cfg.Node.DataDir, "data-dir", cfg.Node.DataDir, "directory for the event log and snapshots")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "address of the REST API")
	fs.StringVar(&cfg.Node.NATSAddr, "nats-addr", cfg.Node.NATSAddr, `address for NATS clients ("" for none)`)
	token := fs.String("token", "", "token clients must present (required beyond loopback); visible to every user in ps: prefer --token-file or $ENGRAM_TOKEN")
	tokenFile := fs.String("token-file", "", "file holding the token clients must present (required beyond loopback); $ENGRAM_TOKEN works too")
	var allowedHosts, corsOrigins multi
	fs.Var(&allowedHosts, "allowed-host", "a name clients reach the server by, besides localhost and IP addresses, as host or host:port (repeatable); requests for other names are refused")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (with chain) for HTTPS on --http-addr and TLS on --nats-addr")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM certificate authorities whose client certificates REST and NATS clients must present (mutual TLS); needs --tls-cert")
	fs.Var(&corsOrigins, "cors-origin", `an origin browsers may call the API from, such as https://app.example, or "*" (repeatable); none by default`)
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 0, "requests per second each organization may make (the admin routes not counted; sends over NATS counted apart); 0 for no limit")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 0, "requests an organization may make at once within --rate-limit; 0 for --rate-limit rounded up")
	fs.IntVar(&cfg.MaxRunsPerOrg, "max-runs-per-org", 0, "runs (sends stored and not yet answered, over REST or NATS) each organization may have in progress; 0 for no limit")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", `a second listener serving only GET /metrics ("" for none; /metrics is on --http-addr too)`)
	sync := fs.String("sync", "always", `"always": fsync each event before acknowledging it; "relaxed": let JetStream flush on its interval`)
	var models, embeds multi
	fs.Var(&models, "model", "a chat model clients may pick, as provider/name[:context_window] (repeatable)")
	fs.Var(&embeds, "embedding-model", "an embedding model, as provider/name[:dim] (repeatable)")
	openaiURL := fs.String("openai-base-url", os.Getenv("OPENAI_BASE_URL"), "OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, LM Studio, ...); the key comes from OPENAI_API_KEY")
	anthropicURL := fs.String("anthropic-base-url", os.Getenv("ANTHROPIC_BASE_URL"), "Anthropic endpoint; the key comes from ANTHROPIC_API_KEY")
	local := fs.String("local-models", formatEndpoints(llm.LocalEndpoints()), `local OpenAI-compatible servers probed at start when no provider is configured, as name=URL,... in order ("" for none)`)
	tools := fs.String("tools", string(node.ToolsContained), `when users' Python tools run: "contained" (only where the host permits containing them), "any" (with whatever isolation it permits), "off"`)
	fs.IntVar(&cfg.Node.MaxRuns, "max-runs", runner.DefaultMaxRuns, "agents that run at once on this node; busy agents beyond it wait their turn")
	fs.IntVar(&cfg.Node.Checkpoints.Every, "checkpoint-every", verify.DefaultCheckpointEvery, "sealed events between tamper-evidence checkpoints (negative: none by count)")
	fs.DurationVar(&cfg.Node.Checkpoints.Interval, "checkpoint-interval", verify.DefaultCheckpointInterval, "longest wait before a checkpoint covers a sealed event (negative: none by time)")
	fs.StringVar(&cfg.Node.LogKeyFile, "log-key-file", "", "the key that seals the log (default DATA-DIR/log.key, made on first start); cluster members must each be given a copy of one key")
	fs.StringVar(&cfg.Node.NATSURL, "nats-url", "", "use this NATS server or cluster (with JetStream) instead of embedding one: nats://host:4222[,nats://...]; $ENGRAM_NATS_TOKEN gives it a token")
	fs.StringVar(&cfg.Node.NATSCreds, "nats-creds", "", "credentials file (.creds) for --nats-url")
	var cl clusterFlags
	cl.register(fs)
	verbose := fs.Bool("v", false, "log debug detail")
	config := fs.String("config", "", "a TOML file of these flags by name (node-name = \"n1\"; a repeatable flag takes a list); flags given here win")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *config != "" {
		if err := applyConfig(fs, *config); err != nil {
			return err
		}
	}
	var err error
	if cfg.Node.Tools, err = node.ParseToolsMode(*tools); err != nil {
		return fmt.Errorf("--tools: %w", err)
	}
	switch *sync {
	case "always":
		cfg.Node.SyncAlways = true
	case "relaxed":
		cfg.Node.SyncAlways = false
	default:
		return fmt.Errorf("--sync must be always or relaxed, not %q", *sync)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = logger
	if cfg.Token, err = serverToken(*token, *tokenFile, os.Getenv("ENGRAM_TOKEN"), logger); err != nil {
		return err
	}
	if err := cl.apply(&cfg.Node); err != nil {
		return err
	}
	if cfg.Node.NATSURL != "" {
		if cfg.Node.Cluster != nil {
			return errors.New("--nats-url and --cluster-addr: a node either embeds a cluster member or uses an external NATS, not both")
		}
		cfg.Node.NATSURLToken = os.Getenv("ENGRAM_NATS_TOKEN")
		if cfg.Node.NodeName == "" {
			// Nodes sharing a NATS are told apart by name.
			h, err := os.Hostname()
			if err != nil || h == "" {
				return errors.New("--node-name: the host name is unknown; name this node explicitly")
			}
			cfg.Node.NodeName = h
		}
		cfg.Node.NATSAddr = "" // no embedded server to listen
	} else if cfg.Node.NATSCreds != "" {
		return errors.New("--nats-creds needs --nats-url")
	}
	cfg.AllowedHosts, cfg.CORSOrigins = allowedHosts, corsOrigins
	cfg.Node.Service.Version = version
	if cfg.Node.Service.Models, err = chatModels(models); err != nil {
		return err
	}
	if cfg.Node.Service.EmbeddingModels, err = embeddingModels(embeds); err != nil {
		return err
	}
	providers, err := providersFrom(*openaiURL, *anthropicURL)
	if err != nil {
		return err
	}
	cfg.Node.Service.Providers = providers
	if key, base := os.Getenv("OPENAI_API_KEY"), *openaiURL; key != "" || base != "" {
		cfg.Node.Service.Embed = node.OpenAIEmbedders(base, key)
	} else {
		logger.Info("no embedding provider configured: search ranks by words alone (BM25)")
	}
	if len(models) == 0 {
		if listed := providerModels(providers, logger); len(listed) > 0 {
			cfg.Node.Service.Models = listed
		}
	}
	if cfg.LocalModels, err = parseEndpoints(*local); err != nil {
		return fmt.Errorf("--local-models: %w", err)
	}
	if len(providers.Providers()) == 0 && len(cfg.LocalModels) == 0 {
		logger.Warn("no model provider configured: agents can be created and edited but not run; set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server) or ANTHROPIC_API_KEY")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	s, err := server.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	if c := cfg.Node.Cluster; c != nil {
		logger.Info("cluster member", "node", s.Node.NATS.Name(), "cluster", c.Name, "routes", c.Addr, "members", c.Size())
	}
	logger.Info("engram listening", "url", s.URL, "console", s.URL+"/", "nats", s.Node.NATS.ClientURL(), "metrics", s.MetricsURL, "data", cfg.Node.DataDir,
		"events", s.Node.Projection.Applied(), "ready_in", s.Node.Ready, "fsync", cfg.Node.SyncAlways)
	<-ctx.Done()
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Close(shutCtx)
}

// serverToken picks the token from --token-file, --token or $ENGRAM_TOKEN,
// in that order; giving both flags is an error. A token given with --token
// is in the process's command line, which every user of the machine can
// read (ps, /proc), so it is accepted with a warning.
func serverToken(flagValue, file, env string, logger *slog.Logger) (string, error) {
	if flagValue != "" && file != "" {
		return "", errors.New("give the token with --token-file or --token, not both")
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" || strings.ContainsAny(t, "\r\n") {
			return "", fmt.Errorf("--token-file %s: want one line holding the token", file)
		}
		return t, nil
	case flagValue != "":
		logger.Warn("the token given with --token is visible to every user of this machine in the process list (ps, /proc/PID/cmdline); use --token-file FILE or $ENGRAM_TOKEN instead")
		return flagValue, nil
	}
	return env, nil
}

// chatModels builds the model list from --model flags, or from the
// provider keys in the environment when there are none.
func chatModels(flags []string) ([]api.Model, error) {
	if len(flags) == 0 {
		if os.Getenv("OPENAI_API_KEY") != "" || os.Getenv("OPENAI_BASE_URL") != "" {
			flags = append(flags, "openai/gpt-4o-mini:128000", "openai/gpt-4o:128000")
		}
		if os.Getenv("ANTHROPIC_API_KEY") != "" {
			flags = append(flags, "anthropic/claude-sonnet-4-5:200000")
		}
	}
	var out []api.Model
	for _, f := range flags {
		handle, n, err := splitHandle(f, 128000)
		if err != nil {
			return nil, fmt.Errorf("--model %q: %w", f, err)
		}
		provider, name, _ := strings.Cut(handle, "/")
		h, category := handle, "base"
		out = append(out, api.Model{
			LLMConfig: api.LLMConfig{Model: name, ModelEndpointType: provider, ContextWindow: n, Handle: &h, ProviderName: &provider, ProviderCategory: &category},
			Name:      name, DisplayName: name, ProviderType: provider, MaxContextWindow: n, ModelType: "llm",
		})
	}
	return out, nil
}

func embeddingModels(flags []string) ([]api.EmbeddingModel, error) {
	if len(flags) == 0 && (os.Getenv("OPENAI_API_KEY") != "" || os.Getenv("OPENAI_BASE_URL") != "") {
		flags = append(flags, "openai/text-embedding-3-small:1536")
	}
	var out []api.EmbeddingModel
	for _, f := range flags {
		handle, dim, err := splitHandle(f, 1536)
		if err != nil {
			return nil, fmt.Errorf("--embedding-model %q: %w", f, err)
		}
		provider, name, _ := strings.Cut(handle, "/")
		h, chunk := handle, 300
		out = append(out, api.EmbeddingModel{
			EmbeddingConfig: api.EmbeddingConfig{EmbeddingEndpointType: provider, EmbeddingModel: name, EmbeddingDim: dim, EmbeddingChunkSize: &chunk, Handle: &h, BatchSize: 32},
			Name:            name, DisplayName: name, ProviderName: provider, ProviderType: provider, ModelType: "embedding",
		})
	}
	return out, nil
}

func splitHandle(s string, def int) (string, int, error) {
	// The number follows the last colon; model names may hold colons
	// themselves (Ollama's "llama3:8b").
	handle, num, hasNum := s, "", false
	if i := strings.LastIndex(s, ":"); i >= 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			handle, num, hasNum = s[:i], s[i+1:], true
		}
	}
	if p, m, ok := strings.Cut(handle, "/"); !ok || p == "" || m == "" {
		return "", 0, errors.New("want provider/name")
	}
	if !hasNum {
		return handle, def, nil
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return "", 0, fmt.Errorf("bad number %q", num)
	}
	return handle, n, nil
}

// providerModels asks the OpenAI-compatible provider which models it
// serves, so that list_models shows what can actually run. Context windows
// come from a small table of known models (8192 otherwise; override with
// --model name:window).
func providerModels(reg *llm.Registry, logger *slog.Logger) []api.Model {
	m, _, err := reg.Lookup("openai/any")
	if err != nil {
		return nil
	}
	lister, ok := m.(interface {
		ListModels(context.Context) ([]string, error)
	})
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := lister.ListModels(ctx)
	if err != nil {
		logger.Warn("could not list the OpenAI-compatible provider's models; using defaults", "err", err)
		return nil
	}
	var flags []string
	for _, n := range names {
		flags = append(flags, "openai/"+n+":"+strconv.Itoa(contextWindow(n)))
	}
	out, _ := chatModels(flags)
	return out
}

func contextWindow(model string) int {
	for _, k := range []struct {
		prefix string
		n      int
	}{{"gpt-4.1", 1047576}, {"gpt-4o", 128000}, {"gpt-4-turbo", 128000}, {"o1", 200000}, {"o3", 200000}, {"o4", 200000}, {"gpt-5", 400000}, {"gpt-4", 8192}, {"gpt-3.5", 16385}} {
		if strings.HasPrefix(model, k.prefix) {
			return k.n
		}
	}
	return 8192
}

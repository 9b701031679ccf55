// Command harness runs an engram server against a scripted model, for the
// Letta SDK compatibility suite in compat/.
//
// It starts, all on loopback:
//
//   - an llmtest server (the scripted chat model, OpenAI's protocol),
//   - in front of it a model endpoint that forwards chat completions, model
//     listings and /v1/embeddings to llmtest, whose embeddings are
//     deterministic (llmtest.HashEmbed: a bag of words hashed into the
//     dimensions),
//   - an engram server (REST only, no NATS listener) in a fresh temporary
//     data directory on a random port, with the model endpoint as its
//     OpenAI-compatible provider,
//   - a control endpoint through which the tests script the model.
//
// When all are up it prints one JSON line on stdout:
//
//	{"engram":"http://127.0.0.1:P1","model":"http://127.0.0.1:P2/v1","control":"http://127.0.0.1:P3","data_dir":"/tmp/..."}
//
// and runs until stdin closes or it gets SIGINT or SIGTERM; it then shuts the
// server down and removes the data directory. Closing stdin is how the suite
// stops it, so a harness never outlives a crashed test runner.
//
// The control endpoint:
//
//	POST /script    a JSON array of llmtest steps, appended to the script
//	                ({"Content": "...", "ToolCalls": [{"Name": "...", "Arguments": "{...}"}]})
//	GET  /pending   {"pending": n}: steps not consumed yet
//	GET  /requests  every completion request the model received, decoded
//	GET  /embeddings {"requests": n, "inputs": n}: what /v1/embeddings served
//
// Flags: -chat-model and -embedding-model name the handles engram lists
// (provider/name:size), -token sets the token engram requires of clients,
// -v logs the server to stderr. -tls-dir DIR serves engram over HTTPS with
// DIR/cert.pem and DIR/key.pem, a self-signed certificate for 127.0.0.1 and
// localhost that the harness makes there if they are missing (-make-cert
// makes them and exits, so a client can be told to trust DIR/cert.pem
// before it starts; compat/tls.sh runs both suites that way).
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/llm"
	"github.com/engram-dev/engram/llmtest"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func run() error {
	chat := flag.String("chat-model", "openai/gpt-4o-mini:128000", "chat model handle engram lists, provider/name:context_window")
	embed := flag.String("embedding-model", "openai/text-embedding-3-small:64", "embedding model handle engram lists, provider/name:dim")
	token := flag.String("token", "", "token engram requires of clients (Authorization: Bearer); empty for none")
	verbose := flag.Bool("v", false, "log the server to stderr")
	tlsDir := flag.String("tls-dir", "", "serve engram over HTTPS with DIR/cert.pem and DIR/key.pem (made if missing)")
	makeCert := flag.Bool("make-cert", false, "make -tls-dir's certificate and exit")
	flag.Parse()
	if *tlsDir != "" {
		if err := ensureCertificate(*tlsDir); err != nil {
			return fmt.Errorf("-tls-dir: %w", err)
		}
	}
	if *makeCert {
		if *tlsDir == "" {
			return errors.New("-make-cert needs -tls-dir")
		}
		return nil
	}

	chatHandle, window, err := splitHandle(*chat)
	if err != nil {
		return fmt.Errorf("-chat-model: %w", err)
	}
	embedHandle, dim, err := splitHandle(*embed)
	if err != nil {
		return fmt.Errorf("-embedding-model: %w", err)
	}

	t := &owner{}
	defer t.cleanup()
	script := llmtest.NewServer(t)
	script.Models = []string{strings.SplitN(chatHandle, "/", 2)[1]}

	script.SetEmbedder(llmtest.HashEmbed(dim))
	modelURL, err := serve(t, modelEndpoint(script))
	if err != nil {
		return err
	}
	controlURL, err := serve(t, control(script))
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "engram-compat-")
	if err != nil {
		return err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := server.DefaultConfig(dir)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Node.NATSAddr = ""
	cfg.Token = *token
	cfg.Logger = logger
	if *tlsDir != "" {
		cfg.TLSCert, cfg.TLSKey = filepath.Join(*tlsDir, "cert.pem"), filepath.Join(*tlsDir, "key.pem")
	}
	cfg.Node.Service.Version = "compat"
	reg := llm.NewRegistry()
	reg.Add("openai", llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-compat", BaseURL: modelURL + "/v1", MaxRetries: -1, Timeout: 30 * time.Second}))
	cfg.Node.Service.Providers = reg
	cfg.Node.Service.Models = []api.Model{chatModel(chatHandle, window)}
	cfg.Node.Service.EmbeddingModels = []api.EmbeddingModel{embeddingModel(embedHandle, dim)}
	cfg.Node.Service.Embed = node.OpenAIEmbedders(modelURL+"/v1", "sk-compat")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	s, err := server.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Close(ctx)
	})

	line, _ := json.Marshal(map[string]string{
		"engram": s.URL, "model": modelURL + "/v1", "control": controlURL, "data_dir": dir,
	})
	fmt.Println(string(line))

	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	return nil
}

// ensureCertificate writes dir/cert.pem and dir/key.pem, a self-signed
// certificate for 127.0.0.1, ::1 and localhost valid for a day, unless both
// exist.
func ensureCertificate(dir string) error {
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(certFile); err == nil {
		if _, err := os.Stat(keyFile); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "engram compat harness"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// owner stands in for the testing.TB that llmtest.NewServer takes: it
// collects the cleanups, which run when the harness exits. NewServer calls
// only Helper and Cleanup; the embedded nil TB makes anything else panic
// loudly rather than pass silently.
type owner struct {
	testing.TB
	mu       sync.Mutex // guards cleanups
	cleanups []func()
}

func (o *owner) Helper() {}

func (o *owner) Cleanup(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cleanups = append(o.cleanups, f)
}

// cleanup runs the cleanups, last registered first.
func (o *owner) cleanup() {
	o.mu.Lock()
	fs := o.cleanups
	o.cleanups = nil
	o.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// serve runs h on a random loopback port until the owner's cleanup and
// returns its base URL.
func serve(o *owner, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	o.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// modelEndpoint forwards everything to the scripted model (completions,
// model listings, embeddings), flushing each streamed chunk at once.
func modelEndpoint(script *llmtest.Server) http.Handler {
	target, _ := url.Parse(script.AnthropicURL) // the server's root; OpenAI paths carry /v1
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	return proxy
}

// control serves the endpoint through which tests script the model.
func control(script *llmtest.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /script", func(w http.ResponseWriter, r *http.Request) {
		var steps []llmtest.Step
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&steps); err != nil {
			http.Error(w, "want a JSON array of llmtest steps: "+err.Error(), http.StatusBadRequest)
			return
		}
		script.Push(steps...)
		writeJSON(w, map[string]int{"pending": script.Pending()})
	})
	mux.HandleFunc("GET /pending", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int{"pending": script.Pending()})
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		var out []llmtest.Recorded
		for _, rec := range script.Requests() {
			if rec.Method == http.MethodPost { // completions; not model listings
				out = append(out, rec)
			}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /embeddings", func(w http.ResponseWriter, r *http.Request) {
		reqs := script.EmbeddingRequests()
		inputs := 0
		for _, r := range reqs {
			inputs += len(r.Input)
		}
		writeJSON(w, map[string]int{"requests": len(reqs), "inputs": inputs})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// splitHandle splits "provider/name:n" into the handle and n.
func splitHandle(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q: want provider/name:number", s)
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n <= 0 {
		return "", 0, fmt.Errorf("%q: bad number", s)
	}
	handle := s[:i]
	if p, m, ok := strings.Cut(handle, "/"); !ok || p == "" || m == "" {
		return "", 0, fmt.Errorf("%q: want provider/name", s)
	}
	return handle, n, nil
}

// chatModel and embeddingModel describe the handles as engram's command
// line does for --model and --embedding-model.
func chatModel(handle string, window int) api.Model {
	provider, name, _ := strings.Cut(handle, "/")
	h, category := handle, "base"
	return api.Model{
		LLMConfig: api.LLMConfig{Model: name, ModelEndpointType: provider, ContextWindow: window, Handle: &h, ProviderName: &provider, ProviderCategory: &category},
		Name:      name, DisplayName: name, ProviderType: provider, MaxContextWindow: window, ModelType: "llm",
	}
}

func embeddingModel(handle string, dim int) api.EmbeddingModel {
	provider, name, _ := strings.Cut(handle, "/")
	h, chunk := handle, 300
	return api.EmbeddingModel{
		EmbeddingConfig: api.EmbeddingConfig{EmbeddingEndpointType: provider, EmbeddingModel: name, EmbeddingDim: dim, EmbeddingChunkSize: &chunk, Handle: &h, BatchSize: 32},
		Name:            name, DisplayName: name, ProviderName: provider, ProviderType: provider, ModelType: "embedding",
	}
}

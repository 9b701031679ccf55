// Package local is the in-process implementation of engram's Go client: a
// client.Client that runs an engram node (the event log on embedded NATS
// JetStream, the Bleve index) in the calling process, as the seed's
// LocalClient runs a server. It is apart from package client so that a
// program that only talks to a server over REST does not link the node.
//
// Its tests are in client/local_test.go and client/gotool_test.go: they share
// package client's conformance suite, which runs this client and the REST one
// against the same cases.
package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/client"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// Client is a client.Client over a node that runs in the process. Only one
// process may use a data directory at a time. Its Close stops the node: it
// stops applying events, writes a snapshot and stops the embedded NATS
// server; it is safe to call more than once.
type Client struct {
	client.Client // the seed's methods, over the node's service
	node          *node.Node
}

var _ client.Client = (*Client)(nil)

// closeTimeout bounds how long Close waits for the node's final snapshot.
const closeTimeout = 30 * time.Second

// Option configures New or CreateClient.
type Option func(*options)

type options struct {
	dataDir    string
	nodeConfig func(*node.Config)
	client     []client.Option
}

// WithNodeConfig lets New adjust the node's configuration (models, fsync,
// logger) after node.DefaultConfig(dataDir) fills it in.
func WithNodeConfig(fn func(*node.Config)) Option { return func(o *options) { o.nodeConfig = fn } }

// WithDataDir sets where CreateClient's node stores its data when it runs
// one. The default is ~/.engram.
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithClientOptions passes options of package client on to the client being
// built (such as client.WithHTTPClient, when CreateClient builds a REST
// client).
func WithClientOptions(opts ...client.Option) Option {
	return func(o *options) { o.client = append(o.client, opts...) }
}

func collectOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// New starts a node over dataDir (created if missing) and returns a client
// of it. The node's configuration is node.DefaultConfig(dataDir), adjusted
// by WithNodeConfig. The caller must Close the client to stop the node.
func New(ctx context.Context, dataDir string, opts ...Option) (*Client, error) {
	o := collectOptions(opts)
	cfg := node.DefaultConfig(dataDir)
	if o.nodeConfig != nil {
		o.nodeConfig(&cfg)
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("new local client: %w", err)
	}
	return &Client{Client: client.FromBackend(backend{svc: n.Service, node: n}, o.client...), node: n}, nil
}

// CreateClient returns a client as the seed's create_client does: a REST
// client of the server at baseURL when it is not "", and otherwise a local
// client running a node over WithDataDir (default ~/.engram). The caller
// must Close it. A program that never runs a node should call
// client.NewREST instead, and not link this package.
func CreateClient(ctx context.Context, baseURL, token string, opts ...Option) (client.Client, error) {
	o := collectOptions(opts)
	if baseURL != "" {
		return client.NewREST(baseURL, token, o.client...), nil
	}
	dir := o.dataDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("new client: no data directory given and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".engram")
	}
	return New(ctx, dir, opts...)
}

// backend is the client.Backend that calls the node's service directly.
// Service errors already carry fault kinds, so they pass through unchanged.
type backend struct {
	svc  *service.Service
	node *node.Node
}

var _ client.Backend = backend{}

func (l backend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	l.node.Close(ctx)
	return nil
}

func (l backend) CreateAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error) {
	return l.svc.CreateAgent(ctx, req)
}

func (l backend) GetAgent(ctx context.Context, id string) (api.AgentState, error) {
	return l.svc.GetAgent(ctx, id)
}

func (l backend) ListAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error) {
	return l.svc.ListAgents(ctx, f, p)
}

func (l backend) UpdateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error) {
	return l.svc.UpdateAgent(ctx, id, req)
}

func (l backend) DeleteAgent(ctx context.Context, id string) error { return l.svc.DeleteAgent(ctx, id) }

func (l backend) CoreMemory(ctx context.Context, agentID string) (api.Memory, error) {
	return l.svc.GetCoreMemory(ctx, agentID)
}

func (l backend) UpdateCoreBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error) {
	return l.svc.UpdateAgentBlock(ctx, agentID, label, req)
}

func (l backend) AttachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return l.svc.AttachBlock(ctx, agentID, blockID)
}

func (l backend) DetachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return l.svc.DetachBlock(ctx, agentID, blockID)
}

func (l backend) AttachTool(ctx context.Context, agentID, toolID string) error {
	_, err := l.svc.AttachTool(ctx, agentID, toolID)
	return err
}

func (l backend) DetachTool(ctx context.Context, agentID, toolID string) error {
	_, err := l.svc.DetachTool(ctx, agentID, toolID)
	return err
}

func (l backend) AttachSource(ctx context.Context, agentID, sourceID string) error {
	_, err := l.svc.AttachSource(ctx, agentID, sourceID)
	return err
}

func (l backend) DetachSource(ctx context.Context, agentID, sourceID string) error {
	_, err := l.svc.DetachSource(ctx, agentID, sourceID)
	return err
}

func (l backend) AgentSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error) {
	return l.svc.ListAttachedSources(ctx, agentID, p)
}

func (l backend) InsertPassage(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error) {
	return l.svc.InsertArchival(ctx, agentID, req)
}

func (l backend) ListPassages(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error) {
	return l.svc.ListArchival(ctx, agentID, p)
}

func (l backend) DeletePassage(ctx context.Context, agentID, passageID string) error {
	return l.svc.DeleteArchival(ctx, agentID, passageID)
}

func (l backend) ArchivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error) {
	return l.svc.ArchivalSummary(ctx, agentID)
}

func (l backend) SearchPassages(ctx context.Context, agentID string, q api.ArchivalQuery) (api.ArchivalSearch, error) {
	return l.svc.SearchArchival(ctx, agentID, q)
}

func (l backend) RecallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error) {
	return l.svc.RecallSummary(ctx, agentID)
}

func (l backend) ListMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error) {
	return l.svc.ListMessages(ctx, agentID, p)
}

func (l backend) Send(ctx context.Context, agentID string, req api.SendMessage) (api.LettaResponse, error) {
	inputs, err := service.Inputs(req)
	if err != nil {
		return api.LettaResponse{}, err
	}
	return l.svc.SendMessage(ctx, agentID, inputs, service.SendOptions{UseAssistantMessage: true})
}

// Stream runs the send on its own goroutine and hands its messages to emit
// on the caller's; the goroutine is waited for before Stream returns.
func (l backend) Stream(ctx context.Context, agentID string, req api.SendMessage, tokens bool, emit func(api.LettaMessage) bool) error {
	inputs, err := service.Inputs(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan api.LettaMessage, 64)
	opts := service.SendOptions{UseAssistantMessage: true}
	opts.Stream(tokens, func(m api.LettaMessage) {
		select {
		case ch <- m:
		case <-ctx.Done(): // the caller stopped listening
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := l.svc.SendMessage(ctx, agentID, inputs, opts)
		done <- err
	}()
	for {
		select {
		case m := <-ch:
			if !emit(m) {
				cancel()
				<-done
				return nil
			}
		case err := <-done:
			for { // what the run sent before it returned
				select {
				case m := <-ch:
					if !emit(m) {
						return nil
					}
				default:
					return err
				}
			}
		}
	}
}

func (l backend) ContextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error) {
	return l.svc.ListContextMessages(ctx, agentID)
}

func (l backend) RunCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error) {
	return l.svc.RunCommand(ctx, agentID, command)
}

func (l backend) CreateBlock(ctx context.Context, req api.CreateBlock) (api.Block, error) {
	return l.svc.CreateBlock(ctx, req)
}

func (l backend) GetBlock(ctx context.Context, id string) (api.Block, error) {
	return l.svc.GetBlock(ctx, id)
}

func (l backend) ListBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error) {
	return l.svc.ListBlocks(ctx, f, p)
}

func (l backend) UpdateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error) {
	return l.svc.UpdateBlock(ctx, id, req)
}

func (l backend) DeleteBlock(ctx context.Context, id string) error { return l.svc.DeleteBlock(ctx, id) }

func (l backend) CreateTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error) {
	return l.svc.CreateTool(ctx, req, upsert)
}

func (l backend) GetTool(ctx context.Context, id string) (api.Tool, error) {
	return l.svc.GetTool(ctx, id)
}

func (l backend) ListTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error) {
	return l.svc.ListTools(ctx, name, p)
}

func (l backend) UpdateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error) {
	return l.svc.UpdateTool(ctx, id, req)
}

func (l backend) DeleteTool(ctx context.Context, id string) error { return l.svc.DeleteTool(ctx, id) }

func (l backend) CreateSource(ctx context.Context, req api.CreateSource) (api.Source, error) {
	return l.svc.CreateSource(ctx, req)
}

func (l backend) GetSource(ctx context.Context, id string) (api.Source, error) {
	return l.svc.GetSource(ctx, id)
}

func (l backend) ListSources(ctx context.Context, name string, p api.Page) ([]api.Source, error) {
	return l.svc.ListSources(ctx, name, p)
}

func (l backend) UpdateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error) {
	return l.svc.UpdateSource(ctx, id, req)
}

func (l backend) DeleteSource(ctx context.Context, id string) error {
	return l.svc.DeleteSource(ctx, id)
}

func (l backend) GetJob(ctx context.Context, id string) (api.Job, error) {
	return l.svc.GetJob(ctx, id)
}

func (l backend) LoadFiles(ctx context.Context, sourceID string, files []api.Upload) ([]api.Job, []api.Refusal, error) {
	res, err := l.svc.LoadFiles(ctx, sourceID, files, service.DupSuffix)
	if err != nil || res.Job.ID == "" {
		return nil, nil, err
	}
	return []api.Job{res.Job}, nil, nil // the job reports the refusals
}

func (l backend) ListFiles(ctx context.Context, sourceID string, p api.Page) ([]api.FileMetadata, error) {
	return l.svc.ListFiles(ctx, sourceID, p, false)
}

func (l backend) DeleteFile(ctx context.Context, sourceID, fileID string) error {
	return l.svc.DeleteFile(ctx, sourceID, fileID)
}

func (l backend) SourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error) {
	return l.svc.ListSourcePassages(ctx, sourceID, p)
}

func (l backend) ListJobs(ctx context.Context, p api.Page) ([]api.Job, error) {
	return l.svc.ListJobs(ctx, "", p)
}

func (l backend) ListModels(ctx context.Context) ([]api.Model, error) {
	return l.svc.ListModels(ctx), nil
}

func (l backend) ListEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error) {
	return l.svc.ListEmbeddingModels(ctx), nil
}

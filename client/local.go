package client

import (
	"context"
	"fmt"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/node"
	"github.com/engram-dev/engram/service"
)

// Local is a Client that runs an engram node in the process, as the seed's
// LocalClient runs a server. Only one process may use a data directory at a
// time.
type Local struct {
	core
	node *node.Node
}

var _ Client = (*Local)(nil)

// closeTimeout bounds how long Close waits for the node's final snapshot.
const closeTimeout = 30 * time.Second

// NewLocal starts a node over dataDir (created if missing) and returns a
// client of it. The node's configuration is node.DefaultConfig(dataDir),
// adjusted by WithNodeConfig; other options are ignored. The caller must
// Close the client to stop the node.
func NewLocal(ctx context.Context, dataDir string, opts ...Option) (*Local, error) {
	o := collectOptions(opts)
	cfg := node.DefaultConfig(dataDir)
	if o.nodeConfig != nil {
		o.nodeConfig(&cfg)
	}
	n, err := node.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("new local client: %w", err)
	}
	return &Local{core: core{b: local{n.Service}, pageSize: o.pageSize}, node: n}, nil
}

// Close stops the node: it stops applying events, writes a snapshot and
// stops the embedded NATS server. It is safe to call more than once.
func (l *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	l.node.Close(ctx)
	return nil
}

// local is the backend that calls the service directly. Service errors
// already carry fault kinds, so they pass through unchanged.
type local struct {
	svc *service.Service
}

func (l local) createAgent(ctx context.Context, req api.CreateAgent) (api.AgentState, error) {
	return l.svc.CreateAgent(ctx, req)
}

func (l local) getAgent(ctx context.Context, id string) (api.AgentState, error) {
	return l.svc.GetAgent(ctx, id)
}

func (l local) listAgents(ctx context.Context, f api.AgentFilter, p api.Page) ([]api.AgentState, error) {
	return l.svc.ListAgents(ctx, f, p)
}

func (l local) updateAgent(ctx context.Context, id string, req api.UpdateAgent) (api.AgentState, error) {
	return l.svc.UpdateAgent(ctx, id, req)
}

func (l local) deleteAgent(ctx context.Context, id string) error { return l.svc.DeleteAgent(ctx, id) }

func (l local) coreMemory(ctx context.Context, agentID string) (api.Memory, error) {
	return l.svc.GetCoreMemory(ctx, agentID)
}

func (l local) updateCoreBlock(ctx context.Context, agentID, label string, req api.UpdateBlock) (api.Block, error) {
	return l.svc.UpdateAgentBlock(ctx, agentID, label, req)
}

func (l local) attachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return l.svc.AttachBlock(ctx, agentID, blockID)
}

func (l local) detachBlock(ctx context.Context, agentID, blockID string) (api.AgentState, error) {
	return l.svc.DetachBlock(ctx, agentID, blockID)
}

func (l local) attachTool(ctx context.Context, agentID, toolID string) error {
	_, err := l.svc.AttachTool(ctx, agentID, toolID)
	return err
}

func (l local) detachTool(ctx context.Context, agentID, toolID string) error {
	_, err := l.svc.DetachTool(ctx, agentID, toolID)
	return err
}

func (l local) attachSource(ctx context.Context, agentID, sourceID string) error {
	_, err := l.svc.AttachSource(ctx, agentID, sourceID)
	return err
}

func (l local) detachSource(ctx context.Context, agentID, sourceID string) error {
	_, err := l.svc.DetachSource(ctx, agentID, sourceID)
	return err
}

func (l local) agentSources(ctx context.Context, agentID string, p api.Page) ([]api.Source, error) {
	return l.svc.ListAttachedSources(ctx, agentID, p)
}

func (l local) insertPassage(ctx context.Context, agentID string, req api.CreatePassage) ([]api.Passage, error) {
	return l.svc.InsertArchival(ctx, agentID, req)
}

func (l local) listPassages(ctx context.Context, agentID string, p api.Page) ([]api.Passage, error) {
	return l.svc.ListArchival(ctx, agentID, p)
}

func (l local) deletePassage(ctx context.Context, agentID, passageID string) error {
	return l.svc.DeleteArchival(ctx, agentID, passageID)
}

func (l local) archivalSummary(ctx context.Context, agentID string) (api.ArchivalMemorySummary, error) {
	return l.svc.ArchivalSummary(ctx, agentID)
}

func (l local) searchPassages(ctx context.Context, agentID string, q service.ArchivalQuery) (api.ArchivalSearch, error) {
	return l.svc.SearchArchival(ctx, agentID, q)
}

func (l local) recallSummary(ctx context.Context, agentID string) (api.RecallMemorySummary, error) {
	return l.svc.RecallSummary(ctx, agentID)
}

func (l local) listMessages(ctx context.Context, agentID string, p api.Page) ([]api.LettaMessage, error) {
	return l.svc.ListMessages(ctx, agentID, p)
}

func (l local) send(ctx context.Context, agentID string, req api.SendMessage) (api.LettaResponse, error) {
	inputs, err := service.Inputs(req)
	if err != nil {
		return api.LettaResponse{}, err
	}
	return l.svc.SendMessage(ctx, agentID, inputs, service.SendOptions{UseAssistantMessage: true})
}

// stream runs the send on its own goroutine and hands its messages to emit
// on the caller's; the goroutine is waited for before stream returns.
func (l local) stream(ctx context.Context, agentID string, req api.SendMessage, tokens bool, emit func(api.LettaMessage) bool) error {
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

func (l local) contextMessages(ctx context.Context, agentID string) ([]api.LettaMessage, error) {
	return l.svc.ListContextMessages(ctx, agentID)
}

func (l local) runCommand(ctx context.Context, agentID, command string) (api.LettaResponse, error) {
	return l.svc.RunCommand(ctx, agentID, command)
}

func (l local) createBlock(ctx context.Context, req api.CreateBlock) (api.Block, error) {
	return l.svc.CreateBlock(ctx, req)
}

func (l local) getBlock(ctx context.Context, id string) (api.Block, error) {
	return l.svc.GetBlock(ctx, id)
}

func (l local) listBlocks(ctx context.Context, f api.BlockFilter, p api.Page) ([]api.Block, error) {
	return l.svc.ListBlocks(ctx, f, p)
}

func (l local) updateBlock(ctx context.Context, id string, req api.UpdateBlock) (api.Block, error) {
	return l.svc.UpdateBlock(ctx, id, req)
}

func (l local) deleteBlock(ctx context.Context, id string) error { return l.svc.DeleteBlock(ctx, id) }

func (l local) createTool(ctx context.Context, req api.CreateTool, upsert bool) (api.Tool, error) {
	return l.svc.CreateTool(ctx, req, upsert)
}

func (l local) getTool(ctx context.Context, id string) (api.Tool, error) {
	return l.svc.GetTool(ctx, id)
}

func (l local) listTools(ctx context.Context, name string, p api.Page) ([]api.Tool, error) {
	return l.svc.ListTools(ctx, name, p)
}

func (l local) updateTool(ctx context.Context, id string, req api.UpdateTool) (api.Tool, error) {
	return l.svc.UpdateTool(ctx, id, req)
}

func (l local) deleteTool(ctx context.Context, id string) error { return l.svc.DeleteTool(ctx, id) }

func (l local) createSource(ctx context.Context, req api.CreateSource) (api.Source, error) {
	return l.svc.CreateSource(ctx, req)
}

func (l local) getSource(ctx context.Context, id string) (api.Source, error) {
	return l.svc.GetSource(ctx, id)
}

func (l local) listSources(ctx context.Context, name string, p api.Page) ([]api.Source, error) {
	return l.svc.ListSources(ctx, name, p)
}

func (l local) updateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error) {
	return l.svc.UpdateSource(ctx, id, req)
}

func (l local) deleteSource(ctx context.Context, id string) error { return l.svc.DeleteSource(ctx, id) }

func (l local) getJob(ctx context.Context, id string) (api.Job, error) { return l.svc.GetJob(ctx, id) }

func (l local) loadFiles(ctx context.Context, sourceID string, files []service.Upload) ([]api.Job, []service.Refusal, error) {
	res, err := l.svc.LoadFiles(ctx, sourceID, files, service.DupSuffix)
	if err != nil || res.Job.ID == "" {
		return nil, nil, err
	}
	return []api.Job{res.Job}, nil, nil // the job reports the refusals
}

func (l local) listFiles(ctx context.Context, sourceID string, p api.Page) ([]api.FileMetadata, error) {
	return l.svc.ListFiles(ctx, sourceID, p, false)
}

func (l local) deleteFile(ctx context.Context, sourceID, fileID string) error {
	return l.svc.DeleteFile(ctx, sourceID, fileID)
}

func (l local) sourcePassages(ctx context.Context, sourceID string, p api.Page) ([]api.Passage, error) {
	return l.svc.ListSourcePassages(ctx, sourceID, p)
}

func (l local) listJobs(ctx context.Context, p api.Page) ([]api.Job, error) {
	return l.svc.ListJobs(ctx, "", p)
}

func (l local) listModels(ctx context.Context) ([]api.Model, error) {
	return l.svc.ListModels(ctx), nil
}

func (l local) listEmbeddingModels(ctx context.Context) ([]api.EmbeddingModel, error) {
	return l.svc.ListEmbeddingModels(ctx), nil
}

package node

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/bus"
	"github.com/engram-dev/engram/verify"
)

// openSealer loads the log's sealing key from the data directory, making
// it on first start.
func openSealer(dataDir string, logger *slog.Logger) (*bus.Sealer, error) {
	path := filepath.Join(dataDir, verify.KeyFile)
	key, created, err := verify.LoadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("made the log's sealing key: every event from now on is sealed; keep a copy of the file, without it the log cannot be verified", "file", path, "key_id", sealer.KeyID())
	}
	return sealer, nil
}

// checkpoint starts the log's checkpointer, which runs until life ends.
func (n *Node) checkpoint(life context.Context, cfg Config) {
	cc := cfg.Checkpoints
	cc.HeadFile = filepath.Join(cfg.DataDir, verify.HeadFile)
	cc.Logger = n.log.With("component", "checkpoints")
	c := verify.NewCheckpointer(n.Log, cc)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := c.Run(life); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("log checkpoints stopped", "err", err)
		}
	}()
}

// logVerifier verifies the node's log with its own key and head file.
type logVerifier struct {
	log  *bus.Log
	head string
}

func (v logVerifier) VerifyLog(ctx context.Context) (api.LogVerification, error) {
	head, err := verify.ReadHead(v.head)
	if err != nil {
		return api.LogVerification{}, err
	}
	return verify.Log(ctx, v.log, v.log.Sealer(), head)
}

// VerifyDir verifies the log stored in a node's data directory, with the
// node stopped: it takes the directory's lock, starts JetStream on the
// store without a listener, and walks the log with the key and head file
// found there. Without the key file the log cannot be verified.
func VerifyDir(ctx context.Context, dataDir string) (api.LogVerification, error) {
	key, err := verify.LoadKey(filepath.Join(dataDir, verify.KeyFile))
	if err != nil {
		return api.LogVerification{}, err
	}
	sealer, err := bus.NewSealer(key)
	if err != nil {
		return api.LogVerification{}, err
	}
	head, err := verify.ReadHead(filepath.Join(dataDir, verify.HeadFile))
	if err != nil {
		return api.LogVerification{}, err
	}
	lock, err := lockDir(dataDir)
	if err != nil {
		return api.LogVerification{}, err
	}
	defer lock.Close()
	ns, err := bus.StartServer(ctx, bus.Config{StoreDir: filepath.Join(dataDir, "nats"), Name: "engram-verify", SyncAlways: true})
	if err != nil {
		return api.LogVerification{}, err
	}
	defer ns.Close()
	l, err := bus.OpenLog(ctx, ns, bus.LogConfig{Sealer: sealer})
	if err != nil {
		return api.LogVerification{}, err
	}
	return verify.Log(ctx, l, sealer, head)
}

package service

import (
	"context"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
)

// VerifyLog walks the log and checks its seals and their order: it names
// the first message that engram did not write as it stands, or reports
// how much was verified. Reading a large log takes seconds.
func (s *Service) VerifyLog(ctx context.Context) (api.LogVerification, error) {
	if s.cfg.Verifier == nil {
		return api.LogVerification{}, fault.E(fault.Unavailable, "this server does not verify its log")
	}
	return s.cfg.Verifier.VerifyLog(ctx)
}

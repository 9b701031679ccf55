package service

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
	"github.com/engram-dev/engram/search"
)

// indexWait bounds how long a search waits for the index to hold the
// caller's own writes before it answers from what is indexed.
const indexWait = 5 * time.Second

// archivalOwners are the owners of the passages an agent's archival search
// sees: the agent's own, and those of the sources attached to it (attached,
// not copied: one source serves every agent it is attached to).
func archivalOwners(st *projections.State, a *projections.Agent) []string {
	owners := []string{string(a.ID)}
	for _, id := range a.SourceIDs {
		if st.Sources[id] != nil {
			owners = append(owners, string(id))
		}
	}
	return owners
}

// archivalCount counts the passages an agent's archival search sees.
func archivalCount(st *projections.State, a *projections.Agent) int {
	n := len(a.Passages)
	for _, id := range a.SourceIDs {
		if src := st.Sources[id]; src != nil {
			n += len(src.Passages)
		}
	}
	return n
}

// searchIndex runs q once the index holds everything the projections do,
// so a search sees the caller's own writes.
func (s *Service) searchIndex(ctx context.Context, q search.Query) (search.Result, error) {
	if s.cfg.Search == nil {
		return search.Result{}, fault.E(fault.Unavailable, "this server has no search index")
	}
	wctx, cancel := context.WithTimeout(ctx, indexWait)
	err := s.cfg.Search.WaitFor(wctx, s.proj.Applied())
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return search.Result{}, fault.Wrap(fault.Unavailable, ctx.Err(), "search cancelled")
		}
		s.cfg.Logger.Warn("search index is behind the log; answering from what it holds", "err", err)
	}
	res, err := s.cfg.Search.Search(ctx, q)
	if err != nil {
		return search.Result{}, fault.Wrap(fault.Unavailable, err, "the search index failed")
	}
	return res, nil
}

// WaitIndexed waits until the search index holds every event the read
// models hold.
func (s *Service) WaitIndexed(ctx context.Context) error {
	if s.cfg.Search == nil {
		return nil
	}
	return s.cfg.Search.WaitFor(ctx, s.proj.Applied())
}

// passageHit is one passage a search found.
type passageHit struct {
	ID    string
	Text  string
	Tags  []string
	Time  time.Time
	Score float64
}

// ArchivalQuery is a search of an agent's archival memory. It is defined in
// api so that the Go client can name it without linking the service.
type ArchivalQuery = api.ArchivalQuery

// searchArchival ranks the passages an agent sees: BM25 over their words,
// fused with vector similarity when the agent's embedding model is served.
func (s *Service) searchArchival(ctx context.Context, agentID string, aq ArchivalQuery) ([]passageHit, int, error) {
	var (
		owners []string
		embCfg json.RawMessage
		err    error
	)
	s.read(func(st *projections.State) {
		var a *projections.Agent
		if a, err = s.lookupAgent(st, agentID); err == nil {
			owners, embCfg = archivalOwners(st, a), a.EmbeddingConfig
		}
	})
	if err != nil {
		return nil, 0, err
	}
	q := search.Query{
		Owners: owners, Kind: search.KindPassage, Text: aq.Query, Tags: aq.Tags, TagMatch: aq.TagMatch,
		After: aq.After, Before: aq.Before, Offset: aq.Offset, Limit: aq.Limit,
	}
	if strings.TrimSpace(aq.Query) != "" {
		vecs, err := s.embed(ctx, embCfg, []string{aq.Query})
		if err != nil {
			s.cfg.Logger.Warn("embedding a search query failed; searching by words alone", "agent", agentID, "err", err)
		} else if vecs != nil {
			q.Vector = vecs[0]
		}
	}
	res, err := s.searchIndex(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]passageHit, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = passageHit{ID: h.ID, Text: h.Text, Tags: h.Tags, Time: h.Time, Score: h.Score}
	}
	return out, res.Total, nil
}

// SearchArchival searches an agent's archival memory (the passages it
// inserted and those of its attached sources).
func (s *Service) SearchArchival(ctx context.Context, agentID string, aq ArchivalQuery) (api.ArchivalSearch, error) {
	if strings.TrimSpace(aq.Query) == "" {
		return api.ArchivalSearch{}, unprocessable("query must not be empty")
	}
	if aq.TagMatch != "" && aq.TagMatch != "any" && aq.TagMatch != "all" {
		return api.ArchivalSearch{}, unprocessable("tag_match_mode must be any or all, not %q", aq.TagMatch)
	}
	if aq.Limit < 0 || aq.Limit > search.MaxLimit {
		return api.ArchivalSearch{}, unprocessable("top_k must be in 1..%d", search.MaxLimit)
	}
	empty := !aq.After.IsZero() && !aq.Before.IsZero() && !aq.After.Before(aq.Before)
	if empty && aq.After.After(aq.Before) {
		return api.ArchivalSearch{}, unprocessable("start_datetime must be before end_datetime")
	}
	var hits []passageHit
	if !empty { // start_datetime = end_datetime matches nothing
		var err error
		if hits, _, err = s.searchArchival(ctx, agentID, aq); err != nil {
			return api.ArchivalSearch{}, err
		}
	} else {
		var err error
		s.read(func(st *projections.State) { _, err = s.lookupAgent(st, agentID) })
		if err != nil {
			return api.ArchivalSearch{}, err
		}
	}
	out := api.ArchivalSearch{Results: make([]api.ArchivalResult, len(hits)), Count: len(hits)}
	for i, h := range hits {
		tags := h.Tags
		if tags == nil {
			tags = []string{}
		}
		out.Results[i] = api.ArchivalResult{ID: h.ID, Content: h.Text, Timestamp: h.Time.UTC().Format(time.RFC3339Nano), Tags: tags}
	}
	return out, nil
}

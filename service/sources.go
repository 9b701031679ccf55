package service

import (
	"context"
	"slices"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/projections"
)

// Source writes check the version of the whole source kind, so names stay
// unique.

func sourceAgg(id string) events.Aggregate { return events.Aggregate{Kind: events.KindSource, ID: id} }
func jobAgg(id string) events.Aggregate    { return events.Aggregate{Kind: events.KindJob, ID: id} }

func lookupSource(st *projections.State, id string) (*projections.Source, error) {
	if err := events.CheckID(events.PrefixSource, id); err != nil {
		return nil, unprocessable("%v", err)
	}
	src := st.Sources[events.SourceID(id)]
	if src == nil {
		return nil, notFound("Source with id %s not found", id)
	}
	return src, nil
}

// sourceNamed finds org's source of a name (names are unique within an
// organization).
func sourceNamed(st *projections.State, org, name string) *projections.Source {
	for _, src := range st.Sources {
		if src.Name == name && src.Org == org {
			return src
		}
	}
	return nil
}

// CreateSource creates a data source. Names are unique.
func (s *Service) CreateSource(ctx context.Context, req api.CreateSource) (api.Source, error) {
	if err := checkName("source", req.Name); err != nil {
		return api.Source{}, err
	}
	e := &events.SourceCreated{Name: req.Name}
	if req.Description != nil {
		if err := checkText("description", *req.Description, MaxDescLen); err != nil {
			return api.Source{}, err
		}
		e.Description = *req.Description
	}
	if req.Instructions != nil {
		if err := checkText("instructions", *req.Instructions, MaxDescLen); err != nil {
			return api.Source{}, err
		}
		e.Instructions = *req.Instructions
	}
	var err error
	if e.Metadata, err = firstObject("metadata", req.Metadata, req.OldMetadata); err != nil {
		return api.Source{}, err
	}
	if e.EmbeddingConfig, err = s.resolveEmbedding(req.Embedding, req.EmbeddingConfig); err != nil {
		return api.Source{}, err
	}
	if e.EmbeddingConfig == nil {
		e.EmbeddingConfig = s.defaultEmbedding()
	}
	c := s.command(ctx, "create_source", "")
	id := c.idAt(events.PrefixSource, 1) // what decide's first newID returns (keyed commands)
	err = s.exec(ctx, c, sourceAgg(id), func(st *projections.State, d *decision) error {
		id = c.newID(events.PrefixSource)
		if other := sourceNamed(st, c.org, req.Name); other != nil {
			return invalid("Source with name %s already exists", req.Name)
		}
		ev := *e
		ev.ID = events.SourceID(id)
		ev.OrganizationID = c.org
		d.expectKind(st, sourceAgg(id))
		d.add(c, sourceAgg(id), &ev)
		return nil
	})
	if err != nil {
		return api.Source{}, err
	}
	return s.GetSource(ctx, id)
}

// GetSource returns a source.
func (s *Service) GetSource(ctx context.Context, id string) (api.Source, error) {
	var (
		out api.Source
		err error
	)
	s.read(func(st *projections.State) {
		var src *projections.Source
		if src, err = lookupSource(st, id); err == nil {
			out = sourceView(src)
		}
	})
	return out, err
}

// GetSourceByName returns the source with a name.
func (s *Service) GetSourceByName(ctx context.Context, name string) (api.Source, error) {
	var (
		out   api.Source
		found bool
	)
	s.read(func(st *projections.State) {
		if src := sourceNamed(st, orgOf(ctx), name); src != nil {
			out, found = sourceView(src), true
		}
	})
	if !found {
		return out, notFound("Source with name %q not found", name)
	}
	return out, nil
}

// ListSources lists sources, oldest first unless the page says otherwise.
func (s *Service) ListSources(ctx context.Context, name string, p api.Page) ([]api.Source, error) {
	var (
		out []api.Source
		err error
	)
	s.read(func(st *projections.State) {
		list := make([]*projections.Source, 0, len(st.Sources))
		org := orgOf(ctx)
		for _, src := range st.Sources {
			if src.Org == org && (name == "" || src.Name == name) {
				list = append(list, src)
			}
		}
		slices.SortFunc(list, func(x, y *projections.Source) int {
			return projections.ByCreation(x.Created, x.CreatedPart, y.Created, y.CreatedPart)
		})
		list, err = page(list, func(x *projections.Source) string { return string(x.ID) }, p, "asc", 50, "Source")
		if err != nil {
			return
		}
		out = make([]api.Source, len(list))
		for i, src := range list {
			out[i] = sourceView(src)
		}
	})
	return out, err
}

// UpdateSource changes the fields the request sets.
func (s *Service) UpdateSource(ctx context.Context, id string, req api.UpdateSource) (api.Source, error) {
	e := &events.SourceUpdated{Name: req.Name, Description: req.Description, Instructions: req.Instructions}
	if req.Name != nil {
		if err := checkName("source", *req.Name); err != nil {
			return api.Source{}, err
		}
	}
	for what, v := range map[string]*string{"description": req.Description, "instructions": req.Instructions} {
		if v != nil {
			if err := checkText(what, *v, MaxDescLen); err != nil {
				return api.Source{}, err
			}
		}
	}
	var err error
	if e.Metadata, err = firstObject("metadata", req.Metadata, req.OldMetadata); err != nil {
		return api.Source{}, err
	}
	if e.EmbeddingConfig, err = embeddingFrom(req.EmbeddingConfig); err != nil {
		return api.Source{}, err
	}
	c := s.command(ctx, "update_source", id)
	err = s.exec(ctx, c, sourceAgg(id), func(st *projections.State, d *decision) error {
		src, err := lookupSource(st, id)
		if err != nil {
			return err
		}
		if e.Name != nil && *e.Name != src.Name && sourceNamed(st, src.Org, *e.Name) != nil {
			return invalid("Source with name %s already exists", *e.Name)
		}
		d.expectKind(st, sourceAgg(id))
		d.add(c, sourceAgg(id), e)
		return nil
	})
	if err != nil {
		return api.Source{}, err
	}
	return s.GetSource(ctx, id)
}

// DeleteSource deletes a source; it is detached from every agent.
func (s *Service) DeleteSource(ctx context.Context, id string) error {
	c := s.command(ctx, "delete_source", id)
	return s.exec(ctx, c, sourceAgg(id), func(st *projections.State, d *decision) error {
		if _, err := lookupSource(st, id); err != nil {
			return err
		}
		d.expectKind(st, sourceAgg(id))
		d.add(c, sourceAgg(id), &events.SourceDeleted{})
		return nil
	})
}

// GetJob returns a job.
func (s *Service) GetJob(ctx context.Context, id string) (api.Job, error) {
	var (
		out api.Job
		err error
	)
	s.read(func(st *projections.State) {
		if e := events.CheckID(events.PrefixJob, id); e != nil {
			err = unprocessable("%v", e)
			return
		}
		j := st.Jobs[events.JobID(id)]
		if j == nil {
			err = notFound("Job with id %s not found", id)
			return
		}
		out = jobView(j)
	})
	return out, err
}

// ListJobs lists jobs, newest first, optionally only those of one source.
func (s *Service) ListJobs(ctx context.Context, sourceID string, p api.Page) ([]api.Job, error) {
	var (
		out []api.Job
		err error
	)
	s.read(func(st *projections.State) {
		list := make([]*projections.Job, 0, len(st.Jobs))
		org := orgOf(ctx)
		for _, j := range st.Jobs {
			if j.Org == org && (sourceID == "" || string(j.SourceID) == sourceID) {
				list = append(list, j)
			}
		}
		slices.SortFunc(list, func(x, y *projections.Job) int {
			return projections.ByCreation(x.Created, x.CreatedPart, y.Created, y.CreatedPart)
		})
		list, err = page(list, func(j *projections.Job) string { return string(j.ID) }, p, "desc", 100, "Job")
		if err != nil {
			return
		}
		out = make([]api.Job, len(list))
		for i, j := range list {
			out[i] = jobView(j)
		}
	})
	return out, err
}

// ListModels lists the configured chat models.
func (s *Service) ListModels(ctx context.Context) []api.Model {
	return append([]api.Model{}, s.cfg.Models...)
}

// ListEmbeddingModels lists the configured embedding models.
func (s *Service) ListEmbeddingModels(ctx context.Context) []api.EmbeddingModel {
	return append([]api.EmbeddingModel{}, s.cfg.EmbeddingModels...)
}

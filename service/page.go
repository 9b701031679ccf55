package service

import (
	"slices"

	"github.com/engram-dev/engram/api"
)

// MaxPageLimit caps the limit of any list request.
const MaxPageLimit = 10_000

// page applies a Page to items sorted oldest first: it orders them, skips to
// the cursor and cuts to the limit. An unknown cursor is NotFound.
func page[T any](items []T, id func(T) string, p api.Page, defOrder string, defLimit int, what string) ([]T, error) {
	order := p.Order
	if order == "" {
		order = defOrder
	}
	if order != "asc" && order != "desc" {
		return nil, unprocessable("order must be asc or desc, not %q", p.Order)
	}
	if p.Limit < 0 {
		return nil, unprocessable("limit must not be negative")
	}
	limit := p.Limit
	if limit == 0 {
		limit = defLimit
	}
	limit = min(limit, MaxPageLimit)
	if order == "desc" {
		items = slices.Clone(items)
		slices.Reverse(items)
	}
	find := func(cursor string) (int, error) {
		for i, it := range items {
			if id(it) == cursor {
				return i, nil
			}
		}
		return 0, notFound("No %s found with id %s", what, cursor)
	}
	start, end := 0, len(items)
	if p.After != "" {
		i, err := find(p.After)
		if err != nil {
			return nil, err
		}
		start = i + 1
	}
	if p.Before != "" {
		i, err := find(p.Before)
		if err != nil {
			return nil, err
		}
		end = i
	}
	if start >= end {
		return []T{}, nil
	}
	items = items[start:end]
	if len(items) > limit {
		if p.Before != "" && p.After == "" {
			items = items[len(items)-limit:] // the page just before the cursor
		} else {
			items = items[:limit]
		}
	}
	return slices.Clone(items), nil
}

package search

import (
	"context"
	"strings"

	"github.com/blevesearch/bleve/v2"
)

// RawMatch runs Bleve's own match query for text over one owner's
// documents of one kind, with the terms scoped as the index stores them and
// nothing of engram's: no filters, no exact BM25 statistics, Bleve's default
// sort, no stored fields, its default top 10. It is the floor engram's BM25
// search stands on, for benchmarks to compare against; it returns the
// number of matches.
func (ix *Index) RawMatch(ctx context.Context, owner, kind, text string) (int, error) {
	var words []string
	for _, t := range ix.analyze(text) {
		words = append(words, scope(owner, kind)+string(t.Term))
	}
	mq := bleve.NewMatchQuery(strings.Join(words, " "))
	mq.SetField(fieldText)
	res, err := ix.bleve().SearchInContext(ctx, bleve.NewSearchRequest(mq))
	if err != nil {
		return 0, err
	}
	return int(res.Total), nil
}

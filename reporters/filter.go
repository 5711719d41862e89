package reporters

import (
	"strconv"
	"time"
)

// Kind is a kind of metric, for WithKinds.
type Kind uint8

// The kinds of metrics a store reports.
const (
	KindOperation Kind = iota // store.OperationMetric
	KindCache                 // store.CacheMetric
	KindSync                  // store.SyncMetric
	KindError                 // store.ErrorMetric
	KindFeed                  // store.FeedMetric (a backend's change feed)

	numKinds
)

var kindNames = [numKinds]string{"operation", "cache", "sync", "error", "feed"}

// String returns "operation", "cache", "sync", "error" or "feed".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// kindSet is a bit set of kinds.
type kindSet uint8

const allKinds kindSet = 1<<numKinds - 1

func (s kindSet) has(k Kind) bool { return s&(1<<k) != 0 }

// filter is the part of the console and slog configurations that chooses
// what to show.
type filter struct {
	kinds       kindSet
	minDuration time.Duration
}

func defaultFilter() filter { return filter{kinds: allKinds} }

// operation reports whether an operation that took d passes the filter.
func (f *filter) operation(d time.Duration) bool {
	return f.kinds.has(KindOperation) && d >= f.minDuration
}

// FilterOption chooses which metrics a Console or a Slog reporter shows. It
// is both a ConsoleOption and a SlogOption.
type FilterOption struct {
	apply func(*filter)
}

func (o FilterOption) applyConsole(c *consoleConfig) { o.apply(&c.filter) }
func (o FilterOption) applySlog(c *slogConfig)       { o.apply(&c.filter) }

// WithKinds shows only the given kinds of metrics; the default is all of
// them. With no kinds nothing is shown.
func WithKinds(kinds ...Kind) FilterOption {
	return FilterOption{func(f *filter) {
		f.kinds = 0
		for _, k := range kinds {
			if k < numKinds {
				f.kinds |= 1 << k
			}
		}
	}}
}

// WithMinDuration shows only the operations that took at least d (log only
// slow operations). Cache, sync and error metrics are not affected.
func WithMinDuration(d time.Duration) FilterOption {
	return FilterOption{func(f *filter) { f.minDuration = d }}
}

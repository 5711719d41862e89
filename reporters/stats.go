package reporters

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Array sizes for the store's enumerations (the store does not export its
// counts; values beyond these are not counted).
const (
	numOps         = int(store.OpTransaction) + 1
	numCacheEvents = int(store.CacheExpiration) + 1
	numSyncEvents  = int(store.SyncConflictResolved) + 1
)

// durationBounds are the upper bounds of the duration buckets of Stats:
// 1, 2 and 5 times each power of ten from 1µs to 10s.
var durationBounds = [...]time.Duration{
	1 * time.Microsecond, 2 * time.Microsecond, 5 * time.Microsecond,
	10 * time.Microsecond, 20 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2 * time.Second, 5 * time.Second,
	10 * time.Second,
}

const numBuckets = len(durationBounds) + 1 // and the overflow bucket

// weightUnit is the fixed-point unit of the weighted counters: a metric
// drawn at sample rate r adds weightUnit/r, so that extrapolated counts stay
// integers (and atomic) without losing the fraction of 1/r.
const weightUnit = 1 << 16

// Stats aggregates metrics into store.StoreStats, without OpenTelemetry:
// pass it as Config.MetricsReporter and Store.Stats and Store.ResetStats
// work. Bind gives each store its own Stats, so several stores do not mix;
// the Stats that NewStats returns aggregates every store bound to it (plus
// whatever is reported to it directly).
//
// Reports are lock-free and allocate nothing: each adds to atomic counters
// (counts, durations and failures per operation, a duration histogram per
// operation with buckets from 1µs to 10s at 1-2-5 steps, cache events, sync
// events, items synced, errors). Operations and cache events drawn at a
// sample rate below 1 count 1/rate each, and StoreStats.Estimated is set.
//
// The counters are cumulative; Stats and ResetStats subtract a baseline
// taken under a mutex, so every report lands in exactly one ResetStats
// window. The counters of one snapshot are read one after the other while
// reports go on, so the figures of one metric may straddle two windows
// (an operation counted in one window and its duration in the next).
type Stats struct {
	c      counters
	parent *Stats // the Stats whose Bind returned this one, nil for NewStats

	mu    sync.Mutex // guards base and start
	base  snapshot
	start time.Time
}

var (
	_ store.MetricsReporter = (*Stats)(nil)
	_ store.Binder          = (*Stats)(nil)
	_ store.StatsProvider   = (*Stats)(nil)
)

// NewStats returns an empty Stats.
func NewStats() *Stats { return &Stats{start: time.Now()} }

// Bind returns a Stats for one store; what it receives is counted by both
// it and s.
func (s *Stats) Bind(store.StoreInfo) store.Binding {
	return store.Binding{Reporter: &Stats{parent: s, start: time.Now()}}
}

// Flush does nothing and returns nil.
func (s *Stats) Flush(context.Context) error { return nil }

// ReportOperation counts m.
func (s *Stats) ReportOperation(_ context.Context, m store.OperationMetric) {
	if int(m.Operation) >= numOps {
		return
	}
	w, d := weigh(m.SampleRate, m.Duration)
	b, _ := slices.BinarySearch(durationBounds[:], m.Duration)
	for t := s; t != nil; t = t.parent {
		o := &t.c.ops[m.Operation]
		o.count.Add(w)
		o.total.Add(d)
		o.buckets[b].Add(w)
		if !m.Success {
			o.failures.Add(w)
		}
		if w != weightUnit {
			t.c.estimated.Add(1)
		}
	}
}

// ReportCacheEvent counts m.
func (s *Stats) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	if int(m.Event) >= numCacheEvents {
		return
	}
	w, _ := weigh(m.SampleRate, 0)
	for t := s; t != nil; t = t.parent {
		t.c.cache[m.Event].Add(w)
		if w != weightUnit {
			t.c.estimated.Add(1)
		}
	}
}

// ReportSyncEvent counts m; completed and failed runs add their items to
// ItemsSynced.
func (s *Stats) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	if int(m.Event) >= numSyncEvents {
		return
	}
	items := m.Event == store.SyncCompleted || m.Event == store.SyncFailed
	for t := s; t != nil; t = t.parent {
		t.c.sync[m.Event].Add(1)
		if items {
			t.c.items.Add(int64(m.ItemsSynced))
		}
	}
}

// ReportError counts m.
func (s *Stats) ReportError(context.Context, store.ErrorMetric) {
	for t := s; t != nil; t = t.parent {
		t.c.errors.Add(1)
	}
}

// Stats returns the figures since NewStats, Bind or the last ResetStats.
func (s *Stats) Stats() store.StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur snapshot
	s.c.load(&cur)
	return cur.sub(&s.base).stats(s.start, time.Now())
}

// ResetStats returns the figures of the window it closes and starts a new
// one.
func (s *Stats) ResetStats() store.StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur snapshot
	s.c.load(&cur)
	now := time.Now()
	st := cur.sub(&s.base).stats(s.start, now)
	s.base, s.start = cur, now
	return st
}

// weigh returns the weight of a metric drawn at rate, in weightUnit, and d
// extrapolated at that rate.
func weigh(rate float64, d time.Duration) (int64, int64) {
	if !sampled(rate) {
		return weightUnit, int64(d)
	}
	// Below about 1e-9 a weight would overflow the counters within a few
	// reports; such rates count as 1e-9.
	rate = max(rate, minRate)
	return int64(weightUnit/rate + 0.5), int64(float64(d)/rate + 0.5)
}

const minRate = 1e-9

// counters are the cumulative, atomic counters of a Stats.
type counters struct {
	ops       [numOps]opCounters
	cache     [numCacheEvents]atomic.Int64 // weighted
	sync      [numSyncEvents]atomic.Int64
	items     atomic.Int64
	errors    atomic.Int64
	estimated atomic.Int64 // metrics counted with a weight other than 1
}

type opCounters struct {
	count    atomic.Int64 // weighted
	failures atomic.Int64 // weighted
	total    atomic.Int64 // extrapolated nanoseconds
	buckets  [numBuckets]atomic.Int64
}

// snapshot is a plain copy of counters.
type snapshot struct {
	ops       [numOps]opSnapshot
	cache     [numCacheEvents]int64
	sync      [numSyncEvents]int64
	items     int64
	errors    int64
	estimated int64
}

type opSnapshot struct {
	count, failures, total int64
	buckets                [numBuckets]int64
}

func (c *counters) load(s *snapshot) {
	for i := range c.ops {
		o, so := &c.ops[i], &s.ops[i]
		so.count, so.failures, so.total = o.count.Load(), o.failures.Load(), o.total.Load()
		for j := range o.buckets {
			so.buckets[j] = o.buckets[j].Load()
		}
	}
	for i := range c.cache {
		s.cache[i] = c.cache[i].Load()
	}
	for i := range c.sync {
		s.sync[i] = c.sync[i].Load()
	}
	s.items, s.errors, s.estimated = c.items.Load(), c.errors.Load(), c.estimated.Load()
}

// sub returns s - base.
func (s snapshot) sub(base *snapshot) *snapshot {
	for i := range s.ops {
		o, b := &s.ops[i], &base.ops[i]
		o.count -= b.count
		o.failures -= b.failures
		o.total -= b.total
		for j := range o.buckets {
			o.buckets[j] -= b.buckets[j]
		}
	}
	for i := range s.cache {
		s.cache[i] -= base.cache[i]
	}
	for i := range s.sync {
		s.sync[i] -= base.sync[i]
	}
	s.items -= base.items
	s.errors -= base.errors
	s.estimated -= base.estimated
	return &s
}

// stats turns a window's counts into a StoreStats.
func (s *snapshot) stats(start, end time.Time) store.StoreStats {
	st := store.StoreStats{
		OperationCounts: make(map[store.OperationType]int64),
		TotalDurations:  make(map[store.OperationType]time.Duration),
		FailureCounts:   make(map[store.OperationType]int64),
		CacheEvents:     make(map[store.CacheEvent]int64),
		SyncEvents:      make(map[store.SyncEvent]int64),
		Durations:       make(map[store.OperationType]store.DurationHistogram),
		ErrorCount:      s.errors,
		ItemsSynced:     s.items,
		Start:           start,
		End:             end,
		Estimated:       s.estimated > 0,
	}
	for i := range s.ops {
		// Each counter is kept on its own (not only when the count is):
		// a window may hold a failure or a duration whose count was read
		// into the previous one.
		o, op := &s.ops[i], store.OperationType(i)
		if n := unweigh(o.count); n > 0 {
			st.OperationCounts[op] = n
		}
		if o.total > 0 {
			st.TotalDurations[op] = time.Duration(o.total)
		}
		if f := unweigh(o.failures); f > 0 {
			st.FailureCounts[op] = f
		}
		if o.buckets != ([numBuckets]int64{}) {
			h := store.DurationHistogram{Bounds: slices.Clone(durationBounds[:]), Counts: make([]int64, numBuckets)}
			for j, c := range o.buckets {
				h.Counts[j] = unweigh(c)
			}
			st.Durations[op] = h
		}
	}
	for i, c := range s.cache {
		if n := unweigh(c); n > 0 {
			st.CacheEvents[store.CacheEvent(i)] = n
		}
	}
	for i, n := range s.sync {
		if n > 0 {
			st.SyncEvents[store.SyncEvent(i)] = n
		}
	}
	st.Recompute()
	return st
}

// unweigh turns a weighted count into a count, rounded to the nearest.
func unweigh(w int64) int64 { return (w + weightUnit/2) / weightUnit }

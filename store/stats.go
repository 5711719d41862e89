package store

import (
	"maps"
	"math"
	"slices"
	"time"
)

// StoreStats is a snapshot of aggregated telemetry, computed by a reporter
// that implements StatsProvider. It is a plain value: maps are fresh copies
// owned by the caller.
//
// Counts of sampled metrics are extrapolated (each sampled operation counts
// 1/SampleRate) and Estimated is set; at the default sample rate every count
// is exact.
type StoreStats struct {
	// OperationCounts is the number of operations of each type.
	OperationCounts map[OperationType]int64
	// AverageDurations is TotalDurations / OperationCounts per type.
	AverageDurations map[OperationType]time.Duration
	// CacheHitRate is hits / (hits + misses); 0 with no reads.
	CacheHitRate float64
	// SyncSuccessRate is completed / (completed + failed) Sync runs; 0 with
	// no runs.
	SyncSuccessRate float64
	// ErrorCount is the number of ErrorMetrics (failed operations and errors
	// the store recovered from); never sampled.
	ErrorCount int64

	// TotalDurations is the summed duration per operation type.
	TotalDurations map[OperationType]time.Duration
	// FailureCounts is the number of failed operations per type.
	FailureCounts map[OperationType]int64
	// CacheEvents counts each cache event (hits, misses, writes, evictions,
	// invalidations, expirations).
	CacheEvents map[CacheEvent]int64
	// SyncEvents counts each sync event.
	SyncEvents map[SyncEvent]int64
	// ItemsSynced is the number of changes pushed by Sync runs.
	ItemsSynced int64
	// Durations holds a duration histogram per operation type, from which
	// Quantile estimates percentiles. Reporters that keep none leave it nil.
	Durations map[OperationType]DurationHistogram

	// Start is when the window began (the reporter's start or last reset);
	// End is when the snapshot was taken.
	Start, End time.Time
	// Estimated is set when counts were extrapolated from sampled metrics.
	Estimated bool
}

// DurationHistogram is a bucketed distribution of durations. Bucket i counts
// durations in (Bounds[i-1], Bounds[i]]; the last bucket counts those above
// the last bound.
type DurationHistogram struct {
	Bounds []time.Duration
	Counts []int64 // len(Bounds)+1
}

// Count returns the number of durations in h.
func (h DurationHistogram) Count() int64 {
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile (0 <= q <= 1) by linear interpolation
// within the bucket that holds it, as Prometheus' histogram_quantile does.
// A quantile that falls in the overflow bucket returns the last bound. It
// returns 0 for an empty histogram.
func (h DurationHistogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 || len(h.Counts) != len(h.Bounds)+1 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var cum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i == len(h.Bounds) {
				return h.Bounds[len(h.Bounds)-1]
			}
			lower := time.Duration(0)
			if i > 0 {
				lower = h.Bounds[i-1]
			}
			upper := h.Bounds[i]
			frac := (rank - cum) / float64(c)
			return lower + time.Duration(frac*float64(upper-lower))
		}
		cum += float64(c)
	}
	if len(h.Bounds) == 0 {
		return 0
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Quantile estimates the q-quantile of op's durations (see
// DurationHistogram.Quantile); 0 when no histogram is kept for op.
func (s StoreStats) Quantile(op OperationType, q float64) time.Duration {
	return s.Durations[op].Quantile(q)
}

// Recompute derives AverageDurations, CacheHitRate and SyncSuccessRate from
// the raw counts. Reporters that build a StoreStats call it last.
func (s *StoreStats) Recompute() {
	s.AverageDurations = make(map[OperationType]time.Duration, len(s.OperationCounts))
	for op, n := range s.OperationCounts {
		if n > 0 {
			s.AverageDurations[op] = s.TotalDurations[op] / time.Duration(n)
		}
	}
	s.CacheHitRate = ratio(s.CacheEvents[CacheHit], s.CacheEvents[CacheMiss])
	s.SyncSuccessRate = ratio(s.SyncEvents[SyncCompleted], s.SyncEvents[SyncFailed])
}

func ratio(good, bad int64) float64 {
	if good+bad <= 0 {
		return 0
	}
	return float64(good) / float64(good+bad)
}

// Sub returns the difference s - prev of two cumulative snapshots from the
// same reporter: the figures of the window from prev.End to s.End. It lets
// several consumers keep their own windows without ResetStats. Histograms
// with different bounds cannot be subtracted and are left out.
func (s StoreStats) Sub(prev StoreStats) StoreStats {
	out := StoreStats{
		OperationCounts: subMap(s.OperationCounts, prev.OperationCounts),
		TotalDurations:  subMap(s.TotalDurations, prev.TotalDurations),
		FailureCounts:   subMap(s.FailureCounts, prev.FailureCounts),
		CacheEvents:     subMap(s.CacheEvents, prev.CacheEvents),
		SyncEvents:      subMap(s.SyncEvents, prev.SyncEvents),
		ErrorCount:      s.ErrorCount - prev.ErrorCount,
		ItemsSynced:     s.ItemsSynced - prev.ItemsSynced,
		Start:           prev.End,
		End:             s.End,
		Estimated:       s.Estimated || prev.Estimated,
	}
	if prev.End.IsZero() {
		out.Start = s.Start
	}
	if s.Durations != nil {
		out.Durations = make(map[OperationType]DurationHistogram, len(s.Durations))
		for op, h := range s.Durations {
			p, ok := prev.Durations[op]
			switch {
			case !ok || p.Count() == 0:
				out.Durations[op] = h.clone()
			case slices.Equal(h.Bounds, p.Bounds) && len(h.Counts) == len(p.Counts):
				d := h.clone()
				for i := range d.Counts {
					d.Counts[i] -= p.Counts[i]
				}
				out.Durations[op] = d
			}
		}
	}
	out.Recompute()
	return out
}

func (h DurationHistogram) clone() DurationHistogram {
	return DurationHistogram{Bounds: slices.Clone(h.Bounds), Counts: slices.Clone(h.Counts)}
}

func subMap[K comparable, V int64 | time.Duration](a, b map[K]V) map[K]V {
	out := maps.Clone(a)
	if out == nil {
		out = make(map[K]V)
	}
	for k, v := range b {
		out[k] -= v
	}
	return out
}

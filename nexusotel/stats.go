package nexusotel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nexusstore/nexus/store"
)

// StatsReader is the reader Store.Stats computes figures from: an SDK
// ManualReader, embedded so that sdkmetric.WithReader accepts it (an
// sdkmetric.Reader has unexported methods). Register it on a MeterProvider
// beside exporting readers and pass it to WithStatsReader; Stats then
// collects it on demand (it never exports anything).
type StatsReader struct {
	*sdkmetric.ManualReader
}

// NewStatsReader returns a StatsReader. opts configure its ManualReader
// (an aggregation selector, a cardinality limit, producers); its
// temporality is always cumulative, whatever opts say, because windows are
// computed as differences of cumulative snapshots.
func NewStatsReader(opts ...sdkmetric.ManualReaderOption) *StatsReader {
	opts = append(slices.Clip(opts), sdkmetric.WithTemporalitySelector(sdkmetric.CumulativeTemporalitySelector))
	return &StatsReader{ManualReader: sdkmetric.NewManualReader(opts...)}
}

// rawStats is one store's share of a collection, unscaled: counts as the
// SDK aggregated them.
type rawStats struct {
	ops    []opRaw // by store.OperationType
	cache  []uint64
	sync   []uint64
	items  uint64
	errors uint64
	at     time.Time
}

type opRaw struct {
	count, failures uint64
	sum             float64 // seconds
	hist            histRaw
}

// histRaw is the merged histogram of one operation: explicit buckets, or a
// base-2 exponential histogram (positive buckets; durations are never
// negative).
type histRaw struct {
	exp    bool
	bounds []float64 // explicit: upper bounds
	counts []uint64  // explicit: len(bounds)+1; exponential: bucket offset.. offset+len-1
	scale  int32
	offset int32
	zero   uint64
}

func (h *histRaw) empty() bool { return h.counts == nil && h.zero == 0 }

func (h *histRaw) addExplicit(bounds []float64, counts []uint64) error {
	if len(counts) != len(bounds)+1 {
		return errors.New("malformed explicit histogram")
	}
	if h.empty() && !h.exp {
		h.bounds = slices.Clone(bounds)
		h.counts = slices.Clone(counts)
		return nil
	}
	if h.exp || !slices.Equal(h.bounds, bounds) {
		return errors.New("data points with different bucket layouts")
	}
	for i, c := range counts {
		h.counts[i] += c
	}
	return nil
}

func (h *histRaw) addExp(scale int32, zero uint64, b metricdata.ExponentialBucket) error {
	if !h.empty() && !h.exp {
		return errors.New("data points with different bucket layouts")
	}
	if h.empty() {
		*h = histRaw{exp: true, scale: scale, offset: b.Offset, counts: slices.Clone(b.Counts), zero: zero}
		return nil
	}
	o := histRaw{exp: true, scale: scale, offset: b.Offset, counts: b.Counts, zero: zero}
	alignExp(h, &o)
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.zero += zero
	return nil
}

// alignExp brings two exponential histograms to the same scale (the
// coarser one) and the same bucket range, copying as needed.
func alignExp(a, b *histRaw) {
	s := min(a.scale, b.scale)
	downscale(a, a.scale-s)
	downscale(b, b.scale-s)
	if len(a.counts) == 0 && len(b.counts) == 0 {
		return
	}
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	for _, h := range []*histRaw{a, b} {
		if len(h.counts) > 0 {
			lo = min(lo, h.offset)
			hi = max(hi, h.offset+int32(len(h.counts))-1)
		}
	}
	for _, h := range []*histRaw{a, b} {
		c := make([]uint64, hi-lo+1)
		for i, n := range h.counts {
			c[h.offset-lo+int32(i)] += n
		}
		h.offset, h.counts = lo, c
	}
}

// downscale lowers h's scale by by: bucket i becomes i >> by.
func downscale(h *histRaw, by int32) {
	if by <= 0 {
		return
	}
	h.scale -= by
	if len(h.counts) == 0 {
		return
	}
	lo := h.offset >> by
	hi := (h.offset + int32(len(h.counts)) - 1) >> by
	c := make([]uint64, hi-lo+1)
	for i, n := range h.counts {
		c[((h.offset+int32(i))>>by)-lo] += n
	}
	h.offset, h.counts = lo, c
}

// collect reads the stats reader and extracts this store's figures. The
// error says what is missing or unreadable; the figures are what could be
// read.
func (s *storeReporter) collect(ctx context.Context) (*rawStats, error) {
	var used [numUsed]bool
	for i := range used {
		used[i] = s.used[i].Load() // before Collect: a flag set means the data is in
	}
	var rm metricdata.ResourceMetrics
	if err := s.r.reader.Collect(ctx, &rm); err != nil {
		if errors.Is(err, sdkmetric.ErrReaderNotRegistered) {
			return nil, errors.New("nexusotel: stats: the StatsReader is not registered on a MeterProvider (pass it to sdkmetric.WithReader on the provider the reporter records on)")
		}
		return nil, fmt.Errorf("nexusotel: stats: collecting the StatsReader: %w", err)
	}
	raw := &rawStats{
		ops:   make([]opRaw, numOps),
		cache: make([]uint64, numCacheEvents),
		sync:  make([]uint64, numSyncEvents),
		at:    time.Now(),
	}
	x := extractor{s: s, raw: raw, used: used}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			x.metric(m)
		}
	}
	need := []struct {
		used int
		name string
	}{
		{usedOperations, MetricOperationDuration},
		{usedCacheEvents, MetricCacheEvents},
		{usedSyncEvents, MetricSyncEvents},
		{usedSyncItems, MetricSyncItems},
		{usedErrors, MetricErrors},
	}
	for _, n := range need {
		if used[n.used] && !x.found[n.name] {
			x.fail(n.name, "the store recorded on it, but the StatsReader saw none of its data: a View dropped or renamed it, or the StatsReader is registered on another MeterProvider than the one the reporter records on")
		}
	}
	return raw, errors.Join(x.errs...)
}

// extractor walks a collection for one store.
type extractor struct {
	s     *storeReporter
	raw   *rawStats
	used  [numUsed]bool
	found map[string]bool
	errs  []error
}

func (x *extractor) fail(metric, format string, args ...any) {
	x.errs = append(x.errs, fmt.Errorf("nexusotel: stats: %s: "+format, append([]any{metric}, args...)...))
}

var overflowKey = attribute.Key("otel.metric.overflow")

// mine reports whether a data point belongs to this store; it records an
// error for points that cannot be attributed to any store.
func (x *extractor) mine(metric string, attrs attribute.Set, seen *bool) bool {
	v, ok := attrs.Value(KeyStoreName)
	if !ok {
		if !*seen {
			*seen = true
			if o, _ := attrs.Value(overflowKey); o.AsBool() {
				x.fail(metric, "the cardinality limit was reached (otel.metric.overflow): some figures are lost; raise the limit on the MeterProvider or the StatsReader")
			} else {
				x.fail(metric, "data points lack the %s attribute: a View filtered it out, so the figures of one store cannot be told from another's", KeyStoreName)
			}
		}
		return false
	}
	return v.AsString() == x.s.name
}

func (x *extractor) metric(m metricdata.Metrics) {
	switch m.Name {
	case MetricOperationDuration:
		x.operations(m)
	case MetricCacheEvents:
		x.counter(m, KeyCacheEvent, tally(cacheEventByName, x.raw.cache))
	case MetricSyncEvents:
		x.counter(m, KeySyncEvent, tally(syncEventByName, x.raw.sync))
	case MetricSyncItems:
		x.counter(m, "", func(_ string, n uint64) { x.raw.items += n })
	case MetricErrors:
		x.counter(m, "", func(_ string, n uint64) { x.raw.errors += n })
	default:
		return
	}
	if x.found == nil {
		x.found = make(map[string]bool)
	}
	x.found[m.Name] = true
}

// tally returns an add function for extractor.counter that counts by
// event name into counts; unknown names are skipped.
func tally[E ~uint8](names map[string]E, counts []uint64) func(string, uint64) {
	return func(name string, n uint64) {
		if e, ok := names[name]; ok && int(e) < len(counts) {
			counts[e] += n
		}
	}
}

// counter reads an Int64Counter's cumulative sum, split by key (or not, for
// key "").
func (x *extractor) counter(m metricdata.Metrics, key attribute.Key, add func(string, uint64)) {
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		x.fail(m.Name, "aggregated as %T, a View changed it; Stats needs a sum", m.Data)
		return
	}
	if sum.Temporality != metricdata.CumulativeTemporality {
		x.fail(m.Name, "delta temporality; the StatsReader must be cumulative (use NewStatsReader)")
		return
	}
	var noName, noKey bool
	for _, dp := range sum.DataPoints {
		if !x.mine(m.Name, dp.Attributes, &noName) {
			continue
		}
		var v string
		if key != "" {
			kv, ok := dp.Attributes.Value(key)
			if !ok {
				if !noKey {
					noKey = true
					x.fail(m.Name, "data points lack the %s attribute: a View filtered it out", key)
				}
				continue
			}
			v = kv.AsString()
		}
		if dp.Value > 0 {
			add(v, uint64(dp.Value))
		}
	}
}

// operations reads the operation histogram: counts, sums, failures and
// buckets per operation type, from explicit or exponential histograms.
func (x *extractor) operations(m metricdata.Metrics) {
	type point struct {
		attrs attribute.Set
		count uint64
		sum   float64
		add   func(*histRaw) error
	}
	var points []point
	switch h := m.Data.(type) {
	case metricdata.Histogram[float64]:
		if h.Temporality != metricdata.CumulativeTemporality {
			x.fail(m.Name, "delta temporality; the StatsReader must be cumulative (use NewStatsReader)")
			return
		}
		for _, dp := range h.DataPoints {
			points = append(points, point{dp.Attributes, dp.Count, dp.Sum, func(hr *histRaw) error {
				return hr.addExplicit(dp.Bounds, dp.BucketCounts)
			}})
		}
	case metricdata.ExponentialHistogram[float64]:
		if h.Temporality != metricdata.CumulativeTemporality {
			x.fail(m.Name, "delta temporality; the StatsReader must be cumulative (use NewStatsReader)")
			return
		}
		for _, dp := range h.DataPoints {
			points = append(points, point{dp.Attributes, dp.Count, dp.Sum, func(hr *histRaw) error {
				return hr.addExp(dp.Scale, dp.ZeroCount, dp.PositiveBucket)
			}})
		}
	default:
		x.fail(m.Name, "aggregated as %T, a View changed it; Stats needs a histogram (explicit or exponential)", m.Data)
		return
	}
	var noName, noOp, failures bool
	for _, p := range points {
		if !x.mine(m.Name, p.attrs, &noName) {
			continue
		}
		v, ok := p.attrs.Value(KeyOperation)
		if !ok {
			if !noOp {
				noOp = true
				x.fail(m.Name, "data points lack the %s attribute: a View filtered it out, so operations cannot be told apart", KeyOperation)
			}
			continue
		}
		op, ok := operationByName[v.AsString()]
		if !ok || int(op) >= len(x.raw.ops) {
			continue
		}
		o := &x.raw.ops[op]
		o.count += p.count
		o.sum += p.sum
		if p.attrs.HasValue(KeyErrorType) {
			o.failures += p.count
			failures = true
		}
		if err := p.add(&o.hist); err != nil {
			x.fail(m.Name, "%v", err)
		}
	}
	if x.used[usedFailures] && !failures && !noName && !noOp {
		x.fail(m.Name, "the store recorded failed operations, but no data point has the %s attribute: a View filtered it out, so failures cannot be counted", KeyErrorType)
	}
}

// sampledCacheEvent reports whether ev belongs to an operation, and so is
// sampled with it (hit, miss, write); evictions, invalidations and
// expirations are never sampled.
func sampledCacheEvent(ev store.CacheEvent) bool {
	return ev == store.CacheHit || ev == store.CacheMiss || ev == store.CacheWrite
}

// window computes the figures between the snapshots base (nil: the
// beginning) and now. Sampled counts are extrapolated by 1/rate on each
// cumulative snapshot before subtracting, so that consecutive windows add
// up exactly to the cumulative figures.
func (s *storeReporter) window(now, base *rawStats, start time.Time) store.StoreStats {
	if base == nil {
		base = &rawStats{
			ops:   make([]opRaw, numOps),
			cache: make([]uint64, numCacheEvents),
			sync:  make([]uint64, numSyncEvents),
		}
	}
	est := func(n uint64) int64 {
		if s.rate >= 1 {
			return int64(n)
		}
		return int64(math.Round(float64(n) / s.rate))
	}
	secs := func(v float64) time.Duration {
		return time.Duration(math.Round(v / s.rate * 1e9))
	}
	st := store.StoreStats{
		OperationCounts: make(map[store.OperationType]int64),
		TotalDurations:  make(map[store.OperationType]time.Duration),
		FailureCounts:   make(map[store.OperationType]int64),
		CacheEvents:     make(map[store.CacheEvent]int64),
		SyncEvents:      make(map[store.SyncEvent]int64),
		Durations:       make(map[store.OperationType]store.DurationHistogram),
		ErrorCount:      int64(now.errors - base.errors),
		ItemsSynced:     int64(now.items - base.items),
		Start:           start,
		End:             now.at,
		Estimated:       s.rate < 1,
	}
	for i := range now.ops {
		op := store.OperationType(i)
		n, b := &now.ops[i], &base.ops[i]
		c := est(n.count) - est(b.count)
		if c == 0 {
			continue
		}
		st.OperationCounts[op] = c
		st.TotalDurations[op] = secs(n.sum) - secs(b.sum)
		if f := est(n.failures) - est(b.failures); f != 0 {
			st.FailureCounts[op] = f
		}
		if h, ok := histWindow(n.hist, b.hist, est); ok {
			st.Durations[op] = h
		}
	}
	for i := range now.cache {
		ev := store.CacheEvent(i)
		var c int64
		if sampledCacheEvent(ev) {
			c = est(now.cache[i]) - est(base.cache[i])
		} else {
			c = int64(now.cache[i] - base.cache[i])
		}
		if c != 0 {
			st.CacheEvents[ev] = c
		}
	}
	for i := range now.sync {
		if c := int64(now.sync[i] - base.sync[i]); c != 0 {
			st.SyncEvents[store.SyncEvent(i)] = c
		}
	}
	st.Recompute()
	return st
}

// histWindow converts now - base into a store.DurationHistogram, each
// cumulative bucket extrapolated before subtracting.
func histWindow(now, base histRaw, est func(uint64) int64) (store.DurationHistogram, bool) {
	if now.empty() {
		return store.DurationHistogram{}, false
	}
	if !now.exp {
		if !base.empty() && (base.exp || !slices.Equal(base.bounds, now.bounds)) {
			return store.DurationHistogram{}, false
		}
		h := store.DurationHistogram{
			Bounds: make([]time.Duration, len(now.bounds)),
			Counts: make([]int64, len(now.counts)),
		}
		for i, b := range now.bounds {
			h.Bounds[i] = secondsToDuration(b)
		}
		for i, c := range now.counts {
			h.Counts[i] = est(c)
			if !base.empty() {
				h.Counts[i] -= est(base.counts[i])
			}
		}
		return h, true
	}
	if !base.empty() && !base.exp {
		return store.DurationHistogram{}, false
	}
	n := histRaw{exp: true, scale: now.scale, offset: now.offset, counts: slices.Clone(now.counts), zero: now.zero}
	b := histRaw{exp: true, scale: now.scale, offset: now.offset}
	if !base.empty() {
		b = histRaw{exp: true, scale: base.scale, offset: base.offset, counts: slices.Clone(base.counts), zero: base.zero}
	}
	alignExp(&n, &b)
	// Bucket i of scale s holds (2^(i/2^s), 2^((i+1)/2^s)]; the zero bucket
	// becomes the first bucket, ending at the first positive bucket's lower
	// bound, and the overflow bucket is empty.
	h := store.DurationHistogram{
		Bounds: make([]time.Duration, len(n.counts)+1),
		Counts: make([]int64, len(n.counts)+2),
	}
	width := math.Exp2(-float64(n.scale))
	for i := range h.Bounds {
		h.Bounds[i] = secondsToDuration(math.Exp2(float64(n.offset+int32(i)) * width))
	}
	h.Counts[0] = est(n.zero) - est(b.zero)
	for i, c := range n.counts {
		h.Counts[i+1] = est(c)
		if len(b.counts) > 0 {
			h.Counts[i+1] -= est(b.counts[i])
		}
	}
	return h, true
}

func secondsToDuration(v float64) time.Duration {
	return time.Duration(math.Round(v * 1e9))
}

// CollectStats computes the window's figures (since the start or the last
// ResetStats) and says in the error what it could not read.
func (s *storeReporter) CollectStats(ctx context.Context) (store.StoreStats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	now, err := s.collect(ctx)
	if now == nil {
		return store.StoreStats{Start: s.start, End: time.Now()}, err
	}
	return s.window(now, s.base, s.start), err
}

// Stats implements store.StatsProvider. Errors (see Reporter.CollectStats)
// go to the OpenTelemetry error handler (otel.Handle); the figures are what
// could be computed.
func (s *storeReporter) Stats() store.StoreStats {
	st, err := s.CollectStats(context.Background())
	if err != nil {
		otel.Handle(fmt.Errorf("store %q: %w", s.name, err))
	}
	return st
}

// ResetStats implements store.StatsProvider: it returns the current window
// and starts a new one at the same snapshot, under one lock, so that every
// measurement falls in exactly one window.
func (s *storeReporter) ResetStats() store.StoreStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	now, err := s.collect(context.Background())
	if err != nil {
		otel.Handle(fmt.Errorf("store %q: %w", s.name, err))
	}
	if now == nil {
		return store.StoreStats{Start: s.start, End: time.Now()}
	}
	st := s.window(now, s.base, s.start)
	s.base, s.start = now, now.at
	return st
}

package nexusotel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
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
//
// A StatsReader aggregates with delta temporality and keeps, for each store
// bound to it, the sums of the deltas since that store was bound. So a
// store's figures begin at zero whatever the provider remembers of an
// earlier store of the same name; the series of a closed store leave the
// reader at its next collection (the SDK forgets delta series without new
// measurements), so a collection costs what the live stores recorded since
// the previous one, not what every store that ever existed did; and one
// collection serves every store bound to the reader. Two live stores of
// the same name cannot share a reader (their series would be the same):
// the second one's store.New fails.
//
// Its Collect (which shadows the ManualReader's) is the one nexusotel
// uses; a caller may call it too, and receives the deltas since the
// previous collection, which are counted in the stores' figures as well.
type StatsReader struct {
	*sdkmetric.ManualReader
	st *statsState
}

// NewStatsReader returns a StatsReader. opts configure its ManualReader
// (an aggregation selector, a cardinality limit, producers); its
// temporality is always delta, whatever opts say.
func NewStatsReader(opts ...sdkmetric.ManualReaderOption) *StatsReader {
	opts = append(slices.Clip(opts), sdkmetric.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))
	return &StatsReader{
		ManualReader: sdkmetric.NewManualReader(opts...),
		st:           &statsState{bound: make(map[string]*storeReporter), retired: make(map[string]*storeReporter)},
	}
}

// statsState is what a StatsReader keeps between collections.
type statsState struct {
	mu      sync.Mutex
	bound   map[string]*storeReporter // the live stores, by name
	retired map[string]*storeReporter // stores closed since the last collection, which still gets their last figures
	rm      metricdata.ResourceMetrics
	last    time.Time // when the last collection ended
	errs    []error   // what the last collection found wrong, for every store
}

// maxRetired is how many closed stores' series a StatsReader keeps at
// most before a collection releases them (one collection per maxRetired
// closes, if Stats is never called).
const maxRetired = 64

// Collect collects the reader's provider into rm (deltas since the
// previous collection) and adds the figures of nexus's instruments to the
// stores bound to the reader.
func (r *StatsReader) Collect(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if r.st == nil {
		return r.ManualReader.Collect(ctx, rm)
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if err := r.collectLocked(ctx); err != nil {
		return err
	}
	*rm = r.st.rm
	r.st.rm = metricdata.ResourceMetrics{} // rm is the caller's now
	return nil
}

// bind adds s to the stores bound to r, or says why it cannot.
func (r *StatsReader) bind(s *storeReporter) error {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.bound[s.name]; ok {
		return fmt.Errorf("nexusotel: a store named %q is already bound to this StatsReader (through this or another Reporter): two live stores of one name share their series, so their figures would mix; give each store its own store.Config.Name", s.name)
	}
	if _, ok := st.retired[s.name]; ok {
		// A closed store of this name may have recorded since the last
		// collection: collect now, so that its deltas go to it, not to
		// the new store.
		if err := r.collectLocked(context.WithValue(context.Background(), statsCollection{}, true)); err != nil && !errors.Is(err, errNotRegistered) {
			otel.Handle(err)
		}
	}
	s.acc = newRawStats()
	s.start = time.Now()
	s.dirty.Store(true) // the first Stats collects (and finds a reader not registered)
	st.bound[s.name] = s
	return nil
}

// unbind removes s from the live stores. The next collection still adds
// s's last figures to it (Stats works after Close), and the SDK forgets
// its series after that.
func (r *StatsReader) unbind(s *storeReporter) {
	st := r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.bound[s.name] != s {
		return
	}
	delete(st.bound, s.name)
	st.retired[s.name] = s
	if len(st.retired) >= maxRetired {
		if err := r.collectLocked(context.WithValue(context.Background(), statsCollection{}, true)); err != nil && !errors.Is(err, errNotRegistered) {
			otel.Handle(err)
		}
	}
}

var errNotRegistered = errors.New("nexusotel: stats: the StatsReader is not registered on a MeterProvider (pass it to sdkmetric.WithReader on the provider the reporter records on)")

// collectLocked collects the reader and adds each data point of nexus's
// instruments to the store it belongs to. Call with st.mu held.
func (r *StatsReader) collectLocked(ctx context.Context) error {
	st := r.st
	for _, ss := range []map[string]*storeReporter{st.bound, st.retired} {
		for _, s := range ss {
			// A flag set before the collection means the data is in it.
			for i := range s.usedAt {
				s.usedAt[i] = s.used[i].Load()
			}
			s.dirty.Store(false)
		}
	}
	if err := r.ManualReader.Collect(ctx, &st.rm); err != nil {
		if errors.Is(err, sdkmetric.ErrReaderNotRegistered) {
			return errNotRegistered
		}
		return fmt.Errorf("nexusotel: stats: collecting the StatsReader: %w", err)
	}
	st.last = time.Now()
	// The cache events are the stores' own exact counts since Bind (the
	// instrument observes the same counts; see MetricCacheEvents).
	for _, ss := range []map[string]*storeReporter{st.bound, st.retired} {
		for _, s := range ss {
			s.cacheInto(s.acc.cache)
		}
	}
	x := extractor{st: st}
	for _, sm := range st.rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			x.metric(m)
		}
	}
	clear(st.retired)
	st.errs = x.errs
	return nil
}

// missing returns what s recorded that no collection has shown: a View
// dropped or renamed an instrument or an attribute, or the reader sits on
// another provider than the one the reporter records on.
func (s *storeReporter) missing() []error {
	need := []struct {
		used int
		name string
	}{
		{usedOperations, MetricOperationDuration},
		{usedSyncEvents, MetricSyncEvents},
		{usedSyncItems, MetricSyncItems},
		{usedErrors, MetricErrors},
	}
	var errs []error
	for _, n := range need {
		if s.usedAt[n.used] && !s.found[n.used] {
			errs = append(errs, fmt.Errorf("nexusotel: stats: %s: the store recorded on it, but the StatsReader saw none of its data: a View dropped or renamed it, filtered out %s, or the StatsReader is registered on another MeterProvider than the one the reporter records on", n.name, KeyStoreName))
		}
	}
	if s.usedAt[usedFailures] && s.found[usedOperations] && !s.found[usedFailures] {
		errs = append(errs, fmt.Errorf("nexusotel: stats: %s: the store recorded failed operations, but no data point has the %s attribute: a View filtered it out, so failures cannot be counted", MetricOperationDuration, KeyErrorType))
	}
	return errs
}

// rawStats are one store's figures since it was bound, unscaled: the sums
// of the deltas the SDK aggregated.
type rawStats struct {
	ops    []opRaw // by store.OperationType
	cache  []uint64
	sync   []uint64
	items  uint64
	errors uint64
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

func newRawStats() *rawStats {
	return &rawStats{
		ops:   make([]opRaw, numOps),
		cache: make([]uint64, numCacheEvents),
		sync:  make([]uint64, numSyncEvents),
	}
}

// clone returns a deep copy of r.
func (r *rawStats) clone() *rawStats {
	c := *r
	c.ops = slices.Clone(r.ops)
	for i := range c.ops {
		h := &c.ops[i].hist
		h.bounds, h.counts = slices.Clone(h.bounds), slices.Clone(h.counts)
	}
	c.cache = slices.Clone(r.cache)
	c.sync = slices.Clone(r.sync)
	return &c
}

// extractor adds one collection to the stores bound to a reader.
type extractor struct {
	st     *statsState
	errs   []error
	noName map[string]bool // metrics already reported for points without a store name
}

func (x *extractor) fail(metric, format string, args ...any) {
	x.errs = append(x.errs, fmt.Errorf("nexusotel: stats: %s: "+format, append([]any{metric}, args...)...))
}

var overflowKey = attribute.Key("otel.metric.overflow")

// owner returns the store a data point belongs to, or nil (no store bound
// to the reader has its name); it records an error for points that cannot
// be attributed to any store.
func (x *extractor) owner(metric string, attrs attribute.Set) *storeReporter {
	v, ok := attrs.Value(KeyStoreName)
	if !ok {
		if !x.noName[metric] {
			if x.noName == nil {
				x.noName = make(map[string]bool)
			}
			x.noName[metric] = true
			if o, _ := attrs.Value(overflowKey); o.AsBool() {
				x.fail(metric, "the cardinality limit was reached (otel.metric.overflow): some figures are lost; raise the limit on the MeterProvider or the StatsReader")
			} else {
				x.fail(metric, "data points lack the %s attribute: a View filtered it out, so the figures of one store cannot be told from another's", KeyStoreName)
			}
		}
		return nil
	}
	name := v.AsString()
	if s := x.st.bound[name]; s != nil {
		return s
	}
	return x.st.retired[name]
}

func (x *extractor) metric(m metricdata.Metrics) {
	switch m.Name {
	case MetricOperationDuration:
		x.operations(m)
	case MetricSyncEvents:
		x.counter(m, KeySyncEvent, usedSyncEvents, func(s *storeReporter, name string, n uint64) {
			if e, ok := syncEventByName[name]; ok && int(e) < len(s.acc.sync) {
				s.acc.sync[e] += n
			}
		})
	case MetricSyncItems:
		x.counter(m, "", usedSyncItems, func(s *storeReporter, _ string, n uint64) { s.acc.items += n })
	case MetricErrors:
		x.counter(m, "", usedErrors, func(s *storeReporter, _ string, n uint64) { s.acc.errors += n })
	}
}

// counter reads an Int64Counter's deltas, split by key (or not, for key
// "").
func (x *extractor) counter(m metricdata.Metrics, key attribute.Key, used int, add func(*storeReporter, string, uint64)) {
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		x.fail(m.Name, "aggregated as %T, a View changed it; Stats needs a sum", m.Data)
		return
	}
	var noKey bool
	for _, dp := range sum.DataPoints {
		s := x.owner(m.Name, dp.Attributes)
		if s == nil {
			continue
		}
		s.found[used] = true
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
			add(s, v, uint64(dp.Value))
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
		for _, dp := range h.DataPoints {
			points = append(points, point{dp.Attributes, dp.Count, dp.Sum, func(hr *histRaw) error {
				return hr.addExplicit(dp.Bounds, dp.BucketCounts)
			}})
		}
	case metricdata.ExponentialHistogram[float64]:
		for _, dp := range h.DataPoints {
			points = append(points, point{dp.Attributes, dp.Count, dp.Sum, func(hr *histRaw) error {
				return hr.addExp(dp.Scale, dp.ZeroCount, dp.PositiveBucket)
			}})
		}
	default:
		x.fail(m.Name, "aggregated as %T, a View changed it; Stats needs a histogram (explicit or exponential)", m.Data)
		return
	}
	var noOp bool
	for _, p := range points {
		s := x.owner(m.Name, p.attrs)
		if s == nil {
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
		s.found[usedOperations] = true
		op, ok := operationByName[v.AsString()]
		if !ok || int(op) >= len(s.acc.ops) {
			continue
		}
		o := &s.acc.ops[op]
		o.count += p.count
		o.sum += p.sum
		if p.attrs.HasValue(KeyErrorType) {
			o.failures += p.count
			s.found[usedFailures] = true
		}
		if err := p.add(&o.hist); err != nil {
			x.fail(m.Name, "%v", err)
		}
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
func (s *storeReporter) window(now, base *rawStats, start, end time.Time) store.StoreStats {
	if base == nil {
		base = newRawStats()
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
		End:             end,
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

// refresh brings s.acc up to date: it collects the reader unless nothing
// was recorded for s since the last collection, or that collection is
// younger than WithStatsMaxAge. Call with the reader's lock held.
func (s *storeReporter) refresh(ctx context.Context) error {
	st := s.r.reader.st
	if s.refused != nil {
		return s.refused
	}
	if st.bound[s.name] != s && st.retired[s.name] != s {
		return s.errs // closed, and its last figures collected
	}
	var err error
	if s.dirty.Load() && (s.r.cfg.statsMaxAge <= 0 || time.Since(st.last) >= s.r.cfg.statsMaxAge) {
		err = s.r.reader.collectLocked(context.WithValue(ctx, statsCollection{}, true))
	}
	s.errs = errors.Join(append(append([]error{err}, st.errs...), s.missing()...)...)
	return s.errs
}

// CollectStats computes the window's figures (since the start or the last
// ResetStats) and says in the error what it could not read.
func (s *storeReporter) CollectStats(ctx context.Context) (store.StoreStats, error) {
	st := s.r.reader.st
	st.mu.Lock()
	defer st.mu.Unlock()
	err := s.refresh(ctx)
	if s.acc == nil {
		return store.StoreStats{Start: s.start, End: time.Now()}, err
	}
	return s.window(s.acc, s.base, s.start, time.Now()), err
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
// and starts a new one at the same point, under the reader's lock, so that
// every measurement falls in exactly one window.
func (s *storeReporter) ResetStats() store.StoreStats {
	st := s.r.reader.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := s.refresh(context.Background()); err != nil {
		otel.Handle(fmt.Errorf("store %q: %w", s.name, err))
	}
	now := time.Now()
	if s.acc == nil {
		return store.StoreStats{Start: s.start, End: now}
	}
	w := s.window(s.acc, s.base, s.start, now)
	s.base, s.start = s.acc.clone(), now
	return w
}

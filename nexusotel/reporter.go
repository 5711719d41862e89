package nexusotel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/store"
)

// Reporter maps a store's telemetry onto OpenTelemetry instruments and
// spans, and computes store.StoreStats from a StatsReader. One Reporter can
// serve many stores: each store binds it (store.Binder) and reports to a
// per-store reporter with all its attribute sets precomputed, so stores do
// not mix and the hot path allocates nothing. A Reporter is safe for
// concurrent use.
//
// Called directly rather than through a store, its MetricsReporter,
// OperationTracer and StatsProvider methods report for an unnamed store
// (nexus.store.name "").
type Reporter struct {
	cfg     config
	pipes   []*instruments // the recording pipeline first, then the private stats pipeline if any
	reader  *StatsReader   // where stats are read
	private *sdkmetric.MeterProvider
	tracers *tracers // nil when tracing is off

	mu     sync.Mutex
	byName map[string]*storeReporter

	// cacheStores are the stores observeCache reports: the live ones,
	// and cacheClosed closed ones that no collection has observed since.
	cacheMu     sync.Mutex
	cacheStores []*storeReporter
	cacheClosed int

	unboundOnce sync.Once
	unbound     *storeReporter
}

var (
	_ store.MetricsReporter = (*Reporter)(nil)
	_ store.Binder          = (*Reporter)(nil)
	_ store.OperationTracer = (*Reporter)(nil)
	_ store.StatsProvider   = (*Reporter)(nil)
	_ store.FeedReporter    = (*Reporter)(nil)

	_ store.MetricsReporter = (*storeReporter)(nil)
	_ store.OperationTracer = (*storeReporter)(nil)
	_ store.StatsProvider   = (*storeReporter)(nil)
	_ store.FeedReporter    = (*storeReporter)(nil)
)

// NewReporter returns a Reporter configured by opts.
//
// Where it records: on the MeterProvider of WithMeterProvider, else on the
// global one (otel.GetMeterProvider: free until the application installs a
// provider, and picked up when it does).
//
// Where Store.Stats reads: from the StatsReader of WithStatsReader, which
// the caller registered on that provider; without it, from a private
// pipeline (a MeterProvider of the reporter's own whose only reader is a
// StatsReader) that every measurement is also recorded on, so that Stats
// works with no exporter configured. The private pipeline has no exemplars
// and no cardinality limit (nexus's attributes are bounded). Recording into
// two pipelines costs a second record per measurement (nearly doubling the
// SDK's part); WithStatsReader avoids it (see Cost in the package
// documentation).
//
// It returns an error for invalid options (a reserved attribute key in
// WithAttributes, unordered WithBuckets) or instruments the provider
// refuses.
func NewReporter(opts ...Option) (*Reporter, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.statsReader != nil && (cfg.statsReader.ManualReader == nil || cfg.statsReader.st == nil) {
		return nil, errors.New("nexusotel: WithStatsReader: the StatsReader was not made by NewStatsReader")
	}
	mp := cfg.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	ins, err := newInstruments(mp, cfg.buckets, true)
	if err != nil {
		return nil, err
	}
	r := &Reporter{
		cfg:    cfg,
		pipes:  []*instruments{ins},
		reader: cfg.statsReader,
		byName: make(map[string]*storeReporter),
	}
	if r.reader == nil {
		r.reader = NewStatsReader()
		r.private = sdkmetric.NewMeterProvider(
			sdkmetric.WithReader(r.reader),
			sdkmetric.WithResource(resource.Empty()),
			sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
			sdkmetric.WithCardinalityLimit(0),
		)
		priv, err := newInstruments(r.private, cfg.buckets, false)
		if err != nil {
			return nil, err
		}
		r.pipes = append(r.pipes, priv)
	}
	r.registerCacheCounts()
	if cfg.tracing {
		r.tracers = newTracers(cfg.tp)
	}
	return r, nil
}

// Bind implements store.Binder: store.New calls it once per store. The
// per-store reporter it returns has every attribute set, option slice and
// span name precomputed, starts its figures at zero, and registers the
// store's observable gauges (cache entries, pending changes, oldest pending
// age, sample rate), which Binding.Release unregisters when the store
// closes.
//
// Live stores sharing a StatsReader (the reporter's private one, or the
// one of WithStatsReader, through however many reporters) must have
// distinct names: their series would be the same, so Bind refuses a second
// live store of a name with an error (Binding.Err), which store.New
// returns. A store of the name of a closed one is fine, and starts at zero.
func (r *Reporter) Bind(info store.StoreInfo) store.Binding {
	s := r.newStoreReporter(info.Name, info.SampleRate, info.Live, info.Backend)
	if err := r.reader.bind(s); err != nil {
		return store.Binding{Err: err}
	}
	s.registerGauges()
	r.watchCache(s)
	r.mu.Lock()
	r.byName[info.Name] = s
	r.mu.Unlock()
	return store.Binding{Reporter: s, Release: s.release}
}

// CollectStats returns the figures of the store named storeName bound to r
// (since its start or last ResetStats), as Store.Stats does, but with the
// error that Store.Stats can only pass to the OpenTelemetry error handler:
// a View that dropped an instrument or filtered out an attribute that
// Stats needs, a StatsReader not registered on the MeterProvider the
// reporter records on, a delta temporality. On such an error the returned
// figures are what could be computed. The name "" is the unnamed store of
// direct calls on r.
func (r *Reporter) CollectStats(ctx context.Context, storeName string) (store.StoreStats, error) {
	if storeName == "" {
		r.def()
	}
	r.mu.Lock()
	s := r.byName[storeName]
	r.mu.Unlock()
	if s == nil {
		return store.StoreStats{}, fmt.Errorf("nexusotel: no store named %q is bound to this reporter", storeName)
	}
	return s.CollectStats(ctx)
}

// def returns the reporter of the unnamed store, for direct calls on r.
func (r *Reporter) def() *storeReporter {
	r.unboundOnce.Do(func() {
		s := r.newStoreReporter("", 1, nil, store.BackendInfo{})
		if err := r.reader.bind(s); err != nil {
			s.refused = err // it still records; its Stats say why they are empty
		}
		r.watchCache(s)
		r.mu.Lock()
		r.byName[""] = s
		r.mu.Unlock()
		r.unbound = s
	})
	return r.unbound
}

// ReportOperation records m for the unnamed store.
func (r *Reporter) ReportOperation(ctx context.Context, m store.OperationMetric) {
	r.def().ReportOperation(ctx, m)
}

// ReportCacheEvent records m for the unnamed store.
func (r *Reporter) ReportCacheEvent(ctx context.Context, m store.CacheMetric) {
	r.def().ReportCacheEvent(ctx, m)
}

// ReportSyncEvent records m for the unnamed store.
func (r *Reporter) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	r.def().ReportSyncEvent(ctx, m)
}

// ReportFeedEvent records a change-feed event for the unnamed store.
func (r *Reporter) ReportFeedEvent(ctx context.Context, m store.FeedMetric) {
	r.def().ReportFeedEvent(ctx, m)
}

// ReportError records m for the unnamed store.
func (r *Reporter) ReportError(ctx context.Context, m store.ErrorMetric) {
	r.def().ReportError(ctx, m)
}

// Flush returns nil: a Reporter holds nothing of its own. Measurements live
// in the SDK's aggregations; exporting readers deliver them on their own
// schedule, and the MeterProvider's ForceFlush or Shutdown (the shutdown
// function otelsetup.Setup returns) delivers the rest. Store.Close therefore never
// waits on an exporter.
func (r *Reporter) Flush(context.Context) error { return nil }

// Stats returns the figures of the unnamed store (direct calls on r); a
// store's figures come from Store.Stats or CollectStats.
func (r *Reporter) Stats() store.StoreStats { return r.def().Stats() }

// ResetStats closes the window of the unnamed store and returns it.
func (r *Reporter) ResetStats() store.StoreStats { return r.def().ResetStats() }

// The sizes of the store's enumerations, found through their Valid methods
// so that a new value added to the store is not silently out of range.
var (
	numOps         = countValid[store.OperationType]()
	numPolicies    = countValid[store.Policy]()
	numCacheEvents = countValid[store.CacheEvent]()
	numSyncEvents  = countValid[store.SyncEvent]()
)

const numCacheResults = int(store.CacheResultMiss) + 1

// countValid returns the number of valid values of a dense enumeration
// that starts at 0.
func countValid[E interface {
	~uint8
	Valid() bool
}]() int {
	n := 0
	for n < 256 && E(n).Valid() {
		n++
	}
	return n
}

// isRead reports whether op is a read: it has a fetch policy and may be
// served by the cache.
func isRead(op store.OperationType) bool {
	switch op {
	case store.OpGet, store.OpGetAll, store.OpWatch, store.OpWatchAll:
		return true
	}
	return false
}

// policyApplies reports whether op can run under p, i.e. whether its series
// is worth precomputing.
func policyApplies(op store.OperationType, p store.Policy) bool {
	if p == store.PolicyNone {
		return true
	}
	if _, ok := p.Fetch(); ok {
		return isRead(op)
	}
	switch op {
	case store.OpSave, store.OpSaveAll, store.OpDelete, store.OpDeleteAll, store.OpTransaction:
		return true
	}
	return false
}

func opIndex(op store.OperationType, p store.Policy, cr store.CacheResult) (int, bool) {
	if int(op) >= numOps || int(p) >= numPolicies || int(cr) >= numCacheResults {
		return 0, false
	}
	return (int(op)*numPolicies+int(p))*numCacheResults + int(cr), true
}

// usage flags: which instruments a store has recorded on, so that Stats can
// tell "nothing yet" from "a View dropped it".
const (
	usedOperations = iota
	usedFailures   // an operation failed: its series carries error.type
	usedCacheEvents
	usedSyncEvents
	usedSyncItems
	usedErrors
	numUsed
)

// storeReporter is what Bind returns: the reporter of one store.
type storeReporter struct {
	r       *Reporter
	name    string
	rate    float64
	live    func() store.LiveStats
	backend store.BackendInfo
	pipes   []*instruments

	// Option slices, precomputed: the success series of operations (by
	// opIndex; nil for combinations that should not occur, which take the
	// slow path), cache events, sync events, sync outcomes, synced items,
	// successful backend calls, gauges.
	opOK [][]metric.RecordOption
	// cacheObs are the attributes of each cache-event count (numCacheEvents
	// slots, then the remote invalidations), counted in cacheCounts and
	// observed by cacheRegs' callbacks on every pipeline.
	cacheObs    [][]metric.ObserveOption
	cacheCounts stripedCounts
	feedOpts    [][]metric.AddOption
	lagOpts     []metric.RecordOption
	connOpts    [2][]metric.ObserveOption // idle, used
	syncOpts    [][]metric.AddOption
	syncDur     [2][]metric.RecordOption // completed, failed
	itemOpts    []metric.AddOption
	backendOK   [][]metric.RecordOption
	gaugeOpts   []metric.ObserveOption

	// The slow path: series keyed by error type (bounded, but not known in
	// advance), built on first use into a copy-on-write map that readers
	// load without locking or allocating.
	slowMu sync.Mutex
	slow   atomic.Pointer[map[seriesKey]series]

	// Span names and start options, nil when tracing is off; an operation
	// or backend call whose name is "" gets no span (WithSpanFilter).
	opSpanName      []string
	opSpanOpts      [][]trace.SpanStartOption // by op*numPolicies+policy
	backendSpanName []string
	backendSpanOpts [][]trace.SpanStartOption

	// used says which instruments the store has recorded on (set after
	// the recording), dirty whether it recorded since the reader's last
	// collection.
	used  [numUsed]atomic.Bool
	dirty atomic.Bool

	// Guarded by the reader's lock: the figures since Bind, the used flags
	// as the last collection found them, what collections have shown, and
	// the window ResetStats opened.
	acc     *rawStats
	usedAt  [numUsed]bool
	found   [numUsed]bool
	base    *rawStats // where the current window started; nil: at Bind
	start   time.Time
	refused error // the reader refused the unnamed store of direct calls
	errs    error // what the last refresh found wrong

	reg      metric.Registration
	released atomic.Bool
}

func (r *Reporter) newStoreReporter(name string, rate float64, live func() store.LiveStats, backend store.BackendInfo) *storeReporter {
	if !(rate > 0 && rate <= 1) { // also catches NaN
		rate = 1
	}
	s := &storeReporter{r: r, name: name, rate: rate, live: live, backend: backend, pipes: r.pipes, start: time.Now()}

	s.opOK = make([][]metric.RecordOption, numOps*numPolicies*numCacheResults)
	for op := store.OperationType(0); int(op) < numOps; op++ {
		for p := store.Policy(0); int(p) < numPolicies; p++ {
			if !policyApplies(op, p) {
				continue
			}
			for cr := store.CacheResult(0); int(cr) < numCacheResults; cr++ {
				if cr != store.CacheResultNone && !isRead(op) {
					continue
				}
				i, _ := opIndex(op, p, cr)
				s.opOK[i] = recordOpts(s.attrSet(operationAttrs(op, p, cr, "")...))
			}
		}
	}
	s.cacheObs = make([][]metric.ObserveOption, remoteSlot+1)
	for ev := range numCacheEvents {
		kvs := []attribute.KeyValue{KeyCacheEvent.String(store.CacheEvent(ev).String())}
		if store.CacheEvent(ev) == store.CacheInvalidation {
			kvs = append(kvs, KeyCacheOrigin.String("local"))
		}
		s.cacheObs[ev] = observeOpts(s.attrSet(kvs...))
	}
	s.cacheObs[remoteSlot] = observeOpts(s.attrSet(KeyCacheEvent.String(store.CacheInvalidation.String()), KeyCacheOrigin.String("remote")))
	s.feedOpts = make([][]metric.AddOption, len(feedEventKinds))
	for i, k := range feedEventKinds {
		s.feedOpts[i] = addOpts(s.attrSet(KeyFeedEvent.String(k.String())))
	}
	s.lagOpts = recordOpts(s.attrSet())
	for i, state := range []string{"idle", "used"} {
		s.connOpts[i] = []metric.ObserveOption{metric.WithAttributeSet(s.attrSet(keyConnState.String(state), keyPoolName.String(name)))}
	}
	s.syncOpts = make([][]metric.AddOption, numSyncEvents)
	for ev := range s.syncOpts {
		s.syncOpts[ev] = addOpts(s.attrSet(KeySyncEvent.String(store.SyncEvent(ev).String())))
	}
	s.syncDur[0] = recordOpts(s.attrSet(KeySyncOutcome.String("completed")))
	s.syncDur[1] = recordOpts(s.attrSet(KeySyncOutcome.String("failed")))
	s.itemOpts = addOpts(s.attrSet())
	s.backendOK = make([][]metric.RecordOption, numOps)
	for op := range s.backendOK {
		s.backendOK[op] = recordOpts(s.attrSet(KeyOperation.String(store.OperationType(op).String())))
	}
	s.gaugeOpts = []metric.ObserveOption{metric.WithAttributeSet(s.attrSet())}

	if r.tracers != nil {
		s.initSpans()
	}
	return s
}

func recordOpts(set attribute.Set) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(set)}
}

func addOpts(set attribute.Set) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(set)}
}

func observeOpts(set attribute.Set) []metric.ObserveOption {
	return []metric.ObserveOption{metric.WithAttributeSet(set)}
}

// remoteSlot is the cache-count slot of remote invalidations, after the
// numCacheEvents slots of the events.
var remoteSlot = numCacheEvents

// stripedCounts are the cache-event counts of one store, striped so that
// goroutines on different cores rarely add to the same cache line: a
// cache hit then costs an uncontended atomic add. A stripe is one 64-byte
// line of countSlots counters.
type stripedCounts struct {
	stripes [countStripes]struct {
		n [countSlots]atomic.Int64
	}
}

const (
	countStripes = 8
	countSlots   = 8 // the cache events and remote invalidations fit
)

func init() {
	if remoteSlot >= countSlots {
		panic("nexusotel: more cache events than count slots")
	}
}

func (c *stripedCounts) add(slot int) {
	c.stripes[rand.Uint32()%countStripes].n[slot].Add(1)
}

func (c *stripedCounts) sum(slot int) int64 {
	var n int64
	for i := range c.stripes {
		n += c.stripes[i].n[slot].Load()
	}
	return n
}

// cacheInto sets cache to the store's cache-event counts (an invalidation
// count takes the remote ones in).
func (s *storeReporter) cacheInto(cache []uint64) {
	for ev := range cache {
		cache[ev] = uint64(s.cacheCounts.sum(ev))
	}
	cache[store.CacheInvalidation] += uint64(s.cacheCounts.sum(remoteSlot))
}

// The cache-event counts of every store bound to r are observed by one
// callback on the recording pipeline (observeCache). A closed store stays
// in its list until a collection has observed its counts once more:
// counts made since the last export reach the application's final one
// (at shutdown, after Close). Stats reads the counts themselves
// (cacheInto), so its collections skip the callback.

// statsCollection marks the context of the collections Stats makes on a
// StatsReader: observeCache skips them, so closed stores waiting for an
// export cost Stats nothing, and only a collection that exports (or a
// caller's own StatsReader.Collect) counts as the one that observed a
// closed store's last counts.
type statsCollection struct{}

// maxLingering bounds the closed stores whose cache counts wait for a
// collection (a provider no reader collects would otherwise keep them
// all); beyond it the oldest are dropped, and their last counts miss an
// export that may never come.
const maxLingering = 1024

// registerCacheCounts registers observeCache on the recording pipeline.
func (r *Reporter) registerCacheCounts() {
	ins := r.pipes[0]
	if ins.cacheEvents == nil {
		return
	}
	if _, err := ins.meter.RegisterCallback(r.observeCache, ins.cacheEvents); err != nil {
		otel.Handle(fmt.Errorf("nexusotel: registering the cache-event counts: %w", err))
	}
}

// watchCache adds s to the stores observeCache reports.
func (r *Reporter) watchCache(s *storeReporter) {
	r.cacheMu.Lock()
	r.cacheStores = append(r.cacheStores, s)
	r.cacheMu.Unlock()
}

// closedCache notes that one of the watched stores closed, and drops the
// oldest closed ones beyond maxLingering.
func (r *Reporter) closedCache() {
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	r.cacheClosed++
	if r.cacheClosed <= maxLingering {
		return
	}
	kept := r.cacheStores[:0]
	for _, s := range r.cacheStores {
		if r.cacheClosed > maxLingering && s.released.Load() {
			r.cacheClosed--
			continue
		}
		kept = append(kept, s)
	}
	clear(r.cacheStores[len(kept):])
	r.cacheStores = kept
}

func (r *Reporter) observeCache(ctx context.Context, o metric.Observer) error {
	if ctx.Value(statsCollection{}) != nil {
		return nil
	}
	ins := r.pipes[0]
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	kept := r.cacheStores[:0]
	for _, s := range r.cacheStores {
		// Read before the counts: a store released by now made its last
		// count before, so this observation has them all.
		released := s.released.Load()
		for slot, opts := range s.cacheObs {
			if n := s.cacheCounts.sum(slot); n > 0 {
				o.ObserveInt64(ins.cacheEvents, n, opts...)
			}
		}
		if released {
			r.cacheClosed--
			continue
		}
		kept = append(kept, s)
	}
	clear(r.cacheStores[len(kept):])
	r.cacheStores = kept
	return nil
}

func (s *storeReporter) unregister(reg metric.Registration) {
	if reg == nil {
		return
	}
	if err := reg.Unregister(); err != nil {
		otel.Handle(fmt.Errorf("nexusotel: unregistering the instruments of store %q: %w", s.name, err))
	}
}

type seriesKind uint8

const (
	seriesOperation seriesKind = iota
	seriesError
	seriesBackend
)

// seriesKey names a series built on the slow path.
type seriesKey struct {
	kind        seriesKind
	op          store.OperationType
	policy      store.Policy
	cr          store.CacheResult
	errType     string
	recoverable bool
}

type series struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

// maxSlowSeries bounds the slow-path map. Error types are bounded by the
// program's error types, so it is not expected to fill; if it does, further
// series are built per call (correct, but allocating).
const maxSlowSeries = 4096

func (s *storeReporter) series(k seriesKey) series {
	if m := s.slow.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	s.slowMu.Lock()
	defer s.slowMu.Unlock()
	old := s.slow.Load()
	n := 0
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		n = len(*old)
	}
	var kvs []attribute.KeyValue
	switch k.kind {
	case seriesOperation:
		kvs = operationAttrs(k.op, k.policy, k.cr, k.errType)
	case seriesError:
		kvs = []attribute.KeyValue{
			KeyOperation.String(k.op.String()),
			KeyErrorType.String(k.errType),
			KeyRecoverable.Bool(k.recoverable),
		}
	case seriesBackend:
		kvs = []attribute.KeyValue{KeyOperation.String(k.op.String())}
		if k.errType != "" {
			kvs = append(kvs, KeyErrorType.String(k.errType))
		}
	}
	set := s.attrSet(kvs...)
	v := series{
		rec: []metric.RecordOption{metric.WithAttributeSet(set)},
		add: []metric.AddOption{metric.WithAttributeSet(set)},
	}
	if n >= maxSlowSeries {
		return v
	}
	m := make(map[seriesKey]series, n+1)
	if old != nil {
		maps.Copy(m, *old)
	}
	m[k] = v
	s.slow.Store(&m)
	return v
}

// errorType is store.ErrorType, never empty for a failure.
func errorType(err error) string {
	if t := store.ErrorType(err); t != "" {
		return t
	}
	return store.ErrorTypeOther
}

// mark notes, after a recording, which instrument was used; read-mostly,
// so that concurrent recordings do not contend on a cache line.
func (s *storeReporter) mark(i int) {
	if !s.used[i].Load() {
		s.used[i].Store(true)
	}
	if !s.dirty.Load() {
		s.dirty.Store(true)
	}
}

// ReportOperation records the operation's duration; the histogram's count
// is the operation count.
func (s *storeReporter) ReportOperation(ctx context.Context, m store.OperationMetric) {
	var opts []metric.RecordOption
	if m.Success {
		if i, ok := opIndex(m.Operation, m.Policy, m.CacheResult); ok {
			opts = s.opOK[i]
		}
		if opts == nil {
			opts = s.series(seriesKey{kind: seriesOperation, op: m.Operation, policy: m.Policy, cr: m.CacheResult}).rec
		}
	} else {
		opts = s.series(seriesKey{
			kind: seriesOperation, op: m.Operation, policy: m.Policy, cr: m.CacheResult,
			errType: errorType(m.Err),
		}).rec
	}
	v := m.Duration.Seconds()
	for _, p := range s.pipes {
		p.opDuration.Record(ctx, v, opts...)
	}
	s.mark(usedOperations)
	if !m.Success {
		s.mark(usedFailures)
	}
}

// ReportCacheEvent counts the event (see MetricCacheEvents).
func (s *storeReporter) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	if int(m.Event) >= numCacheEvents {
		return
	}
	slot := int(m.Event)
	if m.Remote && m.Event == store.CacheInvalidation {
		slot = remoteSlot
	}
	s.cacheCounts.add(slot)
	s.mark(usedCacheEvents)
}

// ReportSyncEvent counts the event and, for the end of a run, records its
// duration and the items it pushed.
func (s *storeReporter) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	if int(m.Event) >= len(s.syncOpts) {
		return
	}
	opts := s.syncOpts[m.Event]
	for _, p := range s.pipes {
		p.syncEvents.Add(ctx, 1, opts...)
	}
	s.mark(usedSyncEvents)
	if m.Event != store.SyncCompleted && m.Event != store.SyncFailed {
		return
	}
	dur := s.syncDur[0]
	if m.Event == store.SyncFailed {
		dur = s.syncDur[1]
	}
	v := m.Duration.Seconds()
	for _, p := range s.pipes {
		p.syncDuration.Record(ctx, v, dur...)
	}
	if m.ItemsSynced > 0 {
		n := int64(m.ItemsSynced)
		for _, p := range s.pipes {
			p.syncItems.Add(ctx, n, s.itemOpts...)
		}
		s.mark(usedSyncItems)
	}
}

// ReportError counts the error by operation, type and recoverability.
func (s *storeReporter) ReportError(ctx context.Context, m store.ErrorMetric) {
	opts := s.series(seriesKey{
		kind: seriesError, op: m.Operation, errType: errorType(m.Err), recoverable: m.Recoverable,
	}).add
	for _, p := range s.pipes {
		p.errors.Add(ctx, 1, opts...)
	}
	s.mark(usedErrors)
}

// feedEventKinds are the change-feed events, in FeedEventKind order.
var feedEventKinds = []store.FeedEventKind{store.FeedChanged, store.FeedReset, store.FeedError}

// ReportFeedEvent counts a change-feed event and records a change's lag.
func (s *storeReporter) ReportFeedEvent(ctx context.Context, m store.FeedMetric) {
	if int(m.Event) >= len(s.feedOpts) {
		return
	}
	for _, p := range s.pipes {
		p.feedEvents.Add(ctx, 1, s.feedOpts[m.Event]...)
	}
	if m.Event == store.FeedChanged && !m.Committed.IsZero() {
		v := m.Lag.Seconds()
		for _, p := range s.pipes {
			p.feedLag.Record(ctx, v, s.lagOpts...)
		}
	}
}

// Flush returns nil (see Reporter.Flush).
func (s *storeReporter) Flush(context.Context) error { return nil }

// recordBackend records a backend call's duration. A backend's ErrNotFound
// is an answer, not a failure.
func (s *storeReporter) recordBackend(ctx context.Context, end store.BackendCallEnd) {
	var opts []metric.RecordOption
	if (end.Err == nil || errors.Is(end.Err, store.ErrNotFound)) && int(end.Operation) < len(s.backendOK) {
		opts = s.backendOK[end.Operation]
	} else {
		var et string
		if end.Err != nil && !errors.Is(end.Err, store.ErrNotFound) {
			et = errorType(end.Err)
		}
		opts = s.series(seriesKey{kind: seriesBackend, op: end.Operation, errType: et}).rec
	}
	v := end.Duration.Seconds()
	for _, p := range s.pipes {
		p.backendDuration.Record(ctx, v, opts...)
	}
}

// registerGauges registers the store's observable gauges on the recording
// pipeline.
func (s *storeReporter) registerGauges() {
	ins := s.pipes[0]
	if ins.sampleRate == nil {
		return
	}
	reg, err := ins.meter.RegisterCallback(s.observe,
		ins.cacheEntries, ins.pendingChanges, ins.pendingAge, ins.sampleRate,
		ins.connCount, ins.connMax, ins.connTimeouts)
	if err != nil {
		otel.Handle(fmt.Errorf("nexusotel: registering the gauges of store %q: %w", s.name, err))
		return
	}
	s.reg = reg
}

func (s *storeReporter) observe(_ context.Context, o metric.Observer) error {
	if s.released.Load() {
		return nil
	}
	ins := s.pipes[0]
	o.ObserveFloat64(ins.sampleRate, s.rate, s.gaugeOpts...)
	if s.live == nil {
		return nil
	}
	l := s.live()
	o.ObserveInt64(ins.cacheEntries, int64(l.CacheEntries), s.gaugeOpts...)
	o.ObserveInt64(ins.pendingChanges, int64(l.PendingChanges), s.gaugeOpts...)
	age := 0.0
	if !l.OldestPending.IsZero() {
		age = math.Max(0, time.Since(l.OldestPending).Seconds())
	}
	o.ObserveFloat64(ins.pendingAge, age, s.gaugeOpts...)
	if l.HasPool {
		o.ObserveInt64(ins.connCount, int64(l.Pool.Idle), s.connOpts[0]...)
		o.ObserveInt64(ins.connCount, int64(l.Pool.Used), s.connOpts[1]...)
		o.ObserveInt64(ins.connMax, int64(l.Pool.Max), s.gaugeOpts...)
		o.ObserveInt64(ins.connTimeouts, l.Pool.Timeouts, s.gaugeOpts...)
	}
	return nil
}

// release is the Binding's Release: it unregisters the gauges (the store's
// Live callback must not be called after it), unbinds the store from the
// StatsReader (its series leave the reader at the next collection) and
// forgets it.
func (s *storeReporter) release() {
	if s.released.Swap(true) {
		return
	}
	s.unregister(s.reg)
	r := s.r
	r.reader.unbind(s)
	r.closedCache() // its cache counts wait for one more collection
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName[s.name] == s {
		delete(r.byName, s.name)
	}
}

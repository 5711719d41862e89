package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a repository of items of type T keyed by ID, with a local cache in
// front of a Backend. All methods are safe for concurrent use.
type Store[T any, ID comparable] struct {
	cfg     Config[T, ID]
	backend Backend[T, ID]
	vb      VersionedBackend[T, ID] // nil unless backend has versions
	txb     TxBackend[T, ID]        // nil unless backend has transactions

	cache   *cache[T, ID]
	flight  flightGroup[ID, Versioned[T]]
	refresh *refresher[T, ID]
	tel     *telemetry

	// idLocks serialize the writes of one ID (cache, backend and pending
	// queue in one order); striped, so unrelated IDs rarely contend.
	idLocks [64]sync.Mutex
	seed    maphash.Seed

	gate    gate // writes in flight; Close waits for them
	closed  atomic.Bool
	closing chan struct{}
	// bg is cancelled by Close: background refreshes and syncs run under it.
	bg       context.Context
	cancelBg context.CancelFunc
	bgDone   sync.WaitGroup
	closeMu  sync.Mutex

	syncMu  sync.Mutex // one Sync run at a time
	syncing atomic.Bool

	stopFeed func() // ends the change-feed subscription; nil without one
}

// New returns a store over backend. A bad cfg is an error naming the field
// (matching ErrInvalidConfig); New never panics on bad input.
func New[T any, ID comparable](backend Backend[T, ID], cfg Config[T, ID]) (*Store[T, ID], error) {
	if isNil(backend) {
		return nil, &ConfigError{"backend", fmt.Sprintf("is nil (%T)", backend)}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = defaultName[T]()
	}
	if cfg.RefreshWorkers == 0 {
		cfg.RefreshWorkers = DefaultRefreshWorkers
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	cfg.Retry = cfg.Retry.withDefaults()
	s := &Store[T, ID]{
		cfg:     cfg,
		backend: backend,
		cache:   newCache[T, ID](cfg.CacheTTL, cfg.NotFoundTTL, cfg.MaxCacheSize),
		seed:    maphash.MakeSeed(),
		closing: make(chan struct{}),
	}
	s.vb, _ = backend.(VersionedBackend[T, ID])
	s.txb, _ = backend.(TxBackend[T, ID])
	s.bg, s.cancelBg = context.WithCancel(context.Background())
	var info BackendInfo
	if d, ok := backend.(DescribedBackend); ok {
		info = d.BackendInfo()
	}
	tel, err := newTelemetry(cfg.MetricsReporter, cfg.Metrics, cfg.Name, info, cfg.ErrorHandler, s.Live)
	if err != nil {
		s.cancelBg()
		return nil, err
	}
	s.tel = tel
	s.refresh = newRefresher(s, cfg.RefreshWorkers)
	if cf, ok := backend.(ChangeFeed[ID]); ok {
		if err := s.subscribeFeed(cf); err != nil {
			s.cancelBg()
			s.tel.releaseBinding()
			return nil, err
		}
	}
	if cfg.SyncInterval > 0 {
		s.bgDone.Add(1)
		go s.syncLoop(cfg.SyncInterval)
	}
	return s, nil
}

// isNil reports whether b is nil or holds a nil pointer, map, func or chan
// (such as the nil *sqlite.Backend of a failed Open whose error was
// ignored), which would panic on first use.
func isNil(b any) bool {
	if b == nil {
		return true
	}
	switch v := reflect.ValueOf(b); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// Name returns the store's name, as reported in metrics.
func (s *Store[T, ID]) Name() string { return s.cfg.Name }

// Stats returns the aggregated telemetry of the reporter, if it implements
// StatsProvider (nexusotel.Reporter does; so does reporters.NewStats), and
// the zero StoreStats otherwise.
func (s *Store[T, ID]) Stats() StoreStats {
	if s.tel.stats == nil {
		return StoreStats{}
	}
	var st StoreStats
	s.tel.guard("Stats", func() { st = s.tel.stats.Stats() })
	return st
}

// ResetStats returns the window of figures it closes and starts a new one,
// atomically (see StatsProvider). It returns the zero StoreStats when the
// reporter does not aggregate.
func (s *Store[T, ID]) ResetStats() StoreStats {
	if s.tel.stats == nil {
		return StoreStats{}
	}
	var st StoreStats
	s.tel.guard("ResetStats", func() { st = s.tel.stats.ResetStats() })
	return st
}

// Live returns the store's current figures: cache entries, pending changes,
// the age of the oldest pending change, reporter panics, and the backend's
// connection pool figures if it has a pool (PooledBackend).
func (s *Store[T, ID]) Live() LiveStats {
	c := s.cache
	c.lock()
	l := LiveStats{CacheEntries: len(c.m), PendingChanges: c.pending.n, OldestPending: c.pending.oldest()}
	c.unlock()
	l.ReporterPanics = s.tel.panics.Load()
	if pb, ok := s.backend.(PooledBackend); ok {
		l.Pool, l.HasPool = pb.ConnPoolStats(), true
	}
	return l
}

// lockID locks the writes of id and returns the unlock function.
func (s *Store[T, ID]) lockID(id ID) *sync.Mutex {
	mu := &s.idLocks[maphash.Comparable(s.seed, id)%uint64(len(s.idLocks))]
	mu.Lock()
	return mu
}

// lockIDs locks the stripes of several IDs in a fixed order (no deadlock
// between two batches) and returns a function that unlocks them.
func (s *Store[T, ID]) lockIDs(ids []ID) func() {
	idx := make([]int, 0, len(ids))
	for _, id := range ids {
		idx = append(idx, int(maphash.Comparable(s.seed, id)%uint64(len(s.idLocks))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.idLocks[i].Lock()
	}
	return func() {
		for _, i := range idx {
			s.idLocks[i].Unlock()
		}
	}
}

// boxID returns id as an interface value for reporters that asked for IDs,
// and nil (without boxing) otherwise.
func (s *Store[T, ID]) boxID(id ID) any {
	if s.tel.wantIDs {
		return id
	}
	return nil
}

func (s *Store[T, ID]) cacheEvent(o *op, ev CacheEvent, id ID, tags []string) {
	if o != nil && o.sampled {
		o.cacheEvent(ev, s.boxID(id), tags)
	}
}

// unsampledEvent reports an event that belongs to no operation (eviction,
// invalidation, expiration): never sampled.
func (s *Store[T, ID]) unsampledEvent(ctx context.Context, ev CacheEvent, id ID, tags []string) {
	if !s.tel.on {
		return
	}
	s.tel.reportCache(ctx, CacheMetric{Event: ev, ItemID: s.boxID(id), Tags: tags, SampleRate: 1, Timestamp: s.tel.now()})
}

func (s *Store[T, ID]) reportEvicted(ctx context.Context, ev CacheEvent, es []idTags[ID]) {
	for _, e := range es {
		s.unsampledEvent(ctx, ev, e.id, e.tags)
	}
}

// reportInvalidated reports the entries writes dropped as they settled.
func (s *Store[T, ID]) reportInvalidated(ctx context.Context, inv []invalidated[ID]) {
	if !s.tel.on {
		return
	}
	for _, d := range inv {
		s.tel.reportCache(ctx, CacheMetric{Event: CacheInvalidation, Remote: d.remote, ItemID: s.boxID(d.id), Tags: d.tags, SampleRate: 1, Timestamp: s.tel.now()})
	}
}

// background reports a failure that has no caller: to telemetry (as a
// recovered error of kind) and to the ErrorHandler.
func (s *Store[T, ID]) background(ctx context.Context, err error, kind OperationType, id any) {
	if s.tel.on {
		s.tel.reportError(ctx, s.tel.errorMetric(err, kind, true, id, time.Time{}))
	}
	s.tel.handleError(err)
}

// Invalidate drops id's cache entry, unless it holds an unsynced change: a
// read that starts after Invalidate returns asks the backend (or is
// answered by the unsynced change), and a backend read already in flight
// does not fill the entry again.
func (s *Store[T, ID]) Invalidate(id ID) {
	ev := s.cache.invalidate(func(yield func(*entry[T, ID]) bool) {
		if e := s.cache.m[id]; e != nil {
			yield(e)
		} else {
			s.cache.dropped(id) // a read in flight must not fill what it read before
		}
	})
	s.reportEvicted(context.Background(), CacheInvalidation, ev)
}

// InvalidateTags drops the cache entries that carry any of tags, except
// those holding unsynced changes.
func (s *Store[T, ID]) InvalidateTags(tags ...string) {
	ev := s.cache.invalidate(func(yield func(*entry[T, ID]) bool) {
		var picked []*entry[T, ID]
		for _, t := range tags {
			for id := range s.cache.tags[t] {
				if e := s.cache.m[id]; e != nil && !slices.Contains(picked, e) {
					picked = append(picked, e)
				}
			}
		}
		for _, e := range picked {
			yield(e)
		}
	})
	s.reportEvicted(context.Background(), CacheInvalidation, ev)
}

// InvalidateAll drops every cache entry except those holding unsynced
// changes.
func (s *Store[T, ID]) InvalidateAll() {
	ev := s.cache.invalidate(func(yield func(*entry[T, ID]) bool) {
		s.cache.droppedAll()
		for _, e := range s.cache.m {
			yield(e)
		}
	})
	s.reportEvicted(context.Background(), CacheInvalidation, ev)
}

// Close stops the store: new operations fail with ErrClosed, background
// refreshes are cancelled, the sync interval stops, Watch sequences end. It
// waits for writes in flight, tries a final Sync of pending changes within
// ctx, and flushes the reporter (it does not shut the reporter down: whoever
// created it owns it). If changes remain unsynced it returns an
// *UnsyncedError listing them; they stay listed by PendingChanges. Close is
// idempotent: later calls return nil.
func (s *Store[T, ID]) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	close(s.closing)
	var errs []error
	select {
	case <-s.gate.close():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("store: close: waiting for writes in flight: %w", ctx.Err()))
	}
	s.cancelBg()
	if s.stopFeed != nil {
		s.stopFeed()
	}
	s.bgDone.Wait()
	s.refresh.wait()

	if s.cache.pendingCount() > 0 && ctx.Err() == nil {
		o, sctx := s.tel.start(ctx, OpSync, PolicyNone, false)
		n, err := s.syncRun(sctx, o, nil)
		o.endN(err, n)
	}
	if ids := s.cache.pendingIDs(); len(ids) > 0 {
		errs = append(errs, &UnsyncedError[ID]{IDs: ids})
	}
	if err := s.tel.flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("store: close: flushing the metrics reporter: %w", err))
	}
	s.tel.releaseBinding()
	return errors.Join(errs...)
}

// UnsyncedError is returned by Close when write-behind changes could not be
// pushed; match it with errors.As. The changes stay listed by
// PendingChanges.
type UnsyncedError[ID comparable] struct {
	IDs []ID
}

func (e *UnsyncedError[ID]) Error() string {
	const show = 3
	ids := make([]string, 0, show)
	for _, id := range e.IDs[:min(show, len(e.IDs))] {
		ids = append(ids, fmt.Sprint(id))
	}
	more := ""
	if len(e.IDs) > show {
		more = fmt.Sprintf(" and %d more", len(e.IDs)-show)
	}
	noun := "changes remain"
	if len(e.IDs) == 1 {
		noun = "change remains"
	}
	return fmt.Sprintf("store: %d %s unsynced: %s%s", len(e.IDs), noun, strings.Join(ids, ", "), more)
}

// gate counts writes in flight so that Close can wait for them.
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// close refuses new entries and returns a channel closed once none are in.
func (g *gate) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	ch := make(chan struct{})
	if g.n == 0 {
		close(ch)
	} else {
		g.zero = ch
	}
	return ch
}

package store

import (
	"context"
	"errors"
	"fmt"
)

// rejected reports an operation refused for its arguments (one failed
// OperationMetric, with no policy: a bad one is not a bounded attribute)
// and returns err.
func (s *Store[T, ID]) rejected(ctx context.Context, kind OperationType, err error) error {
	if s.tel.on {
		var o op
		s.tel.begin(&o, ctx, kind, PolicyNone, false)
		o.end(err, CacheResultNone, 0, nil)
	}
	return err
}

func notFound[ID comparable](id ID) error { return fmt.Errorf("%w: id %v", ErrNotFound, id) }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (s *Store[T, ID]) readOptions(opts []ReadOption) (readOptions, error) {
	ro := readOptions{policy: s.cfg.FetchPolicy}
	for _, o := range opts {
		switch o := o.(type) {
		case nil:
		case fetchPolicyOption: // the common one, without the interface call that would make ro escape
			ro.policy, ro.hasPolicy = FetchPolicy(o), true
		default:
			tmp := ro // escapes through the interface call; ro does not
			o.applyRead(&tmp)
			ro = tmp
		}
	}
	if !ro.policy.valid() {
		return ro, fmt.Errorf("%w: WithFetchPolicy: unknown policy %v", ErrInvalidArgument, ro.policy)
	}
	return ro, nil
}

// Get returns the item with the given ID under the fetch policy in effect
// (Config.FetchPolicy, or WithFetchPolicy). An absent item is an error
// matching ErrNotFound. Reads see the store's own unsynced writes.
func (s *Store[T, ID]) Get(ctx context.Context, id ID, opts ...ReadOption) (T, error) {
	policy := s.cfg.FetchPolicy
	if len(opts) > 0 {
		ro, err := s.readOptions(opts)
		if err != nil {
			var zero T
			return zero, s.rejected(ctx, OpGet, err)
		}
		policy = ro.policy
	}
	if !s.tel.on {
		if s.closed.Load() {
			var zero T
			return zero, ErrClosed
		}
		v, _, err := s.get(ctx, id, policy, nil)
		return v, err
	}
	var o op
	s.tel.begin(&o, ctx, OpGet, policy.Policy(), false)
	var v T
	var cr CacheResult
	err := ErrClosed
	if !s.closed.Load() {
		v, cr, err = s.get(o.ctx, id, policy, &o)
	}
	n := 0
	if err == nil {
		n = 1
	}
	o.end(err, cr, n, s.boxID(id))
	return v, err
}

// get is Get under a given policy; o is nil when nobody listens.
func (s *Store[T, ID]) get(ctx context.Context, id ID, policy FetchPolicy, o *op) (T, CacheResult, error) {
	var zero T
	if policy == FetchNetworkOnly || policy == FetchNetworkFirst {
		v, err := s.readThrough(ctx, id, o, true)
		if policy == FetchNetworkOnly || err == nil || isNotFound(err) || ctx.Err() != nil {
			return v, CacheResultNone, err
		}
		// Network-first: the backend failed; fall back to any cached value.
		l := s.cache.get(id)
		s.expired(ctx, l, id)
		if l.state == stateAbsent {
			s.cacheEvent(o, CacheMiss, id, nil)
			return zero, CacheResultMiss, err
		}
		s.cacheEvent(o, CacheHit, id, nil)
		o.recovered(err, OpGet, s.boxID(id))
		if l.deleted {
			return zero, CacheResultHit, notFound(id)
		}
		return l.value, CacheResultHit, nil
	}

	l := s.cache.get(id)
	if l.firstExpiry {
		s.expired(ctx, l, id)
	}
	served := l.state == stateFresh || (l.state == stateStale && policy != FetchCacheFirst)
	if served {
		if o != nil {
			o.served(s.boxID(id))
		}
		if policy == FetchCacheAndNetwork || (policy == FetchStaleWhileRevalidate && l.state == stateStale) {
			s.refresh.schedule(o, refreshKey[ID]{id: id})
		}
		if l.deleted {
			return zero, CacheResultHit, notFound(id)
		}
		return l.value, CacheResultHit, nil
	}
	s.cacheEvent(o, CacheMiss, id, nil)
	if policy == FetchCacheOnly {
		return zero, CacheResultMiss, notFound(id)
	}
	v, err := s.readThrough(ctx, id, o, false)
	return v, CacheResultMiss, err
}

// expired reports the expiration a lookup detected.
func (s *Store[T, ID]) expired(ctx context.Context, l lookup[T], id ID) {
	if l.firstExpiry {
		s.unsampledEvent(ctx, CacheExpiration, id, nil)
	}
}

// readThrough reads id from the backend, sharing the call with concurrent
// readers of the same ID, and fills the cache. A network read (own) makes
// its own call: a call in flight started before it, maybe before a write
// of another replica that returned before this read started and that the
// store has not heard of yet (FetchNetworkOnly and FetchNetworkFirst
// promise the latest committed value).
func (s *Store[T, ID]) readThrough(ctx context.Context, id ID, o *op, own bool) (T, error) {
	// The shared call's closure captures the op: it gets a copy, so that
	// the caller's op stays on its stack and a cache hit allocates nothing.
	var shared *op
	if o != nil {
		c := *o
		shared = &c
	}
	if own {
		v, err := s.fetch(ctx, id, shared, false)
		return v.Item, err
	}
	for {
		// A read joins a backend read of id in flight only if nothing
		// changed id since that read started: one that started before a
		// write this caller saw complete may return the older value.
		v, err, leader := s.flight.do(ctx, id, s.cache.seq.Load(), func(tag uint64) bool {
			return !s.cache.changedSince(id, tag)
		}, func() (Versioned[T], error) {
			return s.fetch(ctx, id, shared, false)
		})
		if err != nil && !leader && isContextErr(err) && ctx.Err() == nil {
			continue // the leader's context ended, not ours: read again
		}
		return v.Item, err
	}
}

// fetch reads id from the backend and fills the cache. It returns the item
// as the store sees it: an unsynced or in-flight local write of id wins
// over the backend's value.
func (s *Store[T, ID]) fetch(ctx context.Context, id ID, o *op, background bool) (Versioned[T], error) {
	startSeq := s.cache.seq.Load()
	startLocal := s.cache.localView(id)
	bc := o.startBackend(ctx, OpGet, background)
	v, known, err := s.backendGet(bc.ctx, id)
	bc.end(err)
	absent := isNotFound(err)
	if err != nil && !absent {
		return v, err
	}
	c := s.cache
	var ev []idTags[ID]
	var e *entry[T, ID]
	wrote := false
	c.lock()
	if absent {
		c.fillAbsent(id, startSeq, &ev)
		e = c.m[id]
	} else {
		e, wrote = c.fill(id, v, known, startSeq, &ev)
	}
	// A background refresh whose answer could not land on an uncached ID
	// (it was dropped while the read was in flight) tells the refresher,
	// which reads again if someone watches the ID.
	refused := background && e == nil && c.droppedSince(id, startSeq)
	var tags []string
	if e != nil {
		tags = e.tags
	}
	switch {
	case e != nil && e.local():
		absent, v = e.deleted, Versioned[T]{Item: e.value}
	case startLocal != nil:
		// The local write the read started with reached the backend (or
		// was undone) meanwhile: the backend's answer may predate it.
		absent, v = startLocal.deleted, Versioned[T]{Item: startLocal.value}
	}
	c.unlock()
	if wrote {
		s.cacheEvent(o, CacheWrite, id, tags)
	}
	s.reportEvicted(ctx, CacheEviction, ev)
	if refused {
		return Versioned[T]{}, errRefused
	}
	if absent {
		return Versioned[T]{}, notFound(id)
	}
	return v, nil
}

// backendGet reads id from the backend; its failures are *BackendErrors,
// an absent item an error matching ErrNotFound.
func (s *Store[T, ID]) backendGet(ctx context.Context, id ID) (Versioned[T], bool, error) {
	if s.vb != nil {
		v, err := s.vb.GetVersioned(ctx, id)
		return v, true, backendErr(OpGet, err)
	}
	item, err := s.backend.Get(ctx, id)
	return Versioned[T]{Item: item}, false, backendErr(OpGet, err)
}

// GetAll returns the items that match the query options (WithFilter,
// WithLimit) under the fetch policy in effect. A full listing read from the
// backend marks the cache complete until TTL or invalidation, and cache
// policies then answer listings from the cache; a filter applies to
// whichever source answered. Items come in the backend's order.
func (s *Store[T, ID]) GetAll(ctx context.Context, opts ...ReadOption) ([]T, error) {
	ro, err := s.readOptions(opts)
	var q Query[T]
	if err == nil {
		q, err = query[T](&ro)
	}
	if err != nil {
		return nil, s.rejected(ctx, OpGetAll, err)
	}
	if !s.tel.on {
		if s.closed.Load() {
			return nil, ErrClosed
		}
		items, _, err := s.getAll(ctx, q, ro.policy, nil)
		return items, err
	}
	var o op
	s.tel.begin(&o, ctx, OpGetAll, ro.policy.Policy(), false)
	var items []T
	var cr CacheResult
	err = ErrClosed
	if !s.closed.Load() {
		items, cr, err = s.getAll(o.ctx, q, ro.policy, &o)
	}
	o.end(err, cr, len(items), nil)
	return items, err
}

func (s *Store[T, ID]) getAll(ctx context.Context, q Query[T], policy FetchPolicy, o *op) ([]T, CacheResult, error) {
	if policy == FetchNetworkOnly || policy == FetchNetworkFirst {
		items, err := s.listThrough(ctx, q, o, false)
		if policy == FetchNetworkOnly || err == nil || ctx.Err() != nil {
			return items, CacheResultNone, err
		}
		cached, complete, _ := s.cache.listing(q)
		if !complete {
			o.cacheEvent(CacheMiss, nil, nil)
			return nil, CacheResultMiss, err
		}
		o.cacheEvent(CacheHit, nil, nil)
		o.recovered(err, OpGetAll, nil)
		return cached, CacheResultHit, nil
	}
	complete, fresh := s.cache.listState()
	served := complete && (fresh || policy != FetchCacheFirst)
	if served || policy == FetchCacheOnly {
		items, complete, _ := s.cache.listing(q)
		if complete {
			o.cacheEvent(CacheHit, nil, nil)
			if policy == FetchCacheAndNetwork || (policy == FetchStaleWhileRevalidate && !fresh) {
				s.refresh.schedule(o, refreshKey[ID]{all: true})
			}
			return items, CacheResultHit, nil
		}
		if policy == FetchCacheOnly {
			o.cacheEvent(CacheMiss, nil, nil)
			return items, CacheResultMiss, nil
		}
	}
	o.cacheEvent(CacheMiss, nil, nil)
	items, err := s.listThrough(ctx, q, o, false)
	return items, CacheResultMiss, err
}

// listThrough reads a listing from the backend and fills the cache.
//
// Local changes (unsynced or in flight) are overlaid on what the backend
// returns; for that a filtered or limited query is widened: the filter also
// lets the local IDs through (their local values decide), and the limit
// grows by their number, since each can hide at most one backend item.
func (s *Store[T, ID]) listThrough(ctx context.Context, q Query[T], o *op, background bool) ([]T, error) {
	startSeq := s.cache.seq.Load()
	startLocal := s.cache.localViews()
	bq := q
	if q.Filter != nil || q.Limit > 0 {
		if local := s.cache.localIDs(); local != nil {
			idOf := s.cfg.IDOf
			bq.Filter = func(it T) bool {
				_, ok := local[idOf(it)]
				return ok || q.Match(it)
			}
			if q.Limit > 0 {
				bq.Limit = q.Limit + len(local)
			}
		}
	}
	bc := o.startBackend(ctx, OpGetAll, background)
	var vs []Versioned[T]
	var err error
	known := s.vb != nil
	if known {
		vs, err = s.vb.GetAllVersioned(bc.ctx, bq)
	} else {
		var items []T
		items, err = s.backend.GetAll(bc.ctx, bq)
		vs = make([]Versioned[T], len(items))
		for i, it := range items {
			vs[i].Item = it
		}
	}
	bc.end(err)
	if err != nil {
		return nil, backendErr(OpGetAll, err)
	}
	var ev []idTags[ID]
	full := q.Filter == nil && q.Limit == 0
	out, wrote := s.cache.fillListing(vs, known, s.cfg.IDOf, q, full, startSeq, startLocal, &ev)
	for _, w := range wrote {
		s.cacheEvent(o, CacheWrite, w.id, w.tags)
	}
	s.reportEvicted(ctx, CacheEviction, ev)
	return out, nil
}

package store

import (
	"context"
	"iter"
	"math"
	"slices"
	"sync"
)

// Change is one state of a watched item.
type Change[T any] struct {
	// Value is the item; zero when Deleted.
	Value T
	// Deleted is set when the item does not exist: it was deleted, or it was
	// absent when the watch opened.
	Deleted bool
}

// watchers is the cache's registry of watchers, guarded by cache.mu.
type watchers[T any, ID comparable] struct {
	byID map[ID][]*watcher[T, ID]
	all  []*watcher[T, ID]
	n    int
}

// notify hands a change to the watchers of id; it never blocks. order is
// the entry's listing order.
func (ws *watchers[T, ID]) notify(id ID, v T, deleted bool, order uint64) {
	if ws.n == 0 {
		return
	}
	for _, w := range ws.byID[id] {
		w.push(id, v, deleted, order)
	}
	for _, w := range ws.all {
		w.push(id, v, deleted, order)
	}
}

// watching reports whether anyone watches id (a WatchAll watches all).
func (ws *watchers[T, ID]) watching(id ID) bool {
	return len(ws.all) > 0 || len(ws.byID[id]) > 0
}

func (ws *watchers[T, ID]) add(w *watcher[T, ID]) {
	ws.n++
	if w.all {
		ws.all = append(ws.all, w)
		return
	}
	if ws.byID == nil {
		ws.byID = make(map[ID][]*watcher[T, ID])
	}
	ws.byID[w.id] = append(ws.byID[w.id], w)
}

func (ws *watchers[T, ID]) remove(w *watcher[T, ID]) {
	ws.n--
	if w.all {
		ws.all = slices.DeleteFunc(ws.all, func(x *watcher[T, ID]) bool { return x == w })
		return
	}
	l := slices.DeleteFunc(ws.byID[w.id], func(x *watcher[T, ID]) bool { return x == w })
	if len(l) == 0 {
		delete(ws.byID, w.id)
	} else {
		ws.byID[w.id] = l
	}
}

// watcher is one subscription's mailbox: changes coalesce (the latest per
// ID wins), so a slow consumer never blocks a writer and memory stays
// bounded by the number of IDs.
type watcher[T any, ID comparable] struct {
	id     ID
	all    bool
	signal chan struct{}

	mu     sync.Mutex
	last   Change[T] // single-ID watchers
	has    bool
	deltas map[ID]delta[T] // WatchAll watchers
}

type delta[T any] struct {
	Change[T]
	order uint64
}

func (w *watcher[T, ID]) push(id ID, v T, deleted bool, order uint64) {
	w.mu.Lock()
	if w.all {
		w.deltas[id] = delta[T]{Change[T]{Value: v, Deleted: deleted}, order}
	} else {
		w.last, w.has = Change[T]{Value: v, Deleted: deleted}, true
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watcher[T, ID]) take() (Change[T], bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.last, w.has
	w.has = false
	return c, ok
}

func (w *watcher[T, ID]) takeAll() map[ID]delta[T] {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deltas
	if len(d) == 0 {
		// Not the map push writes to: the caller reads what it gets
		// without the lock.
		return nil
	}
	w.deltas = make(map[ID]delta[T])
	return d
}

func (s *Store[T, ID]) subscribe(w *watcher[T, ID]) func() {
	s.cache.lock()
	s.cache.watchers.add(w)
	s.cache.unlock()
	return func() {
		s.cache.lock()
		s.cache.watchers.remove(w)
		s.cache.unlock()
	}
}

// Watch returns a sequence of the states of the item with the given ID: its
// current state (read under the fetch policy in effect), then every change
// made through the store or by a background refresh, deletions included
// (Change.Deleted). A slow consumer sees the latest state, never a backlog;
// writers never wait for it. The sequence ends when ctx is done or the loop
// stops; if the store is closed it yields ErrClosed and ends. If the first
// read fails, it yields that error and ends. Nothing runs in the background:
// the subscription lives in the caller's loop.
func (s *Store[T, ID]) Watch(ctx context.Context, id ID, opts ...ReadOption) iter.Seq2[Change[T], error] {
	return func(yield func(Change[T], error) bool) {
		ro, err := s.readOptions(opts)
		if err != nil {
			yield(Change[T]{}, s.rejected(ctx, OpWatch, err))
			return
		}
		o, octx := s.tel.start(ctx, OpWatch, ro.policy.Policy(), false)
		if s.closed.Load() {
			o.end(ErrClosed, CacheResultNone, 0, s.boxID(id))
			yield(Change[T]{}, ErrClosed)
			return
		}
		w := &watcher[T, ID]{id: id, signal: make(chan struct{}, 1)}
		defer s.subscribe(w)()
		v, cr, err := s.get(octx, id, ro.policy, o)
		cur := Change[T]{Value: v}
		n := 1
		if isNotFound(err) {
			cur, n = Change[T]{Deleted: true}, 0
		}
		o.end(err, cr, n, s.boxID(id))
		if err != nil && !isNotFound(err) {
			yield(Change[T]{}, err)
			return
		}
		if c, ok := w.take(); ok {
			cur = c
		}
		if !yield(cur, nil) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				yield(Change[T]{}, ErrClosed)
				return
			case <-w.signal:
				if c, ok := w.take(); ok && !yield(c, nil) {
					return
				}
			}
		}
	}
}

// WatchAll returns a sequence of listings: the current one (read under the
// fetch policy in effect, with the query options), then a new one after
// every change to an item, made through the store or found by a refresh.
// The filter and limit apply to every listing; items keep the order of the
// cache's listing (the backend's, new items last). Slow consumers see the latest listing;
// the sequence ends as Watch's does.
func (s *Store[T, ID]) WatchAll(ctx context.Context, opts ...ReadOption) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		ro, err := s.readOptions(opts)
		var q Query[T]
		if err == nil {
			q, err = query[T](&ro)
		}
		if err != nil {
			yield(nil, s.rejected(ctx, OpWatchAll, err))
			return
		}
		o, octx := s.tel.start(ctx, OpWatchAll, ro.policy.Policy(), false)
		if s.closed.Load() {
			o.end(ErrClosed, CacheResultNone, 0, nil)
			yield(nil, ErrClosed)
			return
		}
		w := &watcher[T, ID]{all: true, signal: make(chan struct{}, 1), deltas: make(map[ID]delta[T])}
		defer s.subscribe(w)()
		// The view keeps every matching item; the limit applies per listing,
		// so that a deletion lets the next item in.
		items, cr, err := s.getAll(octx, Query[T]{Filter: q.Filter}, ro.policy, o)
		o.end(err, cr, len(items), nil)
		if err != nil {
			yield(nil, err)
			return
		}
		var v view[T, ID]
		s.cache.lock()
		for i, it := range items {
			id := s.cfg.IDOf(it)
			order := uint64(math.MaxUint64/2) + uint64(i) // not cached: after the cached ones
			if e := s.cache.m[id]; e != nil {
				order = e.order
			}
			v.set(id, it, order)
		}
		s.cache.unlock()
		for {
			for id, d := range w.takeAll() {
				if d.Deleted || !q.Match(d.Value) {
					v.del(id)
				} else {
					v.set(id, d.Value, d.order)
				}
			}
			if !yield(v.list(q.Limit), nil) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				yield(nil, ErrClosed)
				return
			case <-w.signal:
			}
		}
	}
}

// view is a WatchAll subscriber's copy of the listing, ordered as the
// cache orders a listing (the backend's order, new items last).
type view[T any, ID comparable] struct {
	items map[ID]viewItem[T]
}

type viewItem[T any] struct {
	value T
	order uint64
}

func (v *view[T, ID]) set(id ID, it T, order uint64) {
	if v.items == nil {
		v.items = make(map[ID]viewItem[T])
	}
	v.items[id] = viewItem[T]{it, order}
}

func (v *view[T, ID]) del(id ID) { delete(v.items, id) }

func (v *view[T, ID]) list(limit int) []T {
	its := make([]viewItem[T], 0, len(v.items))
	for _, it := range v.items {
		its = append(its, it)
	}
	slices.SortFunc(its, func(a, b viewItem[T]) int { return compareUint(a.order, b.order) })
	if limit > 0 && len(its) > limit {
		its = its[:limit]
	}
	out := make([]T, len(its))
	for i, it := range its {
		out[i] = it.value
	}
	return out
}

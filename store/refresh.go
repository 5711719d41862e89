package store

import (
	"context"
	"sync"
)

// refreshKey names a background refresh: one ID, or the full listing.
type refreshKey[ID comparable] struct {
	all bool
	id  ID
}

type refreshJob[ID comparable] struct {
	key     refreshKey[ID]
	link    context.Context // the causing operation's context, for a trace link; nil without a tracer
	sampled bool
}

// refresher runs background refreshes (FetchCacheAndNetwork,
// FetchStaleWhileRevalidate): at most max at once, one per key at a time,
// the rest queued by key (so the queue is bounded by the keys that exist),
// all cancelled by Close.
type refresher[T any, ID comparable] struct {
	s       *Store[T, ID]
	max     int
	mu      sync.Mutex
	active  map[refreshKey[ID]]bool
	queued  map[refreshKey[ID]]refreshJob[ID]
	order   []refreshKey[ID]
	running int
	closed  bool
	wg      sync.WaitGroup
}

func newRefresher[T any, ID comparable](s *Store[T, ID], max int) *refresher[T, ID] {
	return &refresher[T, ID]{
		s: s, max: max,
		active: make(map[refreshKey[ID]]bool),
		queued: make(map[refreshKey[ID]]refreshJob[ID]),
	}
}

// schedule asks for a refresh of key; a refresh of key already running or
// queued absorbs it.
func (r *refresher[T, ID]) schedule(o *op, key refreshKey[ID]) {
	job := refreshJob[ID]{key: key}
	if o != nil {
		job.sampled = o.sampled
		if o.t.tracer != nil {
			job.link = o.ctx
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.active[key] {
		return
	}
	if _, ok := r.queued[key]; ok {
		return
	}
	if r.running >= r.max {
		r.queued[key] = job
		r.order = append(r.order, key)
		return
	}
	r.running++
	r.active[key] = true
	r.wg.Add(1)
	go r.work(job)
}

func (r *refresher[T, ID]) work(job refreshJob[ID]) {
	defer r.wg.Done()
	for {
		r.s.runRefresh(job)
		r.mu.Lock()
		delete(r.active, job.key)
		if r.closed || len(r.order) == 0 {
			r.running--
			r.mu.Unlock()
			return
		}
		next := r.order[0]
		r.order = r.order[1:]
		job = r.queued[next]
		delete(r.queued, next)
		r.active[next] = true
		r.mu.Unlock()
	}
}

// wait stops new refreshes and waits for the running ones (Close cancels
// their context first).
func (r *refresher[T, ID]) wait() {
	r.mu.Lock()
	r.closed = true
	clear(r.queued)
	r.order = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// valueCtx is a context that ends with the store's background context but
// carries the values (the trace span) of the operation that caused the
// work, so that a tracer can link to it.
type valueCtx struct {
	context.Context
	values context.Context
}

func (c valueCtx) Value(key any) any { return c.values.Value(key) }

// runRefresh reads key from the backend into the cache.
func (s *Store[T, ID]) runRefresh(job refreshJob[ID]) {
	ctx := s.bg
	if job.link != nil {
		ctx = valueCtx{Context: s.bg, values: job.link}
	}
	var o *op
	kind := OpGet
	if job.key.all {
		kind = OpGetAll
	}
	if s.tel.on {
		o = &op{t: s.tel, ctx: ctx, kind: kind, sampled: job.sampled}
	}
	var err error
	if job.key.all {
		_, err = s.listThrough(ctx, Query[T]{}, o, true)
	} else {
		_, err = s.fetch(ctx, job.key.id, o, true)
	}
	if err != nil && ctx.Err() == nil && !isNotFound(err) {
		var id any
		if !job.key.all {
			id = s.boxID(job.key.id)
		}
		s.background(ctx, err, kind, id)
	}
}

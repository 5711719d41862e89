package store

import (
	"context"
	"errors"
	"sync"
	"time"
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
// FetchStaleWhileRevalidate, watchers' refreshes after an invalidation):
// at most max at once, one per key at a time, the rest queued by key (so
// the queue is bounded by the keys that exist), all cancelled by Close. A
// refresh asked for by a change while one of its key runs runs again after
// it (the one running may have read the backend before the change). A
// refresh of a watched key that fails is retried, with Config.Retry's
// backoff, for as long as the key is watched: a watcher must hear of the
// change that dropped its value.
type refresher[T any, ID comparable] struct {
	s       *Store[T, ID]
	max     int
	mu      sync.Mutex
	active  map[refreshKey[ID]]bool
	again   map[refreshKey[ID]]refreshJob[ID] // asked for while running
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
		again:  make(map[refreshKey[ID]]refreshJob[ID]),
		queued: make(map[refreshKey[ID]]refreshJob[ID]),
	}
}

// schedule asks for a refresh of key; a refresh of key already running or
// queued absorbs it.
func (r *refresher[T, ID]) schedule(o *op, key refreshKey[ID]) { r.ask(o, key, false) }

// changed asks for a refresh of key after a change the store dropped key's
// entry for: a refresh of key already running (which may have read the
// backend before the change) runs again after it.
func (r *refresher[T, ID]) changed(o *op, key refreshKey[ID]) { r.ask(o, key, true) }

func (r *refresher[T, ID]) ask(o *op, key refreshKey[ID], changed bool) {
	job := refreshJob[ID]{key: key}
	if o != nil {
		job.sampled = o.sampled
		if o.t.tracer != nil {
			job.link = o.ctx
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.active[key] {
		if _, ok := r.again[key]; changed && !ok {
			r.again[key] = job
		}
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
		r.run(job)
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

// run runs job until it succeeds or needs no retry, and again as long as
// someone asked for it meanwhile.
func (r *refresher[T, ID]) run(job refreshJob[ID]) {
	failures := 0
	for {
		err := r.s.runRefresh(job)
		retry := err != nil && r.s.bg.Err() == nil && r.s.watched(job.key)
		if retry && err == errRefused {
			failures = 0 // read again at once
			continue
		}
		r.mu.Lock()
		next, again := r.again[job.key]
		delete(r.again, job.key)
		closed := r.closed
		r.mu.Unlock()
		switch {
		case closed:
			return
		case again:
			job, failures = next, 0
			continue
		case !retry:
			return
		}
		failures++
		t := time.NewTimer(backoff(r.s.cfg.Retry, failures))
		select {
		case <-t.C:
		case <-r.s.bg.Done():
			t.Stop()
			return
		}
	}
}

// wait stops new refreshes and waits for the running ones (Close cancels
// their context first).
func (r *refresher[T, ID]) wait() {
	r.mu.Lock()
	r.closed = true
	clear(r.queued)
	clear(r.again)
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

// watched reports whether anyone watches key.
func (s *Store[T, ID]) watched(key refreshKey[ID]) bool {
	c := s.cache
	c.lock()
	defer c.unlock()
	if key.all {
		return len(c.watchers.all) > 0
	}
	return c.watchers.watching(key.id)
}

// errRefused: a background refresh's answer could not land, the ID having
// been dropped while the read was in flight (see fetch).
var errRefused = errors.New("store: refresh refused: the ID changed while it was read")

// runRefresh reads key from the backend into the cache; it returns the
// error that left it unread (not-found is no error).
func (s *Store[T, ID]) runRefresh(job refreshJob[ID]) error {
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
	if err == errRefused {
		return err
	}
	if err != nil && ctx.Err() == nil && !isNotFound(err) {
		var id any
		if !job.key.all {
			id = s.boxID(job.key.id)
		}
		s.background(ctx, err, kind, id)
		return err
	}
	return nil
}

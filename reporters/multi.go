package reporters

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexusstore/nexus/store"
)

// Multi returns a reporter that passes each metric to every reporter in rs,
// in order. Nil and no-op reporters are left out; with none left it returns
// store.NoOpMetricsReporter{} (so the store keeps its zero-cost path), and
// with one it returns that reporter unchanged.
//
// A panic in one reporter does not stop the others: Multi recovers it,
// delivers the metric to the rest, then panics again with a *PanicError
// naming the reporter, so that the store's own recovery counts it
// (store.LiveStats.ReporterPanics) and passes it to Config.ErrorHandler.
// Flush flushes every reporter and joins their errors (a panic in Flush
// becomes a *PanicError in the joined error).
//
// Multi keeps the optional capabilities of its reporters:
//   - Bind binds every reporter that is a store.Binder (each serves the store
//     through the reporter its Bind returned; one whose Bind panics serves it
//     unbound), asks for item IDs if any of them does (the others then
//     receive IDs too), and releases them all. If one refuses the store
//     (store.Binding.Err), Multi refuses it too, releasing the others.
//   - Operation spans go to every reporter that traces. With one, its calls
//     and handles pass through unchanged, at no cost; with several, their
//     contexts are chained (each start call receives the context the
//     previous one returned) and the end calls run in reverse order, at the
//     cost of a small allocation per operation for the combined handle.
//   - Stats and ResetStats come from the first reporter that provides stats.
//   - Change-feed events (store.FeedReporter) go to every reporter that
//     records them.
//
// The reporter a store binds has exactly the capabilities that its
// reporters have: a Multi of reporters that do not trace does not make the
// store bracket operations. The unbound value returned here implements
// store.Binder, store.OperationTracer and store.StatsProvider whatever rs
// holds (without tracing reporters its tracer methods do nothing, and
// without stats its Stats is the zero StoreStats); wrappers that do not bind
// it pay for those calls.
func Multi(rs ...store.MetricsReporter) store.MetricsReporter {
	var f fanout
	for i, r := range rs {
		switch r.(type) {
		case nil, store.NoOpMetricsReporter, *store.NoOpMetricsReporter:
			continue
		}
		f.rs = append(f.rs, r)
		f.pos = append(f.pos, i)
	}
	switch len(f.rs) {
	case 0:
		return store.NoOpMetricsReporter{}
	case 1:
		return f.rs[0]
	}
	m := &multi{fanout: f}
	m.tracer = tracerOf(&m.fanout)
	for _, r := range f.rs {
		if sp, ok := r.(store.StatsProvider); ok {
			m.stats = sp
			break
		}
	}
	return m
}

// PanicError is what Multi panics with (or returns from Flush) when one of
// its reporters panicked.
type PanicError struct {
	// Index is the reporter's position in the arguments of Multi.
	Index int
	// Value is what the reporter passed to panic.
	Value any
}

// Error names the reporter and what it panicked with.
func (e *PanicError) Error() string {
	return fmt.Sprintf("reporters: reporter %d of Multi panicked: %v", e.Index, e.Value)
}

// Unwrap returns Value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// fanout passes each metric to several reporters.
type fanout struct {
	rs  []store.MetricsReporter
	pos []int // each reporter's position in the arguments of Multi
}

// ReportOperation passes m to every reporter.
func (f *fanout) ReportOperation(ctx context.Context, m store.OperationMetric) {
	var p *PanicError
	for i, r := range f.rs {
		if v := reportOperation(r, ctx, m); v != nil && p == nil {
			p = &PanicError{Index: f.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

// ReportCacheEvent passes m to every reporter.
func (f *fanout) ReportCacheEvent(ctx context.Context, m store.CacheMetric) {
	var p *PanicError
	for i, r := range f.rs {
		if v := reportCache(r, ctx, m); v != nil && p == nil {
			p = &PanicError{Index: f.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

// ReportSyncEvent passes m to every reporter.
func (f *fanout) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	var p *PanicError
	for i, r := range f.rs {
		if v := reportSync(r, ctx, m); v != nil && p == nil {
			p = &PanicError{Index: f.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

// ReportError passes m to every reporter.
func (f *fanout) ReportError(ctx context.Context, m store.ErrorMetric) {
	var p *PanicError
	for i, r := range f.rs {
		if v := reportError(r, ctx, m); v != nil && p == nil {
			p = &PanicError{Index: f.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

// ReportFeedEvent passes m to every reporter that records change-feed
// events.
func (f *fanout) ReportFeedEvent(ctx context.Context, m store.FeedMetric) {
	var p *PanicError
	for i, r := range f.rs {
		if v := reportFeed(r, ctx, m); v != nil && p == nil {
			p = &PanicError{Index: f.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

// Flush flushes every reporter and joins their errors.
func (f *fanout) Flush(ctx context.Context) error {
	var errs []error
	for i, r := range f.rs {
		if err := flushReporter(r, ctx, f.pos[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func flushReporter(r store.MetricsReporter, ctx context.Context, pos int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Index: pos, Value: v}
		}
	}()
	return r.Flush(ctx)
}

// The report helpers call one reporter and return what it panicked with.

func reportOperation(r store.MetricsReporter, ctx context.Context, m store.OperationMetric) (p any) {
	defer func() { p = recover() }()
	r.ReportOperation(ctx, m)
	return nil
}

func reportCache(r store.MetricsReporter, ctx context.Context, m store.CacheMetric) (p any) {
	defer func() { p = recover() }()
	r.ReportCacheEvent(ctx, m)
	return nil
}

func reportSync(r store.MetricsReporter, ctx context.Context, m store.SyncMetric) (p any) {
	defer func() { p = recover() }()
	r.ReportSyncEvent(ctx, m)
	return nil
}

func reportError(r store.MetricsReporter, ctx context.Context, m store.ErrorMetric) (p any) {
	defer func() { p = recover() }()
	r.ReportError(ctx, m)
	return nil
}

// multi is the unbound reporter Multi returns.
type multi struct {
	fanout
	forwarder // to tracerOf(fanout) and the first reporter that provides stats
}

var (
	_ store.MetricsReporter = (*multi)(nil)
	_ store.Binder          = (*multi)(nil)
	_ store.OperationTracer = (*multi)(nil)
	_ store.StatsProvider   = (*multi)(nil)
	_ store.FeedReporter    = (*multi)(nil)
)

// Bind binds every reporter that is a store.Binder and returns a fan-out
// over the bound reporters with exactly their capabilities.
func (m *multi) Bind(info store.StoreInfo) store.Binding {
	bound := fanout{rs: make([]store.MetricsReporter, len(m.rs)), pos: m.pos}
	var (
		want     bool
		releases []func()
	)
	for i, r := range m.rs {
		bound.rs[i] = r
		b, ok := r.(store.Binder)
		if !ok {
			continue
		}
		bd, ok := bind(b, info)
		if !ok {
			continue
		}
		if bd.Err != nil {
			// One reporter refuses the store: so does the fan-out, after
			// releasing what the others bound.
			if bd.Release != nil {
				releases = append(releases, bd.Release)
			}
			return store.Binding{Err: bd.Err, Release: func() { releaseAll(releases) }}
		}
		if bd.Reporter != nil {
			bound.rs[i] = bd.Reporter
		}
		want = want || bd.WantItemIDs
		if bd.Release != nil {
			releases = append(releases, bd.Release)
		}
	}
	var sp store.StatsProvider
	for i := range bound.rs {
		if sp = statsOf(bound.rs[i], m.rs[i]); sp != nil {
			break
		}
	}
	bd := store.Binding{
		Reporter:    withCapabilities(&bound, tracerOf(&bound), sp),
		WantItemIDs: want,
	}
	if len(releases) > 0 {
		bd.Release = func() { releaseAll(releases) }
	}
	return bd
}

// bind calls b.Bind, reporting false if it panicked.
func bind(b store.Binder, info store.StoreInfo) (bd store.Binding, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return b.Bind(info), true
}

// releaseAll calls every release function, then panics again with the
// first panic, if any, for the store to count.
func releaseAll(releases []func()) {
	var first any
	for _, f := range releases {
		func() {
			defer func() {
				if v := recover(); v != nil && first == nil {
					first = v
				}
			}()
			f()
		}()
	}
	if first != nil {
		panic(first)
	}
}

// tracerOf returns the tracer of f: nil if no reporter traces, the only
// one that does, or a *tracers over all of them.
func tracerOf(f *fanout) store.OperationTracer {
	ts := &tracers{}
	for i, r := range f.rs {
		if t, ok := r.(store.OperationTracer); ok {
			ts.ts = append(ts.ts, t)
			ts.pos = append(ts.pos, f.pos[i])
		}
	}
	switch len(ts.ts) {
	case 0:
		return nil
	case 1:
		return ts.ts[0]
	}
	return ts
}

// tracers brackets operations in several tracers. A start call that panics
// leaves its tracer out of the matching end call; the panic is raised again
// by that end call, after the other tracers ended, for the store to count
// (the store always makes the end call, so the others' spans end).
type tracers struct {
	ts  []store.OperationTracer
	pos []int // each tracer's position in the arguments of Multi
}

// multiHandle is the handle of an operation or backend call started in
// several tracers.
type multiHandle struct {
	started []startedHandle
	panic   *PanicError // the first start call that panicked
}

type startedHandle struct {
	h  any
	ok bool // the start call returned
}

func (ts *tracers) start(ctx context.Context, call func(store.OperationTracer, context.Context) (context.Context, any)) (context.Context, any) {
	h := &multiHandle{started: make([]startedHandle, len(ts.ts))}
	for i, t := range ts.ts {
		c, th, p := startOne(t, ctx, call)
		if p != nil {
			if h.panic == nil {
				h.panic = &PanicError{Index: ts.pos[i], Value: p}
			}
			continue
		}
		if c != nil {
			ctx = c
		}
		h.started[i] = startedHandle{th, true}
	}
	return ctx, h
}

func startOne(t store.OperationTracer, ctx context.Context, call func(store.OperationTracer, context.Context) (context.Context, any)) (c context.Context, h any, p any) {
	defer func() { p = recover() }()
	c, h = call(t, ctx)
	return c, h, nil
}

func (ts *tracers) end(handle any, call func(store.OperationTracer, any)) {
	h, ok := handle.(*multiHandle)
	if !ok || len(h.started) != len(ts.ts) {
		return
	}
	p := h.panic
	for i := len(ts.ts) - 1; i >= 0; i-- {
		if !h.started[i].ok {
			continue
		}
		if v := endOne(ts.ts[i], h.started[i].h, call); v != nil && p == nil {
			p = &PanicError{Index: ts.pos[i], Value: v}
		}
	}
	if p != nil {
		panic(p)
	}
}

func endOne(t store.OperationTracer, h any, call func(store.OperationTracer, any)) (p any) {
	defer func() { p = recover() }()
	call(t, h)
	return nil
}

// StartOperation starts the operation in every tracer.
func (ts *tracers) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	return ts.start(ctx, func(t store.OperationTracer, c context.Context) (context.Context, any) {
		return t.StartOperation(c, op)
	})
}

// EndOperation ends the operation in every tracer, in reverse order.
func (ts *tracers) EndOperation(ctx context.Context, handle any, end store.OperationEnd) {
	ts.end(handle, func(t store.OperationTracer, h any) { t.EndOperation(ctx, h, end) })
}

// StartBackendCall starts the backend call in every tracer.
func (ts *tracers) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	return ts.start(ctx, func(t store.OperationTracer, c context.Context) (context.Context, any) {
		return t.StartBackendCall(c, call)
	})
}

// EndBackendCall ends the backend call in every tracer, in reverse order.
func (ts *tracers) EndBackendCall(ctx context.Context, handle any, end store.BackendCallEnd) {
	ts.end(handle, func(t store.OperationTracer, h any) { t.EndBackendCall(ctx, h, end) })
}

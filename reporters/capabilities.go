package reporters

import (
	"context"

	"github.com/nexusstore/nexus/store"
)

// The store finds a reporter's optional capabilities by type assertion, so
// a wrapper that always implemented OperationTracer would make the store
// bracket every operation even when nothing behind the wrapper traces. The
// per-store reporters that Multi and Buffered bind are therefore built by
// withCapabilities, whose result has exactly the method set of the
// capabilities present: the interfaces are embedded, so their methods are
// promoted and the calls go straight to the reporter that has them.

//
// Change-feed events are the exception: they are rare, so the per-store
// reporters always take them (feedReporter) and pass them on to whatever
// behind them records them, if anything.

// feedReporter is a reporter that also takes change-feed events.
type feedReporter interface {
	store.MetricsReporter
	store.FeedReporter
}

type (
	withTracer struct {
		feedReporter
		store.OperationTracer
	}
	withStats struct {
		feedReporter
		store.StatsProvider
	}
	withTracerStats struct {
		feedReporter
		store.OperationTracer
		store.StatsProvider
	}
)

// withCapabilities returns r, extended with tr and sp where they are not
// nil.
func withCapabilities(r feedReporter, tr store.OperationTracer, sp store.StatsProvider) store.MetricsReporter {
	switch {
	case tr != nil && sp != nil:
		return &withTracerStats{r, tr, sp}
	case tr != nil:
		return &withTracer{r, tr}
	case sp != nil:
		return &withStats{r, sp}
	}
	return r
}

// statsOf returns the stats provider the store would find for a reporter
// bound as bound from unbound: the bound reporter's, else the unbound
// one's (the store falls back the same way).
func statsOf(bound, unbound store.MetricsReporter) store.StatsProvider {
	if sp, ok := bound.(store.StatsProvider); ok {
		return sp
	}
	sp, _ := unbound.(store.StatsProvider)
	return sp
}

// reportFeed passes m to r if r records change-feed events, and returns
// what r panicked with.
func reportFeed(r store.MetricsReporter, ctx context.Context, m store.FeedMetric) (p any) {
	fr, ok := r.(store.FeedReporter)
	if !ok {
		return nil
	}
	defer func() { p = recover() }()
	fr.ReportFeedEvent(ctx, m)
	return nil
}

// forwarder gives the unbound Multi and Buffered values the tracer and
// stats methods whatever they wrap, forwarding to what they wrap when it has
// them and doing nothing otherwise.
type forwarder struct {
	tracer store.OperationTracer
	stats  store.StatsProvider
}

func forwarderOf(r store.MetricsReporter) forwarder {
	var f forwarder
	f.tracer, _ = r.(store.OperationTracer)
	f.stats, _ = r.(store.StatsProvider)
	return f
}

// StartOperation forwards to the wrapped tracer, if any.
func (f *forwarder) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	if f.tracer == nil {
		return ctx, nil
	}
	return f.tracer.StartOperation(ctx, op)
}

// EndOperation forwards to the wrapped tracer, if any.
func (f *forwarder) EndOperation(ctx context.Context, handle any, end store.OperationEnd) {
	if f.tracer != nil {
		f.tracer.EndOperation(ctx, handle, end)
	}
}

// StartBackendCall forwards to the wrapped tracer, if any.
func (f *forwarder) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	if f.tracer == nil {
		return ctx, nil
	}
	return f.tracer.StartBackendCall(ctx, call)
}

// EndBackendCall forwards to the wrapped tracer, if any.
func (f *forwarder) EndBackendCall(ctx context.Context, handle any, end store.BackendCallEnd) {
	if f.tracer != nil {
		f.tracer.EndBackendCall(ctx, handle, end)
	}
}

// Stats returns the wrapped provider's stats, or the zero StoreStats.
func (f *forwarder) Stats() store.StoreStats {
	if f.stats == nil {
		return store.StoreStats{}
	}
	return f.stats.Stats()
}

// ResetStats resets the wrapped provider's stats, or returns the zero
// StoreStats.
func (f *forwarder) ResetStats() store.StoreStats {
	if f.stats == nil {
		return store.StoreStats{}
	}
	return f.stats.ResetStats()
}

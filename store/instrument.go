package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/nexusstore/nexus/internal/clock"
)

// runtimeClock times the no-op reporter's nothing: a store that reports
// nothing never calibrates the time-stamp counter.
var runtimeClock = clock.Runtime()

// telemetry is the store's side of the reporter contract. When on is false
// (the no-op reporter) nothing here is reached: the public methods check it
// once, up front, and take a path that builds no metric and reads no clock.
type telemetry struct {
	on        bool
	rep       MetricsReporter
	tracer    OperationTracer // nil unless the reporter implements it
	stats     StatsProvider   // nil unless the reporter implements it
	feed      FeedReporter    // nil unless the reporter implements it
	wantIDs   bool
	rate      float64
	all       bool   // rate 1: every operation is reported
	threshold uint64 // otherwise sampled when rand.Uint64() < threshold
	stacks    bool
	release   func()
	onError   func(error)

	// now is the clock read for telemetry outside operations (sync runs,
	// feed events, errors the store handles on its own). Operations are
	// timed with clk (internal/clock: the CPU's time-stamp counter where
	// the kernel trusts it, else the runtime's monotonic clock; either
	// costs less than time.Now), and their wall timestamps are derived
	// from its readings, so an operation reads a clock twice. Tests swap
	// both to prove that the no-op path reads neither.
	now func() time.Time
	clk *clock.Clock

	panics atomic.Uint64
}

func newTelemetry(r MetricsReporter, mc MetricsConfig, name string, backend BackendInfo, onError func(error), live func() LiveStats) (*telemetry, error) {
	t := &telemetry{rate: mc.SampleRate, stacks: mc.CaptureStacks, onError: onError, now: time.Now, clk: runtimeClock}
	if t.rate == 0 {
		t.rate = 1
	}
	t.all = t.rate >= 1
	if !t.all {
		// rate·2⁶⁴, exactly as far as float64 goes: a rate too small for it
		// gives 0 (nothing sampled), never a wrapped or saturated value.
		t.threshold = uint64(math.Ldexp(t.rate, 64))
	}
	switch r.(type) {
	case nil, NoOpMetricsReporter, *NoOpMetricsReporter:
		t.rep = NoOpMetricsReporter{}
		return t, nil
	}
	t.on = true
	t.rep = r
	t.clk = clock.New()
	if b, ok := r.(Binder); ok {
		var bd Binding
		t.guard("Bind", func() {
			bd = b.Bind(StoreInfo{Name: name, SampleRate: t.rate, Live: live, Backend: backend})
		})
		if bd.Err != nil {
			if bd.Release != nil {
				t.guard("Release", bd.Release)
			}
			return nil, fmt.Errorf("store: the reporter refused store %q: %w", name, bd.Err)
		}
		if bd.Reporter != nil {
			t.rep = bd.Reporter
		}
		t.wantIDs = bd.WantItemIDs
		t.release = bd.Release
	}
	t.tracer, _ = t.rep.(OperationTracer)
	t.feed, _ = t.rep.(FeedReporter)
	if sp, ok := t.rep.(StatsProvider); ok {
		t.stats = sp
	} else if sp, ok := r.(StatsProvider); ok {
		t.stats = sp
	}
	return t, nil
}

// sample decides, lock-free, whether an operation is reported.
func (t *telemetry) sample() bool {
	return t.all || rand.Uint64() < t.threshold
}

// handleError passes err to the ErrorHandler, containing its panics.
func (t *telemetry) handleError(err error) {
	if t.onError == nil {
		return
	}
	defer func() { _ = recover() }()
	t.onError(err)
}

// recoverReporter is deferred around calls into the reporter.
func (t *telemetry) recoverReporter(method string) {
	if r := recover(); r != nil {
		t.panicked(method, r)
	}
}

// panicked counts a reporter's panic and passes it to the ErrorHandler.
func (t *telemetry) panicked(method string, r any) {
	t.panics.Add(1)
	t.handleError(&ReporterPanicError{Method: method, Value: r})
}

func (t *telemetry) guard(method string, f func()) {
	defer t.recoverReporter(method)
	f()
}

func (t *telemetry) reportOperation(ctx context.Context, m OperationMetric) {
	defer t.recoverReporter("ReportOperation")
	t.rep.ReportOperation(ctx, m)
}

func (t *telemetry) reportCache(ctx context.Context, m CacheMetric) {
	defer t.recoverReporter("ReportCacheEvent")
	t.rep.ReportCacheEvent(ctx, m)
}

func (t *telemetry) reportSync(ctx context.Context, m SyncMetric) {
	defer t.recoverReporter("ReportSyncEvent")
	t.rep.ReportSyncEvent(ctx, m)
}

func (t *telemetry) reportError(ctx context.Context, m ErrorMetric) {
	defer t.recoverReporter("ReportError")
	t.rep.ReportError(ctx, m)
}

func (t *telemetry) reportFeed(ctx context.Context, m FeedMetric) {
	defer t.recoverReporter("ReportFeedEvent")
	t.feed.ReportFeedEvent(ctx, m)
}

// releaseBinding calls the Binding's Release, once.
func (t *telemetry) releaseBinding() {
	if r := t.release; r != nil {
		t.release = nil
		t.guard("Release", r)
	}
}

func (t *telemetry) flush(ctx context.Context) (err error) {
	if !t.on {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			t.panics.Add(1)
			err = &ReporterPanicError{Method: "Flush", Value: r}
			t.handleError(err)
		}
	}()
	return t.rep.Flush(ctx)
}

// op is one instrumented operation in flight. It lives on the caller's
// stack; a nil *op means "not instrumented" and every method is a no-op.
type op struct {
	t       *telemetry
	ctx     context.Context // the context StartOperation returned
	kind    OperationType
	policy  Policy
	sampled bool
	// hit: the cache served the operation; its CacheHit event is reported
	// with the operation's metric, under one recover (the hot path).
	hit    bool
	hitID  any
	start  clock.Reading // t.clk.Now() at the start, read only when timed
	handle any
	traced bool // the tracer's StartOperation was called: EndOperation is due
}

// timed reports whether the operation's duration is needed: for its metric,
// or for the span the tracer started.
func (o *op) timed() bool { return o.sampled || o.handle != nil }

// begin starts an instrumented operation in o (the caller's, on its
// stack: no copy of the op). Call only when t.on.
func (t *telemetry) begin(o *op, ctx context.Context, kind OperationType, policy Policy, background bool) {
	*o = op{t: t, ctx: ctx, kind: kind, policy: policy, sampled: t.sample()}
	if t.tracer != nil {
		t.startTrace(o, background)
	}
	if o.timed() {
		o.start = t.clk.Now()
	}
}

// startTrace calls the tracer's StartOperation for o.
func (t *telemetry) startTrace(o *op, background bool) {
	defer t.recoverReporter("StartOperation")
	c, h := t.tracer.StartOperation(o.ctx, OperationStart{
		Operation: o.kind, Policy: o.policy, Sampled: o.sampled, Background: background,
	})
	if c != nil {
		o.ctx = c
	}
	o.handle, o.traced = h, true
}

// start begins an instrumented operation and returns it with the context
// the work runs under; nil (and ctx) when nobody listens. Get keeps its op
// on the stack with begin instead: start's op escapes.
func (t *telemetry) start(ctx context.Context, kind OperationType, policy Policy, background bool) (*op, context.Context) {
	if !t.on {
		return nil, ctx
	}
	o := new(op)
	t.begin(o, ctx, kind, policy, background)
	return o, o.ctx
}

// endN ends a multi-item or itemless operation.
func (o *op) endN(err error, items int) { o.end(err, CacheResultNone, items, nil) }

// end reports the operation: for a failure its ErrorMetric (never
// sampled), if sampled its hit (see hit) and its metric, then its tracer
// end call. A read of an absent item is a success. It does nothing on a
// nil op.
func (o *op) end(err error, cr CacheResult, items int, id any) {
	if o == nil {
		return
	}
	t := o.t
	if err != nil && (o.kind == OpGet || o.kind == OpWatch) && errors.Is(err, ErrNotFound) {
		err = nil
	}
	var end clock.Reading
	var d time.Duration
	if o.timed() {
		end = t.clk.Now()
		d = t.clk.Elapsed(o.start, end)
	}
	if err != nil || o.sampled {
		o.report(err, cr, items, id, d, end)
	}
	if o.traced {
		defer t.recoverReporter("EndOperation")
		t.tracer.EndOperation(o.ctx, o.handle, OperationEnd{
			Operation: o.kind, Policy: o.policy, Err: err, CacheResult: cr, ItemCount: items, Duration: d,
		})
	}
}

// report makes end's reporter calls under one recover: a panic loses what
// is left of them (and is counted), as a panic in one call loses that
// call's report.
func (o *op) report(err error, cr CacheResult, items int, id any, d time.Duration, end clock.Reading) {
	t := o.t
	var now time.Time // an unsampled, untimed failure: errorMetric reads the wall clock
	if o.timed() {
		now = t.clk.Time(end)
	}
	method := "ReportError"
	defer func() {
		if r := recover(); r != nil {
			t.panicked(method, r)
		}
	}()
	if err != nil {
		t.rep.ReportError(o.ctx, t.errorMetric(err, o.kind, false, id, now))
	}
	if !o.sampled {
		return
	}
	if o.hit {
		method = "ReportCacheEvent"
		t.rep.ReportCacheEvent(o.ctx, CacheMetric{Event: CacheHit, ItemID: o.hitID, SampleRate: t.rate, Timestamp: t.clk.Time(o.start)})
	}
	method = "ReportOperation"
	t.rep.ReportOperation(o.ctx, OperationMetric{
		Operation: o.kind, Duration: d, Success: err == nil, ItemCount: items,
		Policy: o.policy, CacheResult: cr, ItemID: id, Err: err,
		SampleRate: t.rate, Timestamp: now,
	})
}

func (t *telemetry) errorMetric(err error, kind OperationType, recoverable bool, id any, now time.Time) ErrorMetric {
	if now.IsZero() {
		now = t.now()
	}
	m := ErrorMetric{Err: err, Operation: kind, Recoverable: recoverable, ItemID: id, Timestamp: now}
	if t.stacks {
		m.Stack = debug.Stack()
	}
	return m
}

// cacheEvent reports a cache event that belongs to o (hit, miss, write):
// only when o is sampled. A hit or a miss is stamped with the operation's
// start (it is decided right then), saving a clock read.
func (o *op) cacheEvent(ev CacheEvent, id any, tags []string) {
	if o == nil || !o.sampled {
		return
	}
	r := o.start
	if ev == CacheWrite {
		r = o.t.clk.Now()
	}
	ts := o.t.clk.Time(r)
	o.t.reportCache(o.ctx, CacheMetric{Event: ev, ItemID: id, Tags: tags, SampleRate: o.t.rate, Timestamp: ts})
}

// served records that the cache served o: its hit is reported with the
// operation's metric, at end.
func (o *op) served(id any) {
	if o != nil && o.sampled {
		o.hit, o.hitID = true, id
	}
}

// recovered reports an error the store handled on o's behalf.
func (o *op) recovered(err error, kind OperationType, id any) {
	if o == nil {
		return
	}
	o.t.reportError(o.ctx, o.t.errorMetric(err, kind, true, id, time.Time{}))
}

// backendCall brackets one backend call made for o.
type backendCall struct {
	o      *op
	ctx    context.Context
	kind   OperationType
	timed  bool
	start  clock.Reading // o.t.clk.Now() at the start, when timed
	handle any
}

func (o *op) startBackend(ctx context.Context, kind OperationType, background bool) backendCall {
	bc := backendCall{o: o, ctx: ctx, kind: kind}
	if o == nil || o.t.tracer == nil {
		return bc
	}
	t := o.t
	func() {
		defer t.recoverReporter("StartBackendCall")
		c, h := t.tracer.StartBackendCall(ctx, BackendCall{Operation: kind, Sampled: o.sampled, Background: background})
		if c != nil {
			bc.ctx = c
		}
		bc.handle = h
	}()
	if o.sampled || bc.handle != nil {
		bc.timed, bc.start = true, t.clk.Now()
	}
	return bc
}

func (bc *backendCall) end(err error) {
	o := bc.o
	if o == nil || o.t.tracer == nil {
		return
	}
	t := o.t
	var d time.Duration
	if bc.timed {
		d = t.clk.Elapsed(bc.start, t.clk.Now())
	}
	defer t.recoverReporter("EndBackendCall")
	t.tracer.EndBackendCall(bc.ctx, bc.handle, BackendCallEnd{
		Operation: bc.kind, Sampled: o.sampled, Err: err, Duration: d,
	})
}

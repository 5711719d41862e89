package nexusotel

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/store"
)

// The database semantic convention attributes of backend call spans, and
// those of exception events.
const (
	keyDBSystem      = attribute.Key("db.system.name")
	keyDBOperation   = attribute.Key("db.operation.name")
	keyDBCollection  = attribute.Key("db.collection.name")
	keyDBNamespace   = attribute.Key("db.namespace")
	keyServerAddress = attribute.Key("server.address")
	keyServerPort    = attribute.Key("server.port")
	keyExcType       = attribute.Key("exception.type")
	keyExcMessage    = attribute.Key("exception.message")
)

// tracers finds the tracer for a span: the configured provider's, else the
// caller's span's provider's, else the global provider's.
type tracers struct {
	fixed  trace.Tracer // WithTracerProvider; nil without
	global trace.Tracer // the global provider's, which follows otel.SetTracerProvider
	last   atomic.Pointer[providerTracer]
}

// providerTracer caches the tracer of the last span provider seen, so that
// the usual case (one application provider) asks it for a tracer once.
type providerTracer struct {
	tp trace.TracerProvider
	t  trace.Tracer
}

func newTracer(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version()), trace.WithSchemaURL(SchemaURL))
}

func newTracers(tp trace.TracerProvider) *tracers {
	t := &tracers{global: newTracer(otel.GetTracerProvider())}
	if tp != nil {
		t.fixed = newTracer(tp)
	}
	return t
}

// forContext returns the tracer for a span started under ctx.
func (t *tracers) forContext(ctx context.Context) trace.Tracer {
	if t.fixed != nil {
		return t.fixed
	}
	span := trace.SpanFromContext(ctx)
	sc := span.SpanContext()
	if !sc.IsValid() || sc.IsRemote() {
		// No local span: a remote parent's "span" is a placeholder whose
		// provider is a no-op one.
		return t.global
	}
	tp := span.TracerProvider()
	if tp == nil {
		return t.global
	}
	comparable := reflect.TypeOf(tp).Comparable()
	if c := t.last.Load(); c != nil && comparable && c.tp == tp {
		return c.t
	}
	tr := newTracer(tp)
	if comparable {
		t.last.Store(&providerTracer{tp: tp, t: tr})
	}
	return tr
}

// initSpans precomputes span names and start options; a span kind the
// filter leaves out gets no options.
func (s *storeReporter) initSpans() {
	s.opSpanName = make([]string, numOps)
	s.backendSpanName = make([]string, numOps)
	s.backendSpanOpts = make([][]trace.SpanStartOption, numOps)
	s.opSpanOpts = make([][]trace.SpanStartOption, numOps*numPolicies)
	cfg := &s.r.cfg
	for op := store.OperationType(0); int(op) < numOps; op++ {
		oi := SpanInfo{Store: s.name, Operation: op, Backend: s.backend}
		if (cfg.cacheSpans || !isRead(op)) && (cfg.spanFilter == nil || cfg.spanFilter(oi)) {
			s.opSpanName[op] = s.formatName(oi, "nexus.store "+op.String())
			for p := store.Policy(0); int(p) < numPolicies; p++ {
				if policyApplies(op, p) {
					s.opSpanOpts[int(op)*numPolicies+int(p)] = s.opSpanStart(op, p)
				}
			}
		}
		bi := oi
		bi.BackendCall = true
		if cfg.spanFilter == nil || cfg.spanFilter(bi) {
			s.backendSpanName[op] = s.formatName(bi, defaultBackendSpanName(op, s.backend))
			s.backendSpanOpts[op] = s.backendSpanStart(op)
		}
	}
}

func (s *storeReporter) formatName(si SpanInfo, def string) string {
	if f := s.r.cfg.spanName; f != nil {
		if n := f(si); n != "" {
			return n
		}
	}
	return def
}

// defaultBackendSpanName follows the database semantic conventions,
// "{db.operation.name} {target}", for a database backend (one with a
// System); the target is the collection, else the namespace, else the
// server. Other backends' calls are "nexus.store.backend {call}".
func defaultBackendSpanName(op store.OperationType, b store.BackendInfo) string {
	if b.System == "" {
		return "nexus.store.backend " + op.String()
	}
	switch {
	case b.Collection != "":
		return op.String() + " " + b.Collection
	case b.Namespace != "":
		return op.String() + " " + b.Namespace
	case b.ServerAddress != "":
		return op.String() + " " + serverTarget(b)
	}
	return op.String()
}

func serverTarget(b store.BackendInfo) string {
	if b.ServerPort > 0 {
		return b.ServerAddress + ":" + strconv.Itoa(b.ServerPort)
	}
	return b.ServerAddress
}

// spanAttrs returns the store's name, the static attributes and kvs.
func (s *storeReporter) spanAttrs(kvs ...attribute.KeyValue) []attribute.KeyValue {
	all := make([]attribute.KeyValue, 0, 1+len(s.r.cfg.attrs)+len(kvs))
	all = append(all, KeyStoreName.String(s.name))
	all = append(all, s.r.cfg.attrs...)
	return append(all, kvs...)
}

func (s *storeReporter) opSpanStart(op store.OperationType, p store.Policy) []trace.SpanStartOption {
	kvs := []attribute.KeyValue{KeyOperation.String(op.String())}
	if p != store.PolicyNone {
		kvs = append(kvs, KeyPolicy.String(p.String()))
	}
	return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(s.spanAttrs(kvs...)...)}
}

// backendSpanStart returns the start options of a backend call's span:
// INTERNAL for an in-process backend, CLIENT otherwise; the database
// attributes for a database backend.
func (s *storeReporter) backendSpanStart(op store.OperationType) []trace.SpanStartOption {
	b := s.backend
	kind := trace.SpanKindClient
	if b.InProcess {
		kind = trace.SpanKindInternal
	}
	kvs := []attribute.KeyValue{KeyOperation.String(op.String())}
	if b.System != "" {
		kvs = append(kvs, keyDBSystem.String(b.System), keyDBOperation.String(op.String()))
		if b.Collection != "" {
			kvs = append(kvs, keyDBCollection.String(b.Collection))
		}
		if b.Namespace != "" {
			kvs = append(kvs, keyDBNamespace.String(b.Namespace))
		}
	}
	if b.ServerAddress != "" {
		kvs = append(kvs, keyServerAddress.String(b.ServerAddress))
		if b.ServerPort > 0 {
			kvs = append(kvs, keyServerPort.Int(b.ServerPort))
		}
	}
	return []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(s.spanAttrs(kvs...)...)}
}

// StartOperation starts the operation's span, as a child of the caller's
// span, and returns it as the handle (nil when no span was started, which
// allocates nothing). An operation is traced when the caller's context
// carries a valid span context, or always with WithRootSpans, unless
// WithSpanFilter or WithoutCacheSpans leave it out. Work the store starts
// on its own (the interval sync) is a new root span, linked to the span of
// the context if there is one.
func (s *storeReporter) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	if s.r.tracers == nil || int(op.Operation) >= numOps || int(op.Policy) >= numPolicies {
		return ctx, nil
	}
	name := s.opSpanName[op.Operation]
	if name == "" {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(ctx)
	opts := s.opSpanOpts[int(op.Operation)*numPolicies+int(op.Policy)]
	if opts == nil {
		opts = s.opSpanStart(op.Operation, op.Policy)
	}
	switch {
	case op.Background:
		opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot())
		if parent.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: parent}))
		}
	case !parent.IsValid() && !s.r.cfg.rootSpans:
		return ctx, nil
	}
	ctx, span := s.r.tracers.forContext(ctx).Start(ctx, name, opts...)
	return ctx, span
}

// EndOperation ends the span StartOperation returned: the cache result and
// item count as attributes and, on failure, the error (see WithSpanErrors)
// with an error status. A read of an absent item is not a failure (the
// store passes no error for it).
func (s *storeReporter) EndOperation(_ context.Context, handle any, end store.OperationEnd) {
	span, ok := handle.(trace.Span)
	if !ok || span == nil {
		return
	}
	if span.IsRecording() {
		if end.CacheResult != store.CacheResultNone {
			span.SetAttributes(KeyCacheResult.String(end.CacheResult.String()))
		}
		span.SetAttributes(KeyItemCount.Int(end.ItemCount))
		if end.Err != nil {
			s.endWithError(span, end.Err)
		}
	}
	span.End()
}

// StartBackendCall starts a span for a backend call, as a child of the
// operation's span (or of the caller's span when the operation has none).
// A background call (a refresh the operation scheduled, running after it
// returned) is a new root span linked to the operation's span. Without a
// span to parent to or link to, no span is started unless WithRootSpans is
// set.
func (s *storeReporter) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	if s.r.tracers == nil || int(call.Operation) >= numOps {
		return ctx, nil
	}
	name := s.backendSpanName[call.Operation]
	if name == "" {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(ctx)
	if !parent.IsValid() && !s.r.cfg.rootSpans {
		return ctx, nil
	}
	opts := s.backendSpanOpts[call.Operation]
	if call.Background {
		opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot())
		if parent.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: parent}))
		}
	}
	ctx, span := s.r.tracers.forContext(ctx).Start(ctx, name, opts...)
	return ctx, span
}

// EndBackendCall records the call's duration on
// nexus.store.backend.duration (when the operation is sampled) and ends its
// span, if any.
func (s *storeReporter) EndBackendCall(ctx context.Context, handle any, end store.BackendCallEnd) {
	if end.Sampled {
		s.recordBackend(ctx, end)
	}
	span, ok := handle.(trace.Span)
	if !ok || span == nil {
		return
	}
	if end.Err != nil && !errors.Is(end.Err, store.ErrNotFound) && span.IsRecording() {
		s.endWithError(span, end.Err)
	}
	span.End()
}

// endWithError records err on span as WithSpanErrors says: error.type, an
// exception event and the error status, with the message the hook returns
// (by default the error type: messages carry item IDs).
func (s *storeReporter) endWithError(span trace.Span, err error) {
	et := errorType(err)
	msg := et
	if f := s.r.cfg.spanError; f != nil {
		msg = f(err)
	}
	span.SetAttributes(KeyErrorType.String(et))
	ev := []attribute.KeyValue{keyExcType.String(et)}
	if msg != "" {
		ev = append(ev, keyExcMessage.String(msg))
	}
	span.AddEvent("exception", trace.WithAttributes(ev...))
	span.SetStatus(codes.Error, msg)
}

// StartOperation starts an operation span for the unnamed store (see
// Bind).
func (r *Reporter) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	return r.def().StartOperation(ctx, op)
}

// EndOperation ends a span StartOperation returned.
func (r *Reporter) EndOperation(ctx context.Context, handle any, end store.OperationEnd) {
	r.def().EndOperation(ctx, handle, end)
}

// StartBackendCall starts a backend call span for the unnamed store.
func (r *Reporter) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	return r.def().StartBackendCall(ctx, call)
}

// EndBackendCall records a backend call of the unnamed store and ends its
// span.
func (r *Reporter) EndBackendCall(ctx context.Context, handle any, end store.BackendCallEnd) {
	r.def().EndBackendCall(ctx, handle, end)
}

package nexusotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/store"
)

// initSpans precomputes span names and start options.
func (s *storeReporter) initSpans() {
	s.opSpanName = make([]string, numOps)
	s.backendSpanName = make([]string, numOps)
	s.backendSpanOpts = make([][]trace.SpanStartOption, numOps)
	s.opSpanOpts = make([][]trace.SpanStartOption, numOps*numPolicies)
	for op := store.OperationType(0); int(op) < numOps; op++ {
		s.opSpanName[op] = "nexus.store " + op.String()
		s.backendSpanName[op] = "nexus.store.backend " + op.String()
		s.backendSpanOpts[op] = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				KeyStoreName.String(s.name),
				keyDBOperation.String(op.String()),
				keyDBCollection.String(s.name),
			),
		}
		for p := store.Policy(0); int(p) < numPolicies; p++ {
			if policyApplies(op, p) {
				s.opSpanOpts[int(op)*numPolicies+int(p)] = s.opSpanStart(op, p)
			}
		}
	}
}

func (s *storeReporter) opSpanStart(op store.OperationType, p store.Policy) []trace.SpanStartOption {
	kvs := []attribute.KeyValue{KeyStoreName.String(s.name), KeyOperation.String(op.String())}
	if p != store.PolicyNone {
		kvs = append(kvs, KeyPolicy.String(p.String()))
	}
	return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(kvs...)}
}

func (s *storeReporter) spanName(names []string, op store.OperationType, prefix string) string {
	if int(op) < len(names) {
		return names[op]
	}
	return prefix + op.String()
}

// StartOperation starts the operation's span, as a child of the caller's
// span, and returns it as the handle (nil when no span was started, which
// allocates nothing). An operation is traced when the caller's context
// carries a valid span context, or always with WithRootSpans; reads are not
// traced with WithoutCacheSpans. Work the store starts on its own (the
// interval sync, the final sync of Close) is a new root span, linked to the
// span of the context if there is one.
func (s *storeReporter) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	tr := s.r.tracer
	if tr == nil || (!s.r.cfg.cacheSpans && isRead(op.Operation)) {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(ctx)
	var opts []trace.SpanStartOption
	if int(op.Operation) < numOps && int(op.Policy) < numPolicies {
		opts = s.opSpanOpts[int(op.Operation)*numPolicies+int(op.Policy)]
	}
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
	ctx, span := tr.Start(ctx, s.spanName(s.opSpanName, op.Operation, "nexus.store "), opts...)
	return ctx, span
}

// EndOperation ends the span StartOperation returned: the cache result and
// item count as attributes and, on failure, the error recorded with an
// error status. A read of an absent item is not a failure (the store passes
// no error for it).
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
			endWithError(span, end.Err)
		}
	}
	span.End()
}

// StartBackendCall starts a client span for a backend call, as a child of
// the operation's span (or of the caller's span when the operation has
// none). A background call (a refresh the operation scheduled, running
// after it returned) is a new root span linked to the operation's span.
// Without a span to parent to or link to, no span is started unless
// WithRootSpans is set.
func (s *storeReporter) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	tr := s.r.tracer
	if tr == nil {
		return ctx, nil
	}
	parent := trace.SpanContextFromContext(ctx)
	if !parent.IsValid() && !s.r.cfg.rootSpans {
		return ctx, nil
	}
	var opts []trace.SpanStartOption
	if int(call.Operation) < len(s.backendSpanOpts) {
		opts = s.backendSpanOpts[call.Operation]
	} else {
		opts = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(KeyStoreName.String(s.name), keyDBOperation.String(call.Operation.String()), keyDBCollection.String(s.name)),
		}
	}
	if call.Background {
		opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot())
		if parent.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: parent}))
		}
	}
	ctx, span := tr.Start(ctx, s.spanName(s.backendSpanName, call.Operation, "nexus.store.backend "), opts...)
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
		endWithError(span, end.Err)
	}
	span.End()
}

func endWithError(span trace.Span, err error) {
	span.SetAttributes(KeyErrorType.String(errorType(err)))
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
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

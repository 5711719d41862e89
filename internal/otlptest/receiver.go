// Package otlptest is an OTLP gRPC receiver for tests: it stands in for a
// Collector or an agent's OTLP ingest (the Datadog Agent, say) and keeps
// what it receives.
package otlptest

import (
	"context"
	"net"
	"sync"
	"testing"

	metricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	otlpmetric "go.opentelemetry.io/proto/otlp/metrics/v1"
	otlptrace "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Receiver accepts OTLP metrics and traces over plaintext gRPC.
type Receiver struct {
	// Addr is host:port on 127.0.0.1.
	Addr string

	mu      sync.Mutex
	changed chan struct{}
	metrics []*metricspb.ExportMetricsServiceRequest
	spans   []*tracepb.ExportTraceServiceRequest
	headers []metadata.MD
}

// Start serves a Receiver on a free 127.0.0.1 port until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Addr: l.Addr().String(), changed: make(chan struct{})}
	srv := grpc.NewServer()
	metricspb.RegisterMetricsServiceServer(srv, metricsService{r: r})
	tracepb.RegisterTraceServiceServer(srv, traceService{r: r})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return r
}

func (r *Receiver) record(ctx context.Context, f func()) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	f()
	r.headers = append(r.headers, md)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

type metricsService struct {
	metricspb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (s metricsService) Export(ctx context.Context, req *metricspb.ExportMetricsServiceRequest) (*metricspb.ExportMetricsServiceResponse, error) {
	s.r.record(ctx, func() { s.r.metrics = append(s.r.metrics, req) })
	return &metricspb.ExportMetricsServiceResponse{}, nil
}

type traceService struct {
	tracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s traceService) Export(ctx context.Context, req *tracepb.ExportTraceServiceRequest) (*tracepb.ExportTraceServiceResponse, error) {
	s.r.record(ctx, func() { s.r.spans = append(s.r.spans, req) })
	return &tracepb.ExportTraceServiceResponse{}, nil
}

// Metrics returns every metric received, by name, in arrival order.
func (r *Receiver) Metrics() map[string][]*otlpmetric.Metric {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]*otlpmetric.Metric)
	for _, req := range r.metrics {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					out[m.GetName()] = append(out[m.GetName()], m)
				}
			}
		}
	}
	return out
}

// MetricRequests returns the metric export requests received.
func (r *Receiver) MetricRequests() []*metricspb.ExportMetricsServiceRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*metricspb.ExportMetricsServiceRequest(nil), r.metrics...)
}

// Spans returns the spans received, in arrival order.
func (r *Receiver) Spans() []*otlptrace.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*otlptrace.Span
	for _, req := range r.spans {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				out = append(out, ss.GetSpans()...)
			}
		}
	}
	return out
}

// SpanNames returns the names of the spans received.
func (r *Receiver) SpanNames() []string {
	var out []string
	for _, s := range r.Spans() {
		out = append(out, s.GetName())
	}
	return out
}

// Headers returns the gRPC metadata of every request received.
func (r *Receiver) Headers() []metadata.MD {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metadata.MD(nil), r.headers...)
}

// Wait blocks until cond holds or ctx ends; it wakes on every request.
func (r *Receiver) Wait(ctx context.Context, cond func(*Receiver) bool) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond(r) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrorSink is an OpenTelemetry error handler (otel.SetErrorHandler) that
// keeps what it is handed, for tests to inspect.
type ErrorSink struct {
	mu   sync.Mutex
	errs []error
}

// Handle keeps err.
func (s *ErrorSink) Handle(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

// Take returns and forgets the errors handled so far.
func (s *ErrorSink) Take() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.errs
	s.errs = nil
	return errs
}

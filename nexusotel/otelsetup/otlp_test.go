package otelsetup_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	otlpmetric "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
)

// collector is an OTLP gRPC receiver that keeps what it receives.
type collector struct {
	mu      sync.Mutex
	metrics []*metricspb.ExportMetricsServiceRequest
	spans   []*tracepb.ExportTraceServiceRequest
	headers []metadata.MD
}

type metricsService struct {
	metricspb.UnimplementedMetricsServiceServer
	c *collector
}

func (s metricsService) Export(ctx context.Context, req *metricspb.ExportMetricsServiceRequest) (*metricspb.ExportMetricsServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := s.c
	c.mu.Lock()
	c.metrics = append(c.metrics, req)
	c.headers = append(c.headers, md)
	c.mu.Unlock()
	return &metricspb.ExportMetricsServiceResponse{}, nil
}

type traceService struct {
	tracepb.UnimplementedTraceServiceServer
	c *collector
}

func (s traceService) Export(ctx context.Context, req *tracepb.ExportTraceServiceRequest) (*tracepb.ExportTraceServiceResponse, error) {
	s.c.mu.Lock()
	s.c.spans = append(s.c.spans, req)
	s.c.mu.Unlock()
	return &tracepb.ExportTraceServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collector, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	metricspb.RegisterMetricsServiceServer(srv, metricsService{c: c})
	tracepb.RegisterTraceServiceServer(srv, traceService{c: c})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return c, l.Addr().String()
}

// WithOTLP against a plaintext (http://) endpoint: metrics arrive with the
// delta temporality OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE asks
// for, with the configured header; spans arrive too; Stats stays
// cumulative.
func TestSetupOTLPDelta(t *testing.T) {
	c, addr := startCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k3y")
	t.Setenv("OTEL_SERVICE_NAME", "otlp-test")
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP(), otelsetup.WithReporterOptions(nexusotel.WithRootSpans()))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	for range 4 {
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().OperationCounts[store.OpSave]; got != 4 {
		t.Errorf("Stats: %d saves", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var saves uint64
	var temporality otlpmetric.AggregationTemporality
	for _, req := range c.metrics {
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != nexusotel.MetricOperationDuration {
						continue
					}
					h := m.GetHistogram()
					temporality = h.AggregationTemporality
					for _, dp := range h.DataPoints {
						saves += dp.Count
					}
				}
			}
		}
	}
	if saves != 4 || temporality != otlpmetric.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Errorf("received %d saves, temporality %v; want 4, delta", saves, temporality)
	}
	if len(c.headers) == 0 || !slices.Equal(c.headers[0].Get("x-api-key"), []string{"k3y"}) {
		t.Errorf("headers %v", c.headers)
	}
	var spans int
	for _, req := range c.spans {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
	}
	if spans != 8 { // 4 saves and their backend calls
		t.Errorf("received %d spans, want 8", spans)
	}
}

// Transport security as the specification has it: an https:// endpoint
// gets TLS (which this plaintext receiver cannot speak, so nothing
// arrives), an http:// one plaintext. (The Go exporters need a URL in
// OTEL_EXPORTER_OTLP_ENDPOINT, so the scheme-less form that
// OTEL_EXPORTER_OTLP_INSECURE is meant for cannot be tried.)
func TestSetupOTLPTransportSecurity(t *testing.T) {
	cases := []struct {
		scheme    string
		plaintext bool
	}{
		{"http://", true},
		{"https://", false},
	}
	for _, tc := range cases {
		t.Run(tc.scheme, func(t *testing.T) {
			c, addr := startCollector(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.scheme+addr)
			t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
			ctx := context.Background()
			rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
			if err != nil {
				t.Fatal(err)
			}
			s, _ := newStore(t, "users", rep)
			if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			serr := shutdown(sctx)
			otelErrors.take()
			c.mu.Lock()
			got := len(c.metrics)
			c.mu.Unlock()
			if tc.plaintext && (got == 0 || serr != nil) {
				t.Errorf("plaintext: %d exports received, shutdown %v", got, serr)
			}
			if !tc.plaintext && (got != 0 || serr == nil) {
				t.Errorf("TLS: %d exports received by a plaintext server, shutdown %v", got, serr)
			}
		})
	}
}

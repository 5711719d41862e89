package otelsetup_test

import (
	"context"
	"slices"
	"testing"
	"time"

	otlpmetric "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/nexusstore/nexus/internal/otlptest"
	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
)

// WithOTLP against a plaintext (http://) endpoint: metrics arrive with the
// delta temporality OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE asks
// for, with the configured header; spans arrive too; Stats stays
// cumulative.
func TestSetupOTLPDelta(t *testing.T) {
	c := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+c.Addr)
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

	var saves uint64
	var temporality otlpmetric.AggregationTemporality
	for _, m := range c.Metrics()[nexusotel.MetricOperationDuration] {
		h := m.GetHistogram()
		temporality = h.AggregationTemporality
		for _, dp := range h.DataPoints {
			saves += dp.Count
		}
	}
	if saves != 4 || temporality != otlpmetric.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Errorf("received %d saves, temporality %v; want 4, delta", saves, temporality)
	}
	if h := c.Headers(); len(h) == 0 || !slices.Equal(h[0].Get("x-api-key"), []string{"k3y"}) {
		t.Errorf("headers %v", h)
	}
	if spans := c.SpanNames(); len(spans) != 8 { // 4 saves and their backend calls
		t.Errorf("received %d spans, want 8", len(spans))
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
			c := otlptest.Start(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.scheme+c.Addr)
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
			otelErrors.Take()
			got := len(c.MetricRequests())
			if tc.plaintext && (got == 0 || serr != nil) {
				t.Errorf("plaintext: %d exports received, shutdown %v", got, serr)
			}
			if !tc.plaintext && (got != 0 || serr == nil) {
				t.Errorf("TLS: %d exports received by a plaintext server, shutdown %v", got, serr)
			}
		})
	}
}

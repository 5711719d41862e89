package nexusotel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/nexusstore/nexus/internal/otlptest"
	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestMain(m *testing.M) {
	otel.SetErrorHandler(otelErrors)
	goleak.VerifyTestMain(m)
}

// otelErrors collects what reaches the OpenTelemetry error handler.
var otelErrors = &otlptest.ErrorSink{}

// takeStatsErrors returns and forgets the errors handled so far that came from
// Stats (other tests' exporters may still report late export failures).
func takeStatsErrors() []error {
	var out []error
	for _, err := range otelErrors.Take() {
		if strings.Contains(err.Error(), "nexusotel: stats") {
			out = append(out, err)
		}
	}
	return out
}

type item struct {
	ID string
	N  int
}

func itemID(i item) string { return i.ID }

// newStore returns a store named name over a fresh memory backend,
// reporting to rep; cfg, if given, adjusts the config.
func newStore(t testing.TB, name string, rep store.MetricsReporter, cfg ...func(*store.Config[item, string])) (*store.Store[item, string], *memory.Backend[item, string]) {
	t.Helper()
	b := memory.New[item, string]()
	c := store.Config[item, string]{IDOf: itemID, Name: name, MetricsReporter: rep}
	for _, f := range cfg {
		f(&c)
	}
	s, err := store.New(b, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("closing store %s: %v", name, err)
		}
	})
	return s, b
}

// sdkPipeline is a MeterProvider with a StatsReader and a plain
// ManualReader standing for an exporter, and a reporter on it.
type sdkPipeline struct {
	mp     *sdkmetric.MeterProvider
	stats  *nexusotel.StatsReader
	export *sdkmetric.ManualReader
	rep    *nexusotel.Reporter
}

func newSDKPipeline(t testing.TB, opts []sdkmetric.Option, ropts ...nexusotel.Option) *sdkPipeline {
	t.Helper()
	p := &sdkPipeline{stats: nexusotel.NewStatsReader(), export: sdkmetric.NewManualReader()}
	opts = append([]sdkmetric.Option{sdkmetric.WithReader(p.stats), sdkmetric.WithReader(p.export)}, opts...)
	p.mp = sdkmetric.NewMeterProvider(opts...)
	t.Cleanup(func() { _ = p.mp.Shutdown(context.Background()) })
	rep, err := nexusotel.NewReporter(append([]nexusotel.Option{
		nexusotel.WithMeterProvider(p.mp), nexusotel.WithStatsReader(p.stats), nexusotel.WithoutTracing(),
	}, ropts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.rep = rep
	return p
}

// collect returns the metrics of nexus's scope from r, by name.
func collect(t testing.TB, r sdkmetric.Reader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]metricdata.Metrics)
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != nexusotel.ScopeName {
			continue
		}
		if sm.Scope.Version != nexusotel.Version() || sm.Scope.SchemaURL != nexusotel.SchemaURL {
			t.Errorf("scope %+v, want version %q, schema %q", sm.Scope, nexusotel.Version(), nexusotel.SchemaURL)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

var errBoom = errors.New("boom")

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

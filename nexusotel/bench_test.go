package nexusotel_test

import (
	"context"
	"io"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
)

// idiomaticReporter instruments a store the way most OpenTelemetry
// libraries do: the same instruments, with metric.WithAttributes built on
// every call. It is the baseline the benchmarks compare nexusotel with.
type idiomaticReporter struct {
	name     string
	duration metric.Float64Histogram
	cache    metric.Int64Counter
	sync     metric.Int64Counter
	errors   metric.Int64Counter
}

func newIdiomatic(t testing.TB, mp metric.MeterProvider, name string) *idiomaticReporter {
	m := mp.Meter("idiomatic")
	r := &idiomaticReporter{name: name}
	var err error
	if r.duration, err = m.Float64Histogram("nexus.store.operation.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(nexusotel.DefaultBuckets...)); err != nil {
		t.Fatal(err)
	}
	if r.cache, err = m.Int64Counter("nexus.store.cache.events"); err != nil {
		t.Fatal(err)
	}
	if r.sync, err = m.Int64Counter("nexus.store.sync.events"); err != nil {
		t.Fatal(err)
	}
	if r.errors, err = m.Int64Counter("nexus.store.errors"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *idiomaticReporter) ReportOperation(ctx context.Context, m store.OperationMetric) {
	attrs := []attribute.KeyValue{
		attribute.String("nexus.store.name", r.name),
		attribute.String("nexus.store.operation", m.Operation.String()),
	}
	if m.Policy != store.PolicyNone {
		attrs = append(attrs, attribute.String("nexus.store.policy", m.Policy.String()))
	}
	if m.CacheResult != store.CacheResultNone {
		attrs = append(attrs, attribute.String("nexus.cache.result", m.CacheResult.String()))
	}
	if !m.Success {
		attrs = append(attrs, attribute.String("error.type", store.ErrorType(m.Err)))
	}
	r.duration.Record(ctx, m.Duration.Seconds(), metric.WithAttributes(attrs...))
}

func (r *idiomaticReporter) ReportCacheEvent(ctx context.Context, m store.CacheMetric) {
	r.cache.Add(ctx, 1, metric.WithAttributes(
		attribute.String("nexus.store.name", r.name),
		attribute.String("nexus.cache.event", m.Event.String())))
}

func (r *idiomaticReporter) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	r.sync.Add(ctx, 1, metric.WithAttributes(
		attribute.String("nexus.store.name", r.name),
		attribute.String("nexus.sync.event", m.Event.String())))
}

func (r *idiomaticReporter) ReportError(ctx context.Context, m store.ErrorMetric) {
	r.errors.Add(ctx, 1, metric.WithAttributes(
		attribute.String("nexus.store.name", r.name),
		attribute.String("nexus.store.operation", m.Operation.String()),
		attribute.String("error.type", store.ErrorType(m.Err)),
		attribute.Bool("nexus.error.recoverable", m.Recoverable)))
}

func (r *idiomaticReporter) Flush(context.Context) error { return nil }

// emptyReporter records nothing but is not the no-op reporter, so the store
// does its side of the telemetry (clock reads, calls): it shows what of the
// reporters' cost is the store's own.
type emptyReporter struct{}

func (emptyReporter) ReportOperation(context.Context, store.OperationMetric) {}
func (emptyReporter) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (emptyReporter) ReportSyncEvent(context.Context, store.SyncMetric)      {}
func (emptyReporter) ReportError(context.Context, store.ErrorMetric)         {}
func (emptyReporter) Flush(context.Context) error                            { return nil }

// reporterConfigs are the set-ups measured; each returns the reporter for a
// store named "bench".
var reporterConfigs = []struct {
	name string
	rep  func(testing.TB) store.MetricsReporter
}{
	{"noop", func(testing.TB) store.MetricsReporter { return store.NoOpMetricsReporter{} }},
	{"empty", func(testing.TB) store.MetricsReporter { return emptyReporter{} }},
	{"nexusotel", func(t testing.TB) store.MetricsReporter {
		// One SDK pipeline whose only reader is the stats reader.
		sr := nexusotel.NewStatsReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return mustReporter(t, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	}},
	{"idiomatic", func(t testing.TB) store.MetricsReporter {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return newIdiomatic(t, mp, "bench")
	}},
	{"nexusotel+exporter+stats", func(t testing.TB) store.MetricsReporter {
		// A periodic exporting reader beside the stats reader on one
		// provider.
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(io.Discard))
		if err != nil {
			t.Fatal(err)
		}
		sr := nexusotel.NewStatsReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return mustReporter(t, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	}},
	{"nexusotel-defaults", func(t testing.TB) store.MetricsReporter {
		// The global provider (none installed) plus the private stats
		// pipeline.
		return mustReporter(t)
	}},
	{"nexusotel+private-stats", func(t testing.TB) store.MetricsReporter {
		// A user's SDK provider with one reader, plus the private stats
		// pipeline: every measurement recorded twice.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return mustReporter(t, nexusotel.WithMeterProvider(mp))
	}},
}

// cacheHitStore returns a store named "bench" reporting to rep, holding
// item "a" in its cache.
func cacheHitStore(t testing.TB, rep store.MetricsReporter) *store.Store[item, string] {
	t.Helper()
	s, _ := newStore(t, "bench", rep)
	if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustReporter(t testing.TB, opts ...nexusotel.Option) *nexusotel.Reporter {
	rep, err := nexusotel.NewReporter(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A cache-hit Get through a store with this reporter allocates nothing, in
// every configuration, untraced.
func TestCacheHitGetAllocatesNothing(t *testing.T) {
	for _, c := range reporterConfigs {
		if c.name == "idiomatic" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			s := cacheHitStore(t, c.rep(t))
			ctx := context.Background()
			var err error
			allocs := testing.AllocsPerRun(1000, func() { _, err = s.Get(ctx, "a") })
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Errorf("a cache-hit Get allocates %v times", allocs)
			}
		})
	}
}

// With an SDK TracerProvider, an untraced cache-hit Get starts no span and
// allocates nothing.
func TestUntracedGetAllocatesNothingWithSDKTracer(t *testing.T) {
	tr := newTracing(t)
	s := cacheHitStore(t, tr.rep)
	ctx := context.Background()
	var err error
	allocs := testing.AllocsPerRun(1000, func() { _, err = s.Get(ctx, "a") })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("an untraced cache-hit Get allocates %v times", allocs)
	}
	if n := len(tr.spans.Started()); n != 0 {
		t.Errorf("%d spans started", n)
	}
}

// The failure path allocates nothing in nexusotel once its series exists
// (what allocates is the store's own error value).
func TestFailureSeriesAllocateNothing(t *testing.T) {
	sr := nexusotel.NewStatsReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rep := mustReporter(t, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	ctx := context.Background()
	m := store.OperationMetric{Operation: store.OpSave, Err: errBoom, Policy: store.WriteCacheFirst.Policy(), SampleRate: 1}
	e := store.ErrorMetric{Operation: store.OpSave, Err: errBoom}
	allocs := testing.AllocsPerRun(1000, func() {
		rep.ReportOperation(ctx, m)
		rep.ReportError(ctx, e)
	})
	if allocs != 0 {
		t.Errorf("a reported failure allocates %v times", allocs)
	}
}

// BenchmarkCacheHitGet measures a cache-hit Get, untraced, under each
// reporter configuration.
func BenchmarkCacheHitGet(b *testing.B) {
	for _, c := range reporterConfigs {
		b.Run(c.name, func(b *testing.B) {
			s := cacheHitStore(b, c.rep(b))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, "a"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCacheHitGetParallel is BenchmarkCacheHitGet on every core.
func BenchmarkCacheHitGetParallel(b *testing.B) {
	for _, c := range reporterConfigs {
		b.Run(c.name, func(b *testing.B) {
			s := cacheHitStore(b, c.rep(b))
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Get(ctx, "a"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

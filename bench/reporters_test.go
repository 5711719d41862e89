package bench

import (
	"context"
	"io"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
)

// config is one telemetry set-up the store operations are measured under.
type config struct {
	name string
	// reporter returns the store's reporter and sample rate; it registers
	// the clean-up of whatever it started.
	reporter func(testing.TB) (store.MetricsReporter, float64)
}

// configs are the store set-ups, in the order the table prints them. The
// bare map is not among them: each operation has its own floor.
var configs = []config{
	{"noop", func(testing.TB) (store.MetricsReporter, float64) { return store.NoOpMetricsReporter{}, 1 }},
	{"nothing", func(testing.TB) (store.MetricsReporter, float64) { return nothing{}, 1 }},
	{"console", func(testing.TB) (store.MetricsReporter, float64) {
		return reporters.NewConsole(io.Discard), 1
	}},
	{"buffered", func(tb testing.TB) (store.MetricsReporter, float64) {
		b := reporters.NewBuffered(nothing{})
		tb.Cleanup(func() { _ = b.Close(context.Background()) })
		return b, 1
	}},
	{"otel", func(tb testing.TB) (store.MetricsReporter, float64) { return oneReader(tb), 1 }},
	{"otel_export_stats", func(tb testing.TB) (store.MetricsReporter, float64) {
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(io.Discard))
		if err != nil {
			tb.Fatal(err)
		}
		sr := nexusotel.NewStatsReader()
		mp := provider(tb, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)), sdkmetric.WithReader(sr))
		return otelReporter(tb, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr)), 1
	}},
	{"otel_private_stats", func(tb testing.TB) (store.MetricsReporter, float64) {
		mp := provider(tb, sdkmetric.WithReader(sdkmetric.NewManualReader()))
		return otelReporter(tb, nexusotel.WithMeterProvider(mp)), 1
	}},
	{"otel_sample_0.01", func(tb testing.TB) (store.MetricsReporter, float64) { return oneReader(tb), 0.01 }},
	{"usual", func(tb testing.TB) (store.MetricsReporter, float64) {
		return newUsual(tb, provider(tb, sdkmetric.WithReader(sdkmetric.NewManualReader())), storeName), 1
	}},
}

// nothing implements store.MetricsReporter with empty methods, and nothing
// else. Unlike store.NoOpMetricsReporter, which the store recognizes and
// skips, it makes the store do its side of the telemetry (sampling, clock
// reads, building the metrics, the calls): what every real reporter pays
// before it records anything.
type nothing struct{}

func (nothing) ReportOperation(context.Context, store.OperationMetric) {}
func (nothing) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (nothing) ReportSyncEvent(context.Context, store.SyncMetric)      {}
func (nothing) ReportError(context.Context, store.ErrorMetric)         {}
func (nothing) Flush(context.Context) error                            { return nil }

var _ store.MetricsReporter = nothing{}

// provider returns an SDK MeterProvider with opts, shut down at clean-up.
func provider(tb testing.TB, opts ...sdkmetric.Option) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(opts...)
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// oneReader is nexusotel recording once: on a provider whose one reader is
// the StatsReader that Store.Stats reads.
func oneReader(tb testing.TB) *nexusotel.Reporter {
	sr := nexusotel.NewStatsReader()
	mp := provider(tb, sdkmetric.WithReader(sr))
	return otelReporter(tb, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
}

func otelReporter(tb testing.TB, opts ...nexusotel.Option) *nexusotel.Reporter {
	rep, err := nexusotel.NewReporter(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

// usual instruments a store the way most OpenTelemetry instrumentations
// do: the same instruments as nexusotel (the operation histogram with the
// same buckets, the cache-event counter), with metric.WithAttributes built
// on every call. It is the yardstick of the added-cost ratio.
type usual struct {
	name     string
	duration metric.Float64Histogram
	cache    metric.Int64Counter
	sync     metric.Int64Counter
	errors   metric.Int64Counter
}

func newUsual(tb testing.TB, mp metric.MeterProvider, name string) *usual {
	m := mp.Meter("usual")
	u := &usual{name: name}
	var err error
	if u.duration, err = m.Float64Histogram(nexusotel.MetricOperationDuration, metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(nexusotel.DefaultBuckets...)); err != nil {
		tb.Fatal(err)
	}
	if u.cache, err = m.Int64Counter(nexusotel.MetricCacheEvents); err != nil {
		tb.Fatal(err)
	}
	if u.sync, err = m.Int64Counter(nexusotel.MetricSyncEvents); err != nil {
		tb.Fatal(err)
	}
	if u.errors, err = m.Int64Counter(nexusotel.MetricErrors); err != nil {
		tb.Fatal(err)
	}
	return u
}

func (u *usual) ReportOperation(ctx context.Context, m store.OperationMetric) {
	attrs := []attribute.KeyValue{
		nexusotel.KeyStoreName.String(u.name),
		nexusotel.KeyOperation.String(m.Operation.String()),
	}
	if m.Policy != store.PolicyNone {
		attrs = append(attrs, nexusotel.KeyPolicy.String(m.Policy.String()))
	}
	if m.CacheResult != store.CacheResultNone {
		attrs = append(attrs, nexusotel.KeyCacheResult.String(m.CacheResult.String()))
	}
	if !m.Success {
		attrs = append(attrs, nexusotel.KeyErrorType.String(store.ErrorType(m.Err)))
	}
	u.duration.Record(ctx, m.Duration.Seconds(), metric.WithAttributes(attrs...))
}

func (u *usual) ReportCacheEvent(ctx context.Context, m store.CacheMetric) {
	u.cache.Add(ctx, 1, metric.WithAttributes(
		nexusotel.KeyStoreName.String(u.name),
		nexusotel.KeyCacheEvent.String(m.Event.String())))
}

func (u *usual) ReportSyncEvent(ctx context.Context, m store.SyncMetric) {
	u.sync.Add(ctx, 1, metric.WithAttributes(
		nexusotel.KeyStoreName.String(u.name),
		nexusotel.KeySyncEvent.String(m.Event.String())))
}

func (u *usual) ReportError(ctx context.Context, m store.ErrorMetric) {
	u.errors.Add(ctx, 1, metric.WithAttributes(
		nexusotel.KeyStoreName.String(u.name),
		nexusotel.KeyOperation.String(m.Operation.String()),
		nexusotel.KeyErrorType.String(store.ErrorType(m.Err))))
}

func (u *usual) Flush(context.Context) error { return nil }

var _ store.MetricsReporter = (*usual)(nil)

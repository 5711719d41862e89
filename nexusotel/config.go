package nexusotel

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every instrument and span
// nexusotel creates.
const ScopeName = "github.com/nexusstore/nexus/nexusotel"

// Version is the instrumentation version reported with ScopeName.
const Version = "0.1.0"

// DefaultBuckets are the explicit bucket boundaries, in seconds, that the
// duration histograms (nexus.store.operation.duration,
// nexus.store.backend.duration, nexus.store.sync.duration) pass to the SDK
// as advice: from 1µs (a cache hit takes well under a microsecond) to 10s
// (a slow remote call), about three boundaries per decade.
//
// Advice only applies when no View says otherwise. To change them, register
// a View on the MeterProvider, for instance
//
//	sdkmetric.NewView(
//		sdkmetric.Instrument{Name: "nexus.store.*.duration"},
//		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
//			Boundaries: []float64{0.0001, 0.001, 0.01, 0.1, 1},
//		}},
//	)
//
// or choose exponential histograms, which need no boundaries at all, with
// sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
// in the Stream (or OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=
// base2_exponential_bucket_histogram for the OTLP exporters). Store.Stats
// reads either kind. WithBuckets changes the advice itself.
var DefaultBuckets = []float64{
	0.000001, 0.0000025, 0.000005,
	0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// Option configures a Reporter; pass it to NewReporter.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mp          metric.MeterProvider
	statsReader *StatsReader
	tp          trace.TracerProvider
	attrs       []attribute.KeyValue
	buckets     []float64
	rootSpans   bool
	cacheSpans  bool
	tracing     bool
}

func newConfig(opts []Option) (config, error) {
	c := config{cacheSpans: true, tracing: true, buckets: slices.Clone(DefaultBuckets)}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if err := checkStaticAttrs(c.attrs); err != nil {
		return c, err
	}
	if err := checkBuckets(c.buckets); err != nil {
		return c, err
	}
	return c, nil
}

// WithMeterProvider records onto mp instead of the global MeterProvider.
// Unless WithStatsReader names a StatsReader registered on mp, the reporter
// also keeps a private stats pipeline beside it (see NewReporter).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithStatsReader makes Store.Stats read from sr, which the caller
// registered on the MeterProvider the reporter records on
// (sdkmetric.WithReader(sr)). The reporter then keeps no private stats
// pipeline, and every measurement is recorded once. Views on that provider
// apply to sr too: Stats reads explicit and exponential histograms, and
// says so in an error when a View removed what it needs.
func WithStatsReader(sr *StatsReader) Option {
	return optionFunc(func(c *config) { c.statsReader = sr })
}

// WithTracerProvider makes operation and backend spans with tp instead of
// the global TracerProvider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithAttributes adds static attributes to every series of every
// instrument, for filtering and grouping (deployment.environment,
// tenant.tier, ...). They are fixed for the reporter's life, so they add no
// cardinality. Keys in the "nexus." namespace and error.type are reserved:
// NewReporter rejects them, and repeated or invalid keys, with an error.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	attrs = slices.Clone(attrs)
	return optionFunc(func(c *config) { c.attrs = append(c.attrs, attrs...) })
}

// WithBuckets replaces DefaultBuckets as the bucket boundaries advised for
// the duration histograms, in seconds, strictly increasing. A View on the
// MeterProvider still takes precedence.
func WithBuckets(bounds []float64) Option {
	bounds = slices.Clone(bounds)
	return optionFunc(func(c *config) { c.buckets = bounds })
}

// WithRootSpans makes an operation span even when the caller's context
// carries none (the span is then the root of a new trace). By default an
// operation is traced only inside a caller's trace, so that untraced calls
// cost no span.
func WithRootSpans() Option {
	return optionFunc(func(c *config) { c.rootSpans = true })
}

// WithoutCacheSpans makes no operation span for reads (Get, GetAll, Watch,
// WatchAll), so that reads the cache serves add nothing to traces. A read
// that reaches the backend still shows: its backend call span is then a
// child of the caller's span directly. Metrics are unchanged.
func WithoutCacheSpans() Option {
	return optionFunc(func(c *config) { c.cacheSpans = false })
}

// WithoutTracing turns spans off altogether; the metrics (including
// nexus.store.backend.duration) are unchanged.
func WithoutTracing() Option {
	return optionFunc(func(c *config) { c.tracing = false })
}

func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("nexusotel: WithBuckets: no boundaries")
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("nexusotel: WithBuckets: boundary %d is %v", i, v)
		}
		if i > 0 && v <= b[i-1] {
			return fmt.Errorf("nexusotel: WithBuckets: boundaries must increase strictly (%v after %v)", v, b[i-1])
		}
	}
	return nil
}

package nexusotel

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexusstore/nexus/store"
)

// ScopeName is the instrumentation scope of every instrument and span
// nexusotel creates.
const ScopeName = "github.com/nexusstore/nexus/nexusotel"

// SchemaURL is the OpenTelemetry schema of the attribute names nexusotel
// uses (error.type, db.system.name, db.collection.name, db.operation.name,
// server.address, ...): semantic conventions 1.43.0, the version of
// go.opentelemetry.io/otel v1.47.0's semconv package. It is the schema URL
// of the instrumentation scope.
const SchemaURL = "https://opentelemetry.io/schemas/1.43.0"

// modulePath is the module nexusotel belongs to; its version, as the
// program was built with it, is the instrumentation scope's version.
const modulePath = "github.com/nexusstore/nexus"

// Version returns the instrumentation version reported with ScopeName: the
// version of the github.com/nexusstore/nexus module the program was built
// with, from its build information (runtime/debug.ReadBuildInfo), e.g.
// "v1.2.0" or a pseudo-version. When there is none to be had (the module is
// the main module of a build outside version control, where Go reports
// "(devel)", or the binary carries no build information) it returns
// "devel".
func Version() string {
	versionOnce.Do(func() { version = moduleVersion(debug.ReadBuildInfo()) })
	return version
}

var (
	versionOnce sync.Once
	version     string
)

// moduleVersion finds the version of modulePath in a build's information.
func moduleVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "devel"
	}
	v := bi.Main.Version
	if bi.Main.Path != modulePath {
		v = ""
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				if d.Replace != nil && d.Replace.Version != "" {
					d = d.Replace
				}
				v = d.Version
				break
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
}

// DefaultBuckets are the explicit bucket boundaries, in seconds, that the
// duration histograms (nexus.store.operation.duration,
// nexus.store.backend.duration, nexus.store.sync.duration) pass to the SDK
// as advice: 15 boundaries (each is a Prometheus series per labelled
// series), 0.5µs, then 1 and 2.5 per decade from 1µs to 1s, then 5s.
//
// They were chosen from distributions measured with
// BenchmarkDurationDistribution (docs/telemetry.md has the figures): a
// cache hit takes 0.23-0.28µs (1st to 99th percentile), so hits fall below
// 0.5µs and a slow hit shows above it; a read-through of the memory
// backend about 1µs (99th percentile 28µs); a SQLite read 15µs (147µs); a
// SQLite write 0.5-20ms; a networked database answers in 0.2-5ms and a
// remote service in 10ms-1s. Each of these spans at least two buckets, so
// percentiles move when they do.
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
// reads either kind. Prometheus keeps exponential histograms only when it
// scrapes native histograms (--enable-feature=native-histograms, or
// scrape_native_histograms: true from Prometheus 3.8); a text scrape has
// only the +Inf bucket and every quantile is NaN. The shipped dashboard
// reads either kind. WithBuckets changes the advice itself.
var DefaultBuckets = []float64{
	0.0000005,
	0.000001, 0.0000025,
	0.00001, 0.000025,
	0.0001, 0.00025,
	0.001, 0.0025,
	0.01, 0.025,
	0.1, 0.25,
	1, 5,
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
	statsMaxAge time.Duration
	tp          trace.TracerProvider
	attrs       []attribute.KeyValue
	buckets     []float64
	rootSpans   bool
	cacheSpans  bool
	tracing     bool
	spanFilter  func(SpanInfo) bool
	spanName    func(SpanInfo) string
	spanError   func(error) string
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

// WithStatsMaxAge lets Store.Stats answer from a collection of the
// StatsReader younger than d instead of collecting again. A collection
// runs every observable callback registered on the reader's
// MeterProvider: with WithStatsReader on a provider where other libraries
// register costly callbacks, d bounds how often Stats runs them, at the
// price of figures up to d old for a store that keeps recording. The
// default, 0, collects whenever the store recorded something since the
// last collection (a store that recorded nothing since is answered at no
// cost either way). The private pipeline has no callbacks.
func WithStatsMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.statsMaxAge = d })
}

// WithTracerProvider makes operation and backend spans with tp, always.
// Without it, a span is made with the TracerProvider of the caller's span
// (trace.SpanFromContext(ctx).TracerProvider(), as otelhttp does), so that
// an application with a provider of its own, installed globally or not,
// gets the store's spans in its traces; with no local span in the context
// (none, or only a remote parent), with the global TracerProvider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// SpanInfo describes one kind of span to WithSpanFilter and
// WithSpanNameFormatter, which are called when a store binds, once per
// operation or backend call, never per span.
type SpanInfo struct {
	// Store is the store's name.
	Store string
	// Operation is the store operation, or for a backend call the backend
	// method (store.OpGet, OpGetAll, OpSave, OpDelete, OpTransaction).
	Operation store.OperationType
	// BackendCall is set for a backend call's span.
	BackendCall bool
	// Backend is what the store's backend says of itself
	// (store.DescribedBackend).
	Backend store.BackendInfo
}

// WithSpanFilter makes no span for the operations and backend calls for
// which keep returns false; their metrics are unchanged. A backend call of
// an operation without a span is parented to the caller's span. For
// instance, no span for reads:
//
//	nexusotel.WithSpanFilter(func(s nexusotel.SpanInfo) bool {
//		return s.BackendCall || (s.Operation != store.OpGet && s.Operation != store.OpGetAll)
//	})
func WithSpanFilter(keep func(SpanInfo) bool) Option {
	return optionFunc(func(c *config) { c.spanFilter = keep })
}

// WithSpanNameFormatter names spans with name instead of the defaults
// ("nexus.store get" for operations; for backend calls of a database
// backend "{db.operation.name} {target}", e.g. "get items", and
// "nexus.store.backend get" for others). The name should stay of low
// cardinality: name is called once per store and operation.
func WithSpanNameFormatter(name func(SpanInfo) string) Option {
	return optionFunc(func(c *config) { c.spanName = name })
}

// WithSpanErrors sets what a failed operation's or backend call's span
// records of its error: describe returns the span status description and
// the exception event's exception.message ("" records neither message).
// The error.type attribute and exception.type are always
// store.ErrorType(err).
//
// Error messages carry item IDs (store: save "user-42": ...), which are
// never telemetry by default: the default records the error type as the
// message (e.g. "store.ErrUnavailable"). To record messages, pass a
// function that scrubs what your errors carry, or, where IDs may be
// recorded, func(err error) string { return err.Error() }.
func WithSpanErrors(describe func(err error) string) Option {
	return optionFunc(func(c *config) { c.spanError = describe })
}

// WithAttributes adds static attributes to every series of every
// instrument and to every span, for filtering and grouping
// (deployment.environment, tenant.tier, ...). They are fixed for the
// reporter's life, so they add no cardinality. Keys in the "nexus."
// namespace and error.type are reserved: NewReporter rejects them, and
// repeated or invalid keys, with an error.
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

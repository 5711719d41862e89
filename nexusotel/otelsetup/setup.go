package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/nexusstore/nexus/nexusotel"
)

// Option configures Setup.
type Option interface {
	applySetup(*setupConfig)
}

type optionFunc func(*setupConfig)

func (f optionFunc) applySetup(c *setupConfig) { f(c) }

type setupConfig struct {
	stdout       io.Writer
	pretty       bool
	otlp         bool
	prometheus   bool
	promOpts     []otelprom.Option
	reporterOpts []nexusotel.Option
	global       bool
}

// WithStdout exports metrics (stdoutmetric) and spans (stdouttrace) as JSON
// to w, for debugging: one document per export (every
// OTEL_METRIC_EXPORT_INTERVAL, 60s by default, and at shutdown), compact
// unless WithPrettyPrint is given.
func WithStdout(w io.Writer) Option {
	return optionFunc(func(c *setupConfig) { c.stdout = w })
}

// WithPrettyPrint indents the JSON of WithStdout.
func WithPrettyPrint() Option {
	return optionFunc(func(c *setupConfig) { c.pretty = true })
}

// WithOTLP exports metrics and spans over OTLP gRPC (otlpmetricgrpc,
// otlptracegrpc), configured by the standard environment variables:
// OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4317; TLS unless the
// endpoint's scheme is http:// or OTEL_EXPORTER_OTLP_INSECURE=true),
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, the per-signal
// variants, and OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE (delta,
// for Datadog; the exporter reads it itself).
func WithOTLP() Option {
	return optionFunc(func(c *setupConfig) { c.otlp = true })
}

// WithPrometheus adds the OpenTelemetry Prometheus exporter as a pull
// reader, for a service that serves /metrics itself with no Collector. By
// default it registers on prometheus.DefaultRegisterer, so the usual
//
//	http.Handle("/metrics", promhttp.Handler())
//
// serves nexus's metrics beside the process's own; opts (such as
// prometheus.WithRegisterer) are passed to the exporter. The environment
// route is OTEL_METRICS_EXPORTER=prometheus, which starts autoexport's own
// server on OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT
// (localhost:9464).
func WithPrometheus(opts ...otelprom.Option) Option {
	return optionFunc(func(c *setupConfig) {
		c.prometheus = true
		c.promOpts = append(c.promOpts, opts...)
	})
}

// WithReporterOptions passes opts to nexusotel.NewReporter (after the
// provider options Setup sets).
func WithReporterOptions(opts ...nexusotel.Option) Option {
	return optionFunc(func(c *setupConfig) { c.reporterOpts = append(c.reporterOpts, opts...) })
}

// WithGlobal installs the MeterProvider and TracerProvider Setup builds as
// the OpenTelemetry globals (otel.SetMeterProvider, otel.SetTracerProvider),
// for other instrumentation in the process.
func WithGlobal() Option {
	return optionFunc(func(c *setupConfig) { c.global = true })
}

// Setup builds a complete pipeline and a nexusotel.Reporter on it, in one
// call:
//
//   - a resource from the SDK's detectors: OTEL_SERVICE_NAME,
//     OTEL_RESOURCE_ATTRIBUTES, the host name and the SDK's own attributes;
//   - a MeterProvider with a PeriodicReader over the chosen exporter (plus
//     the Prometheus reader of WithPrometheus) and a nexusotel.StatsReader, so that
//     Store.Stats reads the same measurements with no second pipeline;
//   - a TracerProvider with a batch span processor over the chosen
//     exporter.
//
// The exporters are WithStdout's and WithOTLP's when given; otherwise the
// environment chooses through go.opentelemetry.io/contrib/exporters/autoexport:
// OTEL_METRICS_EXPORTER and OTEL_TRACES_EXPORTER (otlp, the default;
// console; prometheus, metrics only; none) and OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf, the default, or grpc), with every OTEL_EXPORTER_OTLP_*
// variable honoured by the exporters themselves. With WithPrometheus alone,
// metrics go to Prometheus only unless OTEL_METRICS_EXPORTER says more.
//
// Exports run in the background: an unreachable endpoint never blocks or
// fails a store operation; export errors go to the OpenTelemetry error
// handler (otel.SetErrorHandler). Header values from
// OTEL_EXPORTER_OTLP_HEADERS (API keys) never appear in the errors Setup
// returns: a malformed header variable is refused before the exporter can
// log it, naming the variable and the entry's position only.
//
// The returned shutdown flushes and shuts down both providers, within its
// context, and returns their errors joined. Call it once, after the stores
// are closed.
func Setup(ctx context.Context, opts ...Option) (*nexusotel.Reporter, func(context.Context) error, error) {
	var cfg setupConfig
	for _, o := range opts {
		if o != nil {
			o.applySetup(&cfg)
		}
	}
	auto := cfg.stdout == nil && !cfg.otlp
	if cfg.otlp || auto {
		if err := checkHeaderEnv(); err != nil {
			return nil, nil, err
		}
	}
	res, err := newResource(ctx)
	if err != nil {
		return nil, nil, err
	}

	var (
		readers   []sdkmetric.Reader
		spanExps  []sdktrace.SpanExporter
		cleanups  []func(context.Context) error
		setupErrs []error
	)
	fail := func(err error) (*nexusotel.Reporter, func(context.Context) error, error) {
		for _, c := range cleanups {
			setupErrs = append(setupErrs, c(ctx))
		}
		return nil, nil, errors.Join(append([]error{err}, setupErrs...)...)
	}
	addReader := func(r sdkmetric.Reader) {
		readers = append(readers, r)
		cleanups = append(cleanups, r.Shutdown)
	}
	addSpans := func(e sdktrace.SpanExporter) {
		spanExps = append(spanExps, e)
		cleanups = append(cleanups, e.Shutdown)
	}

	if cfg.stdout != nil {
		mopts := []stdoutmetric.Option{stdoutmetric.WithWriter(cfg.stdout)}
		topts := []stdouttrace.Option{stdouttrace.WithWriter(cfg.stdout)}
		if cfg.pretty {
			mopts = append(mopts, stdoutmetric.WithPrettyPrint())
			topts = append(topts, stdouttrace.WithPrettyPrint())
		}
		me, err := stdoutmetric.New(mopts...)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: stdout metric exporter: %w", err))
		}
		addReader(sdkmetric.NewPeriodicReader(me))
		te, err := stdouttrace.New(topts...)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: stdout span exporter: %w", err))
		}
		addSpans(te)
	}
	if cfg.otlp {
		me, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: OTLP gRPC metric exporter: %w", err))
		}
		addReader(sdkmetric.NewPeriodicReader(me))
		te, err := otlptracegrpc.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: OTLP gRPC span exporter: %w", err))
		}
		addSpans(te)
	}
	if auto {
		// WithPrometheus is the metrics exporter unless the environment
		// names one: no OTLP default beside it.
		if !cfg.prometheus || os.Getenv("OTEL_METRICS_EXPORTER") != "" {
			mr, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				return fail(fmt.Errorf("otelsetup: metric exporter from OTEL_METRICS_EXPORTER: %w", err))
			}
			addReader(mr)
		}
		te, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: span exporter from OTEL_TRACES_EXPORTER: %w", err))
		}
		if autoexport.IsNoneSpanExporter(te) {
			cfg.reporterOpts = append([]nexusotel.Option{nexusotel.WithoutTracing()}, cfg.reporterOpts...)
		} else {
			addSpans(te)
		}
	}
	if cfg.prometheus {
		pr, err := otelprom.New(cfg.promOpts...)
		if err != nil {
			return fail(fmt.Errorf("otelsetup: Prometheus exporter: %w", err))
		}
		addReader(pr)
	}

	sr := nexusotel.NewStatsReader()
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(sr)}
	for _, r := range readers {
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, e := range spanExps {
		topts = append(topts, sdktrace.WithBatcher(e))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	// From here on the providers own the readers and exporters.
	cleanups = []func(context.Context) error{tp.Shutdown, mp.Shutdown}

	rep, err := nexusotel.NewReporter(append([]nexusotel.Option{
		nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr), nexusotel.WithTracerProvider(tp),
	}, cfg.reporterOpts...)...)
	if err != nil {
		return fail(err)
	}
	if cfg.global {
		otel.SetMeterProvider(mp)
		otel.SetTracerProvider(tp)
	}
	shutdown := func(ctx context.Context) error {
		var errs []error
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("otelsetup: shutdown: traces: %w", err))
		}
		if err := mp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("otelsetup: shutdown: metrics: %w", err))
		}
		return errors.Join(errs...)
	}
	return rep, shutdown, nil
}

// newResource describes the process: the SDK's defaults (service.name
// "unknown_service:<executable>", telemetry.sdk.*), the host, and the
// environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), which wins.
func newResource(ctx context.Context) (*resource.Resource, error) {
	detected, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		otel.Handle(fmt.Errorf("otelsetup: resource: %w", err))
	} else if err != nil {
		return nil, fmt.Errorf("otelsetup: resource: %w", err)
	}
	merged, err := resource.Merge(resource.Default(), detected)
	if err != nil { // differing schema URLs: keep what was detected
		return detected, nil
	}
	return merged, nil
}

// headerEnvVars are the variables that carry OTLP headers.
var headerEnvVars = []string{
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
}

// checkHeaderEnv validates the OTLP header variables as the exporters parse
// them (comma-separated key=value, values URL-escaped). The exporters log a
// malformed entry, value included, through the OpenTelemetry logger; an
// entry may well be an API key, so Setup refuses it first and names only
// the variable, the entry's position and (for a bad value) its key.
func checkHeaderEnv() error {
	for _, name := range headerEnvVars {
		v, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		for i, entry := range strings.Split(v, ",") {
			if strings.TrimSpace(entry) == "" {
				continue
			}
			key, val, found := strings.Cut(entry, "=")
			if !found {
				return fmt.Errorf("otelsetup: %s: entry %d is not key=value (its content is not shown: it may be a credential)", name, i+1)
			}
			key = strings.TrimSpace(key)
			if !validHeaderKey(key) {
				return fmt.Errorf("otelsetup: %s: entry %d has an invalid header name (not shown)", name, i+1)
			}
			if _, err := url.PathUnescape(val); err != nil {
				return fmt.Errorf("otelsetup: %s: the value of header %q is not properly URL-escaped (not shown)", name, key)
			}
		}
	}
	return nil
}

// validHeaderKey reports whether k is an HTTP token (RFC 9110).
func validHeaderKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

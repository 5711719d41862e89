package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

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
	views        []sdkmetric.View
	resAttrs     []attribute.KeyValue
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

// WithOTLP exports metrics and spans over OTLP, configured by the standard
// environment variables. The protocol is OTEL_EXPORTER_OTLP_PROTOCOL (or
// the per-signal OTEL_EXPORTER_OTLP_METRICS_PROTOCOL and
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL): "grpc" (otlpmetricgrpc,
// otlptracegrpc; the default for WithOTLP, default endpoint
// https://localhost:4317) or "http/protobuf" (otlpmetrichttp,
// otlptracehttp; default endpoint https://localhost:4318). The exporters
// read OTEL_EXPORTER_OTLP_ENDPOINT (a URL: TLS unless its scheme is
// http://), OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, the
// per-signal variants, and OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
// (delta, for Datadog). Setup checks the protocol and endpoint variables
// first and refuses a bad one (an endpoint without a scheme, such as
// 127.0.0.1:4317, which the exporters would accept and then fail with in
// the background) with an error naming the variable.
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
// for other instrumentation in the process, and the propagators
// OTEL_PROPAGATORS names (otel.SetTextMapPropagator; default
// "tracecontext,baggage"; also b3, b3multi, jaeger, xray, ottrace, none,
// through go.opentelemetry.io/contrib/propagators/autoprop), so that
// incoming and outgoing requests carry the trace.
func WithGlobal() Option {
	return optionFunc(func(c *setupConfig) { c.global = true })
}

// WithViews registers views on the MeterProvider, e.g. to choose other
// bucket boundaries or exponential histograms for nexus's histograms.
// Store.Stats reads what the views leave (explicit or exponential
// histograms) and says so when a view removed what it needs.
func WithViews(views ...sdkmetric.View) Option {
	return optionFunc(func(c *setupConfig) { c.views = append(c.views, views...) })
}

// WithResourceAttributes adds attributes to the resource that describes
// the process (deployment.environment.name, service.version, ...). The
// environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) wins over
// them, so that an operator can override what the code says.
func WithResourceAttributes(attrs ...attribute.KeyValue) Option {
	return optionFunc(func(c *setupConfig) { c.resAttrs = append(c.resAttrs, attrs...) })
}

// Setup builds a complete pipeline and a nexusotel.Reporter on it, in one
// call:
//
//   - a resource: service.name (OTEL_SERVICE_NAME, else
//     "unknown_service:<executable>"), a service.instance.id that is a new
//     random UUID for each process unless OTEL_RESOURCE_ATTRIBUTES sets
//     one (so that replicas of a service are distinct series, and a
//     Collector's Prometheus exporter makes a target_info for each), the
//     host, the SDK's own attributes, WithResourceAttributes, then
//     OTEL_RESOURCE_ATTRIBUTES, which wins;
//   - a MeterProvider with a PeriodicReader over the chosen exporter (plus
//     the Prometheus reader of WithPrometheus), the views of WithViews and
//     a nexusotel.StatsReader, so that Store.Stats reads the same
//     measurements with no second pipeline;
//   - a TracerProvider with a batch span processor over the chosen
//     exporter.
//
// The exporters are WithStdout's and WithOTLP's when given; otherwise the
// environment chooses through go.opentelemetry.io/contrib/exporters/autoexport:
// OTEL_METRICS_EXPORTER and OTEL_TRACES_EXPORTER (otlp, the default;
// console; prometheus, metrics only; none) and OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf, the default on this route as the specification has it,
// or grpc), with every OTEL_EXPORTER_OTLP_* variable honoured by the
// exporters themselves. With WithPrometheus alone, metrics go to
// Prometheus only unless OTEL_METRICS_EXPORTER says more.
//
// With OTEL_SDK_DISABLED=true, Setup builds no exporter and no SDK
// provider: the reporter records on no-op providers (Store.Stats still
// works, from its private pipeline), WithGlobal installs only the
// propagators, and shutdown does nothing.
//
// Exports run in the background: an unreachable endpoint never blocks or
// fails a store operation; export errors go to the OpenTelemetry error
// handler (otel.SetErrorHandler). What can be checked before is checked:
// the OTLP protocol and endpoint variables, OTEL_PROPAGATORS, and the
// header variables, whose values (API keys) never appear in the errors
// Setup returns: a malformed header variable is refused before the
// exporter can log it, naming the variable and the entry's position only.
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
	var props propagation.TextMapPropagator
	if cfg.global {
		var err error
		if props, err = propagators(); err != nil {
			return nil, nil, err
		}
	}
	if disabled, err := sdkDisabled(); err != nil {
		return nil, nil, err
	} else if disabled {
		rep, err := nexusotel.NewReporter(append([]nexusotel.Option{
			nexusotel.WithMeterProvider(metricnoop.NewMeterProvider()),
			nexusotel.WithTracerProvider(tracenoop.NewTracerProvider()),
		}, cfg.reporterOpts...)...)
		if err != nil {
			return nil, nil, err
		}
		if props != nil {
			otel.SetTextMapPropagator(props)
		}
		return rep, func(context.Context) error { return nil }, nil
	}

	auto := cfg.stdout == nil && !cfg.otlp
	if cfg.otlp || auto {
		if err := checkHeaderEnv(); err != nil {
			return nil, nil, err
		}
	}
	var metricsProto, tracesProto string
	if cfg.otlp {
		var err error
		if metricsProto, err = otlpProtocol("METRICS", "grpc"); err != nil {
			return nil, nil, err
		}
		if tracesProto, err = otlpProtocol("TRACES", "grpc"); err != nil {
			return nil, nil, err
		}
		if err := checkEndpoints("METRICS", "TRACES"); err != nil {
			return nil, nil, err
		}
	}
	if auto {
		// The environment route: check what autoexport will read, so
		// that the error names the variable at fault.
		var signals []string
		if autoOTLP("OTEL_METRICS_EXPORTER", !cfg.prometheus) {
			signals = append(signals, "METRICS")
		}
		if autoOTLP("OTEL_TRACES_EXPORTER", true) {
			signals = append(signals, "TRACES")
		}
		for _, sig := range signals {
			if _, err := otlpProtocol(sig, "http/protobuf"); err != nil {
				return nil, nil, err
			}
		}
		if err := checkEndpoints(signals...); err != nil {
			return nil, nil, err
		}
	}
	res, err := newResource(ctx, cfg.resAttrs)
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
		var me sdkmetric.Exporter
		if metricsProto == "grpc" {
			me, err = otlpmetricgrpc.New(ctx)
		} else {
			me, err = otlpmetrichttp.New(ctx)
		}
		if err != nil {
			return fail(fmt.Errorf("otelsetup: OTLP %s metric exporter: %w", metricsProto, err))
		}
		addReader(sdkmetric.NewPeriodicReader(me))
		var te sdktrace.SpanExporter
		if tracesProto == "grpc" {
			te, err = otlptracegrpc.New(ctx)
		} else {
			te, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return fail(fmt.Errorf("otelsetup: OTLP %s span exporter: %w", tracesProto, err))
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
	if len(cfg.views) > 0 {
		mopts = append(mopts, sdkmetric.WithView(cfg.views...))
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
		otel.SetTextMapPropagator(props)
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
// "unknown_service:<executable>", telemetry.sdk.*), a random
// service.instance.id, the host, attrs, and the environment
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), which wins.
func newResource(ctx context.Context, attrs []attribute.KeyValue) (*resource.Resource, error) {
	detected, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithService(), // service.instance.id: a UUID per process
		resource.WithHost(),
		resource.WithAttributes(attrs...),
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

// sdkDisabled reads OTEL_SDK_DISABLED (a boolean; only "true", in any
// case, disables).
func sdkDisabled() (bool, error) {
	v, ok := os.LookupEnv("OTEL_SDK_DISABLED")
	if !ok || strings.TrimSpace(v) == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("otelsetup: OTEL_SDK_DISABLED=%q: want true or false", v)
}

// propagators returns the propagators OTEL_PROPAGATORS names, by default
// tracecontext and baggage.
func propagators() (propagation.TextMapPropagator, error) {
	v := strings.TrimSpace(os.Getenv("OTEL_PROPAGATORS"))
	if v == "" {
		return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}), nil
	}
	names := strings.Split(v, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, fmt.Errorf("otelsetup: OTEL_PROPAGATORS=%q: %w (known: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace, none)", v, err)
	}
	return p, nil
}

// otlpProtocol returns the OTLP protocol of a signal ("METRICS",
// "TRACES"): its own variable, else OTEL_EXPORTER_OTLP_PROTOCOL, else def.
func otlpProtocol(signal, def string) (string, error) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			continue
		}
		switch v {
		case "grpc", "http/protobuf":
			return v, nil
		case "http/json":
			return "", fmt.Errorf("otelsetup: %s=%q: the Go OTLP exporters do not support http/json; use grpc (port 4317) or http/protobuf (port 4318)", name, v)
		}
		return "", fmt.Errorf("otelsetup: %s=%q: want grpc (port 4317) or http/protobuf (port 4318)", name, v)
	}
	return def, nil
}

// checkEndpoints checks OTEL_EXPORTER_OTLP_ENDPOINT and the endpoint
// variables of the signals: each must be an http:// or https:// URL with a
// host. The exporters accept 127.0.0.1:4317 (no scheme) and then fail in
// the background.
func checkEndpoints(signals ...string) error {
	names := []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}
	for _, s := range signals {
		names = append(names, "OTEL_EXPORTER_OTLP_"+s+"_ENDPOINT")
	}
	for _, name := range names {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("otelsetup: %s=%q is not a URL with a scheme: write http://HOST:PORT (plaintext) or https://HOST:PORT (TLS), e.g. http://127.0.0.1:4317", name, v)
		}
		if p := u.Port(); p != "" {
			if _, err := strconv.ParseUint(p, 10, 16); err != nil {
				return fmt.Errorf("otelsetup: %s=%q: bad port %q", name, v, p)
			}
		}
	}
	return nil
}

// autoOTLP reports whether autoexport makes an OTLP exporter for the
// exporter variable name (unset: OTLP, when def).
func autoOTLP(name string, def bool) bool {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	for _, e := range strings.Split(v, ",") {
		if strings.TrimSpace(e) == "otlp" {
			return true
		}
	}
	return false
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

package otelsetup_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/nexusstore/nexus/internal/otlptest"
	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
)

// httpReceiver is an OTLP/HTTP (http/protobuf) receiver: it keeps the
// resource attributes of each metrics export and counts the trace exports.
type httpReceiver struct {
	mu        sync.Mutex
	resources []map[string]string
	traces    int
	addr      string
}

func startHTTPReceiver(t *testing.T) *httpReceiver {
	r := &httpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch req.URL.Path {
		case "/v1/metrics":
			var m colmetricpb.ExportMetricsServiceRequest
			if err := proto.Unmarshal(body, &m); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for _, rm := range m.ResourceMetrics {
				attrs := map[string]string{}
				for _, kv := range rm.GetResource().GetAttributes() {
					attrs[kv.Key] = kv.GetValue().GetStringValue()
				}
				r.resources = append(r.resources, attrs)
			}
		case "/v1/traces":
			r.traces++
		default:
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	r.addr = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *httpReceiver) snapshot() ([]map[string]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.resources), r.traces
}

// runSaves runs Setup with opts, saves n items to a store and shuts the
// pipeline down (the final export).
func runSaves(t *testing.T, n int, opts ...otelsetup.Option) {
	t.Helper()
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	for range n {
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Issue 10, items 3 and 5: WithOTLP speaks the protocol
// OTEL_EXPORTER_OTLP_PROTOCOL names (here http/protobuf, to an HTTP
// receiver), and every process gets its own service.instance.id, so that
// replicas are distinct series; OTEL_RESOURCE_ATTRIBUTES still wins.
func TestSetupOTLPHTTPAndInstanceID(t *testing.T) {
	recv := startHTTPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+recv.addr)
	opts := []otelsetup.Option{otelsetup.WithOTLP(), otelsetup.WithReporterOptions(nexusotel.WithRootSpans()),
		otelsetup.WithResourceAttributes(attribute.String("deployment.environment.name", "ci"))}
	runSaves(t, 2, opts...) // replica 1
	runSaves(t, 3, opts...) // replica 2
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod-7,deployment.environment.name=prod")
	runSaves(t, 1, opts...)

	resources, traces := recv.snapshot()
	if len(resources) != 3 || traces == 0 {
		t.Fatalf("received %d metric exports and %d trace exports over HTTP, want 3 and some", len(resources), traces)
	}
	id1, id2 := resources[0]["service.instance.id"], resources[1]["service.instance.id"]
	if !uuidRE.MatchString(id1) || !uuidRE.MatchString(id2) || id1 == id2 {
		t.Errorf("service.instance.id %q and %q: want two distinct UUIDs", id1, id2)
	}
	if resources[0]["deployment.environment.name"] != "ci" {
		t.Errorf("resource %v lacks WithResourceAttributes", resources[0])
	}
	if got := resources[2]; got["service.instance.id"] != "pod-7" || got["deployment.environment.name"] != "prod" {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES does not win: %v", got)
	}
}

// Issue 10, item 5: WithOTLP still speaks gRPC when the protocol variable
// says so (and by default), to a gRPC receiver.
func TestSetupOTLPGRPCProtocol(t *testing.T) {
	c := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+c.Addr)
	runSaves(t, 2, otelsetup.WithOTLP())
	if len(c.MetricRequests()) == 0 {
		t.Error("nothing received over gRPC")
	}
}

// Issue 10, item 5: what the exporters would accept and then fail with in
// the background, or blame on another variable, is refused up front with
// an error that names the variable at fault.
func TestSetupChecksTheEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		opts []otelsetup.Option
		want string
	}{
		{"endpoint without a scheme", []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317"},
			[]otelsetup.Option{otelsetup.WithOTLP()}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"host:port parsed as a scheme", []string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "localhost:4318"},
			nil, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
		{"unknown protocol", []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpcs"},
			nil, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"http/json", []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"},
			[]otelsetup.Option{otelsetup.WithOTLP()}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"unknown propagator", []string{"OTEL_PROPAGATORS", "tracecontext,carrier-pigeon"},
			[]otelsetup.Option{otelsetup.WithGlobal()}, "OTEL_PROPAGATORS"},
		{"SDK disabled, not a boolean", []string{"OTEL_SDK_DISABLED", "yes"},
			nil, "OTEL_SDK_DISABLED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.env[0], c.env[1])
			_, _, err := otelsetup.Setup(context.Background(), c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), "OTEL_METRICS_EXPORTER") {
				t.Errorf("error %q blames OTEL_METRICS_EXPORTER", err)
			}
		})
	}
}

// Issue 10, item 5: OTEL_SDK_DISABLED=true exports nothing, while the
// reporter keeps working and Store.Stats still counts.
func TestSetupSDKDisabled(t *testing.T) {
	c := otlptest.Start(t)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+c.Addr)
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	for range 3 {
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().OperationCounts[store.OpSave]; got != 3 {
		t.Errorf("Stats: %d saves, want 3", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(c.MetricRequests()); n != 0 {
		t.Errorf("%d exports with the SDK disabled", n)
	}
}

// Issue 10, item 5: WithGlobal installs the propagators of
// OTEL_PROPAGATORS, by default W3C trace context and baggage.
func TestSetupInstallsPropagators(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	prev := otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTextMapPropagator(prev)
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
	})
	for _, c := range []struct {
		env  string
		want []string
	}{
		{"", []string{"baggage", "traceparent", "tracestate"}},
		{"b3", []string{"b3"}},
	} {
		t.Setenv("OTEL_PROPAGATORS", c.env)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		_, shutdown, err := otelsetup.Setup(context.Background(), otelsetup.WithGlobal())
		if err != nil {
			t.Fatal(err)
		}
		fields := otel.GetTextMapPropagator().Fields()
		slices.Sort(fields)
		if !slices.Equal(fields, c.want) {
			t.Errorf("OTEL_PROPAGATORS=%q: fields %v, want %v", c.env, fields, c.want)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// WithViews reaches the MeterProvider, and Stats reads through the view.
func TestSetupViews(t *testing.T) {
	var out lockedBuffer
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{0.125, 0.25}}})
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithStdout(&out), otelsetup.WithViews(view))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if h := s.Stats().Durations[store.OpSave]; len(h.Bounds) != 2 {
		t.Errorf("Stats histogram bounds %v, want the view's two", h.Bounds)
	}
	s.Close(ctx)
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"Bounds":[0.125,0.25]`) {
		t.Errorf("the exported histogram does not use the view's bounds")
	}
}

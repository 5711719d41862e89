package otelsetup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
)

// lockedBuffer is written by the exporters' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The stdout exporter's document holds the operation histogram with its
// name, unit and count, and the resource from OTEL_SERVICE_NAME.
func TestSetupStdout(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "nexus-test")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci")
	var out lockedBuffer
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithStdout(&out))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	const gets = 7
	for range gets {
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().OperationCounts[store.OpGet]; got != gets {
		t.Errorf("Stats counts %d gets, want %d", got, gets)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(ctx); err != nil { // the final export
		t.Fatal(err)
	}

	type dataPoint struct {
		Attributes []struct {
			Key   string
			Value struct{ Value any }
		}
		Count uint64
	}
	type document struct {
		Resource []struct {
			Key   string
			Value struct{ Value any }
		}
		ScopeMetrics []struct {
			Scope   struct{ Name, Version string }
			Metrics []struct {
				Name, Unit string
				Data       struct{ DataPoints []dataPoint }
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(out.String()))
	var found bool
	for {
		var doc document
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding the stdout output: %v\n%s", err, out.String())
		}
		res := map[string]any{}
		for _, kv := range doc.Resource {
			res[kv.Key] = kv.Value.Value
		}
		for _, sm := range doc.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "nexus.store.operation.duration" {
					continue
				}
				found = true
				if sm.Scope.Name != nexusotel.ScopeName || m.Unit != "s" {
					t.Errorf("scope %q, unit %q", sm.Scope.Name, m.Unit)
				}
				var n uint64
				for _, dp := range m.Data.DataPoints {
					for _, a := range dp.Attributes {
						if a.Key == "nexus.store.operation" && a.Value.Value == "get" {
							n += dp.Count
						}
					}
				}
				if n != gets {
					t.Errorf("exported %d gets, want %d", n, gets)
				}
				if res["service.name"] != "nexus-test" || res["deployment.environment"] != "ci" {
					t.Errorf("resource %v", res)
				}
			}
		}
	}
	if !found {
		t.Fatalf("no nexus.store.operation.duration in\n%s", out.String())
	}
}

// An unreachable OTLP endpoint never blocks or fails store operations; a
// shutdown with a short deadline fails without hanging; the credentials in
// OTEL_EXPORTER_OTLP_HEADERS appear in no error, handler or log output.
func TestSetupOTLPUnreachable(t *testing.T) {
	const secret = "s3cr3t-api-key-do-not-log"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "dd-api-key="+secret+",authorization=Bearer%20"+secret)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "20") // ms: exports fail during the test
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	logs := captureOTelLog(t)
	otelErrors.Take()

	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP(), otelsetup.WithReporterOptions(nexusotel.WithRootSpans()))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "users", rep)
	start := time.Now()
	const ops = 200
	for i := range ops {
		if _, err := s.Save(ctx, item{ID: fmt.Sprint(i % 10)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, fmt.Sprint(i%10)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d operations took %v with an unreachable exporter", 2*ops, d)
	}
	if got := s.Stats().OperationCounts[store.OpGet]; got != ops {
		t.Errorf("Stats counts %d gets, want %d", got, ops)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	serr := shutdown(sctx)
	if serr == nil {
		t.Error("shutdown succeeded with nothing listening")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	handled := otelErrors.Take()
	if len(handled) == 0 {
		t.Error("no export error reached the OpenTelemetry error handler")
	}
	mustNotContain(t, append(handled, serr), secret)
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the OpenTelemetry log shows the secret:\n%s", logs.String())
	}
	t.Logf("shutdown: %v; %d handled errors, e.g. %v", serr, len(handled), handled[0])
}

// A malformed header variable is refused before an exporter can log it,
// and the error does not show it.
func TestSetupRefusesMalformedHeaders(t *testing.T) {
	const secret = "s3cr3t-%zz"
	for _, v := range []string{"key=" + secret, secret, "bad key=" + secret} {
		t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", v)
		logs := captureOTelLog(t)
		_, _, err := otelsetup.Setup(context.Background(), otelsetup.WithOTLP())
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") {
			t.Errorf("Setup with headers %q: %v", v, err)
		}
		mustNotContain(t, []error{err}, "s3cr3t")
		if strings.Contains(logs.String(), "s3cr3t") {
			t.Errorf("logged: %s", logs.String())
		}
	}
}

// captureOTelLog sends the OpenTelemetry SDK's log, at every level, to the
// returned buffer until the test ends.
func captureOTelLog(t *testing.T) *lockedBuffer {
	var buf lockedBuffer
	otel.SetLogger(funcr.New(func(prefix, args string) {
		fmt.Fprintln(&buf, prefix, args)
	}, funcr.Options{Verbosity: 10}))
	t.Cleanup(func() { otel.SetLogger(logr.Discard()) })
	return &buf
}

// WithPrometheus serves nexus's metrics on a Prometheus registry.
func TestSetupPrometheus(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	otelErrors.Take()
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithPrometheus(otelprom.WithRegisterer(reg)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	s, _ := newStore(t, "users", rep)
	for range 3 {
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`nexus_store_operation_duration_seconds_count{`,
		`nexus_store_name="users"`,
		`nexus_store_operation="save"`,
		`nexus_store_sample_rate`,
		`nexus_store_cache_events_total{`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var counted bool
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "nexus_store_operation_duration_seconds_count{") && strings.Contains(line, `nexus_store_operation="save"`) {
			counted = strings.HasSuffix(strings.TrimSpace(line), " 3")
			t.Log(strings.TrimSpace(line))
		}
		if strings.HasPrefix(line, "nexus_store_sample_rate") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if !counted {
		t.Errorf("no count of 3 saves in\n%s", body)
	}
	for _, err := range otelErrors.Take() {
		if strings.Contains(err.Error(), ":4318") {
			t.Errorf("an OTLP exporter runs beside Prometheus: %v", err)
		}
	}
}

// With no exporter option, the environment chooses (autoexport); "none"
// exports nothing, and Stats still works. WithGlobal installs the
// providers.
func TestSetupFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithGlobal())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
	}()
	if _, ok := otel.GetMeterProvider().(*sdkmetric.MeterProvider); !ok {
		t.Errorf("global MeterProvider %T", otel.GetMeterProvider())
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok {
		t.Errorf("global TracerProvider %T", otel.GetTracerProvider())
	}
	s, _ := newStore(t, "users", rep)
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().OperationCounts[store.OpSave]; got != 1 {
		t.Errorf("saves %d", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv("OTEL_METRICS_EXPORTER", "carrier-pigeon")
	if _, _, err := otelsetup.Setup(ctx); err == nil || !strings.Contains(err.Error(), "OTEL_METRICS_EXPORTER") {
		t.Errorf("unknown exporter: %v", err)
	}
}

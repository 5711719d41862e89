package jaeger

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// TestBuildToolsCachePath checks that build-tools.sh and CachePath agree on
// where Jaeger is cached: the script finds a binary placed at CachePath and
// prints its path without building anything.
func TestBuildToolsCachePath(t *testing.T) {
	t.Setenv("NEXUS_TOOLS_DIR", t.TempDir())
	want, err := CachePath("tools")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "../build-tools.sh", "jaeger").Output()
	if err != nil {
		t.Fatalf("build-tools.sh jaeger: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("build-tools.sh jaeger printed %q, want CachePath's %q", got, want)
	}
}

// TestJaegerKeepsTracesAcrossRestart sends a two-span trace to a real
// Jaeger over OTLP gRPC, finds it through the query API with its
// parent/child link and its resource, restarts Jaeger, and finds it again
// (Badger storage) beside a trace sent after the restart.
func TestJaegerKeepsTracesAcrossRestart(t *testing.T) {
	j := Start(t)

	before := sendTrace(t, j, "before restart")
	checkTrace(t, j, before, "before restart")

	j.Restart()
	checkTrace(t, j, before, "before restart")
	after := sendTrace(t, j, "after restart")
	checkTrace(t, j, after, "after restart")

	traces, err := j.Search("jaeger-harness-test", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 2 {
		t.Errorf("search: %d traces of jaeger-harness-test, want 2", len(traces))
	}
}

// sendTrace exports a root span named root with one child over OTLP gRPC
// and returns the trace ID.
func sendTrace(t *testing.T, j *Jaeger, root string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(j.OTLPGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(
			semconv.ServiceName("jaeger-harness-test"),
			semconv.ServiceInstanceID("instance-1"),
		)),
	)
	defer func() {
		if err := tp.Shutdown(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("TracerProvider shutdown: %v", err)
		}
	}()
	tr := tp.Tracer("jaeger-harness-test")
	rctx, span := tr.Start(ctx, root)
	_, child := tr.Start(rctx, "child")
	child.End()
	span.End()
	return span.SpanContext().TraceID().String()
}

// checkTrace waits for the trace and checks its shape: root, and child
// under it, from the test's service and instance.
func checkTrace(t *testing.T, j *Jaeger, traceID, root string) {
	t.Helper()
	j.WaitTrace(traceID, 30*time.Second, func(tr *Trace) error {
		if len(tr.Spans) != 2 {
			return fmt.Errorf("%d spans, want 2", len(tr.Spans))
		}
		byName := map[string]Span{}
		for _, s := range tr.Spans {
			byName[s.OperationName] = s
		}
		r, c := byName[root], byName["child"]
		if r.SpanID == "" || c.SpanID == "" || r.Parent() != "" || c.Parent() != r.SpanID {
			return fmt.Errorf("spans %+v, want %q as the root and child under it", tr.Spans, root)
		}
		p := tr.Processes[r.ProcessID]
		if id, _ := p.Tag("service.instance.id"); p.ServiceName != "jaeger-harness-test" || id != "instance-1" {
			return fmt.Errorf("process %+v, want service jaeger-harness-test, instance instance-1", p)
		}
		return nil
	})
}

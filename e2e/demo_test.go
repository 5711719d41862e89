package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/nexusstore/nexus/e2e/collector"
)

// TestDemoThroughCollector runs cmd/nexus-demo, the program
// docker-compose.yml's header suggests, for a few seconds against the
// Collector of ../otel-collector.yaml, whose traces go to a stand-in for
// Jaeger's OTLP ingest (no Jaeger here: a second Collector that writes what
// it receives to a file). It checks what Grafana and Jaeger would show:
// the store's series on the Collector's Prometheus endpoint, and every
// request as a complete trace (request span -> store operation spans ->
// backend call spans).
func TestDemoThroughCollector(t *testing.T) {
	jaegerAddr := collector.FreeAddr(t)
	traces := filepath.Join(t.TempDir(), "traces.jsonl")
	jaeger := collector.Start(t, "testdata/jaeger-otlp-file.yaml", []string{
		"NEXUS_OTLP_GRPC=" + jaegerAddr,
		"NEXUS_FILE_PATH=" + traces,
	}, jaegerAddr)
	grpcAddr, httpAddr, promAddr := collector.FreeAddr(t), collector.FreeAddr(t), collector.FreeAddr(t)
	col := collector.Start(t, "../otel-collector.yaml", []string{
		"NEXUS_OTLP_GRPC=" + grpcAddr,
		"NEXUS_OTLP_HTTP=" + httpAddr,
		"NEXUS_PROM_ENDPOINT=" + promAddr,
		"NEXUS_JAEGER_OTLP=" + jaegerAddr,
	}, grpcAddr, httpAddr, promAddr)

	bin := filepath.Join(t.TempDir(), "nexus-demo")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/nexus-demo").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nexus-demo: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-duration=3s", "-rate=50")
	// The demo's own defaults, but for the endpoint, the instance and a
	// faster metric export (gauges are exported only while the store is
	// open).
	cmd.Env = append(environWithoutOTel(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=demo-e2e",
		"OTEL_METRIC_EXPORT_INTERVAL=500",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nexus-demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	t.Logf("nexus-demo:\n%s%s", &stdout, &stderr)
	m := regexp.MustCompile(`(\d+) requests, (\d+) failed`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("nexus-demo printed no request count:\n%s", &stdout)
	}
	requests, _ := strconv.Atoi(m[1])

	// The dashboard's series for the demo store.
	labels := map[string]string{"nexus_store_name": "demo", "job": "nexus-demo", "instance": "demo-e2e"}
	waitScrape(t, "http://"+promAddr+"/metrics", func(families map[string]*dto.MetricFamily) []string {
		var problems []string
		for _, s := range []struct {
			family string
			attrs  map[string]string
		}{
			{"nexus_store_operation_duration_seconds", map[string]string{"nexus_store_operation": "get", "nexus_cache_result": "hit"}},
			{"nexus_store_operation_duration_seconds", map[string]string{"nexus_store_operation": "get", "nexus_cache_result": "miss"}},
			{"nexus_store_operation_duration_seconds", map[string]string{"nexus_store_operation": "save", "nexus_store_policy": "cache_first"}},
			{"nexus_store_operation_duration_seconds", map[string]string{"nexus_store_operation": "sync"}},
			{"nexus_store_backend_duration_seconds", map[string]string{"nexus_store_operation": "get"}},
			{"nexus_store_cache_events_total", map[string]string{"nexus_cache_event": "hit"}},
			{"nexus_store_cache_events_total", map[string]string{"nexus_cache_event": "miss"}},
			{"nexus_store_sync_events_total", map[string]string{"nexus_sync_event": "started"}},
			{"nexus_store_sample_rate_ratio", nil},
			{"nexus_store_cache_entries", nil},
		} {
			want := maps.Clone(labels)
			maps.Copy(want, s.attrs)
			found := false
			for _, metric := range families[s.family].GetMetric() {
				if hasAttrs(promLabels(metric), want) {
					found = found || metric.GetHistogram().GetSampleCount() > 0 || metric.GetCounter().GetValue() > 0 || metric.GetGauge() != nil
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("no %s %v", s.family, want))
			}
		}
		return problems
	})

	// Every span reaches the stand-in: stop the Collector (its batch
	// processor flushes), then the stand-in (its file exporter flushes).
	waitForFile(t, traces, `"demo request"`)
	col.Stop()
	jaeger.Stop()
	spans := readTraceSpans(t, traces)

	byID := make(map[string]*tracepb.Span)
	names := make(map[string]int)
	for _, s := range spans {
		byID[hex.EncodeToString(s.GetSpanId())] = s
		names[s.GetName()]++
	}
	t.Logf("%d spans: %v", len(spans), names)
	if names["demo request"] != requests {
		t.Errorf("%d demo request spans, want one per request: %d", names["demo request"], requests)
	}
	children := make(map[string]int) // "parent name > child name" -> count
	for _, s := range spans {
		parent := hex.EncodeToString(s.GetParentSpanId())
		if parent == "" {
			if s.GetName() != "demo request" && !strings.HasPrefix(s.GetName(), "nexus.store sync") {
				t.Errorf("span %q is a root; only requests and background syncs should be", s.GetName())
			}
			continue
		}
		p, ok := byID[parent]
		if !ok {
			t.Errorf("span %q: parent %s not delivered (an incomplete trace)", s.GetName(), parent)
			continue
		}
		if !bytes.Equal(p.GetTraceId(), s.GetTraceId()) {
			t.Errorf("span %q: in another trace than its parent %q", s.GetName(), p.GetName())
		}
		children[p.GetName()+" > "+s.GetName()]++
	}
	t.Logf("parent > child: %v", children)
	for _, want := range []string{
		"demo request > nexus.store get",
		"demo request > nexus.store save",
		"nexus.store get > nexus.store.backend get",
		"nexus.store save > nexus.store.backend save",
	} {
		if children[want] == 0 {
			t.Errorf("no span %q", want)
		}
	}
}

// environWithoutOTel is the test's environment less its OTEL_* variables.
func environWithoutOTel() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// readTraceSpans reads the file exporter's output (one
// ExportTraceServiceRequest in OTLP JSON per line) and returns the spans of
// the nexus-demo service, checking its resource.
func readTraceSpans(t *testing.T, path string) []*tracepb.Span {
	t.Helper()
	var spans []*tracepb.Span
	for _, req := range readOTLPFile(t, path, func() *coltracepb.ExportTraceServiceRequest {
		return new(coltracepb.ExportTraceServiceRequest)
	}) {
		for _, rs := range req.GetResourceSpans() {
			res := make(map[string]string)
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if res["service.name"] != "nexus-demo" || res["service.instance.id"] != "demo-e2e" {
				t.Errorf("spans of resource %v, want service nexus-demo, instance demo-e2e", res)
			}
			for _, ss := range rs.GetScopeSpans() {
				spans = append(spans, ss.GetSpans()...)
			}
		}
	}
	if len(spans) == 0 {
		t.Fatal("file exporter output: no spans")
	}
	return spans
}

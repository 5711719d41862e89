package examples

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	otlpmetric "go.opentelemetry.io/proto/otlp/metrics/v1"
	otlptrace "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/nexusstore/nexus/internal/otlptest"
)

// run builds and runs the example in dir and returns its output.
func run(t *testing.T, dir string, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	build := exec.Command("go", "build", "-o", bin, "./"+dir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", dir, err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", dir, err, out)
	}
	return string(out)
}

func TestExamples(t *testing.T) {
	tests := []struct {
		dir  string
		want string // the whole output
	}{
		{"offline", "status: pending pending: 1\nsync failed for [n1] - still pending: 1\nstatus: synced n1: call mum + buy milk and eggs\n"},
		{"sqlite", "transfer 30: <nil>\ntransfer 500: insufficient funds\n[{alice 70} {bob 50}]\n"},
		{"customhttp", "user cache write \nuser operation save \nuser cache hit \nuser operation get hit\n"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			if got := run(t, tt.dir); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// The quick start's console lines, stats and exported documents (timings
// vary, so the lines are checked up to them), and its spans: the store's
// under the caller's.
func TestQuickstart(t *testing.T) {
	out := run(t, "quickstart")
	for _, want := range []string{`"Name":"nexus.store.backend get"`, `"Name":"nexus.store get"`, `"Name":"handle request"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s span in the output", want)
		}
	}
	for _, want := range []string{
		"[NexusStore] save(user-123) completed in ",
		"[NexusStore] cache invalidation user-123\n",
		"[NexusStore] get(user-123) completed in ", "(cache miss)\n",
		"[NexusStore] get(user-123) completed in ", "(cache hit)\n",
		"[NexusStore] get(nobody) completed in ", "(cache miss, not found)\n",
		"gets: 4, average ", "cache hit rate 50%, errors: 0\n",
		`"Name":"nexus.store.operation.duration"`,
	} {
		i := strings.Index(out, want)
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", want, out)
		}
		out = out[i+len(want):]
	}
}

// opCounts sums the operation histogram's counts per operation, and returns
// the temporality it was sent with.
func opCounts(r *otlptest.Receiver) (map[string]uint64, otlpmetric.AggregationTemporality) {
	counts := map[string]uint64{}
	var temporality otlpmetric.AggregationTemporality
	for _, m := range r.Metrics()["nexus.store.operation.duration"] {
		h := m.GetHistogram()
		temporality = h.GetAggregationTemporality()
		for _, dp := range h.GetDataPoints() {
			for _, kv := range dp.GetAttributes() {
				if kv.GetKey() == "nexus.store.operation" {
					if temporality == otlpmetric.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
						counts[kv.GetValue().GetStringValue()] = dp.GetCount() // the latest cumulative point
					} else {
						counts[kv.GetValue().GetStringValue()] += dp.GetCount()
					}
				}
			}
		}
	}
	return counts, temporality
}

func resourceAttr(r *otlptest.Receiver, key string) string {
	for _, req := range r.MetricRequests() {
		for _, rm := range req.GetResourceMetrics() {
			for _, kv := range rm.GetResource().GetAttributes() {
				if kv.GetKey() == key {
					return kv.GetValue().GetStringValue()
				}
			}
		}
	}
	return ""
}

// The Datadog route: OTLP with delta temporality and unified service tags,
// received here by an OTLP receiver standing in for the Agent's ingest.
func TestDatadogRoute(t *testing.T) {
	r := otlptest.Start(t)
	run(t, "datadog",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+r.Addr,
		"OTEL_SERVICE_NAME=checkout",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=test,service.version=1.4.2")
	counts, temporality := opCounts(r)
	if counts["save"] != 3 || counts["get"] != 3 || temporality != otlpmetric.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
		t.Errorf("received %v with %v, want 3 saves and 3 gets, delta", counts, temporality)
	}
	if env, svc := resourceAttr(r, "deployment.environment"), resourceAttr(r, "service.name"); env != "test" || svc != "checkout" {
		t.Errorf("resource: deployment.environment=%q service.name=%q", env, svc)
	}
	if len(r.SpanNames()) != 0 {
		t.Errorf("spans without a caller's span: %v", r.SpanNames())
	}
}

// The Firebase route: OTLP to a Collector (here a receiver), cumulative.
func TestFirebaseRoute(t *testing.T) {
	r := otlptest.Start(t)
	run(t, "firebase", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+r.Addr)
	counts, temporality := opCounts(r)
	if counts["save"] != 1 || counts["get"] != 3 || temporality != otlpmetric.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		t.Errorf("received %v with %v, want 1 save and 3 gets, cumulative", counts, temporality)
	}
}

// The otelhttp recipe: each request one trace, from the caller's client
// span through the server span to the store's operation span and its
// backend call, all through one pipeline.
func TestOTelHTTP(t *testing.T) {
	r := otlptest.Start(t)
	out := run(t, "otelhttp", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+r.Addr)
	if want := "PUT /users/ada: 204 \nGET /users/ada: 200 Ada Lovelace\nGET /users/nobody: 404 no such user\n"; out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	spans := r.Spans()
	byID := make(map[string]*otlptrace.Span)
	for _, s := range spans {
		byID[string(s.GetSpanId())] = s
	}
	attr := func(s *otlptrace.Span, key string) string {
		for _, kv := range s.GetAttributes() {
			if kv.GetKey() == key {
				return kv.GetValue().GetStringValue()
			}
		}
		return ""
	}
	var chains []string
	for _, s := range spans {
		// A backend call's span: "nexus.store.backend {call}" for the
		// in-memory backend, the database conventions for a database.
		if !strings.HasPrefix(s.GetName(), "nexus.store.backend ") && attr(s, "db.operation.name") == "" {
			continue
		}
		// backend call < store operation < server < client, one trace.
		chain := []*otlptrace.Span{s}
		for p := byID[string(s.GetParentSpanId())]; p != nil; p = byID[string(p.GetParentSpanId())] {
			chain = append(chain, p)
		}
		var kinds []string
		for _, c := range chain {
			if !bytes.Equal(c.GetTraceId(), s.GetTraceId()) {
				t.Errorf("span %q is in another trace than %q", c.GetName(), s.GetName())
			}
			kinds = append(kinds, strings.TrimPrefix(c.GetKind().String(), "SPAN_KIND_"))
		}
		chains = append(chains, fmt.Sprintf("%s: %s", attr(s, "nexus.store.operation"), strings.Join(kinds, " < ")))
		if len(chain) != 4 || attr(chain[1], "nexus.store.operation") == "" ||
			chain[2].GetKind() != otlptrace.Span_SPAN_KIND_SERVER || chain[3].GetKind() != otlptrace.Span_SPAN_KIND_CLIENT {
			t.Errorf("backend span %q: ancestors %v, want the store operation, the server span, the client span", s.GetName(), kinds)
		}
	}
	// The save and the miss call the backend; the hit does not.
	if len(chains) != 2 {
		t.Errorf("backend calls traced: %v, want the save and the miss (spans: %v)", chains, r.SpanNames())
	}
}

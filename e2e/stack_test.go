package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexusstore/nexus/e2e/collector"
	"github.com/nexusstore/nexus/e2e/jaeger"
)

// stack is the docker-compose stack as processes on loopback: Jaeger, the
// Collector of ../otel-collector.yaml sending traces to it, and Prometheus
// of ../deploy/prometheus/prometheus.yml (with the flags of
// docker-compose.yml) scraping the Collector.
type stack struct {
	jaeger    *jaeger.Jaeger
	collector *collector.Process
	grpcAddr  string // the Collector's OTLP gRPC receiver
	prom      *promAPI
	job       string // Prometheus's scrape job and the Collector's exporter URL
	scrapeURL string
}

func startStack(t *testing.T) *stack {
	t.Helper()
	start := time.Now()
	s := &stack{jaeger: jaeger.Start(t)}
	s.grpcAddr = collector.FreeAddr(t)
	httpAddr, promExporter := collector.FreeAddr(t), collector.FreeAddr(t)
	s.collector = collector.Start(t, "../otel-collector.yaml", []string{
		"NEXUS_OTLP_GRPC=" + s.grpcAddr,
		"NEXUS_OTLP_HTTP=" + httpAddr,
		"NEXUS_PROM_ENDPOINT=" + promExporter,
		"NEXUS_JAEGER_OTLP=" + s.jaeger.OTLPGRPC,
	}, s.grpcAddr, httpAddr, promExporter)
	promAddr := collector.FreeAddr(t)
	collector.StartPrometheus(t, testPromConfig(t, promExporter), promAddr, composePrometheusFlags(t)...)
	s.prom = &promAPI{t: t, base: "http://" + promAddr}
	shipped := readPromConfig(t, prometheusConfig).ScrapeConfigs[0]
	s.job, s.scrapeURL = shipped.JobName, "http://"+promExporter+shipped.MetricsPath
	s.prom.waitTargetUp(s.job, s.scrapeURL)
	t.Logf("Jaeger, Collector and Prometheus up after %v", time.Since(start).Round(time.Millisecond))
	return s
}

// grafanaRateInterval is Grafana's $__rate_interval for the shipped
// datasource (timeInterval 5s, the scrape interval): four scrapes.
const grafanaRateInterval = 20 * time.Second

// TestStackEndToEnd runs two replicas of cmd/nexus-demo (the program
// docker-compose.yml's header suggests) for 30 s through the whole stack:
// Collector, Prometheus with exemplar storage, Jaeger. It checks, as a user
// of the dashboard would see it:
//
//   - two series, one per replica (service.instance.id), whose operation
//     counts are exactly what each replica's store counted, and whose sum is
//     exact;
//   - a latency exemplar, read from Prometheus (/api/v1/query_exemplars), the
//     slowest store operation of the run: its trace_id is a trace Jaeger
//     returns (/api/traces/<id>), holding the exemplar's span;
//   - every request a complete trace in Jaeger, request span -> store
//     operation spans -> backend call spans;
//   - every query of the dashboard, over the run (query_range, Grafana's
//     step and $__rate_interval, both instances selected), non-empty and
//     finite;
//   - no store call slower than 500ms.
func TestStackEndToEnd(t *testing.T) {
	t.Parallel() // long and mostly waiting: beside the other long tests
	s := startStack(t)
	bin := demoBinary(t)

	start := time.Now()
	replicas := []string{"replica-a", "replica-b"}
	var demos []*demo
	for _, name := range replicas {
		// 5% of backend calls fail, so that every error panel has data.
		demos = append(demos, startDemo(t, bin, s.grpcAddr, name, nil, "-duration=30s", "-rate=25", "-failure-rate=0.05"))
	}
	results := make(map[string]demoResult)
	for _, d := range demos {
		results[d.name] = d.wait(t, time.Minute)
	}
	end := time.Now()

	// Two series, exact, and their sum.
	want := map[string]float64{}
	var sum float64
	for name, r := range results {
		checkMaxLatency(t, r, 500*time.Millisecond)
		want[fmt.Sprintf(`sum(nexus_store_operation_duration_seconds_count{job="nexus-demo", nexus_store_name="demo", instance=%q})`, name)] = r.total()
		sum += r.total()
	}
	want[`sum(nexus_store_operation_duration_seconds_count{job="nexus-demo", nexus_store_name="demo"})`] = sum
	want[`count(nexus_store_sample_rate_ratio{job="nexus-demo", nexus_store_name="demo"})`] = float64(len(replicas))
	at := s.prom.waitValues("the replicas' totals", want)
	got := promCounts(t, s.prom, at, "instance", "nexus_store_operation")
	for name, r := range results {
		for op, n := range r.operations {
			if got[name+" "+op] != n {
				t.Errorf("%s %s: %v operations in Prometheus, %v in the store", name, op, got[name+" "+op], n)
			}
		}
	}
	t.Logf("operation counts in Prometheus, by instance and operation: %v (sum %v)", got, sum)

	checkExemplarTrace(t, s, start, end)
	checkDemoTraces(t, s.jaeger, results)

	// The dashboard over the run, both instances selected, as Grafana asks.
	vars := dashVars{job: "nexus-demo", instance: strings.Join(replicas, "|"), store: "demo", rateInterval: grafanaRateInterval}
	from, step := start.Add(grafanaRateInterval), 5*time.Second
	d := readDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := expandExpr(t, tg.Expr, vars)
			res, err := s.prom.queryRange(expr, from, end, step)
			if err == nil {
				err = checkRange(res)
			}
			if err != nil {
				t.Errorf("%s/%s over the run: %v\n%s", p.Title, tg.RefID, err, expr)
				continue
			}
			t.Logf("%s/%s: %s", p.Title, tg.RefID, formatRange(res))
		}
	}
}

// checkExemplarTrace reads the latency exemplars of the demo store from
// Prometheus and fetches the trace of the slowest from Jaeger.
func checkExemplarTrace(t *testing.T, s *stack, start, end time.Time) {
	t.Helper()
	q := `nexus_store_operation_duration_seconds_bucket{job="nexus-demo", nexus_store_name="demo"}`
	exemplars, err := s.prom.queryExemplars(q, start, end.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(exemplars) == 0 {
		t.Fatalf("Prometheus has no exemplars for %s", q)
	}
	slowest := exemplars[0]
	for _, e := range exemplars {
		if e.Labels["trace_id"] == "" || e.Labels["span_id"] == "" {
			t.Errorf("exemplar %+v has no trace_id and span_id", e)
		}
		if e.Value > slowest.Value {
			slowest = e
		}
	}
	t.Logf("%d exemplars; the slowest: %v s, labels %v, on the series %v", len(exemplars), slowest.Value, slowest.Labels, slowest.Series)

	traceID, spanID := slowest.Labels["trace_id"], slowest.Labels["span_id"]
	tr := s.jaeger.WaitTrace(traceID, 30*time.Second, func(tr *jaeger.Trace) error {
		if !slices.ContainsFunc(tr.Spans, func(sp jaeger.Span) bool { return sp.SpanID == spanID }) {
			return fmt.Errorf("no span %s among its %d spans", spanID, len(tr.Spans))
		}
		return nil
	})
	var lines []string
	for _, sp := range tr.Spans {
		mark := ""
		if sp.SpanID == spanID {
			mark = "  <- the exemplar"
			if role := spanRole(sp); role != "store "+slowest.Series["nexus_store_operation"] {
				t.Errorf("the exemplar's span %q is a %q span, want the store operation %q", sp.OperationName, role, slowest.Series["nexus_store_operation"])
			}
			p := tr.Processes[sp.ProcessID]
			if inst, _ := p.Tag("service.instance.id"); p.ServiceName != "nexus-demo" || inst != slowest.Series["instance"] {
				t.Errorf("the exemplar's span comes from %s/%s, its series from nexus-demo/%s", p.ServiceName, inst, slowest.Series["instance"])
			}
		}
		lines = append(lines, fmt.Sprintf("  span %s parent %-16s %-28s %6dµs%s", sp.SpanID, sp.Parent(), sp.OperationName, sp.Duration, mark))
	}
	t.Logf("Jaeger /api/traces/%s:\n%s", traceID, strings.Join(lines, "\n"))
}

// spanRole names what a span of the demo is: "request" (the demo's own
// span), "backend <call>" (a database backend's span has
// db.operation.name; the in-memory backend's is named
// "nexus.store.backend <call>", see docs/opentelemetry.md) or
// "store <operation>" (nexus.store.operation, which backend spans carry
// too, hence the order).
func spanRole(sp jaeger.Span) string {
	if op, ok := sp.Tag("db.operation.name"); ok {
		return "backend " + op
	}
	if op, ok := strings.CutPrefix(sp.OperationName, "nexus.store.backend "); ok {
		return "backend " + op
	}
	if op, ok := sp.Tag("nexus.store.operation"); ok {
		return "store " + op
	}
	if sp.OperationName == "demo request" {
		return "request"
	}
	return sp.OperationName
}

// checkDemoTraces waits until Jaeger has one "demo request" trace per
// request of the demos, and checks that every trace is complete (each
// span's parent is in it) and has the expected shape: requests parent store
// operations, which parent backend calls.
func checkDemoTraces(t *testing.T, j *jaeger.Jaeger, results map[string]demoResult) {
	t.Helper()
	requests := 0
	for _, r := range results {
		requests += r.requests
	}
	var traces []jaeger.Trace
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		traces, err = j.Search("nexus-demo", "demo request", requests+100)
		if err == nil && len(traces) == requests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger: %d traces with a demo request span, want one per request: %d (%v)", len(traces), requests, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	children := make(map[string]int) // "parent name > child name" -> count
	perInstance := make(map[string]int)
	for _, tr := range traces {
		byID := make(map[string]jaeger.Span)
		for _, sp := range tr.Spans {
			byID[sp.SpanID] = sp
		}
		for _, sp := range tr.Spans {
			parent := sp.Parent()
			if parent == "" {
				if sp.OperationName != "demo request" {
					t.Errorf("trace %s: root span %q, want demo request", tr.TraceID, sp.OperationName)
				}
				inst, _ := tr.Processes[sp.ProcessID].Tag("service.instance.id")
				perInstance[inst]++
				continue
			}
			p, ok := byID[parent]
			if !ok {
				t.Errorf("trace %s: span %q: parent %s not in Jaeger (an incomplete trace)", tr.TraceID, sp.OperationName, parent)
				continue
			}
			children[spanRole(p)+" > "+spanRole(sp)]++
		}
	}
	t.Logf("%d request traces in Jaeger, by instance %v; parent > child: %v", len(traces), perInstance, children)
	for name, r := range results {
		if perInstance[name] != r.requests {
			t.Errorf("%s: %d request traces in Jaeger, %d requests", name, perInstance[name], r.requests)
		}
	}
	for _, want := range []string{
		"request > store get",
		"request > store save",
		"request > store delete",
		"store get > backend get",
		"store save > backend save",
		"store delete > backend delete",
	} {
		if children[want] == 0 {
			t.Errorf("no span %q in Jaeger; pairs: %v", want, slices.Sorted(maps.Keys(children)))
		}
	}
}

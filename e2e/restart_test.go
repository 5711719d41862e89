package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/nexusstore/nexus/e2e/jaeger"
)

// Outages of TestOutagesMidRun.
const (
	collectorOutage = 5 * time.Second
	jaegerOutage    = 5 * time.Second
	// spanQueue is the SDK's span queue in the demo (OTEL_BSP_MAX_QUEUE_SIZE;
	// default 2048), small enough that the Collector's outage overflows it
	// at the demo's ~100 spans a second.
	spanQueue = 200
)

// TestOutagesMidRun keeps cmd/nexus-demo busy for 25 s while the Collector
// goes away for 5 s and, later, Jaeger for 5 s, and checks what a service
// owner cares about:
//
//   - the store is unaffected: the demo's slowest store call stays under
//     500ms (exports run in the background; nothing waits for them);
//   - metrics resume, and the cumulative totals in Prometheus are exactly
//     what the store counted (the SDK exports cumulative sums, so an export
//     lost while the Collector is away is made good by the next);
//   - spans: the SDK queues them (OTEL_BSP_MAX_QUEUE_SIZE, here 200) while
//     the Collector is away and drops what overflows; the SDK's own
//     counts (OTEL_GO_X_OBSERVABILITY) account for every span: those the
//     exporter delivered are exactly the spans in Jaeger, the rest were
//     dropped, and the test logs how many;
//   - Jaeger's outage loses nothing: the Collector's exporter queues and
//     retries, and traces stored before it (Badger) are still there after.
func TestOutagesMidRun(t *testing.T) {
	t.Parallel() // long and mostly waiting: beside the other long tests
	s := startStack(t)
	bin := demoBinary(t)
	d := startDemo(t, bin, s.grpcAddr, "outages", []string{
		fmt.Sprintf("OTEL_BSP_MAX_QUEUE_SIZE=%d", spanQueue),
		// The SDK's self-observability: span processor and exporter counts
		// (otel.sdk.processor.span.processed, otel.sdk.exporter.span.exported),
		// exported through the demo's own MeterProvider.
		"OTEL_GO_X_OBSERVABILITY=true",
	}, "-duration=25s", "-rate=25")

	sel := `{job="nexus-demo", instance="outages", nexus_store_name="demo"}`
	ops := "sum(nexus_store_operation_duration_seconds_count" + sel + ")"
	before := waitGrowing(t, s.prom, ops, 0)

	// The Collector goes away: the demo's exports fail meanwhile.
	down := time.Now()
	s.collector.Stop()
	time.Sleep(collectorOutage) // the outage itself, while the demo runs
	s.collector = s.collector.StartAgain()
	t.Logf("Collector away from %s for %v (stop, %v, start); %v operations in Prometheus before",
		down.Format(time.TimeOnly), time.Since(down).Round(time.Millisecond), collectorOutage, before)
	after := waitGrowing(t, s.prom, ops, before)
	t.Logf("metrics resumed: %v operations in Prometheus at %s", after, time.Now().Format(time.TimeOnly))

	// A trace stored before Jaeger's outage (the SDK may still be sending
	// what it queued while the Collector was away).
	var early string
	deadline := time.Now().Add(30 * time.Second)
	for early == "" {
		traces, err := s.jaeger.Search("nexus-demo", "demo request", 1)
		if err == nil && len(traces) == 1 {
			early = traces[0].TraceID
		} else if time.Now().After(deadline) {
			t.Fatalf("Jaeger before its outage: %d traces (%v) after 30s, want one", len(traces), err)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	down = time.Now()
	s.jaeger.Stop()
	time.Sleep(jaegerOutage) // the outage itself, while the demo runs
	s.jaeger.StartAgain()
	t.Logf("Jaeger away from %s for %v (stop, %v, start)", down.Format(time.TimeOnly), time.Since(down).Round(time.Millisecond), jaegerOutage)

	r := d.wait(t, time.Minute)
	checkMaxLatency(t, r, 500*time.Millisecond)

	// Metrics: every operation, exactly, in the cumulative totals.
	at := s.prom.waitValues("the demo's totals after the outages", map[string]float64{ops: r.total()})
	got := promCounts(t, s.prom, at, "nexus_store_operation")
	for op, n := range r.operations {
		if got[op] != n {
			t.Errorf("%s: %v operations in Prometheus, %v in the store", op, got[op], n)
		}
	}

	// Spans: the SDK's own account of them, then Jaeger's.
	sdk := func(metric, errorType string) float64 {
		q := fmt.Sprintf(`sum(%s{job="nexus-demo", instance="outages", error_type=%q}) or vector(0)`, metric, errorType)
		res, err := s.prom.query(q, time.Now())
		if err != nil || len(res) != 1 {
			t.Fatalf("%s: %s (%v)", q, formatSamples(res), err)
		}
		return res[0].Value
	}
	queued := sdk("otel_sdk_processor_span_processed_total", "")
	queueFull := sdk("otel_sdk_processor_span_processed_total", "queue_full")
	delivered := sdk("otel_sdk_exporter_span_exported_total", "")
	failed := s.prom.mustQuery(`sum(otel_sdk_exporter_span_exported_total{job="nexus-demo", instance="outages", error_type!=""}) or vector(0)`)
	if queued == 0 || delivered == 0 {
		t.Fatalf("the SDK's span counts are missing (OTEL_GO_X_OBSERVABILITY): %v handed to the exporter, %v delivered", queued, delivered)
	}
	if delivered+failed != queued {
		t.Errorf("the exporter delivered %v and failed %v spans, but the processor handed it %v", delivered, failed, queued)
	}

	inJaeger, requestTraces := countSpans(t, s.jaeger, delivered, r.requests)
	ended := queued + queueFull
	t.Logf("spans: %v ended in the demo; %v dropped by the SDK's full queue (%d spans) while the Collector was away, %v in exports that failed; %v delivered; %v in Jaeger. Requests: %d, of which %d have their trace's root in Jaeger",
		ended, queueFull, spanQueue, failed, delivered, inJaeger, r.requests, requestTraces)
	if inJaeger != delivered {
		t.Errorf("%v spans in Jaeger, but the SDK delivered %v: the Collector or Jaeger lost %v", inJaeger, delivered, delivered-inJaeger)
	}
	if queueFull+failed == 0 {
		t.Errorf("no span was lost during a %v Collector outage with a queue of %d: the test did not exercise the queue", collectorOutage, spanQueue)
	}

	// The trace from before Jaeger's outage is still there.
	if _, err := s.jaeger.Trace(early); err != nil {
		t.Errorf("trace %s, stored before Jaeger's outage: %v", early, err)
	}
}

// waitGrowing waits until the instant query q returns one sample greater
// than floor, and returns it.
func waitGrowing(t *testing.T, api *promAPI, q string, floor float64) float64 {
	t.Helper()
	var v float64
	var last string
	api.waitFor(fmt.Sprintf("%s above %v", q, floor), func() bool {
		res, err := api.query(q, time.Now())
		last = fmt.Sprintf("%s (%v)", formatSamples(res), err)
		if err != nil || len(res) != 1 {
			return false
		}
		v = res[0].Value
		return v > floor
	}, func() string { return last })
	return v
}

// mustQuery runs an instant query that must return one sample, now.
func (a *promAPI) mustQuery(q string) float64 {
	a.t.Helper()
	res, err := a.query(q, time.Now())
	if err != nil || len(res) != 1 {
		a.t.Fatalf("%s: %s (%v)", q, formatSamples(res), err)
	}
	return res[0].Value
}

// countSpans waits until Jaeger has want spans of nexus-demo (30s at
// most: the Collector may still be sending) and returns how many it has and
// how many traces have a demo request as their root.
func countSpans(t *testing.T, j *jaeger.Jaeger, want float64, requests int) (spans float64, requestTraces int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Background syncs are traces of their own: ask for all traces.
		traces, err := j.Search("nexus-demo", "", 10*requests)
		if err != nil {
			t.Fatal(err)
		}
		spans, requestTraces = 0, 0
		for _, tr := range traces {
			spans += float64(len(tr.Spans))
			for _, sp := range tr.Spans {
				if sp.Parent() == "" && sp.OperationName == "demo request" {
					requestTraces++
				}
			}
		}
		if spans == want || time.Now().After(deadline) {
			return spans, requestTraces
		}
		time.Sleep(200 * time.Millisecond)
	}
}

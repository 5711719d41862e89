package e2e

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nexusstore/nexus/e2e/collector"
	"github.com/nexusstore/nexus/nexusotel"
)

// TestStorePipelineThroughCollector runs the workload against the
// Collector configured by the repository's otel-collector.yaml (OTLP in,
// batch, prometheus exporter out) and checks the series that a Prometheus
// server scraping the Collector would store.
//
// The Collector's prometheus exporter (v0.161.0, default translation)
// serves the workload as these series (observed; buckets left out):
//
//	nexus_store_operation_duration_seconds_{bucket,sum,count}  nexus_store_operation, nexus_store_policy, nexus_cache_result (reads)
//	nexus_store_backend_duration_seconds_{bucket,sum,count}    nexus_store_operation
//	nexus_store_cache_events_total                             nexus_cache_event
//	nexus_store_cache_entries                                  (gauge)
//	nexus_store_pending_changes                                (gauge)
//	nexus_store_pending_oldest_age_seconds                     (gauge)
//	nexus_store_sample_rate_ratio                              (gauge)
//	target_info                                                the rest of the resource: host_name, telemetry_sdk_*
//
// The unit s becomes _seconds, 1 becomes _ratio, a counter gets _total and
// the annotations ({event}, {entry}, {change}) leave no trace. Each nexus
// series also has nexus_store_name, job (service.name), instance
// (service.instance.id), otel_scope_name, otel_scope_version and an empty
// otel_scope_schema_url.
func TestStorePipelineThroughCollector(t *testing.T) {
	grpcAddr, httpAddr, promAddr := collector.FreeAddr(t), collector.FreeAddr(t), collector.FreeAddr(t)
	collector.Start(t, "../otel-collector.yaml", []string{
		"NEXUS_OTLP_GRPC=" + grpcAddr,
		"NEXUS_OTLP_HTTP=" + httpAddr,
		"NEXUS_PROM_ENDPOINT=" + promAddr,
		// Nothing listens there: the otlp_grpc exporter only logs its
		// failed connections, and the workload sends no spans.
		"NEXUS_JAEGER_OTLP=" + collector.FreeAddr(t),
	}, grpcAddr, httpAddr, promAddr)

	setOTelEnv(t,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"OTEL_SERVICE_NAME=nexus-e2e",
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=e2e-instance",
	)
	url := "http://" + promAddr + "/metrics"
	runWorkload(t, func() {
		// The gauges are read from the store when the SDK collects, so only
		// while it is open: wait for a periodic export to carry them (the
		// 5 saved items are cached by now). The exporter keeps serving them
		// after the store is closed.
		waitScrape(t, url, checkGauges)
	})
	// The final export went through the batch processor (up to 200ms).
	scrape := waitScrape(t, url, checkPrometheus)
	t.Logf("nexus series scraped from the Collector:\n%s", nexusLines(scrape))
}

// resourceLabels are the labels the exporter makes of the resource:
// service.name becomes job, service.instance.id instance. The other resource
// attributes are labels of target_info only (resource_to_telemetry_conversion
// is off), and target_info is there only for a resource with
// service.instance.id.
var resourceLabels = map[string]string{"job": "nexus-e2e", "instance": "e2e-instance"}

// expectedGauges are the store's gauges after the workload.
var expectedGauges = []struct {
	prom string
	want float64
}{
	{"nexus_store_cache_entries", 5}, // the saved items
	{"nexus_store_pending_changes", 0},
	{"nexus_store_pending_oldest_age_seconds", 0},
	{"nexus_store_sample_rate_ratio", 1},
}

// waitScrape scrapes url until check finds no problem, and returns that
// scrape; it fails t after 15s.
func waitScrape(t *testing.T, url string, check func(map[string]*dto.MetricFamily) []string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		scrape, families := scrapeMetrics(t, url)
		problems := check(families)
		if len(problems) == 0 {
			return scrape
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus exporter, after 15s:\n  %s\nnexus series scraped:\n%s",
				strings.Join(problems, "\n  "), nexusLines(scrape))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPrometheus returns what differs between the scraped families and
// expectedSeries and expectedGauges, plus the resource labels and target_info.
func checkPrometheus(families map[string]*dto.MetricFamily) []string {
	var problems []string
	for _, s := range expectedSeries {
		want := map[string]string{"nexus_store_name": storeName}
		for k, v := range s.attrs {
			want[strings.ReplaceAll(k, ".", "_")] = v
		}
		var got []float64
		family, isHistogram := families[s.prom], false
		if family == nil && strings.HasSuffix(s.prom, "_count") {
			family, isHistogram = families[strings.TrimSuffix(s.prom, "_count")], true
		}
		for _, m := range family.GetMetric() {
			labels := promLabels(m)
			if !hasAttrs(labels, want) {
				continue
			}
			if !hasAttrs(labels, resourceLabels) || labels["otel_scope_name"] != nexusotel.ScopeName {
				problems = append(problems, fmt.Sprintf("%s %v: labels %v, want %v and otel_scope_name %q", s.prom, want, labels, resourceLabels, nexusotel.ScopeName))
			}
			if isHistogram {
				got = append(got, float64(m.GetHistogram().GetSampleCount()))
			} else {
				got = append(got, m.GetCounter().GetValue())
			}
		}
		if len(got) != 1 || got[0] != s.want {
			problems = append(problems, fmt.Sprintf("%s %v = %v, want [%v]", s.prom, want, got, s.want))
		}
	}
	problems = append(problems, checkGauges(families)...)
	if !slices.ContainsFunc(families["target_info"].GetMetric(), func(m *dto.Metric) bool {
		labels := promLabels(m)
		return hasAttrs(labels, resourceLabels) && labels["host_name"] != ""
	}) {
		problems = append(problems, fmt.Sprintf("no target_info %v with host_name", resourceLabels))
	}
	if _, ok := families["nexus_store_errors_total"]; ok {
		problems = append(problems, "nexus_store_errors_total present: the workload has no errors")
	}
	return problems
}

// checkGauges returns what differs between the scraped families and
// expectedGauges.
func checkGauges(families map[string]*dto.MetricFamily) []string {
	var problems []string
	want := map[string]string{"nexus_store_name": storeName}
	maps.Copy(want, resourceLabels)
	for _, g := range expectedGauges {
		var got []float64
		for _, m := range families[g.prom].GetMetric() {
			if hasAttrs(promLabels(m), want) {
				got = append(got, m.GetGauge().GetValue())
			}
		}
		if len(got) != 1 || got[0] != g.want {
			problems = append(problems, fmt.Sprintf("%s %v = %v, want [%v]", g.prom, want, got, g.want))
		}
	}
	return problems
}

func promLabels(m *dto.Metric) map[string]string {
	labels := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return labels
}

// scrapeMetrics GETs url (Prometheus text format) and returns the body and
// its metric families.
func scrapeMetrics(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	// No keep-alive: an idle connection's goroutines would outlive the test.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s\n%s", url, resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("scrape %s: parse: %v\n%s", url, err, body)
	}
	return string(body), families
}

// nexusLines returns the nexus_ sample lines of a scrape, sorted, without
// histogram buckets.
func nexusLines(scrape string) string {
	var lines []string
	for line := range strings.Lines(scrape) {
		if strings.HasPrefix(line, "nexus_") && !strings.Contains(line, "_bucket{") {
			lines = append(lines, "  "+strings.TrimSpace(line))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

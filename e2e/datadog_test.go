package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/nexusstore/nexus/e2e/collector"
	"github.com/nexusstore/nexus/nexusotel"
)

// TestDatadogRouteDeltaTemporality sends the workload the way a service
// sends it to the Datadog Agent's OTLP ingest: OTLP gRPC with delta
// temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta,
// which Datadog wants). No Agent runs here; a Collector's OTLP receiver
// takes its place and writes what it receives to a file, in OTLP JSON, where
// the test checks the temporality and, summing the deltas, the totals.
func TestDatadogRouteDeltaTemporality(t *testing.T) {
	grpcAddr := collector.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "metrics.jsonl")
	agent := collector.Start(t, "testdata/agent-otlp-file.yaml", []string{
		"NEXUS_OTLP_GRPC=" + grpcAddr,
		"NEXUS_FILE_PATH=" + out,
	}, grpcAddr)

	setOTelEnv(t,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta",
		"OTEL_SERVICE_NAME=nexus-e2e",
	)
	runWorkload(t, func() {
		// Let a periodic export carry the saves (the file exporter flushes
		// every second), so that the gets go in later exports: with delta
		// temporality each export holds only what is new since the last
		// one, and the sums below are the workload's totals (cumulative
		// exports would count the saves twice).
		waitForFile(t, out, `"nexus.store.operation.duration"`)
	})
	agent.Stop() // the file exporter flushes and closes the file at shutdown

	requests := readOTLPJSON(t, out)
	totals := make(map[string]map[string]float64) // metric -> attribute key -> sum of deltas
	points, exports := 0, 0
	for _, req := range requests {
		hasPoints := false
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				if sm.GetScope().GetName() != nexusotel.ScopeName {
					continue
				}
				for _, m := range sm.GetMetrics() {
					temporality, values := dataPoints(m)
					if len(values) == 0 {
						continue
					}
					hasPoints = true
					// "aggregationTemporality":1 in the JSON
					if temporality != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
						t.Errorf("%s: aggregation temporality %v, want DELTA", m.GetName(), temporality)
					}
					if totals[m.GetName()] == nil {
						totals[m.GetName()] = make(map[string]float64)
					}
					for key, v := range values {
						totals[m.GetName()][key] += v
						points++
					}
				}
			}
		}
		if hasPoints {
			exports++
		}
	}
	t.Logf("%d export requests, %d with nexus sums or histograms, %d data points in them; totals: %v", len(requests), exports, points, totals)
	if exports < 2 {
		t.Errorf("nexus sums and histograms in %d export requests, want at least 2 (the saves, then the gets)", exports)
	}

	for _, s := range expectedSeries {
		want := map[string]string{"nexus.store.name": storeName}
		maps.Copy(want, s.attrs)
		var got []float64
		for key, v := range totals[s.metric] {
			if hasAttrs(parseAttrKey(key), want) {
				got = append(got, v)
			}
		}
		if len(got) != 1 || got[0] != s.want {
			t.Errorf("%s %v: sum of deltas %v, want [%v]", s.metric, want, got, s.want)
		}
	}
}

// waitForFile polls the file at path until it contains s; it fails t after
// 15s.
func waitForFile(t *testing.T, path, s string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, []byte(s)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s after 15s (%v)", path, s, err)
		}
	}
}

// dataPoints returns a sum's or histogram's temporality and its data
// points' values by attribute key (attrKey): a sum's value, a histogram's
// count. Gauges have no temporality and are not summed: it returns no values.
func dataPoints(m *metricpb.Metric) (metricpb.AggregationTemporality, map[string]float64) {
	values := make(map[string]float64)
	switch d := m.GetData().(type) {
	case *metricpb.Metric_Sum:
		for _, p := range d.Sum.GetDataPoints() {
			values[attrKey(p.GetAttributes())] += float64(p.GetAsInt()) + p.GetAsDouble()
		}
		return d.Sum.GetAggregationTemporality(), values
	case *metricpb.Metric_Histogram:
		for _, p := range d.Histogram.GetDataPoints() {
			values[attrKey(p.GetAttributes())] += float64(p.GetCount())
		}
		return d.Histogram.GetAggregationTemporality(), values
	case *metricpb.Metric_ExponentialHistogram:
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			values[attrKey(p.GetAttributes())] += float64(p.GetCount())
		}
		return d.ExponentialHistogram.GetAggregationTemporality(), values
	}
	return metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_UNSPECIFIED, nil
}

// attrKey encodes string attributes as sorted "k=v" pairs joined by ",",
// a map key that parseAttrKey reads back.
func attrKey(attrs []*commonpb.KeyValue) string {
	pairs := make([]string, 0, len(attrs))
	for _, kv := range attrs {
		pairs = append(pairs, kv.GetKey()+"="+kv.GetValue().GetStringValue())
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

func parseAttrKey(key string) map[string]string {
	attrs := make(map[string]string)
	for pair := range strings.SplitSeq(key, ",") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			attrs[k] = v
		}
	}
	return attrs
}

// readOTLPJSON reads the file exporter's metric requests.
func readOTLPJSON(t *testing.T, path string) []*colmetricpb.ExportMetricsServiceRequest {
	t.Helper()
	return readOTLPFile(t, path, func() *colmetricpb.ExportMetricsServiceRequest {
		return new(colmetricpb.ExportMetricsServiceRequest)
	})
}

// readOTLPFile reads the file exporter's output: one OTLP JSON request per
// line, each decoded into a message from newMsg. It fails on an empty file.
func readOTLPFile[M proto.Message](t *testing.T, path string, newMsg func() M) []M {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("file exporter output: %v", err)
	}
	var out []M
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("file exporter output: %v", err)
		}
		msg := newMsg()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, msg); err != nil {
			t.Fatalf("file exporter output: request %d: %v", len(out)+1, err)
		}
		out = append(out, msg)
	}
	if len(out) == 0 {
		t.Fatalf("file exporter output: empty")
	}
	return out
}

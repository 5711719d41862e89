package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nexusstore/nexus/e2e/collector"
	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// TestReplicasAreDistinctSeries runs two replicas of one service (two
// otelsetup pipelines, as two processes would have, with the same
// OTEL_SERVICE_NAME and no service.instance.id of their own) through one
// Collector of ../otel-collector.yaml. otelsetup gives each a
// service.instance.id, so the Collector's Prometheus exporter serves two
// series, one per instance, whose sum is exact (50 + 5 saves), and a
// target_info for each. Before, both replicas had the same resource and
// the exporter served one series holding whichever replica exported last.
func TestReplicasAreDistinctSeries(t *testing.T) {
	grpcAddr, httpAddr, promAddr := collector.FreeAddr(t), collector.FreeAddr(t), collector.FreeAddr(t)
	collector.Start(t, "../otel-collector.yaml", []string{
		"NEXUS_OTLP_GRPC=" + grpcAddr,
		"NEXUS_OTLP_HTTP=" + httpAddr,
		"NEXUS_PROM_ENDPOINT=" + promAddr,
		"NEXUS_JAEGER_OTLP=" + collector.FreeAddr(t), // no spans are sent
	}, grpcAddr, httpAddr, promAddr)
	setOTelEnv(t,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"OTEL_SERVICE_NAME=nexus-replicas",
		"OTEL_TRACES_EXPORTER=none",
	)

	const storeName = "e2e_replicas"
	saves := []int{50, 5}
	for _, n := range saves {
		runReplica(t, storeName, n)
	}

	url := "http://" + promAddr + "/metrics"
	var got map[string]float64
	waitScrape(t, url, func(families map[string]*dto.MetricFamily) []string {
		got = map[string]float64{}
		for _, m := range families["nexus_store_operation_duration_seconds"].GetMetric() {
			l := promLabels(m)
			if l["nexus_store_name"] == storeName && l["nexus_store_operation"] == "save" && l["job"] == "nexus-replicas" {
				got[l["instance"]] += float64(m.GetHistogram().GetSampleCount())
			}
		}
		var targets int
		for _, m := range families["target_info"].GetMetric() {
			if l := promLabels(m); l["job"] == "nexus-replicas" && got[l["instance"]] > 0 {
				targets++
			}
		}
		var sum float64
		var values []float64
		for _, v := range got {
			sum += v
			values = append(values, v)
		}
		slices.Sort(values)
		if len(got) != 2 || !slices.Equal(values, []float64{5, 50}) || sum != 55 || targets != 2 {
			return []string{fmt.Sprintf("save counts by instance %v (sum %v), %d target_info series; want two instances, 50 and 5, sum 55, two target_info", got, sum, targets)}
		}
		return nil
	})
	var lines []string
	for inst, v := range got {
		lines = append(lines, fmt.Sprintf(`nexus_store_operation_duration_seconds_count{instance=%q,job="nexus-replicas",nexus_store_name=%q,nexus_store_operation="save"} %v`, inst, storeName, v))
	}
	slices.Sort(lines)
	t.Logf("two replicas through one Collector:\n  %s\n  sum: 55", strings.Join(lines, "\n  "))
}

// runReplica is one replica's life: its own pipeline and store, n saves,
// then Close and the final export.
func runReplica(t *testing.T, storeName string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP())
	if err != nil {
		t.Fatalf("otelsetup.Setup: %v", err)
	}
	s, err := store.New(memory.New[user, string](), store.Config[user, string]{
		IDOf: func(u user) string { return u.ID }, Name: storeName, MetricsReporter: rep,
	})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	for i := range n {
		if _, err := s.Save(ctx, user{ID: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := shutdown(ctx); err != nil {
		t.Errorf("OTel shutdown (final export): %v", err)
	}
}

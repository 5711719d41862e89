// Package grafana defines the "nexus stores" Grafana dashboard
// (deploy/grafana/dashboards/nexus.json) in Go, with the Apache-2.0
// grafana-foundation-sdk, so that its queries are written once, here, and
// the JSON is generated:
//
//	go -C e2e run ./cmd/nexus-dashboard > deploy/grafana/dashboards/nexus.json
//
// The e2e tests check that the committed JSON is what Dashboard generates,
// and run every query of it against a real Prometheus.
//
// # What the queries must survive
//
// Replicas: every series has job (service.name) and instance
// (service.instance.id); the $job, $instance and $store variables select
// one service's store on any subset of its instances (store names are not
// unique across services).
//
// Upgrades: a new release of nexusotel changes the otel_scope_version label,
// and the Collector's prometheus exporter keeps serving the old release's
// series, frozen, for its metric expiration (5 minutes). Counters of the old
// release then have a rate of 0 and add nothing; gauges are aggregated per
// (job, instance, store) before they are divided by or summed, so that two
// versions never make "duplicate series for the match group" errors or
// double counts.
//
// Histograms: explicit buckets (nexusotel's default) give
// <name>_bucket/_sum/_count series; base-2 exponential histograms, scraped
// by a Prometheus with native histograms enabled (protobuf), give one native
// series <name>. Every histogram query asks for both, with "or": the one
// that exists answers.
package grafana

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid, in its URL.
const UID = "nexus-stores"

// Selector selects the series of the chosen store on the chosen instances
// of the chosen service: every query uses it.
const Selector = `job="$job", instance=~"$instance", nexus_store_name="$store"`

// Variables are the dashboard's template variables, in their order on the
// dashboard, and what Grafana replaces each with in a query.
var Variables = []string{"datasource", "job", "instance", "store"}

// storeMetric is the series the variables list their values from: the
// sample-rate gauge, exported for every store nexusotel serves, whatever
// its histogram kind.
const storeMetric = "nexus_store_sample_rate_ratio"

// rate is rate(metric{Selector, extra}[$__rate_interval]).
func rate(metric, extra string) string {
	sel := Selector
	if extra != "" {
		sel += ", " + extra
	}
	return fmt.Sprintf("rate(%s{%s}[$__rate_interval])", metric, sel)
}

// histogramCount is the per-second count of a duration histogram: from its
// _count series (explicit buckets) or its native series.
func histogramCount(histogram string) string {
	return fmt.Sprintf("(%s or histogram_count(%s))", rate(histogram+"_count", ""), rate(histogram, ""))
}

// quantile is the q-quantile of a duration histogram, by the labels by (a
// comma-separated list, or ""): from its _bucket series (explicit buckets)
// or its native series.
func quantile(q float64, histogram, by string) string {
	classic, native := "le", ""
	if by != "" {
		classic, native = "le, "+by, by
	}
	return fmt.Sprintf("histogram_quantile(%v, sum by (%s) (%s))\nor\nhistogram_quantile(%v, sum by (%s) (%s))",
		q, classic, rate(histogram+"_bucket", ""), q, native, rate(histogram, ""))
}

// The dashboard's queries. operationsPerSecond divides each instance's
// operation rate by its sample rate (nexusotel exports the histogram of the
// sampled operations only), the raw rate where that gauge is missing.
var (
	operationsPerSecond = fmt.Sprintf(`sum by (nexus_store_operation) (
  (
    %[1]s
    / on (job, instance, nexus_store_name) group_left ()
    max by (job, instance, nexus_store_name) (%[2]s{%[3]s})
  )
  or
  %[1]s
)`, histogramCount("nexus_store_operation_duration_seconds"), storeMetric, Selector)

	cacheHitRatio = fmt.Sprintf("sum(%s)\n/\nsum(%s)",
		rate("nexus_store_cache_events_total", `nexus_cache_event="hit"`),
		rate("nexus_store_cache_events_total", `nexus_cache_event=~"hit|miss"`))

	errorsPerSecond = func(recoverable bool) string {
		return fmt.Sprintf("sum by (nexus_store_operation, error_type) (\n  %s\n)",
			rate("nexus_store_errors_total", fmt.Sprintf(`nexus_error_recoverable="%t"`, recoverable)))
	}

	gauge = func(agg, metric string) string {
		return fmt.Sprintf("%s (max by (job, instance, nexus_store_name) (%s{%s}))", agg, metric, Selector)
	}
)

// Dashboard builds the dashboard.
func Dashboard() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder("nexus stores").
		Uid(UID).
		Description("Operations, latency, cache, errors and sync of one nexus store (nexus.store.name) of one service, on all or some of its instances, from the OpenTelemetry Collector's prometheus exporter. Latency points link to their traces in Jaeger (exemplars).").
		Tags([]string{"nexus", "opentelemetry"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("10s").
		Time("now-15m", "now").
		Timezone("browser").
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").
			Type("prometheus")).
		WithVariable(queryVariable("job", "Service", "label_values("+storeMetric+", job)", false)).
		WithVariable(queryVariable("instance", "Instance", `label_values(`+storeMetric+`{job="$job"}, instance)`, true)).
		WithVariable(queryVariable("store", "Store", `label_values(`+storeMetric+`{job="$job"}, nexus_store_name)`, false))

	row := func(panels ...cog.Builder[dashboard.Panel]) {
		for _, p := range panels {
			b.WithPanel(p)
		}
	}
	row(
		graph("Operations per second", "ops", 12,
			"Store operations per second by operation, summed over the selected instances. Each instance's rate is divided by its sample rate (nexus.store.sample_rate), so that sampled stores show their true rate; where that gauge is missing, the raw rate.",
			query("A", operationsPerSecond, "{{nexus_store_operation}}", false)),
		graph("Operation latency p50 / p95 / p99", "s", 12,
			"Latency quantiles by operation, over the selected instances, from the operation duration histogram. The points are exemplars: a measurement and the trace it belongs to, one click from Jaeger.",
			query("A", quantile(0.5, "nexus_store_operation_duration_seconds", "nexus_store_operation"), "p50 {{nexus_store_operation}}", true),
			query("B", quantile(0.95, "nexus_store_operation_duration_seconds", "nexus_store_operation"), "p95 {{nexus_store_operation}}", true),
			query("C", quantile(0.99, "nexus_store_operation_duration_seconds", "nexus_store_operation"), "p99 {{nexus_store_operation}}", true)),
	)
	row(
		graph("Cache hit ratio", "percentunit", 8,
			"Hits / (hits + misses) of the reads the cache could serve, over the selected instances. Needs no correction for sampling.",
			query("A", cacheHitRatio, "hit ratio", false)),
		graph("Backend latency p95", "s", 8,
			"95th percentile of the backend calls (the source of truth behind the cache) by call; exemplars link to traces.",
			query("A", quantile(0.95, "nexus_store_backend_duration_seconds", "nexus_store_operation"), "{{nexus_store_operation}}", true)),
		graph("Errors returned per second", "ops", 8,
			"Errors the store returned to its callers (nexus.error.recoverable=false), by operation and error.type. Never sampled.",
			query("A", errorsPerSecond(false), "{{nexus_store_operation}}: {{error_type}}", false)),
	)
	row(
		graph("Errors recovered per second", "ops", 6,
			"Errors the store handled without its caller seeing them (nexus.error.recoverable=true): a sync push that will be retried, a failed background refresh, a network-first read answered from the cache. Never sampled.",
			query("A", errorsPerSecond(true), "{{nexus_store_operation}}: {{error_type}}", false)),
		graph("Sync events per second", "ops", 6,
			"Sync runs started, completed and failed, pushes retried, conflicts resolved. Never sampled.",
			query("A", "sum by (nexus_sync_event) (\n  "+rate("nexus_store_sync_events_total", "")+"\n)", "{{nexus_sync_event}}", false)),
		graph("Sync duration p95", "s", 6,
			"95th percentile of a whole Sync run, completed or failed (the events panel counts each outcome); exemplars link to the run's trace.",
			query("A", quantile(0.95, "nexus_store_sync_duration_seconds", ""), "p95", true)),
		graph("Items synced per second", "ops", 6,
			"Pending changes pushed to the backend per second, over the selected instances.",
			query("A", "sum(\n  "+rate("nexus_store_sync_items_total", "")+"\n)", "items", false)),
	)
	row(
		graph("Cache entries", "short", 6,
			"Entries in each instance's cache.",
			query("A", gauge("max by (instance)", "nexus_store_cache_entries"), "{{instance}}", false)),
		graph("Pending changes", "short", 6,
			"Changes waiting to be pushed by Sync, per instance.",
			query("A", gauge("max by (instance)", "nexus_store_pending_changes"), "{{instance}}", false)),
		single("Oldest pending change", "s",
			"Age of the oldest change waiting to be pushed, over the selected instances.",
			query("A", gauge("max", "nexus_store_pending_oldest_age_seconds"), "oldest", false)),
		single("Sample rate", "percentunit",
			"The fraction of operations the store reports (MetricsConfig.SampleRate): below 1, histograms and hit/miss counts cover a sample.",
			query("A", gauge("min", "nexus_store_sample_rate_ratio"), "sample rate", false)),
	)
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	// Panel ids, in order: Grafana needs them unique (links, edits).
	for i, p := range d.Panels {
		if p.Panel == nil {
			return d, fmt.Errorf("grafana: panel %d is not a plain panel", i)
		}
		id := uint32(i + 1)
		p.Panel.Id = &id
	}
	return d, nil
}

// JSON returns the dashboard as Grafana's JSON model, indented, with a
// final newline: the content of deploy/grafana/dashboards/nexus.json.
func JSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// datasource is the $datasource variable: the Prometheus the user picks.
func datasource() common.DataSourceRef {
	typ, uid := "prometheus", "${datasource}"
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

func queryVariable(name, label, q string, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: &q}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

func query(ref, expr, legend string, exemplar bool) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(ref).
		Datasource(datasource()).
		Expr(expr).
		LegendFormat(legend).
		Range().
		Exemplar(exemplar)
}

// graph is a time series panel width columns wide (of 24), 8 high.
func graph(title, unit string, width uint32, description string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Height(8).
		Span(width).
		Legend(common.NewVizLegendOptionsBuilder().
			ShowLegend(true).
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

// single is a stat panel, 6 columns wide and 8 high.
func single(title, unit, description string, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Height(8).
		Span(6).
		WithTarget(q)
}

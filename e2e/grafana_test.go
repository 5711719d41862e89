package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/nexusstore/nexus/e2e/collector"
	"github.com/nexusstore/nexus/e2e/grafana"
	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// dashboardStore names the store of TestGrafanaQueriesAgainstPrometheus:
// the dashboard's $store.
const dashboardStore = "e2e_dashboard"

// One round of the dashboard workload, run twice. Both rounds are the same,
// so that every counter's value after the second is twice its value after
// the first: Prometheus then extrapolates every rate() alike (same samples
// times, same first-value/increase ratio), and ratios of rates are exact.
const (
	roundSaves       = 4 // saved (and cached) items
	roundHits        = 3 // gets of saved items: cache hits
	roundMisses      = 1 // gets of absent items: misses, ErrNotFound
	roundFailedSaves = 1 // saves the backend refuses (FailNext): store.ErrUnavailable, returned
	roundWriteBehind = 1 // WriteCacheFirst saves, pushed by Sync, whose first push fails and is retried: recovered
)

// roundOps are the operations of one round, by nexus.store.operation.
var roundOps = map[string]float64{
	"get":  roundHits + roundMisses,
	"save": roundSaves + roundFailedSaves + roundWriteBehind,
	"sync": 1,
}

// The release a rolling upgrade replaces: before the rounds, a store of the
// same service, instance and name reports under this otel_scope_version,
// then stops, and the Collector keeps serving its series, frozen, as it
// does for 5 minutes after an upgrade.
const (
	oldScopeVersion = "0.0.1-old"
	oldSaves        = 2
	oldHits         = 1
)

// TestGrafanaProvisioning checks the Grafana files that docker-compose.yml
// mounts, as far as can be without Grafana (which is not run here): the
// provisioning files parse, their datasources point at the compose
// services, Prometheus's exemplars link to the Jaeger datasource, and the
// dashboard parses, refers only to its $datasource variable (a provisioned
// Prometheus), selects the chosen job, instances and store in every query,
// asks for exemplars on its latency queries and lays its panels out on the
// grid.
func TestGrafanaProvisioning(t *testing.T) {
	project := loadCompose(t)

	var ds grafanaDatasources
	readYAML(t, datasourcesFile, &ds)
	if ds.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", datasourcesFile, ds.APIVersion)
	}
	types := make(map[string]string) // uid -> type
	var defaults []string
	wantURL := map[string]string{"prometheus": "http://prometheus:9090", "jaeger": "http://jaeger:16686"}
	for _, d := range ds.Datasources {
		if d.UID == "" || types[d.UID] != "" {
			t.Errorf("%s: datasource %q: empty or duplicate uid %q", datasourcesFile, d.Name, d.UID)
		}
		types[d.UID] = d.Type
		if d.IsDefault {
			defaults = append(defaults, d.Type)
		}
		if want, ok := wantURL[d.Type]; !ok || d.URL != want {
			t.Errorf("%s: datasource %q (%s) at %q, want one of %v", datasourcesFile, d.Name, d.Type, d.URL, wantURL)
		}
		// The URL names a compose service and a port it listens on.
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Errorf("%s: %v", datasourcesFile, err)
			continue
		}
		svc, ok := project.Services[u.Hostname()]
		if !ok {
			t.Errorf("%s: datasource %q at %s: no compose service %q", datasourcesFile, d.Name, d.URL, u.Hostname())
		} else if _, ok := publishedPorts(t, svc)[u.Port()]; !ok {
			t.Errorf("%s: datasource %q at %s: service %s has no port %s", datasourcesFile, d.Name, d.URL, svc.Name, u.Port())
		}
		if d.Access != "proxy" {
			t.Errorf("%s: datasource %q: access %q, want proxy (the URL resolves in the compose network, not in the browser)", datasourcesFile, d.Name, d.Access)
		}
	}
	for _, d := range ds.Datasources {
		if d.Type != "prometheus" {
			continue
		}
		scrape := readPromConfig(t, prometheusConfig).ScrapeConfigs[0].ScrapeInterval
		if got := d.JSONData.TimeInterval; got != scrape {
			t.Errorf("%s: Prometheus timeInterval %v, want the scrape interval %s ($__rate_interval derives from it)", datasourcesFile, got, scrape)
		}
		// Exemplars link to the Jaeger datasource by their trace_id label,
		// the name the Collector's prometheus exporter gives it.
		links := d.JSONData.ExemplarTraceIDDestinations
		if len(links) != 1 || links[0].Name != "trace_id" || types[links[0].DatasourceUID] != "jaeger" {
			t.Errorf("%s: Prometheus exemplarTraceIdDestinations %+v, want one, trace_id -> the Jaeger datasource (uids: %v)", datasourcesFile, links, types)
		}
	}
	if !slices.Equal(defaults, []string{"prometheus"}) {
		t.Errorf("%s: default datasources of types %v, want exactly the Prometheus one", datasourcesFile, defaults)
	}

	var providers grafanaProviders
	readYAML(t, dashboardProviders, &providers)
	if providers.APIVersion != 1 || len(providers.Providers) != 1 || providers.Providers[0].Type != "file" || providers.Providers[0].Options.Path == "" {
		t.Errorf("%s: want apiVersion 1 and one file provider with a path, got %+v", dashboardProviders, providers)
	}

	d := readDashboard(t)
	if d.UID != grafana.UID || d.Title == "" {
		t.Errorf("dashboard: uid %q, title %q", d.UID, d.Title)
	}
	// Every query goes to the $datasource variable, which lists the
	// Prometheus datasources (the provisioned one by default).
	checkRef := func(what string, ref *dsRef) {
		if ref == nil || ref.Type != "prometheus" || ref.UID != "${datasource}" {
			t.Errorf("dashboard: %s uses datasource %+v, want {prometheus ${datasource}}", what, ref)
		}
	}
	var names []string
	for _, v := range d.Templating.List {
		names = append(names, v.Name)
		switch {
		case v.Name == "datasource":
			if v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("dashboard: variable $datasource is %s of %v, want a datasource variable of type prometheus", v.Type, v.Query)
			}
		case v.Type != "query":
			t.Errorf("dashboard: variable $%s is of type %s, want query", v.Name, v.Type)
		default:
			checkRef("variable $"+v.Name, v.Datasource)
			if q, _ := v.Query.(string); labelValuesQuery(q) == nil || q != v.Definition {
				t.Errorf("dashboard: variable $%s: query %v (definition %q) is not label_values(<selector>, <label>)", v.Name, v.Query, v.Definition)
			}
		}
	}
	if !slices.Equal(names, grafana.Variables) {
		t.Errorf("dashboard: variables %v, want %v", names, grafana.Variables)
	}

	ids := make(map[int]bool)
	var boxes []dashboardPanel
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID <= 0 {
			t.Errorf("dashboard: panel %q: missing or duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Description == "" || p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("dashboard: panel %d (%q) needs a title, a description and a unit", p.ID, p.Title)
		}
		checkRef(fmt.Sprintf("panel %q", p.Title), p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("dashboard: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkRef(fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Datasource)
			if strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, grafana.Selector) {
				t.Errorf("dashboard: panel %q query %s: a selector without %s: %s", p.Title, tg.RefID, grafana.Selector, tg.Expr)
			}
			// Latency points link to their traces.
			if strings.Contains(tg.Expr, "histogram_quantile") != tg.Exemplar {
				t.Errorf("dashboard: panel %q query %s: exemplar %t; want exemplars exactly on the latency quantiles", p.Title, tg.RefID, tg.Exemplar)
			}
			expandExpr(t, tg.Expr, dashVars{job: "j", instance: "i", store: "s", rateInterval: time.Minute}) // fails t on an unknown variable
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("dashboard: panel %q at %+v: outside the 24-column grid", p.Title, g)
		}
		for _, o := range boxes {
			h := o.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("dashboard: panels %q and %q overlap", p.Title, o.Title)
			}
		}
		boxes = append(boxes, p)
	}
}

// TestDashboardUpToDate checks that the committed dashboard JSON is what
// package grafana generates: edit the Go, then run
// go -C e2e run ./cmd/nexus-dashboard > deploy/grafana/dashboards/nexus.json.
func TestDashboardUpToDate(t *testing.T) {
	want, err := grafana.JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what package grafana generates; regenerate it from the repository root:\n  go -C e2e run ./cmd/nexus-dashboard > deploy/grafana/dashboards/nexus.json", dashboardFile)
	}
}

// labelValuesQuery returns the selector and label of a Grafana
// label_values(selector, label) query, or nil.
func labelValuesQuery(q string) []string {
	m := regexp.MustCompile(`^label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)$`).FindStringSubmatch(q)
	if m == nil {
		return nil
	}
	return m[1:]
}

// TestGrafanaQueriesAgainstPrometheus runs every query of the Grafana
// dashboard against a real Prometheus that scrapes a real Collector, as
// docker-compose.yml wires them, with loopback addresses instead of the
// compose network's:
//
//	store (memory backend) -> OTLP gRPC -> Collector (../otel-collector.yaml)
//	  -> prometheus exporter <- Prometheus (../deploy/prometheus/prometheus.yml)
//	  <- the dashboard's PromQL ($job, $instance, $store, $__rate_interval substituted)
//
// It does so twice, in parallel: with nexusotel's explicit buckets, and
// with base-2 exponential histograms, which Prometheus scrapes as native
// histograms (protobuf; docker-compose.yml's Prometheus flags, which the
// test's Prometheus runs with, include --enable-feature=native-histograms).
//
// Before the workload, an older release of nexusotel (another
// otel_scope_version) reports for the same service, instance and store and
// stops, as in a rolling upgrade: its series stay, frozen. The query the
// dashboard had before (the sample-rate gauge not aggregated) fails on
// them with "duplicate series"; the dashboard's must not.
//
// The workload runs twice the same round (saves, hits, misses, a failed
// save, a write-behind save whose push is retried once, Sync) at sampling
// 1, each round exported in one flush and awaited in Prometheus, so that
// every counter has grown between two scrapes: every rate is positive, and
// the test can assert exact values (hit ratio, operation mix, gauges) where
// PromQL's extrapolation would otherwise blur them.
func TestGrafanaQueriesAgainstPrometheus(t *testing.T) {
	t.Parallel() // long and mostly waiting: beside the other long tests
	for _, tt := range []struct {
		name   string
		native bool
	}{
		{"explicit buckets", false},
		{"native histograms", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testDashboardQueries(t, tt.native)
		})
	}
}

func testDashboardQueries(t *testing.T, native bool) {
	start := time.Now()
	grpcAddr, httpAddr, promExporter := collector.FreeAddr(t), collector.FreeAddr(t), collector.FreeAddr(t)
	collector.Start(t, "../otel-collector.yaml", []string{
		"NEXUS_OTLP_GRPC=" + grpcAddr,
		"NEXUS_OTLP_HTTP=" + httpAddr,
		"NEXUS_PROM_ENDPOINT=" + promExporter,
		"NEXUS_JAEGER_OTLP=" + collector.FreeAddr(t), // nothing there; no spans are sent
	}, grpcAddr, httpAddr, promExporter)

	// promtool validates the shipped config and the test's copy of it.
	promtool := collector.Promtool(t)
	config := testPromConfig(t, promExporter)
	for _, c := range []string{prometheusConfig, config} {
		if out, err := exec.Command(promtool, "check", "config", c).CombinedOutput(); err != nil {
			t.Errorf("promtool check config %s: %v\n%s", c, err, out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	flags := composePrometheusFlags(t)
	if !slices.Contains(flags, "--enable-feature=native-histograms") {
		t.Fatalf("docker-compose.yml starts Prometheus with %v, without native histograms", flags)
	}
	promAddr := collector.FreeAddr(t)
	collector.StartPrometheus(t, config, promAddr, flags...)
	api := &promAPI{t: t, base: "http://" + promAddr}
	shipped := readPromConfig(t, prometheusConfig).ScrapeConfigs[0]
	scrapeURL := "http://" + promExporter + shipped.MetricsPath
	api.waitTargetUp(shipped.JobName, scrapeURL)
	t.Logf("Collector and Prometheus (%v) up, target scraped, after %v", flags, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The older release, then the current one.
	runOldRelease(ctx, t, grpcAddr, native)
	mp := dashboardMeterProvider(ctx, t, grpcAddr, native)
	defer func() {
		if err := mp.Shutdown(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("MeterProvider shutdown: %v", err)
		}
	}()
	rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	backend := memory.New[user, string]()
	users, err := store.New(backend, store.Config[user, string]{
		IDOf:            func(u user) string { return u.ID },
		Name:            dashboardStore,
		MetricsReporter: rep,
		Metrics:         store.MetricsConfig{SampleRate: 1},
		Retry:           store.RetryConfig{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := users.Close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	var evalAt time.Time // when Prometheus had the second round
	for round := 1; round <= 2; round++ {
		runDashboardRound(ctx, t, users, backend, round)
		if err := mp.ForceFlush(ctx); err != nil {
			t.Fatalf("round %d: export: %v", round, err)
		}
		evalAt = api.waitValues(fmt.Sprintf("round %d's totals", round), roundTotals(round))
		t.Logf("round %d in Prometheus after %v", round, time.Since(start).Round(time.Millisecond))
	}

	vars := dashVars{job: "nexus-e2e", instance: ".*", store: dashboardStore, rateInterval: rateInterval}
	d := readDashboard(t)

	// The variables list the service, its instance and the store.
	wantValues := map[string]string{"job": vars.job, "instance": "e2e-dashboard", "store": dashboardStore}
	for _, v := range d.Templating.List {
		lv := labelValuesQuery(fmt.Sprint(v.Query))
		if lv == nil {
			continue
		}
		values, err := api.labelValues(lv[1], expandExpr(t, lv[0], vars))
		if err != nil || !slices.Contains(values, wantValues[v.Name]) {
			t.Errorf("variable $%s (%s): values %v (%v), want %q among them", v.Name, v.Query, values, err, wantValues[v.Name])
		}
	}

	// Every query of the dashboard answers, with samples and finite values:
	// at one instant (exact values below) and over a range after the
	// second round, as Grafana draws it.
	results := make(map[string][]promSample) // "panel title/refId" -> result
	type rangeQuery struct{ key, expr string }
	var ranges []rangeQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := expandExpr(t, tg.Expr, vars)
			key := p.Title + "/" + tg.RefID
			ranges = append(ranges, rangeQuery{key, expr})
			res, err := api.query(expr, evalAt)
			switch {
			case err != nil:
				t.Errorf("%s: %v\n%s", key, err, expr)
			case len(res) == 0:
				t.Errorf("%s: empty result\n%s", key, expr)
			default:
				for _, s := range res {
					if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
						t.Errorf("%s: %v = %v\n%s", key, s.Metric, s.Value, expr)
					}
				}
				results[key] = res
				t.Logf("%s: %s", key, formatSamples(res))
			}
		}
	}
	checkDashboardValues(t, api, d, results, vars, evalAt, native)

	// The range: 10 s after the second round (two more scrapes), every
	// second. Every rate window still reaches back before the second round.
	end := evalAt.Add(10 * time.Second)
	api.waitScrapedAfter(shipped.JobName, scrapeURL, end)
	for _, q := range ranges {
		res, err := api.queryRange(q.expr, evalAt, end, time.Second)
		if err == nil {
			err = checkRange(res)
		}
		if err != nil {
			t.Errorf("%s over [%s, %s]: %v\n%s", q.key, evalAt.Format(time.TimeOnly), end.Format(time.TimeOnly), err, q.expr)
		}
	}
	t.Logf("%d dashboard queries answered, instant and range, %v after the start", len(ranges), time.Since(start).Round(time.Millisecond))
}

// dashboardMeterProvider is the SDK pipeline otelsetup.WithOTLP builds (OTLP
// gRPC exporter, periodic reader), by hand, to flush each round in one
// export; native selects base-2 exponential histograms (as
// OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=
// base2_exponential_bucket_histogram would). The resource is the service
// nexus-e2e, instance e2e-dashboard.
func dashboardMeterProvider(ctx context.Context, t *testing.T, grpcAddr string, native bool) *sdkmetric.MeterProvider {
	t.Helper()
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(grpcAddr), otlpmetricgrpc.WithInsecure()}
	if native {
		opts = append(opts, otlpmetricgrpc.WithAggregationSelector(func(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
			if k == sdkmetric.InstrumentKindHistogram {
				return sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
			}
			return sdkmetric.DefaultAggregationSelector(k)
		}))
	}
	exp, err := otlpmetricgrpc.New(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "nexus-e2e"),
			attribute.String("service.instance.id", "e2e-dashboard"),
		)),
	)
}

// runOldRelease reports a little of the store's telemetry as an older
// release of nexusotel would (its scope version oldScopeVersion), exports
// it while the store is open (gauges included) and shuts that pipeline
// down: the Collector goes on serving those series.
func runOldRelease(ctx context.Context, t *testing.T, grpcAddr string, native bool) {
	t.Helper()
	mp := dashboardMeterProvider(ctx, t, grpcAddr, native)
	rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(scopeVersion{mp, oldScopeVersion}), nexusotel.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	old, err := store.New(memory.New[user, string](), store.Config[user, string]{
		IDOf:            func(u user) string { return u.ID },
		Name:            dashboardStore,
		MetricsReporter: rep,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range oldSaves {
		if _, err := old.Save(ctx, user{ID: fmt.Sprintf("old%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range oldHits {
		if _, err := old.Get(ctx, "old0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("old release: export: %v", err)
	}
	if err := errors.Join(old.Close(ctx), mp.Shutdown(ctx)); err != nil {
		t.Fatalf("old release: %v", err)
	}
}

// scopeVersion is a MeterProvider whose meters all have the instrumentation
// scope version version: nexusotel's instruments as another release of it
// registers them.
type scopeVersion struct {
	metric.MeterProvider
	version string
}

func (p scopeVersion) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	return p.MeterProvider.Meter(name, metric.WithInstrumentationVersion(p.version))
}

// runDashboardRound runs one round of the dashboard workload; round
// numbers the items, so that each round saves new ones.
func runDashboardRound(ctx context.Context, t *testing.T, users *store.Store[user, string], backend *memory.Backend[user, string], round int) {
	t.Helper()
	id := func(kind string, i int) string { return fmt.Sprintf("r%d-%s%d", round, kind, i) }
	for i := range roundSaves {
		if _, err := users.Save(ctx, user{ID: id("u", i), Name: "user"}); err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	for i := range roundHits {
		if _, err := users.Get(ctx, id("u", i%roundSaves)); err != nil {
			t.Fatalf("Get (hit): %v", err)
		}
	}
	for i := range roundMisses {
		if _, err := users.Get(ctx, id("absent", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get (miss) = %v, want ErrNotFound", err)
		}
	}
	for i := range roundFailedSaves {
		backend.FailNext(1, nil)
		if _, err := users.Save(ctx, user{ID: id("failed", i)}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Save with the backend failing = %v, want ErrUnavailable", err)
		}
	}
	for i := range roundWriteBehind {
		if _, err := users.Save(ctx, user{ID: id("behind", i)}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
			t.Fatalf("Save (write-behind): %v", err)
		}
	}
	// The first push fails; Sync retries it and succeeds.
	backend.FailNext(1, nil)
	if err := users.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// roundTotals are the store's totals in Prometheus after rounds rounds of
// the current release (its series only), as queries and their values.
func roundTotals(rounds int) map[string]float64 {
	n := float64(rounds)
	sel := fmt.Sprintf(`{nexus_store_name=%q, otel_scope_version!=%q}`, dashboardStore, oldScopeVersion)
	sum := func(metric string) string { return fmt.Sprintf("sum(%s%s)", metric, sel) }
	return map[string]float64{
		// The histogram's count: its _count series, or its native series.
		fmt.Sprintf("%s or sum(histogram_count(nexus_store_operation_duration_seconds%s))", sum("nexus_store_operation_duration_seconds_count"), sel): n * (roundOps["get"] + roundOps["save"] + roundOps["sync"]),
		// A failed save writes the cache before its rollback.
		sum("nexus_store_cache_events_total"): n * (roundHits + roundMisses + roundSaves + roundFailedSaves + roundWriteBehind),
		sum("nexus_store_errors_total"):       n * (roundFailedSaves + roundWriteBehind), // returned, recovered
		sum("nexus_store_sync_events_total"):  n * 3,                                     // started, retried, completed
		sum("nexus_store_sync_items_total"):   n * roundWriteBehind,
		sum("nexus_store_cache_entries"):      n * (roundSaves + roundWriteBehind),
		// The other gauges are there too.
		sum("nexus_store_sample_rate_ratio"): 1,
		sum("nexus_store_pending_changes"):   0,
	}
}

// checkDashboardValues asserts exact values of the dashboard's queries
// after the two rounds, and exact counts straight from Prometheus.
func checkDashboardValues(t *testing.T, api *promAPI, d dashboard, results map[string][]promSample, vars dashVars, at time.Time, native bool) {
	t.Helper()
	const eps = 1e-9
	near := func(got, want float64) bool { return math.Abs(got-want) <= eps*math.Max(1, math.Abs(want)) }
	one := func(key string, want float64) {
		t.Helper()
		res := results[key]
		if len(res) != 1 || !near(res[0].Value, want) {
			t.Errorf("%s = %s, want one sample of %v", key, formatSamples(res), want)
		}
	}
	byLabel := func(key, label string) map[string]float64 {
		m := make(map[string]float64)
		for _, s := range results[key] {
			m[s.Metric[label]] = s.Value
		}
		return m
	}

	// hits / (hits + misses), exactly: the old release's counters are
	// frozen, their rates 0.
	one("Cache hit ratio/A", float64(roundHits)/float64(roundHits+roundMisses))
	// The gauges after the second round: the saved and write-behind items
	// of both rounds are cached (the failed saves were rolled back, misses
	// cache nothing), more than the old release's; Sync left nothing
	// pending; sampling is off.
	one("Cache entries/A", 2*(roundSaves+roundWriteBehind))
	one("Pending changes/A", 0)
	one("Oldest pending change/A", 0)
	one("Sample rate/A", 1)

	// Operations per second: one series per operation, in the round's mix.
	ops := byLabel("Operations per second/A", "nexus_store_operation")
	var total, want float64
	for op, n := range roundOps {
		total += ops[op]
		want += n
	}
	if len(ops) != len(roundOps) {
		t.Errorf("Operations per second: operations %v, want %v", ops, roundOps)
	}
	for op, n := range roundOps {
		if got := ops[op] / total; ops[op] <= 0 || !near(got, n/want) {
			t.Errorf("Operations per second: %s is %.6f of all, want %v/%v (rates %v)", op, got, n, want, ops)
		}
	}
	var opsExpr string
	for _, p := range d.Panels {
		if p.Title == "Operations per second" {
			opsExpr = expandExpr(t, p.Targets[0].Expr, vars)
		}
	}
	// Where the sample-rate gauge is missing, the raw rate.
	res, err := api.query(strings.Replace(opsExpr, "nexus_store_sample_rate_ratio{", `nexus_store_sample_rate_ratio{nexus_absent="x", `, 1), at)
	if err != nil || len(res) != len(ops) {
		t.Errorf("Operations per second without the sample-rate gauge: %s, %v; want %v", formatSamples(res), err, ops)
	}
	for _, s := range res {
		if !near(s.Value, ops[s.Metric["nexus_store_operation"]]) {
			t.Errorf("Operations per second without the sample-rate gauge: %s, want %v", formatSamples(res), ops)
		}
	}
	// The query as the dashboard had it, dividing by the gauge as it is:
	// the old and the current release's gauges are two series for one
	// (job, instance, store), and Prometheus refuses.
	sel := fmt.Sprintf(`nexus_store_name=%q`, dashboardStore)
	count := fmt.Sprintf(`rate(nexus_store_operation_duration_seconds_count{%s}[1m])`, sel)
	if native {
		count = fmt.Sprintf(`histogram_count(rate(nexus_store_operation_duration_seconds{%s}[1m]))`, sel)
	}
	before := fmt.Sprintf(`sum by (nexus_store_operation) (%s / on (job, instance, nexus_store_name) group_left () nexus_store_sample_rate_ratio{%s})`, count, sel)
	if res, err := api.query(before, at); err == nil || !strings.Contains(err.Error(), "duplicate series") {
		t.Errorf("the unaggregated query = %s, %v; want a duplicate series error (two scope versions):\n%s", formatSamples(res), err, before)
	}
	if scopes, err := api.labelValues("otel_scope_version", fmt.Sprintf(`nexus_store_sample_rate_ratio{%s}`, sel)); err != nil || len(scopes) != 2 {
		t.Errorf("otel_scope_version of the sample-rate gauge: %v (%v), want the old and the current release", scopes, err)
	}

	// Latency quantiles: per operation, positive and ordered.
	quantiles := [3]map[string]float64{}
	for i, ref := range []string{"A", "B", "C"} {
		quantiles[i] = byLabel("Operation latency p50 / p95 / p99/"+ref, "nexus_store_operation")
	}
	for op := range roundOps {
		p50, p95, p99 := quantiles[0][op], quantiles[1][op], quantiles[2][op]
		if !(p50 > 0 && p50 <= p95 && p95 <= p99) {
			t.Errorf("latency of %s: p50 %v, p95 %v, p99 %v; want 0 < p50 <= p95 <= p99", op, p50, p95, p99)
		}
	}
	if backend := byLabel("Backend latency p95/A", "nexus_store_operation"); len(backend) != 2 || backend["get"] <= 0 || backend["save"] <= 0 {
		t.Errorf("Backend latency p95: %v, want get and save (the misses' reads; saves and Sync's pushes)", backend)
	}
	if r := results["Sync duration p95/A"]; len(r) != 1 || r[0].Value <= 0 {
		t.Errorf("Sync duration p95: %s, want one positive sample", formatSamples(r))
	}

	// Errors: the failed saves returned, the failed pushes recovered, each
	// by its sentinel.
	for key, op := range map[string]string{"Errors returned per second/A": "save", "Errors recovered per second/A": "sync"} {
		errs := results[key]
		if len(errs) != 1 || errs[0].Metric["error_type"] != "store.ErrUnavailable" || errs[0].Metric["nexus_store_operation"] != op || errs[0].Value <= 0 {
			t.Errorf("%s: %s, want one positive series, %s: store.ErrUnavailable", key, formatSamples(errs), op)
		}
	}
	// Sync: as many completed as started, one retry each.
	sync := byLabel("Sync events per second/A", "nexus_sync_event")
	if len(sync) != 3 || sync["started"] <= 0 || !near(sync["completed"], sync["started"]) || !near(sync["retried"], sync["started"]) {
		t.Errorf("Sync events per second: %v, want started = completed = retried > 0", sync)
	}
	if r := results["Items synced per second/A"]; len(r) != 1 || !near(r[0].Value, sync["started"]) {
		t.Errorf("Items synced per second: %s, want one item per sync run (%v/s)", formatSamples(r), sync["started"])
	}

	// Exact counts, straight from the stored series.
	counts, err := api.query(fmt.Sprintf(`sum by (nexus_store_operation, otel_scope_version) (nexus_store_operation_duration_seconds_count{%[1]s})
or sum by (nexus_store_operation, otel_scope_version) (histogram_count(nexus_store_operation_duration_seconds{%[1]s}))`, sel), at)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := map[string]float64{
		"get":      2 * roundOps["get"],
		"save":     2 * roundOps["save"],
		"sync":     2 * roundOps["sync"],
		"get old":  oldHits,
		"save old": oldSaves,
	}
	for _, s := range counts {
		key := s.Metric["nexus_store_operation"]
		if s.Metric["otel_scope_version"] == oldScopeVersion {
			key += " old"
		}
		if s.Value != wantCounts[key] {
			t.Errorf("operations %s: %v in Prometheus, want %v", key, s.Value, wantCounts[key])
		}
	}
	if len(counts) != len(wantCounts) {
		t.Errorf("operation counts %s, want %v", formatSamples(counts), wantCounts)
	}
	// The histograms are of the kind the subtest asks for: classic series
	// (_bucket, _count) or native ones, not both.
	kinds := map[string]string{
		"classic": fmt.Sprintf(`count(nexus_store_operation_duration_seconds_bucket{%s})`, sel),
		"native":  fmt.Sprintf(`count(histogram_count(nexus_store_operation_duration_seconds{%s}))`, sel),
	}
	for kind, q := range kinds {
		res, err := api.query(q, at)
		if err != nil {
			t.Fatal(err)
		}
		if has, want := len(res) > 0, (kind == "native") == native; has != want {
			t.Errorf("%s histogram series: %s, want them %s", kind, formatSamples(res), map[bool]string{true: "present", false: "absent"}[want])
		}
	}

	// honor_labels kept the application's job and instance.
	res, err = api.query(fmt.Sprintf(`nexus_store_sample_rate_ratio{%s}`, sel), at)
	if err != nil || len(res) != 2 {
		t.Errorf("sample-rate gauges %s (%v), want two (two releases)", formatSamples(res), err)
	}
	for _, s := range res {
		if s.Metric["job"] != "nexus-e2e" || s.Metric["instance"] != "e2e-dashboard" {
			t.Errorf("series labels %v, want job nexus-e2e and instance e2e-dashboard (honor_labels)", s.Metric)
		}
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.yaml.in/yaml/v3"

	"github.com/nexusstore/nexus/e2e/collector"
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
	roundFailedSaves = 1 // saves the backend refuses (FailNext): store.ErrUnavailable
	roundWriteBehind = 1 // WriteCacheFirst saves, pushed by Sync
)

// roundOps are the operations of one round, by nexus.store.operation.
var roundOps = map[string]float64{
	"get":  roundHits + roundMisses,
	"save": roundSaves + roundFailedSaves + roundWriteBehind,
	"sync": 1,
}

// TestGrafanaProvisioning checks the Grafana files that docker-compose.yml
// mounts, as far as can be without Grafana (no Debian package; it is not
// run here): the provisioning files parse, their datasources point at the
// compose services, and the dashboard parses, refers only to provisioned
// datasources and uses only the variables the query test substitutes.
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
		if d.Type == "prometheus" {
			scrape := readPromConfig(t, prometheusConfig).ScrapeConfigs[0].ScrapeInterval
			if got := d.JSONData["timeInterval"]; got != scrape {
				t.Errorf("%s: Prometheus timeInterval %v, want the scrape interval %s ($__rate_interval derives from it)", datasourcesFile, got, scrape)
			}
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
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard: uid %q, title %q", d.UID, d.Title)
	}
	checkRef := func(what string, ref *dsRef) {
		if ref == nil {
			t.Errorf("dashboard: %s has no datasource (Grafana would use the default, not a fixed one)", what)
		} else if typ, ok := types[ref.UID]; !ok || typ != ref.Type {
			t.Errorf("dashboard: %s uses datasource %+v; provisioned: %v (uid -> type)", what, *ref, types)
		}
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Name != "store" {
		t.Fatalf("dashboard: template variables %+v, want one, store", d.Templating.List)
	}
	storeVar := d.Templating.List[0]
	checkRef("variable $store", storeVar.Datasource)
	if q, _ := storeVar.Query.(string); storeVariableQuery(t, q) == nil {
		t.Errorf("dashboard: variable $store query %v is not label_values(<metric>, nexus_store_name)", storeVar.Query)
	}

	ids := make(map[int]bool)
	var boxes []dashboardPanel
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: duplicate panel id %d", p.ID)
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
			if !strings.Contains(tg.Expr, `nexus_store_name="$store"`) {
				t.Errorf("dashboard: panel %q query %s does not select the $store: %s", p.Title, tg.RefID, tg.Expr)
			}
			expandExpr(t, tg.Expr, dashboardStore) // fails t on an unknown variable
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

// storeVariableQuery returns the metric and label of a
// label_values(metric, label) query for nexus_store_name, or nil.
func storeVariableQuery(t *testing.T, q string) []string {
	t.Helper()
	m := regexp.MustCompile(`^label_values\(\s*(\w+)\s*,\s*(nexus_store_name)\s*\)$`).FindStringSubmatch(q)
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
//	  <- the dashboard's PromQL ($store, $__rate_interval substituted)
//
// The workload runs twice the same round (saves, hits, misses, a failed
// save, a write-behind save and Sync) at sampling 1, each round exported in
// one flush and awaited in Prometheus, so that every counter has grown
// between two scrapes: every rate is positive, and the test can assert exact
// values (hit ratio, operation mix, gauges) where PromQL's extrapolation
// would otherwise blur them.
func TestGrafanaQueriesAgainstPrometheus(t *testing.T) {
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

	promAddr := collector.FreeAddr(t)
	collector.StartPrometheus(t, config, promAddr)
	api := &promAPI{t: t, base: "http://" + promAddr}
	shipped := readPromConfig(t, prometheusConfig).ScrapeConfigs[0]
	api.waitTargetUp(shipped.JobName, "http://"+promExporter+shipped.MetricsPath)
	t.Logf("Collector and Prometheus up, target scraped, after %v", time.Since(start).Round(time.Millisecond))

	// The SDK pipeline otelsetup.WithOTLP builds (OTLP gRPC exporter,
	// periodic reader), by hand, to flush each round in one export.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(grpcAddr), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "nexus-e2e"),
			attribute.String("service.instance.id", "e2e-dashboard"),
		)),
	)
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
		evalAt = api.waitTotals(round)
		t.Logf("round %d in Prometheus after %v", round, time.Since(start).Round(time.Millisecond))
	}

	// The $store variable lists the store.
	d := readDashboard(t)
	if v := storeVariableQuery(t, d.Templating.List[0].Query.(string)); v != nil {
		if names := api.labelValues(v[1], v[0]); !slices.Contains(names, dashboardStore) {
			t.Errorf("variable $store (%s): values %v, want %q among them", d.Templating.List[0].Query, names, dashboardStore)
		}
	}

	// Every query of the dashboard answers, with samples and finite values.
	results := make(map[string][]promSample) // "panel title/refId" -> result
	queries := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := expandExpr(t, tg.Expr, dashboardStore)
			res, err := api.query(expr, evalAt)
			queries++
			key := p.Title + "/" + tg.RefID
			switch {
			case err != nil:
				t.Errorf("panel %q query %s: %v\n%s", p.Title, tg.RefID, err, expr)
			case len(res) == 0:
				t.Errorf("panel %q query %s: empty result\n%s", p.Title, tg.RefID, expr)
			default:
				for _, s := range res {
					if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
						t.Errorf("panel %q query %s: %v = %v\n%s", p.Title, tg.RefID, s.Metric, s.Value, expr)
					}
				}
				results[key] = res
				t.Logf("%s: %s", key, formatSamples(res))
			}
		}
	}
	t.Logf("%d dashboard queries answered, at %v after the start", queries, time.Since(start).Round(time.Millisecond))

	checkDashboardValues(t, api, d, results, evalAt)
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
	if err := users.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// checkDashboardValues asserts exact values of the dashboard's queries
// after the two rounds, and exact counts straight from Prometheus.
func checkDashboardValues(t *testing.T, api *promAPI, d dashboard, results map[string][]promSample, at time.Time) {
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

	// hits / (hits + misses), exactly.
	one("Cache hit ratio/A", float64(roundHits)/float64(roundHits+roundMisses))
	// The gauges after the second round: the saved and write-behind items
	// of both rounds are cached (the failed saves were rolled back, misses
	// cache nothing); Sync left nothing pending; sampling is off.
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
	// Where the sample-rate gauge is missing, the raw rate.
	for _, p := range d.Panels {
		if p.Title != "Operations per second" {
			continue
		}
		expr := strings.Replace(expandExpr(t, p.Targets[0].Expr, dashboardStore),
			"nexus_store_sample_rate_ratio{", `nexus_store_sample_rate_ratio{nexus_absent="x", `, 1)
		res, err := api.query(expr, at)
		if err != nil || len(res) != len(ops) {
			t.Errorf("Operations per second without the sample-rate gauge: %s, %v; want %v", formatSamples(res), err, ops)
		}
		for _, s := range res {
			if !near(s.Value, ops[s.Metric["nexus_store_operation"]]) {
				t.Errorf("Operations per second without the sample-rate gauge: %s, want %v", formatSamples(res), ops)
			}
		}
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

	// Errors: the failed saves only, by their sentinel.
	errs := results["Errors per second/A"]
	if len(errs) != 1 || errs[0].Metric["error_type"] != "store.ErrUnavailable" || errs[0].Metric["nexus_store_operation"] != "save" || errs[0].Value <= 0 {
		t.Errorf("Errors per second: %s, want one positive series, save: store.ErrUnavailable", formatSamples(errs))
	}
	// Sync: as many completed as started.
	sync := byLabel("Sync events per second/A", "nexus_sync_event")
	if len(sync) != 2 || sync["started"] <= 0 || !near(sync["completed"], sync["started"]) {
		t.Errorf("Sync events per second: %v, want started = completed > 0", sync)
	}

	// Exact counts, straight from the stored counters.
	counts, err := api.query(fmt.Sprintf(`sum by (nexus_store_operation) (nexus_store_operation_duration_seconds_count{nexus_store_name=%q})`, dashboardStore), at)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range counts {
		if op := s.Metric["nexus_store_operation"]; s.Value != 2*roundOps[op] {
			t.Errorf("operations %s: %v in Prometheus, want %v", op, s.Value, 2*roundOps[op])
		}
	}
	if len(counts) != len(roundOps) {
		t.Errorf("operation counts %s, want %v per round, twice", formatSamples(counts), roundOps)
	}
	// honor_labels kept the application's job and instance.
	if len(counts) > 0 {
		res, err := api.query(fmt.Sprintf(`nexus_store_sample_rate_ratio{nexus_store_name=%q}`, dashboardStore), at)
		if err != nil || len(res) != 1 || res[0].Metric["job"] != "nexus-e2e" || res[0].Metric["instance"] != "e2e-dashboard" {
			t.Errorf("series labels %s (%v), want job nexus-e2e and instance e2e-dashboard (honor_labels)", formatSamples(res), err)
		}
	}
}

// testPromConfig writes the shipped Prometheus config with its one target
// replaced by target, and returns its path: the same job, interval, path
// and labels as in docker-compose.
func testPromConfig(t *testing.T, target string) string {
	t.Helper()
	data, err := os.ReadFile(prometheusConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", prometheusConfig, err)
	}
	scrapes, _ := doc["scrape_configs"].([]any)
	if len(scrapes) != 1 {
		t.Fatalf("%s: %d scrape configs, want 1", prometheusConfig, len(scrapes))
	}
	statics, _ := scrapes[0].(map[string]any)["static_configs"].([]any)
	if len(statics) != 1 {
		t.Fatalf("%s: %d static configs, want 1", prometheusConfig, len(statics))
	}
	statics[0].(map[string]any)["targets"] = []string{target}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// promAPI queries a Prometheus server's HTTP API.
type promAPI struct {
	t    *testing.T
	base string
}

type promSample struct {
	Metric map[string]string
	Value  float64
}

func formatSamples(res []promSample) string {
	var parts []string
	for _, s := range res {
		parts = append(parts, fmt.Sprintf("%v %v", s.Metric, s.Value))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// get GETs path?params and decodes the API's envelope into data.
func (a *promAPI) get(path string, params url.Values, data any) error {
	// No keep-alive: an idle connection's goroutines would outlive the test.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(a.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Warnings  []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %s: %w\n%s", path, resp.Status, err, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s: %s", path, resp.Status, env.ErrorType, env.Error)
	}
	if len(env.Warnings) > 0 {
		return fmt.Errorf("%s: warnings: %v", path, env.Warnings)
	}
	return json.Unmarshal(env.Data, data)
}

// query runs an instant query at time at and returns its vector.
func (a *promAPI) query(expr string, at time.Time) ([]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	params := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := a.get("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", data.ResultType)
	}
	var out []promSample
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", r.Value, err)
		}
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// labelValues returns the values of label on the series of metric, as
// Grafana's label_values(metric, label) asks for them.
func (a *promAPI) labelValues(label, metric string) []string {
	a.t.Helper()
	var values []string
	if err := a.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {metric}}, &values); err != nil {
		a.t.Errorf("label values: %v", err)
	}
	return values
}

// promTarget is a scrape target in /api/v1/targets.
type promTarget struct {
	ScrapePool string `json:"scrapePool"`
	ScrapeURL  string `json:"scrapeUrl"`
	Health     string `json:"health"`
	LastError  string `json:"lastError"`
}

// waitTargetUp waits until Prometheus has scraped scrapeURL, in job,
// successfully.
func (a *promAPI) waitTargetUp(job, scrapeURL string) {
	a.t.Helper()
	var last string
	a.waitFor("the target "+scrapeURL+" to be up", func() bool {
		var data struct {
			ActiveTargets []promTarget `json:"activeTargets"`
		}
		if err := a.get("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", data.ActiveTargets)
		return slices.ContainsFunc(data.ActiveTargets, func(tg promTarget) bool {
			return tg.ScrapePool == job && tg.ScrapeURL == scrapeURL && tg.Health == "up"
		})
	}, func() string { return last })
}

// waitTotals waits until Prometheus has scraped the totals of round rounds
// of the dashboard workload, and returns when it saw them.
func (a *promAPI) waitTotals(rounds int) time.Time {
	a.t.Helper()
	n := float64(rounds)
	sum := func(metric string) string { return fmt.Sprintf("sum(%s{nexus_store_name=%q})", metric, dashboardStore) }
	want := map[string]float64{
		sum("nexus_store_operation_duration_seconds_count"): n * (roundOps["get"] + roundOps["save"] + roundOps["sync"]),
		// A failed save writes the cache before its rollback.
		sum("nexus_store_cache_events_total"): n * (roundHits + roundMisses + roundSaves + roundFailedSaves + roundWriteBehind),
		sum("nexus_store_errors_total"):       n * roundFailedSaves,
		sum("nexus_store_sync_events_total"):  n * 2, // started, completed
		sum("nexus_store_cache_entries"):      n * (roundSaves + roundWriteBehind),
		// The other gauges are there too.
		sum("nexus_store_sample_rate_ratio"): 1,
		sum("nexus_store_pending_changes"):   0,
	}
	var last []string
	var at time.Time
	a.waitFor(fmt.Sprintf("round %d's totals", rounds), func() bool {
		at = time.Now()
		last = last[:0]
		for q, w := range want {
			res, err := a.query(q, at)
			if err != nil || len(res) != 1 || res[0].Value != w {
				last = append(last, fmt.Sprintf("%s = %s (%v), want %v", q, formatSamples(res), err, w))
			}
		}
		return len(last) == 0
	}, func() string { return strings.Join(last, "\n  ") })
	return at
}

// waitFor polls ok every 200ms for 30s (six scrape intervals), then fails
// the test with what state says.
func (a *promAPI) waitFor(what string, ok func() bool, state func() string) {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			a.t.Fatalf("Prometheus: no %s after 30s:\n  %s", what, state())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

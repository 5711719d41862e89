package e2e

import (
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeImages are the images docker-compose.yml must use, by service:
// the repository, and a pattern its tag must match (pinned releases only).
var composeImages = map[string]struct {
	repo string
	tag  *regexp.Regexp
}{
	"otel-collector": {"otel/opentelemetry-collector-contrib", regexp.MustCompile(`^\d+\.\d+\.\d+$`)},
	"prometheus":     {"prom/prometheus", regexp.MustCompile(`^v3\.\d+\.\d+$`)},
	"jaeger":         {"jaegertracing/jaeger", regexp.MustCompile(`^2\.\d+\.\d+$`)},
	"grafana":        {"grafana/grafana", regexp.MustCompile(`^\d+\.\d+\.\d+$`)},
	"postgres":       {"postgres", regexp.MustCompile(`^15\.\d+$`)}, // the major version the tests run
}

// loadCompose loads and validates docker-compose.yml as docker compose
// would (compose-go, the Compose specification's reference loader, with its
// schema validation and consistency checks), without the test's
// environment: the file must not depend on the user's.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(repoRoot),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose-go: %s: %v", composeFile, err)
	}
	return project
}

// bindMounts returns a service's bind mounts: repository path of the
// source (slash form) -> target in the container.
func bindMounts(t *testing.T, svc types.ServiceConfig) map[string]string {
	t.Helper()
	mounts := make(map[string]string)
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel := repoPath(t, v.Source)
		if rel == "" {
			t.Errorf("service %s: bind mount %s is outside the repository", svc.Name, v.Source)
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("service %s: bind mount source %s: %v", svc.Name, rel, err)
		}
		if !v.ReadOnly {
			t.Errorf("service %s: bind mount %s is writable; the stack only reads the repository's files", svc.Name, rel)
		}
		mounts[rel] = v.Target
	}
	return mounts
}

// publishedPorts returns a service's published ports: container port ->
// host port. Each must bind the host's loopback only.
func publishedPorts(t *testing.T, svc types.ServiceConfig) map[string]string {
	t.Helper()
	ports := make(map[string]string)
	for _, p := range svc.Ports {
		target := strconv.FormatUint(uint64(p.Target), 10)
		ports[target] = p.Published
		if p.HostIP != "127.0.0.1" {
			t.Errorf("service %s: port %s is published on %q, want 127.0.0.1 (no authentication on these services)", svc.Name, target, p.HostIP)
		}
	}
	return ports
}

// TestDockerComposeFile checks docker-compose.yml without running it (no
// container runtime here): that it loads and validates, and that it agrees
// with the files it mounts and with the tested Collector.
func TestDockerComposeFile(t *testing.T) {
	project := loadCompose(t)

	var names []string
	for name := range project.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"grafana", "jaeger", "otel-collector", "postgres", "prometheus"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	// Pinned images; the Collector at the release e2e tests build.
	builder, err := os.ReadFile("collector/builder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	release := regexp.MustCompile(`otlpreceiver (v\d+\.\d+\.\d+)`).FindSubmatch(builder)
	if release == nil {
		t.Fatal("collector/builder.yaml: no otlpreceiver release")
	}
	for name, want := range composeImages {
		image := project.Services[name].Image
		repo, tag, ok := strings.Cut(image, ":")
		if !ok || repo != want.repo || tag == "latest" || !want.tag.MatchString(tag) {
			t.Errorf("service %s: image %q, want %s:<tag matching %s> (a pinned release, never latest)", name, image, want.repo, want.tag)
		}
		if name == "otel-collector" && "v"+tag != string(release[1]) {
			t.Errorf("service otel-collector: image %q, but the tests build and run the Collector at %s (collector/builder.yaml)", image, release[1])
		}
	}

	collector := project.Services["otel-collector"]
	readsEnv := collectorEnv(t)

	// The Collector runs the repository's otel-collector.yaml.
	mounts := bindMounts(t, collector)
	configTarget, ok := mounts["otel-collector.yaml"]
	if !ok {
		t.Errorf("service otel-collector does not mount otel-collector.yaml (mounts %v)", mounts)
	}
	if !slices.Contains(collector.Command, "--config="+configTarget) {
		t.Errorf("service otel-collector: command %q does not name the mounted config %s", collector.Command, configTarget)
	}

	// Its NEXUS_* variables are exactly those otel-collector.yaml reads.
	setEnv := make(map[string]string)
	for k, v := range collector.Environment {
		if strings.HasPrefix(k, "NEXUS_") && v != nil {
			setEnv[k] = *v
		}
	}
	for k := range setEnv {
		if _, ok := readsEnv[k]; !ok {
			t.Errorf("service otel-collector sets %s, which %s does not read", k, collectorConfig)
		}
	}
	for k := range readsEnv {
		if _, ok := setEnv[k]; !ok {
			t.Errorf("%s reads %s, which service otel-collector does not set", collectorConfig, k)
		}
	}

	// OTLP published for a program on the host; the prometheus exporter
	// exposed to Prometheus only; traces to Jaeger's OTLP port.
	ports := publishedPorts(t, collector)
	for _, v := range []string{"NEXUS_OTLP_GRPC", "NEXUS_OTLP_HTTP"} {
		if addr, ok := setEnv[v]; ok {
			if p := port(t, addr); ports[p] != p {
				t.Errorf("service otel-collector listens on %s (%s) but publishes %v (container -> host)", addr, v, ports)
			}
		}
	}
	promPort := port(t, readsEnv["NEXUS_PROM_ENDPOINT"]) // otel-collector.yaml's default
	if addr := setEnv["NEXUS_PROM_ENDPOINT"]; port(t, addr) != promPort {
		t.Errorf("service otel-collector: NEXUS_PROM_ENDPOINT=%s, but otel-collector.yaml's default port is %s", addr, promPort)
	}
	if !slices.Contains(collector.Expose, promPort) {
		t.Errorf("service otel-collector exposes %v, want the prometheus exporter's port %s", collector.Expose, promPort)
	}
	if _, ok := ports[promPort]; ok {
		t.Errorf("service otel-collector publishes the prometheus exporter's port %s; only Prometheus reads it", promPort)
	}
	if jaeger := setEnv["NEXUS_JAEGER_OTLP"]; jaeger != "jaeger:4317" {
		t.Errorf("service otel-collector: NEXUS_JAEGER_OTLP=%q, want jaeger:4317 (the jaeger service's OTLP gRPC port)", jaeger)
	}
	if _, ok := collector.DependsOn["jaeger"]; !ok {
		t.Errorf("service otel-collector does not depend on jaeger")
	}

	// Prometheus runs deploy/prometheus/prometheus.yml (at the image's
	// default config path), which scrapes the Collector's exporter.
	prom := project.Services["prometheus"]
	mounts = bindMounts(t, prom)
	if target := mounts["deploy/prometheus/prometheus.yml"]; target != "/etc/prometheus/prometheus.yml" {
		t.Errorf("service prometheus mounts deploy/prometheus/prometheus.yml at %q, want the image's default config /etc/prometheus/prometheus.yml (mounts %v)", target, mounts)
	}
	cfg := readPromConfig(t, prometheusConfig)
	if len(cfg.ScrapeConfigs) != 1 || len(cfg.ScrapeConfigs[0].StaticConfigs) != 1 {
		t.Fatalf("%s: want one scrape config with one static config, got %+v", prometheusConfig, cfg.ScrapeConfigs)
	}
	if targets := cfg.ScrapeConfigs[0].StaticConfigs[0].Targets; !slices.Equal(targets, []string{net.JoinHostPort("otel-collector", promPort)}) {
		t.Errorf("%s scrapes %v, want [otel-collector:%s] (the Collector's prometheus exporter)", prometheusConfig, targets, promPort)
	}
	// Its command replaces the image's: the same config and storage paths,
	// plus exemplar storage (the dashboard's latency points link to their
	// traces) and native histograms (the dashboard reads either kind). The
	// tests' Prometheus runs with the same --enable-feature flags.
	for _, arg := range []string{
		"--config.file=/etc/prometheus/prometheus.yml",
		"--storage.tsdb.path=/prometheus",
		"--enable-feature=exemplar-storage",
		"--enable-feature=native-histograms",
	} {
		if !slices.Contains(prom.Command, arg) {
			t.Errorf("service prometheus: command %q lacks %s", prom.Command, arg)
		}
	}
	if ports := publishedPorts(t, prom); ports["9090"] != "9090" {
		t.Errorf("service prometheus publishes %v, want 9090", ports)
	}

	// Jaeger: its UI published, its OTLP port inside the network only.
	if ports := publishedPorts(t, project.Services["jaeger"]); ports["16686"] != "16686" || len(ports) != 1 {
		t.Errorf("service jaeger publishes %v, want the UI's 16686 only", ports)
	}

	// Grafana: provisioning and dashboards from deploy/grafana; anonymous
	// viewers; the nexus dashboard as the home page.
	grafana := project.Services["grafana"]
	mounts = bindMounts(t, grafana)
	if target := mounts["deploy/grafana/provisioning"]; target != "/etc/grafana/provisioning" {
		t.Errorf("service grafana mounts deploy/grafana/provisioning at %q, want /etc/grafana/provisioning", target)
	}
	var providers grafanaProviders
	readYAML(t, dashboardProviders, &providers)
	dashTarget := mounts["deploy/grafana/dashboards"]
	if len(providers.Providers) != 1 || providers.Providers[0].Options.Path != dashTarget {
		t.Errorf("service grafana mounts deploy/grafana/dashboards at %q, but %s loads dashboards from %+v", dashTarget, dashboardProviders, providers.Providers)
	}
	env := func(k string) string {
		if v := grafana.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if env("GF_AUTH_ANONYMOUS_ENABLED") != "true" || env("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer" {
		t.Errorf("service grafana: anonymous access not enabled as Viewer")
	}
	if env("GF_SECURITY_ADMIN_USER") != "admin" || env("GF_SECURITY_ADMIN_PASSWORD") != "admin" {
		t.Errorf("service grafana: admin/admin (documented in the header) not set")
	}
	if home := env("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != path.Join(dashTarget, filepath.Base(dashboardFile)) {
		t.Errorf("service grafana: home dashboard %q, want the mounted %s", home, path.Join(dashTarget, filepath.Base(dashboardFile)))
	}
	if ports := publishedPorts(t, grafana); ports["3000"] != "3000" {
		t.Errorf("service grafana publishes %v, want 3000", ports)
	}
	for _, dep := range []string{"prometheus", "jaeger"} {
		if _, ok := grafana.DependsOn[dep]; !ok {
			t.Errorf("service grafana does not depend on %s", dep)
		}
	}

	// PostgreSQL where nexus-demo looks for it by default
	// (postgres://nexus:nexus@localhost:5432/nexus).
	pg := project.Services["postgres"]
	if ports := publishedPorts(t, pg); ports["5432"] != "5432" || len(ports) != 1 {
		t.Errorf("service postgres publishes %v, want 5432", ports)
	}
	for k, want := range map[string]string{"POSTGRES_USER": "nexus", "POSTGRES_PASSWORD": "nexus", "POSTGRES_DB": "nexus"} {
		if v := pg.Environment[k]; v == nil || *v != want {
			t.Errorf("service postgres: %s = %v, want %s (nexus-demo's default URL)", k, v, want)
		}
	}

	checkComposeHeader(t)
}

// checkComposeHeader checks the commands in docker-compose.yml's header
// (its indented comment lines, "\" continuing a line): each that runs a
// program (nexus-demo, an example) sends to the Collector's published OTLP
// gRPC port, and the program exists, sends through otelsetup.WithOTLP and
// has cumulative temporality (which Prometheus needs): its default, or set
// in the command.
func checkComposeHeader(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	var cmd strings.Builder
	for line := range strings.Lines(string(data)) {
		if !strings.HasPrefix(line, "#") {
			break
		}
		text := strings.TrimRight(strings.TrimPrefix(line, "#"), "\n")
		if !strings.HasPrefix(text, "   ") && cmd.Len() == 0 {
			continue // prose
		}
		text, more := strings.CutSuffix(strings.TrimSpace(text), "\\")
		cmd.WriteString(text + " ")
		if !more {
			commands = append(commands, strings.TrimSpace(cmd.String()))
			cmd.Reset()
		}
	}
	runs := 0
	exampleRe := regexp.MustCompile(`go run \./examples/(\w+)`)
	demoRe := regexp.MustCompile(`go -C e2e run \./(cmd/[\w-]+)`)
	for _, c := range commands {
		env := make(map[string]string)
		for _, f := range strings.Fields(c) {
			if k, v, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "OTEL_") {
				env[k] = v
			}
		}
		var src []byte
		var name string
		if run := exampleRe.FindStringSubmatch(c); run != nil {
			name = "./examples/" + run[1]
			src, err = os.ReadFile(filepath.Join(repoRoot, "examples", run[1], "main.go"))
		} else if run := demoRe.FindStringSubmatch(c); run != nil {
			// The demo sets its own defaults (TestDemoThroughCollector runs it).
			name = "e2e/" + run[1]
			src, err = os.ReadFile(filepath.Join(run[1], "main.go"))
			if _, set := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; !set && err == nil && strings.Contains(string(src), `"http://localhost:4317"`) {
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://localhost:4317"
			}
		} else {
			continue
		}
		runs++
		if err != nil {
			t.Errorf("header runs %s: %v", name, err)
			continue
		}
		if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || u.Host != "localhost:4317" {
			t.Errorf("header: %q: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want http://localhost:4317 (the Collector's published OTLP gRPC port)", c, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
		if !strings.Contains(string(src), "otelsetup.WithOTLP()") {
			t.Errorf("header runs %s, which does not send through otelsetup.WithOTLP()", name)
		}
		temporality := env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"]
		if temporality == "" && strings.Contains(string(src), `"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"`) {
			temporality = "the program's default"
		}
		if temporality != "" && temporality != "cumulative" {
			t.Errorf("header: %q: temporality %s; Prometheus needs cumulative", c, temporality)
		}
	}
	if runs < 2 {
		t.Errorf("docker-compose.yml's header runs %d programs, want nexus-demo and an example: %q", runs, commands)
	}
}

package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The files under test, relative to the e2e module (the tests' working
// directory): the repository's docker-compose.yml and deploy/.
const (
	repoRoot           = ".."
	composeFile        = "../docker-compose.yml"
	collectorConfig    = "../otel-collector.yaml"
	prometheusConfig   = "../deploy/prometheus/prometheus.yml"
	datasourcesFile    = "../deploy/grafana/provisioning/datasources/datasources.yaml"
	dashboardProviders = "../deploy/grafana/provisioning/dashboards/dashboards.yaml"
	dashboardFile      = "../deploy/grafana/dashboards/nexus.json"
)

// promConfig is the part of a Prometheus config file the tests read.
type promConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		MetricsPath    string `yaml:"metrics_path"`
		HonorLabels    bool   `yaml:"honor_labels"`
		StaticConfigs  []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// grafanaDatasources is a Grafana datasource provisioning file.
type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		UID       string `yaml:"uid"`
		Type      string `yaml:"type"`
		Access    string `yaml:"access"`
		URL       string `yaml:"url"`
		IsDefault bool   `yaml:"isDefault"`
		JSONData  struct {
			TimeInterval                string `yaml:"timeInterval"`
			ExemplarTraceIDDestinations []struct {
				Name          string `yaml:"name"`
				DatasourceUID string `yaml:"datasourceUid"`
			} `yaml:"exemplarTraceIdDestinations"`
		} `yaml:"jsonData"`
	} `yaml:"datasources"`
}

// grafanaProviders is a Grafana dashboard provisioning file.
type grafanaProviders struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Folder  string `yaml:"folder"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// dsRef is a Grafana datasource reference.
type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboard is the part of a Grafana dashboard JSON model the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []dashboardVariable `json:"list"`
	} `json:"templating"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardVariable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Datasource *dsRef `json:"datasource"`
	Query      any    `json:"query"`
	Definition string `json:"definition"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *dsRef `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []dashboardTarget `json:"targets"`
}

type dashboardTarget struct {
	RefID        string `json:"refId"`
	Datasource   *dsRef `json:"datasource"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Exemplar     bool   `json:"exemplar"`
	Range        bool   `json:"range"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func readPromConfig(t *testing.T, path string) promConfig {
	t.Helper()
	var c promConfig
	readYAML(t, path, &c)
	return c
}

// collectorEnvRe matches the environment variables otel-collector.yaml
// reads, ${env:NAME} or ${env:NAME:-default}.
var collectorEnvRe = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// collectorEnv returns the NEXUS_* variables otel-collector.yaml reads and
// their defaults ("" when it has none).
func collectorEnv(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(collectorConfig)
	if err != nil {
		t.Fatal(err)
	}
	vars := make(map[string]string)
	for _, m := range collectorEnvRe.FindAllStringSubmatch(string(data), -1) {
		if strings.HasPrefix(m[1], "NEXUS_") {
			vars[m[1]] = m[2]
		}
	}
	if len(vars) == 0 {
		t.Fatalf("%s reads no NEXUS_* variable", collectorConfig)
	}
	return vars
}

// port returns the port of a host:port address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// dashboardVarRe matches Grafana variables in an expression: $name,
// ${name} and [[name]].
var dashboardVarRe = regexp.MustCompile(`\$\{?(\w+)\}?|\[\[(\w+)\]\]`)

// rateInterval is what the tests put for Grafana's $__rate_interval in the
// two-round workload's queries: the whole test runs within it (see
// TestGrafanaQueriesAgainstPrometheus).
const rateInterval = time.Minute

// dashVars are values for the dashboard's query variables: $job,
// $instance (a regular expression, as Grafana writes a multi-value
// selection: "a|b", or the "All" value ".*"), $store and
// $__rate_interval.
type dashVars struct {
	job, instance, store string
	rateInterval         time.Duration
}

// expandExpr substitutes the dashboard's variables as Grafana would. Any
// other variable fails t.
func expandExpr(t *testing.T, expr string, v dashVars) string {
	t.Helper()
	values := map[string]string{
		"job":             v.job,
		"instance":        v.instance,
		"store":           v.store,
		"__rate_interval": model.Duration(v.rateInterval).String(),
	}
	return dashboardVarRe.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}[]")
		val, ok := values[name]
		if !ok {
			t.Errorf("expression uses the variable %q; the tests know only $job, $instance, $store and $__rate_interval:\n%s", m, expr)
		}
		return val
	})
}

// repoPath returns path (absolute, or relative to the e2e module) relative
// to the repository root, in slash form; "" if it is outside.
func repoPath(t *testing.T, path string) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	return filepath.ToSlash(rel)
}

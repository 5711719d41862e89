package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

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

// composePrometheusFlags returns the --enable-feature flags docker-compose.yml
// starts Prometheus with, so that the tests' Prometheus runs as the
// compose stack's does.
func composePrometheusFlags(t *testing.T) []string {
	t.Helper()
	var flags []string
	for _, arg := range loadCompose(t).Services["prometheus"].Command {
		if strings.HasPrefix(arg, "--enable-feature=") {
			flags = append(flags, arg)
		}
	}
	return flags
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

// promSeries is one series of a range query's matrix.
type promSeries struct {
	Metric map[string]string
	Times  []float64 // seconds
	Values []float64
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

func promTime(at time.Time) string {
	return strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
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
	params := url.Values{"query": {expr}, "time": {promTime(at)}}
	if err := a.get("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", data.ResultType)
	}
	var out []promSample
	for _, r := range data.Result {
		v, err := parseValue(r.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, promSample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// queryRange runs a range query from start to end every step, as Grafana
// does for a time series panel, and returns its matrix.
func (a *promAPI) queryRange(expr string, start, end time.Time, step time.Duration) ([]promSeries, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {promTime(start)},
		"end":   {promTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	if err := a.get("/api/v1/query_range", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("result type %q, want matrix", data.ResultType)
	}
	var out []promSeries
	for _, r := range data.Result {
		s := promSeries{Metric: r.Metric}
		for _, p := range r.Values {
			v, err := parseValue(p)
			if err != nil {
				return nil, err
			}
			ts, _ := p[0].(float64)
			s.Times = append(s.Times, ts)
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkRange returns what is wrong with a range query's result for a
// dashboard panel: no series, no points, or a value that is not finite
// (NaN from 0/0, ±Inf), which Grafana would draw as a gap.
func checkRange(res []promSeries) error {
	if len(res) == 0 {
		return fmt.Errorf("no series")
	}
	for _, s := range res {
		if len(s.Values) == 0 {
			return fmt.Errorf("series %v: no points", s.Metric)
		}
		for i, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("series %v: %v at %s", s.Metric, v, time.UnixMilli(int64(s.Times[i]*1000)).Format(time.TimeOnly))
			}
		}
	}
	return nil
}

// formatRange summarizes a matrix: each series, its number of points and
// its last value.
func formatRange(res []promSeries) string {
	var parts []string
	for _, s := range res {
		last := math.NaN()
		if n := len(s.Values); n > 0 {
			last = s.Values[n-1]
		}
		parts = append(parts, fmt.Sprintf("%v: %d points, last %.4g", s.Metric, len(s.Values), last))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func parseValue(p [2]any) (float64, error) {
	s, _ := p[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %v: %w", p, err)
	}
	return v, nil
}

// promExemplar is an exemplar from /api/v1/query_exemplars: the labels of
// the measurement (trace_id, span_id) and its value.
type promExemplar struct {
	Series    map[string]string
	Labels    map[string]string
	Value     float64
	Timestamp float64
}

// queryExemplars returns the exemplars of the series expr selects between
// start and end, as Grafana asks for them for a panel with exemplars on.
func (a *promAPI) queryExemplars(expr string, start, end time.Time) ([]promExemplar, error) {
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	params := url.Values{"query": {expr}, "start": {promTime(start)}, "end": {promTime(end)}}
	if err := a.get("/api/v1/query_exemplars", params, &data); err != nil {
		return nil, err
	}
	var out []promExemplar
	for _, s := range data {
		for _, e := range s.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("exemplar value %q: %w", e.Value, err)
			}
			out = append(out, promExemplar{Series: s.SeriesLabels, Labels: e.Labels, Value: v, Timestamp: e.Timestamp})
		}
	}
	return out, nil
}

// labelValues returns the values of label on the series that match
// selects, as Grafana's label_values(match, label) asks for them.
func (a *promAPI) labelValues(label, match string) ([]string, error) {
	var values []string
	err := a.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {match}}, &values)
	return values, err
}

// promTarget is a scrape target in /api/v1/targets.
type promTarget struct {
	ScrapePool string    `json:"scrapePool"`
	ScrapeURL  string    `json:"scrapeUrl"`
	Health     string    `json:"health"`
	LastError  string    `json:"lastError"`
	LastScrape time.Time `json:"lastScrape"`
}

// target returns the active target of job that scrapes scrapeURL.
func (a *promAPI) target(job, scrapeURL string) (promTarget, error) {
	var data struct {
		ActiveTargets []promTarget `json:"activeTargets"`
	}
	if err := a.get("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return promTarget{}, err
	}
	i := slices.IndexFunc(data.ActiveTargets, func(tg promTarget) bool {
		return tg.ScrapePool == job && tg.ScrapeURL == scrapeURL
	})
	if i < 0 {
		return promTarget{}, fmt.Errorf("no active target %s in job %s: %+v", scrapeURL, job, data.ActiveTargets)
	}
	return data.ActiveTargets[i], nil
}

// waitTargetUp waits until Prometheus has scraped scrapeURL, in job,
// successfully.
func (a *promAPI) waitTargetUp(job, scrapeURL string) {
	a.t.Helper()
	var last string
	a.waitFor("the target "+scrapeURL+" to be up", func() bool {
		tg, err := a.target(job, scrapeURL)
		last = fmt.Sprintf("%+v (%v)", tg, err)
		return err == nil && tg.Health == "up"
	}, func() string { return last })
}

// waitScrapedAfter waits until Prometheus has scraped scrapeURL, in job,
// successfully, at or after the time at.
func (a *promAPI) waitScrapedAfter(job, scrapeURL string, at time.Time) {
	a.t.Helper()
	var last string
	a.waitFor("a scrape of "+scrapeURL+" after "+at.Format(time.TimeOnly), func() bool {
		tg, err := a.target(job, scrapeURL)
		last = fmt.Sprintf("%+v (%v)", tg, err)
		return err == nil && tg.Health == "up" && !tg.LastScrape.Before(at)
	}, func() string { return last })
}

// waitValues waits until each query (instant, now) returns exactly one
// sample with the wanted value, and returns when it saw them all.
func (a *promAPI) waitValues(what string, want map[string]float64) time.Time {
	a.t.Helper()
	var last []string
	var at time.Time
	a.waitFor(what, func() bool {
		at = time.Now()
		last = last[:0]
		for q, w := range want {
			res, err := a.query(q, at)
			if err != nil || len(res) != 1 || res[0].Value != w {
				last = append(last, fmt.Sprintf("%s = %s (%v), want %v", q, formatSamples(res), err, w))
			}
		}
		slices.Sort(last)
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

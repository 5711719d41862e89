package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoBinary builds cmd/nexus-demo into a temporary directory of the test
// and returns its path.
func demoBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nexus-demo")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/nexus-demo").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nexus-demo: %v\n%s", err, out)
	}
	return bin
}

// demo is a running nexus-demo process.
type demo struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

// startDemo runs the nexus-demo at bin with args, sending to the Collector's
// OTLP gRPC address grpcAddr as service nexus-demo, instance instance,
// exporting metrics every second; env adds to (or overrides) that
// environment. The process is killed at the end of the test if it still
// runs.
func startDemo(t *testing.T, bin, grpcAddr, instance string, env []string, args ...string) *demo {
	t.Helper()
	d := &demo{name: instance, cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	// The demo's own defaults, but for the endpoint, the instance (until
	// otelsetup sets service.instance.id by itself, replicas need it in the
	// environment) and a faster metric export (gauges are exported only
	// while the store is open).
	d.cmd.Env = append(environWithoutOTel(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+grpcAddr,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id="+instance,
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
	)
	d.cmd.Env = append(d.cmd.Env, env...)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("nexus-demo %s: %v", instance, err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// demoResult is what nexus-demo printed when it finished.
type demoResult struct {
	requests, failed int
	// operations are the store's own operation counts (Stats), by
	// nexus.store.operation.
	operations map[string]float64
	// maxLatency is the slowest store call of each kind, timed by the demo.
	maxLatency map[string]time.Duration
}

// total is the number of operations of every kind.
func (r demoResult) total() float64 {
	var n float64
	for _, c := range r.operations {
		n += c
	}
	return n
}

// wait waits for the demo to exit (within timeout), fails t if it failed,
// and returns what it printed.
func (d *demo) wait(t *testing.T, timeout time.Duration) demoResult {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("nexus-demo %s: %v\nstdout:\n%s\nstderr:\n%s", d.name, err, &d.stdout, &d.stderr)
		}
	case <-time.After(timeout):
		t.Fatalf("nexus-demo %s still running after %v\nstdout:\n%s\nstderr:\n%s", d.name, timeout, &d.stdout, &d.stderr)
	}
	out := d.stdout.String()
	t.Logf("nexus-demo %s:\n%s%s", d.name, out, &d.stderr)
	var r demoResult
	m := regexp.MustCompile(`(\d+) requests, (\d+) failed`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("nexus-demo %s printed no request count:\n%s", d.name, out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	r.failed, _ = strconv.Atoi(m[2])
	r.operations = make(map[string]float64)
	for op, n := range demoLine(t, out, "operations") {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			t.Fatalf("nexus-demo %s: operations %s=%s: %v", d.name, op, n, err)
		}
		r.operations[op] = v
	}
	r.maxLatency = make(map[string]time.Duration)
	for op, s := range demoLine(t, out, "max latency") {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("nexus-demo %s: max latency %s=%s: %v", d.name, op, s, err)
		}
		r.maxLatency[op] = v
	}
	return r
}

// demoLine parses the line "nexus-demo: <what> k=v k=v ..." of the demo's
// output.
func demoLine(t *testing.T, out, what string) map[string]string {
	t.Helper()
	prefix := "nexus-demo: " + what + " "
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			kv := make(map[string]string)
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				kv[k] = v
			}
			return kv
		}
	}
	t.Fatalf("nexus-demo printed no %q line:\n%s", what, out)
	return nil
}

// checkMaxLatency fails t if a store call of the demo took longer than
// bound: telemetry must never hold the store up, whatever happens to the
// Collector or Jaeger.
func checkMaxLatency(t *testing.T, r demoResult, bound time.Duration) {
	t.Helper()
	if len(r.maxLatency) == 0 {
		t.Errorf("nexus-demo timed no store call")
	}
	for op, d := range r.maxLatency {
		if d > bound {
			t.Errorf("nexus-demo: the slowest %s took %v, more than %v", op, d, bound)
		}
	}
}

// environWithoutOTel is the test's environment less its OTEL_* variables.
func environWithoutOTel() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// promCounts returns sum by (labels) of the demo store's operation counts
// in Prometheus at time at, keyed by the labels' values joined with " ".
func promCounts(t *testing.T, api *promAPI, at time.Time, labels ...string) map[string]float64 {
	t.Helper()
	by := strings.Join(labels, ", ")
	res, err := api.query(fmt.Sprintf(`sum by (%s) (nexus_store_operation_duration_seconds_count{job="nexus-demo", nexus_store_name="demo"})`, by), at)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, s := range res {
		var key []string
		for _, l := range labels {
			key = append(key, s.Metric[l])
		}
		out[strings.Join(key, " ")] = s.Value
	}
	return out
}

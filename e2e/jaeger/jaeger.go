package jaeger

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nexusstore/nexus/e2e/collector"
)

// readyTimeout bounds the wait for Jaeger's health check after its
// listeners accept connections (opening Badger, starting the pipeline).
const readyTimeout = 30 * time.Second

// Jaeger is a running Jaeger v2. Its addresses stay the same across
// Restart.
type Jaeger struct {
	// OTLPGRPC and OTLPHTTP receive OTLP (host:port): point a Collector's
	// otlp_grpc exporter, or an SDK, at OTLPGRPC.
	OTLPGRPC, OTLPHTTP string
	// QueryHTTP serves the query API (/api/traces/...), QueryGRPC its gRPC
	// form, Health the health check (/status).
	QueryHTTP, QueryGRPC, Health string

	t    testing.TB
	proc *collector.Process
}

// Start runs Jaeger (Binary) with config.yaml, every listener on a free
// loopback port and its storage in a temporary directory of the test, and
// returns once its health check reports it ready. It is stopped when the
// test ends; its output is logged if the test failed.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	j := &Jaeger{
		OTLPGRPC:  collector.FreeAddr(t),
		OTLPHTTP:  collector.FreeAddr(t),
		QueryHTTP: collector.FreeAddr(t),
		QueryGRPC: collector.FreeAddr(t),
		Health:    collector.FreeAddr(t),
		t:         t,
	}
	root, err := collector.ModuleRoot()
	if err != nil {
		t.Fatalf("jaeger: %v", err)
	}
	env := []string{
		"NEXUS_JAEGER_OTLP_GRPC=" + j.OTLPGRPC,
		"NEXUS_JAEGER_OTLP_HTTP=" + j.OTLPHTTP,
		"NEXUS_JAEGER_QUERY_HTTP=" + j.QueryHTTP,
		"NEXUS_JAEGER_QUERY_GRPC=" + j.QueryGRPC,
		"NEXUS_JAEGER_HEALTH=" + j.Health,
		"NEXUS_JAEGER_DATA=" + t.TempDir(),
	}
	j.proc = collector.StartProcess(t, "jaeger", Binary(t),
		[]string{"--config", filepath.Join(root, "jaeger", "config.yaml")}, env,
		j.OTLPGRPC, j.OTLPHTTP, j.QueryHTTP, j.QueryGRPC, j.Health)
	j.waitHealthy()
	return j
}

// Stop stops Jaeger (SIGTERM; Badger is closed cleanly) and waits for it to
// exit. It is idempotent until StartAgain.
func (j *Jaeger) Stop() {
	j.t.Helper()
	j.proc.Stop()
}

// Restart stops Jaeger and starts it again on the same addresses and
// storage, returning once it is ready.
func (j *Jaeger) Restart() {
	j.t.Helper()
	j.Stop()
	j.StartAgain()
}

// StartAgain starts a stopped Jaeger again on the same addresses and
// storage, returning once it is ready: between Stop and StartAgain it is
// away, as in an outage.
func (j *Jaeger) StartAgain() {
	j.t.Helper()
	j.proc = j.proc.StartAgain()
	j.waitHealthy()
}

// Output returns what the running process has written so far.
func (j *Jaeger) Output() string { return j.proc.Output() }

// waitHealthy polls the health check until it answers 200.
func (j *Jaeger) waitHealthy() {
	j.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := j.healthy()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			j.t.Fatalf("jaeger: not healthy after %v: %v", readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (j *Jaeger) healthy() error {
	resp, err := client.Get("http://" + j.Health + "/status")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /status: %s", resp.Status)
	}
	return nil
}

// client makes the harness's requests. No keep-alive: an idle connection's
// goroutines would outlive the test (goleak).
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

package collector

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// promInstall is the outcome of the first PrometheusBinary call in this
// test binary.
var promInstall struct {
	once                 sync.Once
	prometheus, promtool string
	err                  error
}

// PrometheusBinary returns the path of the prometheus server on PATH,
// installing Debian's prometheus package first (through build-tools.sh, as
// root) if there is none. It fails t if Prometheus cannot be had, whatever
// the environment: the tests that need it exist to run the real thing.
func PrometheusBinary(t testing.TB) string {
	t.Helper()
	ensurePrometheus(t)
	return promInstall.prometheus
}

// Promtool returns the path of promtool, which Debian's prometheus package
// installs beside prometheus (see PrometheusBinary).
func Promtool(t testing.TB) string {
	t.Helper()
	ensurePrometheus(t)
	return promInstall.promtool
}

func ensurePrometheus(t testing.TB) {
	t.Helper()
	promInstall.once.Do(func() {
		promInstall.prometheus, promInstall.promtool, promInstall.err = installPrometheus()
	})
	if promInstall.err != nil {
		t.Fatalf("prometheus: %v", promInstall.err)
	}
}

func installPrometheus() (prometheus, promtool string, err error) {
	prometheus, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 == nil && err2 == nil {
		return prometheus, promtool, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", "", err
	}
	// One implementation of the install and its lock: the script's.
	cmd := exec.Command("bash", filepath.Join(root, "build-tools.sh"), "prometheus")
	cmd.Stderr = os.Stderr // apt-get's progress, or why it cannot run
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("build-tools.sh could not provide prometheus (its output is above): %w", err)
	}
	got := strings.TrimSpace(string(out))
	if prometheus, err = exec.LookPath("prometheus"); err != nil {
		return "", "", fmt.Errorf("build-tools.sh printed %q but prometheus is not on PATH: %w", got, err)
	}
	if got != prometheus {
		return "", "", fmt.Errorf("build-tools.sh printed %q, but prometheus on PATH is %q", got, prometheus)
	}
	if promtool, err = exec.LookPath("promtool"); err != nil {
		return "", "", fmt.Errorf("build-tools.sh installed prometheus but promtool is not on PATH: %w", err)
	}
	return prometheus, promtool, nil
}

// StartPrometheus runs prometheus (PrometheusBinary) with the config file
// config, its TSDB in a temporary directory of the test, its web listener,
// which serves the HTTP API, on listen (a loopback address from FreeAddr)
// and the extra command-line flags (such as
// --enable-feature=exemplar-storage). It returns once Prometheus reports
// itself ready (/-/ready), and stops it at the end of the test, as
// StartProcess does.
func StartPrometheus(t testing.TB, config, listen string, flags ...string) *Process {
	t.Helper()
	args := append([]string{
		"--config.file=" + config,
		"--storage.tsdb.path=" + t.TempDir(),
		"--web.listen-address=" + listen,
	}, flags...)
	p := StartProcess(t, "prometheus", PrometheusBinary(t), args, nil, listen)
	// No keep-alive: an idle connection's goroutines would outlive the test.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get("http://" + listen + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		select {
		case <-p.done:
			t.Fatalf("prometheus: exited before it was ready: %v", p.err)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: not ready after %v: %v", readyTimeout, err)
		}
	}
}

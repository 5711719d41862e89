package collector

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBuildToolsPrometheus checks that build-tools.sh provides Prometheus
// (installing Debian's package if need be) and prints the path of the
// prometheus on PATH, with promtool beside it.
func TestBuildToolsPrometheus(t *testing.T) {
	out, err := exec.Command("bash", "../build-tools.sh", "prometheus").Output()
	if err != nil {
		t.Fatalf("build-tools.sh prometheus: %v", err)
	}
	want, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not on PATH after build-tools.sh: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("build-tools.sh prometheus printed %q, want %q", got, want)
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Errorf("promtool not on PATH after build-tools.sh: %v", err)
	}
	if got := PrometheusBinary(t); got != want {
		t.Errorf("PrometheusBinary = %q, want %q", got, want)
	}
}

package collector

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildToolsCachePath checks that build-tools.sh and CachePath agree on
// where the Collector of builder.yaml is cached: the script finds a binary
// placed at CachePath and prints its path without building anything.
func TestBuildToolsCachePath(t *testing.T) {
	t.Setenv("NEXUS_TOOLS_DIR", t.TempDir())
	want, err := CachePath("builder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "../build-tools.sh", "collector").Output()
	if err != nil {
		t.Fatalf("build-tools.sh: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("build-tools.sh printed %q, want CachePath's %q", got, want)
	}
}

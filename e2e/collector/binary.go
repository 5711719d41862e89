package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// build is the outcome of the first Binary call in this test binary.
var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the Collector built from builder.yaml, building
// it first (through build-tools.sh) if the cache does not have it. It fails
// t if the build fails, whatever the environment: the end-to-end tests exist
// to run the real Collector.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("collector: %v", build.err)
	}
	return build.path
}

func buildBinary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	want, err := CachePath(filepath.Join(root, "collector", "builder.yaml"))
	if err != nil {
		return "", err
	}
	if isExecutable(want) {
		return want, nil
	}
	// One implementation of the build, lock and rename: the script's.
	cmd := exec.Command("bash", filepath.Join(root, "build-tools.sh"), "collector")
	cmd.Stderr = os.Stderr // the build's progress, live: the first one takes minutes
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-tools.sh failed to build the Collector (its output is above): %w", err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		return "", fmt.Errorf("build-tools.sh built %q, but the cache path of builder.yaml is %q", got, want)
	}
	if !isExecutable(want) {
		return "", fmt.Errorf("build-tools.sh succeeded but %s is not an executable", want)
	}
	return want, nil
}

// CachePath returns where the Collector built from the manifest at path is
// cached: $NEXUS_TOOLS_DIR (default $HOME/.cache/nexus-tools), then
// otelcol-<first 12 hex digits of the manifest's SHA-256>/otelcol, as
// build-tools.sh computes it.
func CachePath(manifest string) (string, error) {
	f, err := os.Open(manifest)
	if err != nil {
		return "", fmt.Errorf("collector: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("collector: reading %s: %w", manifest, err)
	}
	tools := os.Getenv("NEXUS_TOOLS_DIR")
	if tools == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("collector: no NEXUS_TOOLS_DIR and no home directory: %w", err)
		}
		tools = filepath.Join(home, ".cache", "nexus-tools")
	}
	return filepath.Join(tools, "otelcol-"+hex.EncodeToString(h.Sum(nil))[:12], "otelcol"), nil
}

// moduleRoot finds the e2e module's directory (the one holding
// build-tools.sh) from the working directory, which go test sets to the
// package's directory inside it.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("collector: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "build-tools.sh")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("collector: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("collector: build-tools.sh not found above the working directory: run the tests inside the e2e module")
		}
		dir = parent
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

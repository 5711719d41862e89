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
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	want, err := CachePath(filepath.Join(root, "collector", "builder.yaml"))
	if err != nil {
		return "", err
	}
	return BuildTool("collector", want)
}

// BuildTool returns want, the cache path of one of the tools that
// build-tools.sh builds ("collector", "jaeger"), after running
// "build-tools.sh tool" if want is not an executable yet. The script is the
// one implementation of the build, its lock and its rename into place; its
// progress goes to stderr, live (a first build takes minutes). It is an
// error if the script fails or prints another path.
func BuildTool(tool, want string) (string, error) {
	if isExecutable(want) {
		return want, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "build-tools.sh"), tool)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build-tools.sh failed to build %s (its output is above): %w", tool, err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		return "", fmt.Errorf("build-tools.sh built %q, but the cache path of %s is %q", got, tool, want)
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
	return ToolPath("otelcol", manifest)
}

// ToolPath returns where build-tools.sh caches the tool name built from the
// given files: ToolsDir, then <name>-<first 12 hex digits of the SHA-256 of
// the files' contents, concatenated in order>/<name>. Editing one of the
// files means a new build; unchanged files find the cached one.
func ToolPath(name string, files ...string) (string, error) {
	h := sha256.New()
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("collector: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("collector: reading %s: %w", file, err)
		}
	}
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(tools, name+"-"+hex.EncodeToString(h.Sum(nil))[:12], name), nil
}

// ToolsDir returns the directory where build-tools.sh caches the tools it
// builds: $NEXUS_TOOLS_DIR, default $HOME/.cache/nexus-tools.
func ToolsDir() (string, error) {
	if tools := os.Getenv("NEXUS_TOOLS_DIR"); tools != "" {
		return tools, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("collector: no NEXUS_TOOLS_DIR and no home directory: %w", err)
	}
	return filepath.Join(home, ".cache", "nexus-tools"), nil
}

// ModuleRoot finds the e2e module's directory (the one holding
// build-tools.sh) from the working directory, which go test sets to the
// package's directory inside it.
func ModuleRoot() (string, error) {
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

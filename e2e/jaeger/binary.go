package jaeger

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/e2e/collector"
)

// build is the outcome of the first Binary call in this test binary.
var build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of Jaeger built from the tools module, building
// it first (through build-tools.sh) if the cache does not have it. It fails
// t if the build fails, whatever the environment.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		var root, want string
		if root, build.err = collector.ModuleRoot(); build.err != nil {
			return
		}
		if want, build.err = CachePath(filepath.Join(root, "jaeger", "tools")); build.err != nil {
			return
		}
		build.path, build.err = collector.BuildTool("jaeger", want)
	})
	if build.err != nil {
		t.Fatalf("jaeger: %v", build.err)
	}
	return build.path
}

// CachePath returns where Jaeger built from the tools module in dir is
// cached: jaeger-<hash>/jaeger in the tools directory, <hash> from its
// go.mod and go.sum, as build-tools.sh computes it.
func CachePath(dir string) (string, error) {
	return collector.ToolPath("jaeger", filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
}

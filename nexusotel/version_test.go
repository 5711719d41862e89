package nexusotel

import (
	"runtime/debug"
	"testing"
)

// The instrumentation version comes from the build information, whatever
// role the module plays in the build.
func TestModuleVersion(t *testing.T) {
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v0.3.0"},
			Deps: []*debug.Module{{Path: "go.opentelemetry.io/otel", Version: "v1.47.0"}, {Path: modulePath, Version: "v1.2.3"}}}, true, "v1.2.3"},
		{"a replaced dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.3", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.2.4-fork"}}}}, true, "v1.2.4-fork"},
		{"replaced by a directory", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.3", Replace: &debug.Module{Path: "../nexus"}}}}, true, "v1.2.3"},
		{"the main module, stamped", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.0.0-20261201120000-abcdef012345"}}, true, "v0.0.0-20261201120000-abcdef012345"},
		{"the main module, (devel)", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, true, "devel"},
		{"not in the build", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}}, true, "devel"},
		{"no build information", nil, false, "devel"},
	}
	for _, c := range cases {
		if got := moduleVersion(c.bi, c.ok); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	bi, ok := debug.ReadBuildInfo()
	if got := Version(); got != moduleVersion(bi, ok) || got == "" {
		t.Errorf("Version() = %q", got)
	}
}

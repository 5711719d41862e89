// Package collector builds, caches and runs the real OpenTelemetry Collector
// that the nexus end-to-end tests send telemetry to, and the real Prometheus
// that scrapes it.
//
// Binary returns the Collector built from builder.yaml (beside this file) by
// the Collector builder, cached outside the repository in
// ${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}/otelcol-<hash>/otelcol, where
// <hash> is the first 12 hex digits of the manifest's SHA-256. A missing
// binary is built on demand by ../build-tools.sh (2 to 4 minutes on 2
// cores), which holds a lock file while it builds and renames the finished
// directory into place, so concurrent test packages neither build twice nor
// see a half-written binary. A failed build fails the test: a missing real
// component is never a reason to skip.
//
// Start runs the Collector as a plain process with a config file, waits
// until its listeners accept connections, and stops it at the end of the
// test (SIGTERM, then SIGKILL after a grace period), logging its output if
// the test failed. FreeAddr picks loopback addresses for its listeners.
// StartProcess does the same for another program.
//
// PrometheusBinary and Promtool return the prometheus and promtool on PATH,
// installing Debian's prometheus package first (../build-tools.sh
// prometheus, as root) if they are missing; that failing fails the test
// too. StartPrometheus runs Prometheus with a config file, its TSDB in a
// temporary directory and its HTTP API on a loopback address, until the end
// of the test.
//
// Everything here is for tests: the helpers take a testing.TB and fail it.
// Binary and PrometheusBinary are safe for concurrent use; a Process is
// meant for one test.
package collector

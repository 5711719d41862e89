// Package jaeger builds, caches and runs the real Jaeger v2 that the nexus
// end-to-end tests send traces to, and reads traces back through its query
// API.
//
// Binary returns Jaeger built from Go modules: the module in tools/ (its own
// go.mod, so that the e2e module does not pull in Jaeger's dependencies)
// has github.com/jaegertracing/jaeger/cmd/jaeger as a tool, and
// ../build-tools.sh jaeger builds it with go build into
// ${NEXUS_TOOLS_DIR:-$HOME/.cache/nexus-tools}/jaeger-<hash>/jaeger, where
// <hash> is the first 12 hex digits of the SHA-256 of tools/go.mod and
// tools/go.sum: a new Jaeger version means a new build, an unchanged one is
// reused. The first build takes several minutes on 2 cores; the script
// holds a lock and renames the finished directory into place, as for the
// Collector. A failed build fails the test, with or without CI=true: a
// missing real component is never a reason to skip.
//
// Start runs it as a plain process with config.yaml (beside this file),
// every listener on a free 127.0.0.1 port and its Badger storage in a
// directory of the test, waits until its health check reports it ready, and
// stops it at the end of the test. Restart stops and starts it on the same
// ports and storage, mid-test. Trace, WaitTrace and Search read
// /api/traces.
//
// Everything here is for tests: the helpers take a testing.TB and fail it.
// A Jaeger is meant for one test.
package jaeger

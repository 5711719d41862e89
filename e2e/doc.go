// Package e2e holds the end-to-end tests of nexus: a store's telemetry,
// exported by otelsetup over OTLP, through a real OpenTelemetry Collector
// (built and run by the collector subpackage) to what a backend receives,
// including a real Prometheus running the Grafana dashboard's queries; and
// checks of the repository's docker-compose.yml and deploy/ files.
//
// It is a module of its own, so that the library's users never download the
// Collector's dependencies. Its tests start processes and bind loopback
// ports; see README.md. cmd/nexus-demo is the program the docker-compose
// stack's instructions run.
package e2e

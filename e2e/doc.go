// Package e2e holds the end-to-end tests of nexus: a store's telemetry,
// exported by otelsetup over OTLP, through a real OpenTelemetry Collector
// (built and run by the collector subpackage) to what a backend receives.
//
// It is a module of its own, so that the library's users never download the
// Collector's dependencies. Its tests start processes and bind loopback
// ports; see README.md.
package e2e

// Package otelsetup builds a complete OpenTelemetry pipeline for nexus in
// one call: a resource from the environment, a MeterProvider and a
// TracerProvider with exporters (stdout for debugging, OTLP gRPC for a
// Collector or an agent, Prometheus for /metrics, or whatever the OTEL_*
// environment variables choose), and a nexusotel.Reporter on them, with a
// shutdown function that flushes everything.
//
// It lives apart from nexusotel so that a program that brings its own
// OpenTelemetry setup and only needs nexusotel.NewReporter links none of
// these exporters.
package otelsetup

// Package otelsetup builds a complete OpenTelemetry pipeline for nexus in
// one call, as the OpenTelemetry environment specification has it: a
// resource from the environment with a service.instance.id per process, a
// MeterProvider and a TracerProvider with exporters (stdout for debugging,
// OTLP over gRPC or http/protobuf for a Collector or an agent, Prometheus
// for /metrics, or whatever the OTEL_* environment variables choose), the
// propagators of OTEL_PROPAGATORS, OTEL_SDK_DISABLED, and a
// nexusotel.Reporter on them, with a shutdown function that flushes
// everything. Variables the exporters would accept and then fail with in
// the background are refused up front, naming the variable.
//
// It lives apart from nexusotel so that a program that brings its own
// OpenTelemetry setup and only needs nexusotel.NewReporter links none of
// these exporters.
package otelsetup

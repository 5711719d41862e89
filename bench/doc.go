// Package bench holds nexus's comparative benchmarks: the store's hot
// operations under every kind of reporter, against a bare map behind a
// sync.RWMutex (the floor), against instrumentation done the usual
// OpenTelemetry way, and, for the raw cache hit, against ristretto and
// otter.
//
// It is a module of its own so that the library's users never pull in the
// comparison caches or the benchmark tooling. scripts/bench runs it and
// prints one table (see docs/performance.md); the benchmark names are
// stable so that benchstat can compare runs:
//
//	Benchmark<Operation>/<serial|parallel>/<configuration>
//
// Operations: GetHit (a cache-hit Get, keys rotating over 1024 cached
// items), GetMiss (Invalidate then Get: a read-through miss that fetches
// from the memory backend and fills the cache), Save (the default write
// policy, WriteCacheAndNetwork, over the memory backend) and GetAll100 (a
// GetAll answered from a complete cached listing of 100 items).
//
// Configurations: map (a bare map and sync.RWMutex doing the same work over
// the same backend), noop (store.NoOpMetricsReporter), nothing (a reporter
// whose methods are empty: the store's own side of the telemetry), console
// (reporters.NewConsole to io.Discard), buffered (reporters.NewBuffered over
// a do-nothing delegate), otel (nexusotel on an SDK MeterProvider whose one
// reader is a nexusotel.StatsReader), otel_export_stats (an exporting
// periodic reader beside the StatsReader on one provider),
// otel_private_stats (a user's provider with one ManualReader, plus
// nexusotel's private stats pipeline), otel_sample_0.01 (otel at
// Metrics.SampleRate 0.01), usual (a reporter calling
// metric.WithAttributes per call on the same kind of provider as otel), and,
// for GetHit only, ristretto and otter.
//
// Allocation gates live in the library's own tests; here every benchmark
// only reports its allocations.
package bench

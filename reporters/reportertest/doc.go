// Package reportertest provides Recorder, a store.MetricsReporter that keeps
// every metric it receives, for tests of code instrumented with nexus: check
// the exact sequence of metrics a workload produced, wait for a count of
// events reported from background work, inspect the Bind and span calls.
//
// A Recorder also implements the optional capabilities store.Binder,
// store.OperationTracer (it records start/end pairs) and
// store.StatsProvider (stats computed exactly from what it recorded,
// extrapolated by each metric's sample rate). It keeps everything in memory:
// it is meant for tests, not production.
package reportertest

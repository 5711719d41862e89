// Package reporters provides store.MetricsReporter implementations that
// need nothing beyond the standard library: a console reporter, a log/slog
// reporter, an aggregator for Store.Stats, a buffer that decouples a slow
// reporter from the store, and a fan-out. (OpenTelemetry lives in package
// nexusotel; a recorder for tests in reporters/reportertest.)
//
//   - NewConsole writes one human-readable line per metric, for development
//     and demos.
//   - NewSlog turns metrics into structured log/slog records, at a level per
//     category (successful operations and cache events at Debug, failures
//     at Warn, errors the caller saw at Error).
//   - NewStats aggregates metrics with atomic counters, so that
//     Store.Stats and Store.ResetStats work without OpenTelemetry.
//   - NewBuffered queues metrics for a delegate that must not run on the
//     caller's goroutine (one that does I/O); defaults: buffers of 100
//     metrics (store.DefaultMetricsBufferSize) flushed every 30s
//     (store.DefaultFlushInterval) or when full, at most 4 full buffers
//     waiting (DefaultMaxPendingBatches) before metrics are dropped.
//     FromConfig takes the size and the interval from a store's
//     MetricsConfig.
//   - Multi passes every metric to several reporters.
//
// # Reporters must not block
//
// The store calls its reporter inline, on the goroutine of the operation
// being reported. Every reporter here is cheap and safe for concurrent use:
// Stats is lock-free, Console holds a mutex only around one Write, Slog
// takes whatever its handler takes. A reporter that does I/O (a network
// exporter, a slow writer) belongs behind NewBuffered.
//
// # Optional capabilities
//
// The store finds a reporter's optional capabilities (store.Binder,
// store.OperationTracer, store.StatsProvider) by type assertion. Console,
// Slog and Stats are Binders: each bound store gets its own per-store
// reporter (Console and Slog name the store, Stats keeps separate
// figures). Multi and Buffered forward every capability of what they wrap,
// and the per-store reporter they bind has exactly the capabilities of the
// reporters behind it, so that wrapping never adds a cost (an
// OperationTracer the store would call for nothing) nor hides a capability.
//
// # Console lines
//
// After the prefix ("[NexusStore]" by default, see WithPrefix) and, while
// the Console serves several stores, the store's name and a colon:
//
//	get(user-123) completed in 15ms (cache hit)         a single-item operation (get, save, delete, watch), with its ID
//	get(u1) completed in 3µs (cache miss, not found)     a get, watch or delete that found no item
//	save_all(3 items) failed in 2.1ms: store: backend unavailable
//	                                                     a multi-item operation (get_all, save_all, delete_all,
//	                                                     watch_all, sync, transaction) with its item count
//	get(u1) completed in 15ms (cache hit, sampled 1/10)  an operation drawn at a sample rate below 1
//	cache eviction user-7                                a cache event, with the entry's ID when there is one
//	cache invalidation user-7 [vip beta]                 ... and its tags
//	sync started
//	sync completed in 40ms (12 items)
//	sync failed in 40ms (3 items): store: backend unavailable
//	sync retried user-7: attempt failed in 5ms: store: backend unavailable
//	sync conflict resolved user-7
//	error in save(user-7): store: backend unavailable    an error the caller saw
//	recovered error in get(user-7): store: backend unavailable
//	                                                     an error the store handled (fallback, refresh, retried push)
//
// Durations are rounded to three significant digits and printed in the
// unit time.Duration.String would use. A single-item operation without an
// ID (a reporter bound without IDs) prints as "get completed in ...".
// Stacks of error metrics are not printed.
package reporters

// Package store is a generic repository, Store[T, ID], with a local cache in
// front of a Backend (the source of truth), and the telemetry contract that
// instruments it.
//
// # Reads and writes
//
// Reads follow a FetchPolicy (cache-first by default; network-first,
// cache-and-network, cache-only, network-only, stale-while-revalidate), set
// per store (Config.FetchPolicy) or per call (WithFetchPolicy). Writes follow
// a WritePolicy (cache-and-network by default: optimistic, rolled back if the
// backend fails; network-first; cache-first, which queues the change for
// Sync; cache-only). Concurrent misses of one ID share one backend call.
// Background refreshes (cache-and-network, stale-while-revalidate) run on at
// most Config.RefreshWorkers goroutines, one per ID at a time, and stop at
// Close; their failures go to Config.ErrorHandler.
//
// Reads see the store's own unsynced writes: a pending write-behind change
// wins over the backend's value, for every policy. Config.NotFoundTTL makes
// the store remember not-founds (negative caching).
//
// # Cache
//
// Entries never go stale unless Config.CacheTTL is set; the cache is
// unbounded unless Config.MaxCacheSize is set (entries not read recently
// are evicted first, by the CLOCK approximation of LRU). A cache hit takes
// no lock and writes no shared memory, so hits scale with cores; with the
// defaults it also reads no clock, and it allocates nothing. Entries holding unsynced changes are
// never evicted or invalidated: they are the only copy of a write. A full
// listing (GetAll with no filter or limit) read from the backend marks the
// cache complete, so that cache policies answer listings from it until an
// entry is invalidated, evicted or the listing goes stale.
//
// # Sync, transactions
//
// Sync pushes write-behind changes in order with retries (Config.Retry) and
// resolves conflicts reported by a VersionedBackend (Config.Conflict).
// Transaction buffers writes and applies them together, atomically where the
// backend has transactions (TxBackend) and with compensating writes
// otherwise.
//
// # Telemetry
//
// Every operation, cache event, sync step and error is reported to
// Config.MetricsReporter (NoOpMetricsReporter by default, which costs
// nothing: no metric is built, no clock read, nothing allocated). Reporters
// are called inline and must not block; put a slow one behind
// reporters.NewBuffered. A reporter that panics is contained: the panic is
// counted (LiveStats.ReporterPanics) and passed to Config.ErrorHandler.
// Optional capabilities extend the contract: Binder (per-store binding),
// OperationTracer (spans around operations and backend calls) and
// StatsProvider (Store.Stats and Store.ResetStats). Item IDs reach a
// reporter only if it asks for them at Bind; tags and error messages are
// handed over for logging and must never become metric attributes.
//
// Store.Stats returns the zero StoreStats unless the reporter aggregates:
// use nexusotel.NewReporter, or reporters.NewStats (alone or in
// reporters.Multi beside another reporter).
//
// # Concurrency
//
// All Store methods are safe for concurrent use. Writes of one ID are
// serialized (cache, backend and write-behind queue change in one order);
// writes of different IDs run in parallel. While a write of an ID is in
// flight, no backend read that raced it can fill the cache; an
// acknowledged write is never silently lost, and with no other writer of
// the backend every read is linearizable (docs/store.md, "Consistency
// model", states the guarantees and their exceptions). Close waits for
// writes in flight, tries a final Sync, flushes the reporter and stops
// every goroutine the store started.
package store

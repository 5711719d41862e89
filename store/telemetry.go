package store

import (
	"context"
	"time"
)

// MetricsReporter receives the store's telemetry: one OperationMetric per
// public operation, cache events, sync events and errors.
//
// Implementations must be safe for concurrent use, must not block (the store
// calls them inline, on the caller's goroutine; put a slow reporter behind
// reporters.NewBuffered) and should not panic (a panic is recovered, counted
// and passed to Config.ErrorHandler, and the report is lost). The metric
// values are passed by value and must not be retained beyond the call unless
// copied; Tags slices are shared with the store and must not be modified.
//
// A reporter may implement the optional capabilities Binder, OperationTracer
// and StatsProvider; the store finds them by type assertion.
type MetricsReporter interface {
	ReportOperation(ctx context.Context, m OperationMetric)
	ReportCacheEvent(ctx context.Context, m CacheMetric)
	ReportSyncEvent(ctx context.Context, m SyncMetric)
	ReportError(ctx context.Context, m ErrorMetric)
	// Flush delivers whatever the reporter holds. Store.Close calls it.
	Flush(ctx context.Context) error
}

// NoOpMetricsReporter reports nothing. It is the default: a store configured
// with it (or with a nil MetricsReporter) builds no metric, reads no clock for
// telemetry and allocates nothing for telemetry.
type NoOpMetricsReporter struct{}

var _ MetricsReporter = NoOpMetricsReporter{}

// ReportOperation does nothing.
func (NoOpMetricsReporter) ReportOperation(context.Context, OperationMetric) {}

// ReportCacheEvent does nothing.
func (NoOpMetricsReporter) ReportCacheEvent(context.Context, CacheMetric) {}

// ReportSyncEvent does nothing.
func (NoOpMetricsReporter) ReportSyncEvent(context.Context, SyncMetric) {}

// ReportError does nothing.
func (NoOpMetricsReporter) ReportError(context.Context, ErrorMetric) {}

// Flush does nothing and returns nil.
func (NoOpMetricsReporter) Flush(context.Context) error { return nil }

// StatsProvider is implemented by reporters that aggregate what they receive.
// Store.Stats and Store.ResetStats delegate to it.
type StatsProvider interface {
	// Stats returns the figures accumulated since the start or the last
	// ResetStats.
	Stats() StoreStats
	// ResetStats returns the window it closes and starts a new one,
	// atomically: every event is counted in exactly one window.
	ResetStats() StoreStats
}

// Binder is implemented by reporters that want to know which store they
// serve. New calls Bind once and reports to the reporter it returns, so that
// one reporter value can serve several stores without mixing them.
type Binder interface {
	Bind(info StoreInfo) Binding
}

// StoreInfo describes a store to a Binder.
type StoreInfo struct {
	// Name is Config.Name (or the name derived from the item type).
	Name string
	// SampleRate is the fraction of operations reported, in (0, 1].
	SampleRate float64
	// Live returns the store's live figures. It is cheap, safe for
	// concurrent use, and may be called from any goroutine (e.g. an
	// observable gauge callback) until Binding.Release is called.
	Live func() LiveStats
	// Backend describes the store's backend, if it implements
	// DescribedBackend; the zero BackendInfo otherwise.
	Backend BackendInfo
}

// Binding is what a Binder returns.
type Binding struct {
	// Reporter receives this store's metrics; nil means the Binder itself.
	Reporter MetricsReporter
	// WantItemIDs asks the store to fill the ItemID fields of the metrics.
	// Without it the store never boxes an ID.
	WantItemIDs bool
	// Release, if set, is called once when the store is closed, after the
	// final Flush (e.g. to unregister gauge callbacks).
	Release func()
	// Err, if set, refuses the store: New fails with an error wrapping it
	// (and calls Release, if set). A reporter refuses a store it cannot
	// serve truthfully, e.g. a second live store of the same name where
	// the figures of the two could not be told apart.
	Err error
}

// LiveStats are the store's current figures, read on demand.
type LiveStats struct {
	CacheEntries   int       // entries in the local cache (including tombstones of pending deletes)
	PendingChanges int       // write-behind changes not yet synced
	OldestPending  time.Time // when the oldest pending change was queued; zero if none
	ReporterPanics uint64    // reporter calls that panicked since the store was created
	// Pool holds the backend's connection pool figures when HasPool is set
	// (the backend is a PooledBackend).
	Pool    ConnPoolStats
	HasPool bool
}

// FeedReporter is implemented by reporters that record the events of a
// backend's ChangeFeed as the store applies them (the lag of each change,
// resets, errors). The store finds it by type assertion on the bound
// reporter; wrappers (reporters.Multi, reporters.Buffered) forward it.
type FeedReporter interface {
	ReportFeedEvent(ctx context.Context, m FeedMetric)
}

// FeedMetric describes one change-feed event, as the store applied it.
type FeedMetric struct {
	Event FeedEventKind
	// Committed is, for a FeedChanged event, when the change was committed
	// by the backend's clock; zero when the feed gives no commit time.
	Committed time.Time
	// Lag is how long after Committed the store applied the change (by the
	// local clock; clocks apart make it inexact, and it is never negative);
	// 0 when Committed is zero.
	Lag time.Duration
	// Invalidated counts the cached entries the event dropped.
	Invalidated int
	// ItemID is the changed item's ID, for reporters that asked for IDs.
	ItemID any
	// Err is the failure of a FeedError event.
	Err       error
	Timestamp time.Time
}

// OperationTracer is implemented by reporters that bracket operations and
// backend calls, e.g. with trace spans. The store calls StartOperation before
// the work and EndOperation after it, always in pairs, even when the
// operation's metric is sampled out; backend calls made for the operation
// run under the context StartOperation returned and are bracketed by
// StartBackendCall and EndBackendCall. The handle returned by a start call is
// passed back to the matching end call and is otherwise opaque to the store
// (return a pointer or an interface value so that nothing is allocated).
type OperationTracer interface {
	StartOperation(ctx context.Context, op OperationStart) (context.Context, any)
	EndOperation(ctx context.Context, handle any, end OperationEnd)
	StartBackendCall(ctx context.Context, call BackendCall) (context.Context, any)
	EndBackendCall(ctx context.Context, handle any, end BackendCallEnd)
}

// OperationStart describes an operation that is about to run.
type OperationStart struct {
	Operation OperationType
	Policy    Policy
	// Sampled reports whether the operation's metrics will be reported.
	Sampled bool
	// Background is set for work the store starts on its own (the sync
	// interval); the reporter may then start a root span. Close's final
	// Sync is not background: it runs under the caller's context.
	Background bool
}

// OperationEnd describes how an operation ended.
type OperationEnd struct {
	Operation   OperationType
	Policy      Policy
	Err         error // nil on success
	CacheResult CacheResult
	ItemCount   int
	// Duration is measured only when the operation is sampled or
	// StartOperation returned a handle; 0 otherwise.
	Duration time.Duration
}

// BackendCall describes a call to the backend.
type BackendCall struct {
	// Operation is the backend method: OpGet, OpGetAll, OpSave, OpDelete, or
	// OpTransaction for a backend transaction commit.
	Operation OperationType
	// Sampled reports whether the enclosing operation is sampled; a reporter
	// records the call's duration only when it is.
	Sampled bool
	// Background is set for calls the store makes after the operation that
	// caused them returned (background refreshes): the context carries that
	// operation's span, to link to rather than to parent under.
	Background bool
}

// BackendCallEnd describes how a backend call ended.
type BackendCallEnd struct {
	Operation OperationType
	Sampled   bool
	Err       error
	// Duration is measured only when the call is sampled or
	// StartBackendCall returned a handle; 0 otherwise.
	Duration time.Duration
}

// OperationType names a public store operation.
type OperationType uint8

// The operation types; String returns the snake_case names used in metric
// attributes ("get", "get_all", ...).
const (
	OpGet OperationType = iota
	OpGetAll
	OpSave
	OpSaveAll
	OpDelete
	OpDeleteAll
	OpWatch
	OpWatchAll
	OpSync
	OpTransaction

	numOperationTypes
)

var operationNames = [numOperationTypes]string{
	"get", "get_all", "save", "save_all", "delete", "delete_all",
	"watch", "watch_all", "sync", "transaction",
}

// String returns the snake_case name, e.g. "get_all".
func (o OperationType) String() string {
	return enumName(operationNames[:], o, "OperationType")
}

// Valid reports whether o is one of the declared operation types; iterate
// over all of them with for op := store.OpGet; op.Valid(); op++.
func (o OperationType) Valid() bool { return o < numOperationTypes }

// CacheEvent is something that happened to the local cache.
type CacheEvent uint8

// The cache events. String returns "hit", "miss", "write", "eviction",
// "invalidation", "expiration".
const (
	// CacheHit: a user-visible read was served by the cache.
	CacheHit CacheEvent = iota
	// CacheMiss: a user-visible read consulted the cache and could not be
	// served by it.
	CacheMiss
	// CacheWrite: an entry was filled or updated.
	CacheWrite
	// CacheEviction: an entry was evicted to respect MaxCacheSize.
	CacheEviction
	// CacheInvalidation: an entry was dropped by Invalidate, InvalidateTags
	// or InvalidateAll.
	CacheInvalidation
	// CacheExpiration: a read found an entry past its TTL (once per entry
	// until it is written again).
	CacheExpiration

	numCacheEvents
)

var cacheEventNames = [numCacheEvents]string{
	"hit", "miss", "write", "eviction", "invalidation", "expiration",
}

// String returns the snake_case name.
func (e CacheEvent) String() string {
	return enumName(cacheEventNames[:], e, "CacheEvent")
}

// Valid reports whether e is one of the declared events.
func (e CacheEvent) Valid() bool { return e < numCacheEvents }

// SyncEvent is a step of a Sync run.
type SyncEvent uint8

// The sync events. String returns "started", "completed", "failed",
// "retried", "conflict_resolved".
const (
	SyncStarted SyncEvent = iota
	SyncCompleted
	SyncFailed
	SyncRetried
	SyncConflictResolved

	numSyncEvents
)

var syncEventNames = [numSyncEvents]string{
	"started", "completed", "failed", "retried", "conflict_resolved",
}

// String returns the snake_case name.
func (e SyncEvent) String() string {
	return enumName(syncEventNames[:], e, "SyncEvent")
}

// Valid reports whether e is one of the declared events.
func (e SyncEvent) Valid() bool { return e < numSyncEvents }

// CacheResult says whether the cache served a read.
type CacheResult uint8

const (
	// CacheResultNone: not a read the cache could serve (writes, network-only
	// reads, a network-first read the backend answered).
	CacheResultNone CacheResult = iota
	// CacheResultHit: the cache served the read.
	CacheResultHit
	// CacheResultMiss: the cache was consulted and could not serve the read.
	CacheResultMiss
)

// String returns "", "hit" or "miss".
func (r CacheResult) String() string {
	switch r {
	case CacheResultHit:
		return "hit"
	case CacheResultMiss:
		return "miss"
	}
	return ""
}

// OperationMetric describes one public store operation.
type OperationMetric struct {
	Operation OperationType
	Duration  time.Duration
	// Success is false when the operation returned an error. A read of an
	// absent item is a success with ItemCount 0.
	Success bool
	// ItemCount is the number of items returned, saved or deleted.
	ItemCount int
	// Policy is the fetch or write policy in effect, or PolicyNone.
	Policy Policy
	// CacheResult says whether the cache served a read (single-item reads and
	// GetAll); CacheResultNone for everything else.
	CacheResult CacheResult
	// ItemID is the item's ID for single-item operations, set only for
	// reporters that asked for IDs at Bind; nil otherwise.
	ItemID any
	// Err is the error the operation returned, nil on success.
	Err error
	// SampleRate is the rate the operation was sampled at (1 when every
	// operation is reported): each reported operation stands for
	// 1/SampleRate operations.
	SampleRate float64
	Timestamp  time.Time
}

// CacheMetric describes one cache event.
type CacheMetric struct {
	Event CacheEvent
	// Remote is set for an invalidation caused by another writer's change,
	// heard through the backend's ChangeFeed (false: this store's own
	// Invalidate calls and writes).
	Remote bool
	// ItemID is the entry's ID, set only for reporters that asked for IDs at
	// Bind; nil otherwise (and for a GetAll hit or miss).
	ItemID any
	// Tags are the entry's tags (invalidation, eviction, write); shared, do
	// not modify.
	Tags []string
	// SampleRate is the rate of the operation the event belongs to; 1 for
	// events that are never sampled (eviction, invalidation, expiration).
	SampleRate float64
	Timestamp  time.Time
}

// SyncMetric describes one step of a Sync run.
type SyncMetric struct {
	Event SyncEvent
	// Duration of the whole run (completed, failed), or of the failed attempt
	// (retried); 0 for started and conflict_resolved.
	Duration time.Duration
	// ItemsSynced is the number of changes pushed by the run (completed,
	// failed).
	ItemsSynced int
	// Err is the error of a failed run or of the attempt being retried.
	Err error
	// ItemID names the change retried or resolved, for reporters that asked
	// for IDs.
	ItemID    any
	Timestamp time.Time
}

// ErrorMetric describes an error: a failed operation, or a failure the store
// handled on its own (a background refresh, a sync push, a fallback).
type ErrorMetric struct {
	Err       error
	Operation OperationType
	// Recoverable is true when the store handled the error and the caller did
	// not see it (a network-first read that fell back to the cache, a failed
	// background refresh, a push that will be retried).
	Recoverable bool
	// Stack is the stack of the goroutine that hit the error, captured only
	// when MetricsConfig.CaptureStacks is set.
	Stack []byte
	// ItemID is the ID involved, for reporters that asked for IDs.
	ItemID    any
	Timestamp time.Time
}

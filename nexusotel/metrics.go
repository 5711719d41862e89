package nexusotel

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// Metric names. They are fixed: dashboards, alerts and docs depend on them.
// Every series carries KeyStoreName (and the WithAttributes attributes).
const (
	// MetricOperationDuration (Float64Histogram, s) times every reported
	// store operation; its count is the operation count. Attributes:
	// KeyOperation, KeyPolicy where a policy applies, KeyCacheResult for
	// reads the cache could serve, KeyErrorType on failures.
	MetricOperationDuration = "nexus.store.operation.duration"
	// MetricCacheEvents (Int64ObservableCounter, {event}) counts cache
	// events by KeyCacheEvent. The store's reporter counts them in memory
	// (a hit costs an atomic add, not a second SDK record beside the
	// operation's) and the SDK reads the counts when it collects.
	MetricCacheEvents = "nexus.store.cache.events"
	// MetricSyncEvents (Int64Counter, {event}) counts sync events by
	// KeySyncEvent.
	MetricSyncEvents = "nexus.store.sync.events"
	// MetricSyncDuration (Float64Histogram, s) times Sync runs by
	// KeySyncOutcome.
	MetricSyncDuration = "nexus.store.sync.duration"
	// MetricSyncItems (Int64Counter, {item}) counts the changes Sync runs
	// pushed.
	MetricSyncItems = "nexus.store.sync.items"
	// MetricErrors (Int64Counter, {error}) counts errors by KeyOperation,
	// KeyErrorType and KeyRecoverable. It is never sampled.
	MetricErrors = "nexus.store.errors"
	// MetricBackendDuration (Float64Histogram, s) times backend calls; its
	// KeyOperation is the backend call (get, get_all, save, delete,
	// transaction), KeyErrorType is set on failures (a backend answer of
	// store.ErrNotFound is not a failure).
	MetricBackendDuration = "nexus.store.backend.duration"
	// MetricCacheEntries (Int64ObservableGauge, {entry}) is the number of
	// entries in the store's cache.
	MetricCacheEntries = "nexus.store.cache.entries"
	// MetricPendingChanges (Int64ObservableGauge, {change}) is the number of
	// write-behind changes waiting for Sync.
	MetricPendingChanges = "nexus.store.pending.changes"
	// MetricPendingOldestAge (Float64ObservableGauge, s) is the age of the
	// oldest pending change; 0 with none.
	MetricPendingOldestAge = "nexus.store.pending.oldest_age"
	// MetricFeedEvents (Int64Counter, {event}) counts the events of the
	// backend's change feed (store.ChangeFeed) by KeyFeedEvent: changes
	// heard, resets (the feed connected or reconnected) and errors (it lost
	// its source). Never sampled.
	MetricFeedEvents = "nexus.store.feed.events"
	// MetricFeedLag (Float64Histogram, s) is the time from a change's
	// commit (by the backend's clock) to the store applying it (by the
	// local one); recorded for changes whose feed gives a commit time.
	MetricFeedLag = "nexus.store.feed.lag"
	// MetricConnCount (Int64ObservableUpDownCounter, {connection}) is the
	// backend's open pool connections by db.client.connection.state ("idle",
	// "used"), for backends with a pool (store.PooledBackend), as the
	// database client conventions name it.
	MetricConnCount = "db.client.connection.count"
	// MetricConnMax (Int64ObservableUpDownCounter, {connection}) is the most
	// connections the backend's pool opens.
	MetricConnMax = "db.client.connection.max"
	// MetricConnTimeouts (Int64ObservableCounter, {timeout}) counts the
	// waits for a pool connection that gave up.
	MetricConnTimeouts = "db.client.connection.timeouts"
	// MetricSampleRate (Float64ObservableGauge, 1) is the store's
	// store.MetricsConfig.SampleRate. Divide the counts of sampled series
	// by it to estimate true counts (see the package documentation).
	MetricSampleRate = "nexus.store.sample_rate"
)

// instruments are the instruments of one pipeline (a MeterProvider).
type instruments struct {
	meter           metric.Meter
	opDuration      metric.Float64Histogram
	backendDuration metric.Float64Histogram
	cacheEvents     metric.Int64ObservableCounter
	syncEvents      metric.Int64Counter
	syncDuration    metric.Float64Histogram
	syncItems       metric.Int64Counter
	errors          metric.Int64Counter
	feedEvents      metric.Int64Counter
	feedLag         metric.Float64Histogram

	// The observable gauges, nil on the private stats pipeline (Stats does
	// not read them).
	cacheEntries   metric.Int64ObservableGauge
	pendingChanges metric.Int64ObservableGauge
	pendingAge     metric.Float64ObservableGauge
	sampleRate     metric.Float64ObservableGauge
	connCount      metric.Int64ObservableUpDownCounter
	connMax        metric.Int64ObservableUpDownCounter
	connTimeouts   metric.Int64ObservableCounter
}

func newInstruments(mp metric.MeterProvider, buckets []float64, observable bool) (*instruments, error) {
	m := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version()), metric.WithSchemaURL(SchemaURL))
	ins := &instruments{meter: m}
	var err, e error
	ins.opDuration, e = m.Float64Histogram(MetricOperationDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of store operations; its count is the number of (sampled) operations."),
		metric.WithExplicitBucketBoundaries(buckets...))
	err = errors.Join(err, e)
	ins.backendDuration, e = m.Float64Histogram(MetricBackendDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the calls the store makes to its backend."),
		metric.WithExplicitBucketBoundaries(buckets...))
	err = errors.Join(err, e)
	ins.cacheEvents, e = m.Int64ObservableCounter(MetricCacheEvents,
		metric.WithUnit("{event}"),
		metric.WithDescription("Cache events: hits, misses, writes, evictions, invalidations, expirations."))
	err = errors.Join(err, e)
	ins.syncEvents, e = m.Int64Counter(MetricSyncEvents,
		metric.WithUnit("{event}"),
		metric.WithDescription("Sync events: runs started, completed and failed, retried pushes, resolved conflicts."))
	err = errors.Join(err, e)
	ins.syncDuration, e = m.Float64Histogram(MetricSyncDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of Sync runs."),
		metric.WithExplicitBucketBoundaries(buckets...))
	err = errors.Join(err, e)
	ins.syncItems, e = m.Int64Counter(MetricSyncItems,
		metric.WithUnit("{item}"),
		metric.WithDescription("Changes pushed to the backend by Sync runs."))
	err = errors.Join(err, e)
	ins.errors, e = m.Int64Counter(MetricErrors,
		metric.WithUnit("{error}"),
		metric.WithDescription("Errors: failed operations and failures the store recovered from."))
	err = errors.Join(err, e)
	ins.feedEvents, e = m.Int64Counter(MetricFeedEvents,
		metric.WithUnit("{event}"),
		metric.WithDescription("Events of the backend's change feed: changes heard, resets, errors."))
	err = errors.Join(err, e)
	ins.feedLag, e = m.Float64Histogram(MetricFeedLag,
		metric.WithUnit("s"),
		metric.WithDescription("Time from a change's commit to the store applying it, through the backend's change feed."),
		metric.WithExplicitBucketBoundaries(buckets...))
	err = errors.Join(err, e)
	if observable {
		ins.connCount, e = m.Int64ObservableUpDownCounter(MetricConnCount,
			metric.WithUnit("{connection}"),
			metric.WithDescription("Open connections of the backend's pool, by state."))
		err = errors.Join(err, e)
		ins.connMax, e = m.Int64ObservableUpDownCounter(MetricConnMax,
			metric.WithUnit("{connection}"),
			metric.WithDescription("The most connections the backend's pool opens."))
		err = errors.Join(err, e)
		ins.connTimeouts, e = m.Int64ObservableCounter(MetricConnTimeouts,
			metric.WithUnit("{timeout}"),
			metric.WithDescription("Waits for a connection of the backend's pool that gave up."))
		err = errors.Join(err, e)
		ins.cacheEntries, e = m.Int64ObservableGauge(MetricCacheEntries,
			metric.WithUnit("{entry}"),
			metric.WithDescription("Entries in the store's local cache."))
		err = errors.Join(err, e)
		ins.pendingChanges, e = m.Int64ObservableGauge(MetricPendingChanges,
			metric.WithUnit("{change}"),
			metric.WithDescription("Write-behind changes waiting for Sync."))
		err = errors.Join(err, e)
		ins.pendingAge, e = m.Float64ObservableGauge(MetricPendingOldestAge,
			metric.WithUnit("s"),
			metric.WithDescription("Age of the oldest pending change; 0 with none."))
		err = errors.Join(err, e)
		ins.sampleRate, e = m.Float64ObservableGauge(MetricSampleRate,
			metric.WithUnit("1"),
			metric.WithDescription("Fraction of operations reported; divide sampled counts by it."))
		err = errors.Join(err, e)
	}
	if err != nil {
		return nil, fmt.Errorf("nexusotel: creating instruments: %w", err)
	}
	return ins, nil
}

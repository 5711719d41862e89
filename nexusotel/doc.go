// Package nexusotel is the OpenTelemetry adapter of nexus stores: a
// store.MetricsReporter that records a store's telemetry on OpenTelemetry
// instruments, brackets its operations and backend calls with spans, and
// computes Store.Stats from an SDK ManualReader.
//
//	rep, err := nexusotel.NewReporter()   // global providers + private stats pipeline
//	s, err := store.New(backend, store.Config[User, string]{IDOf: ..., MetricsReporter: rep})
//	st := s.Stats()                        // counts, durations, hit rate, percentiles
//
// or, for a whole pipeline (exporters, providers, resource) configured by
// the OTEL_* environment variables, the subpackage otelsetup:
//
//	rep, shutdown, err := otelsetup.Setup(ctx)
//	defer shutdown(context.Background())
//
// otelsetup is apart so that importing nexusotel links no exporter (gRPC,
// the Prometheus client): nexusotel depends on the OpenTelemetry API and
// metric SDK only.
//
// # Instruments
//
// Every instrument and span is under the scope ScopeName, with the schema
// URL SchemaURL and the version Version() (the module's version from the
// program's build information), and every series carries nexus.store.name
// plus the attributes of WithAttributes:
//
//	nexus.store.operation.duration  histogram  s        nexus.store.operation, nexus.store.policy,
//	                                                    nexus.cache.result, error.type (failures)
//	nexus.store.backend.duration    histogram  s        nexus.store.operation (the backend call), error.type
//	nexus.store.cache.events        counter    {event}  nexus.cache.event
//	nexus.store.sync.events         counter    {event}  nexus.sync.event
//	nexus.store.sync.duration       histogram  s        nexus.sync.outcome
//	nexus.store.sync.items          counter    {item}
//	nexus.store.errors              counter    {error}  nexus.store.operation, error.type, nexus.error.recoverable
//	nexus.store.cache.entries       gauge      {entry}
//	nexus.store.pending.changes     gauge      {change}
//	nexus.store.pending.oldest_age  gauge      s
//	nexus.store.sample_rate         gauge      1
//
// Operation counts are the operation histogram's counts. A read of an absent
// item is a success. error.type is store.ErrorType: a sentinel's name, the
// innermost error's Go type, or _OTHER. Item IDs, tags and error messages
// are never attributes. The gauges are read through the store's Live
// callback when the SDK collects, at no cost per operation.
//
// Durations are in seconds, with the 15 bucket boundaries DefaultBuckets
// (0.5µs to 5s, chosen from measured cache-hit and backend-call
// distributions) given as advice; a View overrides them, or selects base-2
// exponential histograms (see DefaultBuckets).
//
// # Sampling
//
// With store.MetricsConfig.SampleRate r < 1 the store reports a random
// fraction r of its operations: the operation and backend histograms and
// the hit, miss and write cache events cover that sample. Evictions,
// invalidations, expirations, sync events and errors are never sampled. The
// rate is exported as the gauge nexus.store.sample_rate (unit 1, so
// nexus_store_sample_rate_ratio in Prometheus), so a query scales back by
// dividing, e.g. in PromQL (the gauge aggregated first, so that replicas and
// two releases' series side by side do not make duplicate matches)
//
//	sum by (nexus_store_name) (
//	  rate(nexus_store_operation_duration_seconds_count[5m])
//	  / on (job, instance, nexus_store_name) group_left ()
//	  max by (job, instance, nexus_store_name) (nexus_store_sample_rate_ratio))
//
// and Store.Stats extrapolates the sampled counts by 1/r (an unbiased
// estimate; StoreStats.Estimated is set). Averages and percentiles need no
// correction.
//
// # Stats
//
// Store.Stats computes the figures of one store instance: counts, failures
// and total and average durations per operation, a duration histogram per
// operation (explicit or exponential buckets, for Quantile), cache and sync
// events, items synced, errors. A StatsReader aggregates deltas and adds
// them up per bound store (by nexus.store.name), so a store starts at zero
// even where a closed store of the same name left cumulative series behind;
// two live stores of one name on one StatsReader are refused (store.New
// fails), since their figures could not be told apart; a closed store's
// series leave the reader at its next collection, so a Stats call costs
// what the live stores recorded since the last one, however many stores
// came and went. One collection serves every store on the reader, and
// Stats collects only when its store recorded something since
// (WithStatsMaxAge bounds it further). ResetStats closes a window
// atomically. The StatsReader is either private (NewReporter without
// WithStatsReader: a second MeterProvider with no observable callbacks, so
// each measurement is recorded twice) or the caller's, registered on their
// provider beside the exporting readers (WithStatsReader: one provider
// with two readers, which share the attribute lookup; a collection then
// runs that provider's observable callbacks); see Cost. A caller's provider
// may have Views that drop an instrument or an attribute Stats needs:
// Store.Stats then reports the problem to otel.Handle and
// Reporter.CollectStats returns it as an error, never a wrong number.
//
// # Traces
//
// Each operation is a span named "nexus.store <operation>" (e.g.
// "nexus.store get") with the store, operation, policy and cache result as
// attributes, parented to the caller's span, made by the TracerProvider of
// WithTracerProvider, else by the provider of the caller's span (as
// otelhttp does), else by the global one. Backend calls are spans under it
// that follow the database semantic conventions for a backend that
// describes itself (store.DescribedBackend): "{db.operation.name}
// {table}" (e.g. "get items"), db.system.name, db.collection.name (the
// table), db.namespace, server.address and server.port, CLIENT kind; an
// in-process backend (the memory backend) has INTERNAL spans named
// "nexus.store.backend <call>" without db.* attributes. A failure sets
// error.type, an exception event and the error status, with the error's
// type as message: error messages carry item IDs, which never become
// telemetry unless WithSpanErrors says otherwise (not for a read of an
// absent item, which is no failure). Background refreshes are root spans
// linked to the operation that scheduled them; the interval sync is a root
// span. By default an operation is traced only when the caller's context
// carries a span, so an untraced call starts no span and allocates
// nothing; WithRootSpans traces every operation, WithoutCacheSpans leaves
// reads out (their backend calls still show, under the caller's span),
// WithSpanFilter leaves out chosen operations or backend calls,
// WithSpanNameFormatter names spans, WithoutTracing turns spans off; the
// WithAttributes attributes are on every span. Histogram records take the
// operation's context, so exemplars link latencies to traces.
//
// # Cost
//
// Bind precomputes an option slice per attribute combination (store,
// operation, policy, cache result; failures per error type on first use),
// so a reported operation allocates nothing. A cache-hit Get costs one
// counter Add and one histogram Record per pipeline. Measured with
// BenchmarkCacheHitGet (Go 1.26, OTel Go SDK v1.47.0, a 2-core AMD EPYC VM,
// medians of 8 runs, all 0 allocs/op except the last):
//
//	no-op reporter                                       20 ns
//	a reporter that records nothing (the store's side)  150 ns
//	nexusotel, SDK provider with one reader             457 ns
//	nexusotel, exporting reader + stats reader          571 ns
//	nexusotel, user's provider + private stats          729 ns
//	nexusotel defaults (no global SDK) + private stats  448 ns
//	metric.WithAttributes per call, one reader         1.06 µs, 9 allocs (1.1 KiB)
//
// The store's side (about 130 ns: the sampling draw, two clock reads, the
// calls) is paid by any reporter. Of the rest (about 310 ns, the SDK's
// work), a second reader on the same provider adds about 40%, a second
// provider (the private stats pipeline) nearly doubles it: pass
// WithStatsReader where the exporting provider is yours.
//
// # Concurrency
//
// A Reporter and the reporters it binds are safe for concurrent use. Stats
// and ResetStats serialize with each other per store, never with recording.
package nexusotel

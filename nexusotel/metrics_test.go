package nexusotel_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
)

// workload runs a scripted sequence of operations on a store named "users"
// and returns it with the error its failed Sync returned.
func workload(t *testing.T, rep store.MetricsReporter) (*store.Store[item, string], error) {
	t.Helper()
	ctx := context.Background()
	s, b := newStore(t, "users", rep, func(c *store.Config[item, string]) {
		c.Retry.MaxAttempts = 1 // a failed push fails its Sync at once
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Save(ctx, item{ID: "a", N: 1}) // save[cache_and_network]: cache write, backend save
	must(err)
	for range 3 { // get[cache_first] hit x3
		_, err = s.Get(ctx, "a")
		must(err)
	}
	_, err = s.Get(ctx, "zz") // absent: a successful miss, backend get not found
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(zz) = %v, want not found", err)
	}
	b.FailNext(1, nil) // get[cache_first] miss, failed: store.ErrUnavailable
	if _, err = s.Get(ctx, "b"); err == nil {
		t.Fatal("Get(b) with a failing backend succeeded")
	}
	b.SetUnavailable(true) // get[network_first]: backend fails, the cache answers (recovered)
	_, err = s.Get(ctx, "a", store.WithFetchPolicy(store.FetchNetworkFirst))
	must(err)
	b.SetUnavailable(false)
	_, err = s.Save(ctx, item{ID: "c"}, store.WithWritePolicy(store.WriteCacheFirst)) // queued
	must(err)
	must(s.Sync(ctx)) // pushes c: backend save, 1 item
	s.Invalidate("c") // cache invalidation
	_, err = s.Save(ctx, item{ID: "e"}, store.WithWritePolicy(store.WriteCacheFirst))
	must(err)
	b.FailNext(1, errBoom)
	syncErr := s.Sync(ctx) // push of e fails: sync failed, e stays pending
	if syncErr == nil {
		t.Fatal("Sync with a failing push succeeded")
	}
	return s, syncErr
}

func TestMetricsOfScriptedWorkload(t *testing.T) {
	env := attribute.String("deployment.environment", "test")
	p := newSDKPipeline(t, nil, nexusotel.WithAttributes(env))
	s, syncErr := workload(t, p.rep)
	live := s.Live()

	set := func(kvs ...attribute.KeyValue) attribute.Set {
		return attribute.NewSet(append([]attribute.KeyValue{nexusotel.KeyStoreName.String("users"), env}, kvs...)...)
	}
	op := func(name, policy, cr, errType string) []attribute.KeyValue {
		kvs := []attribute.KeyValue{nexusotel.KeyOperation.String(name)}
		if policy != "" {
			kvs = append(kvs, nexusotel.KeyPolicy.String(policy))
		}
		if cr != "" {
			kvs = append(kvs, nexusotel.KeyCacheResult.String(cr))
		}
		if errType != "" {
			kvs = append(kvs, nexusotel.KeyErrorType.String(errType))
		}
		return kvs
	}
	hist := func(points ...metricdata.HistogramDataPoint[float64]) metricdata.Histogram[float64] {
		return metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points}
	}
	hp := func(n uint64, kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{Attributes: set(kvs...), Count: n, Bounds: nexusotel.DefaultBuckets}
	}
	sum := func(points ...metricdata.DataPoint[int64]) metricdata.Sum[int64] {
		return metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points}
	}
	dp := func(n int64, kvs ...attribute.KeyValue) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: set(kvs...), Value: n}
	}
	syncType := store.ErrorType(syncErr)
	want := []metricdata.Metrics{
		{Name: "nexus.store.operation.duration", Unit: "s", Data: hist(
			hp(1, op("save", "cache_and_network", "", "")...),
			hp(3, op("get", "cache_first", "hit", "")...),
			hp(1, op("get", "cache_first", "miss", "")...),
			hp(1, op("get", "cache_first", "miss", "store.ErrUnavailable")...),
			hp(1, op("get", "network_first", "hit", "")...),
			hp(2, op("save", "cache_first", "", "")...),
			hp(1, op("sync", "", "", "")...),
			hp(1, op("sync", "", "", syncType)...),
		)},
		{Name: "nexus.store.backend.duration", Unit: "s", Data: hist(
			hp(2, op("save", "", "", "")...), // save a, push of c
			hp(1, op("save", "", "", "_OTHER")...),
			hp(1, op("get", "", "", "")...), // zz: not found is an answer
			hp(2, op("get", "", "", "store.ErrUnavailable")...),
		)},
		{Name: "nexus.store.cache.events", Unit: "{event}", Data: sum(
			dp(3, nexusotel.KeyCacheEvent.String("write")),
			dp(4, nexusotel.KeyCacheEvent.String("hit")),
			dp(2, nexusotel.KeyCacheEvent.String("miss")),
			dp(1, nexusotel.KeyCacheEvent.String("invalidation"), nexusotel.KeyCacheOrigin.String("local")),
		)},
		{Name: "nexus.store.sync.events", Unit: "{event}", Data: sum(
			dp(2, nexusotel.KeySyncEvent.String("started")),
			dp(1, nexusotel.KeySyncEvent.String("completed")),
			dp(1, nexusotel.KeySyncEvent.String("failed")),
		)},
		{Name: "nexus.store.sync.duration", Unit: "s", Data: hist(
			hp(1, nexusotel.KeySyncOutcome.String("completed")),
			hp(1, nexusotel.KeySyncOutcome.String("failed")),
		)},
		{Name: "nexus.store.sync.items", Unit: "{item}", Data: sum(dp(1))},
		{Name: "nexus.store.errors", Unit: "{error}", Data: sum([]metricdata.DataPoint[int64]{
			dp(1, nexusotel.KeyOperation.String("get"), nexusotel.KeyErrorType.String("store.ErrUnavailable"), nexusotel.KeyRecoverable.Bool(false)),
			dp(1, nexusotel.KeyOperation.String("get"), nexusotel.KeyErrorType.String("store.ErrUnavailable"), nexusotel.KeyRecoverable.Bool(true)),
			// The failed push fails the run: counted once, as the Sync's error.
			dp(1, nexusotel.KeyOperation.String("sync"), nexusotel.KeyErrorType.String(syncType), nexusotel.KeyRecoverable.Bool(false)),
		}...)},
		{Name: "nexus.store.cache.entries", Unit: "{entry}", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
			dp(int64(live.CacheEntries)),
		}}},
		{Name: "nexus.store.pending.changes", Unit: "{change}", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
			dp(1),
		}}},
		{Name: "nexus.store.pending.oldest_age", Unit: "s", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{
			{Attributes: set()},
		}}},
		{Name: "nexus.store.sample_rate", Unit: "1", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{
			{Attributes: set(), Value: 1},
		}}},
	}

	got := collect(t, p.export)
	var names []string
	for _, w := range want {
		names = append(names, w.Name)
	}
	if g := slices.Sorted(maps.Keys(got)); !slices.Equal(g, slices.Sorted(slices.Values(names))) {
		t.Errorf("instruments %v, want %v", g, slices.Sorted(slices.Values(names)))
	}
	for _, w := range want {
		g, ok := got[w.Name]
		if !ok {
			continue
		}
		w.Description = g.Description // free text, not part of the contract
		opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
		switch w.Name {
		case "nexus.store.pending.oldest_age":
			age := g.Data.(metricdata.Gauge[float64]).DataPoints[0].Value
			if age <= 0 || age > time.Minute.Seconds() {
				t.Errorf("oldest pending age %vs, want a small positive number", age)
			}
			opts = append(opts, metricdatatest.IgnoreValue())
		default:
			g = countsOnly(g)
		}
		metricdatatest.AssertEqual(t, w, g, opts...)
	}
}

// countsOnly keeps the count and bounds of histogram data points and drops
// what depends on timing (sums, extrema, bucket counts), so that counts can
// be asserted exactly.
func countsOnly(m metricdata.Metrics) metricdata.Metrics {
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		return m
	}
	pts := make([]metricdata.HistogramDataPoint[float64], len(h.DataPoints))
	for i, dp := range h.DataPoints {
		pts[i] = metricdata.HistogramDataPoint[float64]{
			Attributes: dp.Attributes, StartTime: dp.StartTime, Time: dp.Time,
			Count: dp.Count, Bounds: dp.Bounds,
		}
	}
	h.DataPoints = pts
	m.Data = h
	return m
}

func TestDurationsInSeconds(t *testing.T) {
	p := newSDKPipeline(t, nil)
	s, b := newStore(t, "slow", p.rep)
	b.SetLatency(20 * time.Millisecond)
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	got := collect(t, p.export)
	for _, name := range []string{nexusotel.MetricOperationDuration, nexusotel.MetricBackendDuration} {
		h := got[name].Data.(metricdata.Histogram[float64])
		if len(h.DataPoints) != 1 {
			t.Fatalf("%s: %d points", name, len(h.DataPoints))
		}
		if v := h.DataPoints[0].Sum; v < 0.02 || v > 5 {
			t.Errorf("%s: sum %v, want seconds (>= 0.02)", name, v)
		}
	}
}

func TestWithAttributesRejectsReservedKeys(t *testing.T) {
	for _, kv := range []attribute.KeyValue{
		nexusotel.KeyStoreName.String("x"),
		attribute.String("nexus.tenant", "x"),
		attribute.String("error.type", "x"),
		attribute.String("", "x"),
	} {
		_, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(noop.NewMeterProvider()), nexusotel.WithAttributes(kv))
		if err == nil || !strings.HasPrefix(err.Error(), "nexusotel: WithAttributes") {
			t.Errorf("WithAttributes(%s=...) = %v, want an error naming WithAttributes", kv.Key, err)
		}
	}
	_, err := nexusotel.NewReporter(nexusotel.WithAttributes(attribute.String("a", "1"), attribute.String("a", "2")))
	if err == nil {
		t.Error("a repeated key was accepted")
	}
	if _, err := nexusotel.NewReporter(nexusotel.WithAttributes(attribute.String("tenant.tier", "gold"))); err != nil {
		t.Errorf("a custom key was refused: %v", err)
	}
}

func TestWithBuckets(t *testing.T) {
	if _, err := nexusotel.NewReporter(nexusotel.WithBuckets([]float64{1, 0.5})); err == nil {
		t.Error("decreasing boundaries accepted")
	}
	p := newSDKPipeline(t, nil, nexusotel.WithBuckets([]float64{0.001, 1}))
	s, _ := newStore(t, "b", p.rep)
	if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	h := collect(t, p.export)[nexusotel.MetricOperationDuration].Data.(metricdata.Histogram[float64])
	if got := h.DataPoints[0].Bounds; !slices.Equal(got, []float64{0.001, 1}) {
		t.Errorf("bounds %v", got)
	}
}

// A View on the provider overrides the advised boundaries.
func TestViewOverridesBuckets(t *testing.T) {
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: "nexus.store.*.duration"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: []float64{0.5}}})
	p := newSDKPipeline(t, []sdkmetric.Option{sdkmetric.WithView(view)})
	s, _ := newStore(t, "v", p.rep)
	if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	h := collect(t, p.export)[nexusotel.MetricOperationDuration].Data.(metricdata.Histogram[float64])
	if got := h.DataPoints[0].Bounds; !slices.Equal(got, []float64{0.5}) {
		t.Errorf("bounds %v", got)
	}
	st, err := p.rep.CollectStats(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	if h := st.Durations[store.OpSave]; !slices.Equal(h.Bounds, []time.Duration{500 * time.Millisecond}) || h.Count() != 1 {
		t.Errorf("stats histogram %+v", h)
	}
}

func TestGaugesUnregisteredOnClose(t *testing.T) {
	p := newSDKPipeline(t, nil)
	s, _ := newStore(t, "g", p.rep)
	if _, ok := collect(t, p.export)[nexusotel.MetricCacheEntries]; !ok {
		t.Fatal("no cache entries gauge while the store is open")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m, ok := collect(t, p.export)[nexusotel.MetricCacheEntries]; ok {
		t.Errorf("gauge still observed after Close: %+v", m)
	}
	if _, err := p.rep.CollectStats(context.Background(), "g"); err == nil {
		t.Error("CollectStats found a released store")
	}
}

// The cache-event counts a store made before Close reach the exporter's
// next collection (an application's final export runs after Close), and
// leave the one after; Stats' own collections in between change nothing.
func TestCacheCountsReachTheExportAfterClose(t *testing.T) {
	p := newSDKPipeline(t, nil)
	s, _ := newStore(t, "c", p.rep)
	ctx := context.Background()
	for range 3 {
		if _, err := s.Get(ctx, "missing"); !isNotFound(err) {
			t.Fatal(err)
		}
	}
	collect(t, p.export) // an export before the last calls
	if _, err := s.Get(ctx, "missing"); !isNotFound(err) {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s.Stats() // Stats' own collection must not use up the final observation
	m, ok := collect(t, p.export)[nexusotel.MetricCacheEvents]
	if !ok {
		t.Fatal("no cache events in the first export after Close")
	}
	misses := int64(0)
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value(nexusotel.KeyCacheEvent); v.AsString() == store.CacheMiss.String() {
			misses += dp.Value
		}
	}
	if misses != 4 {
		t.Errorf("the export after Close has %d misses, want 4", misses)
	}
	if m, ok := collect(t, p.export)[nexusotel.MetricCacheEvents]; ok {
		t.Errorf("the closed store's cache events still observed in the second export: %+v", m)
	}
}

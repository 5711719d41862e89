package nexusotel_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

// BenchmarkDurationDistribution measures the distributions that
// DefaultBuckets must resolve, through fine base-2 exponential histograms
// (scale 20, about 0.0001% wide buckets): a cache hit, a read-through of
// the memory backend, and reads and writes of the SQLite backend (a file in
// the test's directory). It reports the 1st, 50th and 99th percentiles
// (p01-ns, p50-ns, p99-ns). docs/telemetry.md has the figures measured.
func BenchmarkDurationDistribution(b *testing.B) {
	newRep := func(b *testing.B) *nexusotel.Reporter {
		sr := nexusotel.NewStatsReader()
		exp := sdkmetric.NewView(sdkmetric.Instrument{Name: "nexus.store.*"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 2000, MaxScale: 20}})
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr), sdkmetric.WithView(exp))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return mustReporter(b, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr), nexusotel.WithoutTracing())
	}
	report := func(b *testing.B, st store.StoreStats, op store.OperationType) {
		h := st.Durations[op]
		for _, q := range []float64{0.01, 0.5, 0.99} {
			b.ReportMetric(float64(h.Quantile(q).Nanoseconds()), fmt.Sprintf("p%02.0f-ns", q*100))
		}
	}
	ctx := context.Background()
	b.Run("cache_hit", func(b *testing.B) {
		s := cacheHitStore(b, newRep(b))
		for b.Loop() {
			if _, err := s.Get(ctx, "a"); err != nil {
				b.Fatal(err)
			}
		}
		report(b, s.Stats(), store.OpGet)
	})
	b.Run("memory_read_through", func(b *testing.B) {
		s, _ := newStore(b, "bench", newRep(b))
		for b.Loop() {
			s.InvalidateAll()
			if _, err := s.Get(ctx, "a"); !isNotFound(err) {
				b.Fatal(err)
			}
		}
		report(b, s.Stats(), store.OpGet)
	})
	sqliteStore := func(b *testing.B) *store.Store[item, string] {
		be, err := sqlite.Open[item, string](filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		s, err := store.New(be, store.Config[item, string]{IDOf: itemID, Name: "bench", MetricsReporter: newRep(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close(ctx) })
		return s
	}
	b.Run("sqlite_read_through", func(b *testing.B) {
		s := sqliteStore(b)
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			s.InvalidateAll()
			if _, err := s.Get(ctx, "a"); err != nil {
				b.Fatal(err)
			}
		}
		report(b, s.Stats(), store.OpGet)
	})
	b.Run("sqlite_save", func(b *testing.B) {
		s := sqliteStore(b)
		i := 0
		for b.Loop() {
			i++
			if _, err := s.Save(ctx, item{ID: fmt.Sprint(i % 100), N: i}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, s.Stats(), store.OpSave)
	})
}

// DefaultBuckets keep to the measured distributions with fewer series than
// the 22 boundaries they replaced: a cache hit (0.23-0.28µs measured) in
// the first bucket, and the boundaries increasing.
func TestDefaultBuckets(t *testing.T) {
	b := nexusotel.DefaultBuckets
	if len(b) >= 22 || len(b) < 10 {
		t.Errorf("%d boundaries", len(b))
	}
	if b[0] != 0.0000005 || b[len(b)-1] != 5 {
		t.Errorf("from %v to %v, want 0.5µs to 5s", b[0], b[len(b)-1])
	}
	if _, err := nexusotel.NewReporter(nexusotel.WithBuckets(b)); err != nil {
		t.Error(err)
	}
}

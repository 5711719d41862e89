package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func benchStore(tb testing.TB, cfg store.Config[User, string]) *store.Store[User, string] {
	tb.Helper()
	cfg.IDOf = userID
	s, err := store.New[User, string](memory.New[User, string](), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	for i := range 1000 {
		if _, err := s.Save(context.Background(), User{ID: fmt.Sprint("u", i), Age: i}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// A cache hit with the default config allocates nothing.
func TestGetHitDoesNotAllocate(t *testing.T) {
	for _, cfg := range []store.Config[User, string]{
		{},
		{MetricsReporter: store.NoOpMetricsReporter{}},
	} {
		s := benchStore(t, cfg)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := s.Get(ctx, "u42"); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("cache-hit Get allocates %v times per call, want 0", allocs)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		s := benchStore(b, store.Config[User, string]{})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Get(ctx, "u42")
		}
	})
	b.Run("hit_lru", func(b *testing.B) {
		s := benchStore(b, store.Config[User, string]{MaxCacheSize: 2000})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Get(ctx, "u42")
		}
	})
	b.Run("miss", func(b *testing.B) {
		s := benchStore(b, store.Config[User, string]{})
		b.ReportAllocs()
		for b.Loop() {
			s.Invalidate("u42")
			_, _ = s.Get(ctx, "u42")
		}
	})
	b.Run("hit_parallel", func(b *testing.B) {
		s := benchStore(b, store.Config[User, string]{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = s.Get(ctx, "u42")
			}
		})
	})
}

func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteCacheOnly} {
		b.Run(p.String(), func(b *testing.B) {
			s := benchStore(b, store.Config[User, string]{WritePolicy: p})
			u := User{ID: "u42"}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = s.Save(ctx, u)
			}
		})
	}
}

// BenchmarkMapRWMutex is the baseline a cache hit is compared with: a bare
// map behind a sync.RWMutex.
func BenchmarkMapRWMutex(b *testing.B) {
	var mu sync.RWMutex
	m := make(map[string]User)
	for i := range 1000 {
		m[fmt.Sprint("u", i)] = User{ID: fmt.Sprint("u", i)}
	}
	get := func(id string) (User, bool) {
		mu.RLock()
		defer mu.RUnlock()
		u, ok := m[id]
		return u, ok
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = get("u42")
		}
	})
	b.Run("hit_parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = get("u42")
			}
		})
	})
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			m["u42"] = User{ID: "u42"}
			mu.Unlock()
		}
	})
}

// nothing is a reporter that does nothing, without being the no-op reporter
// the store recognizes: the store's own side of the telemetry contract
// (sampling, clock reads, the calls) is what it costs over no-op.
type nothing struct{}

func (nothing) ReportOperation(context.Context, store.OperationMetric) {}
func (nothing) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (nothing) ReportSyncEvent(context.Context, store.SyncMetric)      {}
func (nothing) ReportError(context.Context, store.ErrorMetric)         {}
func (nothing) Flush(context.Context) error                            { return nil }

// BenchmarkGetHitReporter is a cache hit with the no-op reporter and with
// a reporter that does nothing: their difference is the store's own side
// of the telemetry contract.
func BenchmarkGetHitReporter(b *testing.B) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		rep  store.MetricsReporter
	}{{"noop", store.NoOpMetricsReporter{}}, {"nothing", nothing{}}} {
		b.Run(tt.name, func(b *testing.B) {
			s := benchStore(b, store.Config[User, string]{MetricsReporter: tt.rep})
			b.ReportAllocs()
			for b.Loop() {
				_, _ = s.Get(ctx, "u42")
			}
		})
	}
}

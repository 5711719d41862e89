package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

type item struct {
	ID   string
	Name string
}

// mapBackend is a minimal backend for internal tests.
type mapBackend struct{ m map[string]item }

func (b *mapBackend) Get(_ context.Context, id string) (item, error) {
	if it, ok := b.m[id]; ok {
		return it, nil
	}
	return item{}, ErrNotFound
}
func (b *mapBackend) GetAll(context.Context, Query[item]) ([]item, error) { return nil, nil }
func (b *mapBackend) Save(_ context.Context, id string, it item) (item, error) {
	b.m[id] = it
	return it, nil
}
func (b *mapBackend) Delete(_ context.Context, id string) (bool, error) {
	_, ok := b.m[id]
	delete(b.m, id)
	return ok, nil
}

type counting struct {
	NoOpMetricsReporter
	n atomic.Int64
}

func (c *counting) ReportOperation(context.Context, OperationMetric) { c.n.Add(1) }

func newInternal(t testing.TB, r MetricsReporter) (*Store[item, string], *atomic.Int64) {
	s, err := New[item, string](&mapBackend{m: map[string]item{"a": {ID: "a"}}}, Config[item, string]{
		IDOf: func(it item) string { return it.ID }, MetricsReporter: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	s.tel.now = func() time.Time { reads.Add(1); return time.Now() }
	s.tel.clk = s.tel.clk.Counting(&reads)
	if _, err := s.Get(context.Background(), "a"); err != nil { // fill the cache
		t.Fatal(err)
	}
	reads.Store(0)
	return s, &reads
}

// With the no-op reporter (or none) a cache hit reads no clock for
// telemetry; with a reporter it does, which shows the probe works.
func TestNoOpReadsNoClock(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		r         MetricsReporter
		wantReads bool
	}{
		{"nil", nil, false},
		{"NoOpMetricsReporter", NoOpMetricsReporter{}, false},
		{"pointer to NoOpMetricsReporter", &NoOpMetricsReporter{}, false},
		{"a real reporter", &counting{}, true},
	} {
		s, reads := newInternal(t, tc.r)
		for range 100 {
			if _, err := s.Get(ctx, "a"); err != nil {
				t.Fatal(err)
			}
		}
		if got := reads.Load() > 0; got != tc.wantReads {
			t.Errorf("%s: %d telemetry clock reads over 100 hits, want reads: %v", tc.name, reads.Load(), tc.wantReads)
		}
		if s.tel.on != tc.wantReads {
			t.Errorf("%s: instrumented = %v", tc.name, s.tel.on)
		}
		_ = s.Close(ctx)
	}
}

// BenchmarkGetHitNoOp compares a cache hit through the public Get with the
// no-op reporter against the same hit with instrumentation bypassed (the
// inner read called directly): the difference is the no-op path's cost.
func BenchmarkGetHitNoOp(b *testing.B) {
	ctx := context.Background()
	b.Run("noop", func(b *testing.B) {
		s, _ := newInternal(b, NoOpMetricsReporter{})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Get(ctx, "a")
		}
	})
	b.Run("no_reporter", func(b *testing.B) {
		s, _ := newInternal(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Get(ctx, "a")
		}
	})
	b.Run("bypassed", func(b *testing.B) {
		s, _ := newInternal(b, NoOpMetricsReporter{})
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = s.get(ctx, "a", FetchCacheFirst, nil)
		}
	})
	b.Run("counting_reporter", func(b *testing.B) {
		s, _ := newInternal(b, &counting{})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Get(ctx, "a")
		}
	})
}

// The store's side of an instrumented cache hit allocates nothing either
// (the operation lives on the caller's stack), with or without a policy
// option.
func TestInstrumentedGetHitDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	for _, r := range []MetricsReporter{nil, &counting{}} {
		s, _ := newInternal(t, r)
		for _, opts := range [][]ReadOption{nil, {WithFetchPolicy(FetchCacheOnly)}} {
			if n := testing.AllocsPerRun(1000, func() { _, _ = s.Get(ctx, "a", opts...) }); n != 0 {
				t.Errorf("reporter %T, %d options: %v allocations per cache hit, want 0", r, len(opts), n)
			}
		}
		_ = s.Close(ctx)
	}
}

package reporters

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
)

func TestStatsAccuracy(t *testing.T) {
	s := NewStats()
	ctx := context.Background()
	for _, d := range []time.Duration{time.Millisecond, 3 * time.Millisecond} {
		s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, Duration: d, Success: true, ItemCount: 1, SampleRate: 1})
	}
	s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpSave, Duration: 10 * time.Millisecond, Err: errUnavailable, SampleRate: 1})
	s.ReportOperation(ctx, store.OperationMetric{Operation: 200, Duration: time.Hour}) // unknown: ignored
	for _, ev := range []store.CacheEvent{store.CacheHit, store.CacheHit, store.CacheHit, store.CacheMiss, store.CacheEviction, 99} {
		s.ReportCacheEvent(ctx, store.CacheMetric{Event: ev, SampleRate: 1})
	}
	for _, m := range []store.SyncMetric{
		{Event: store.SyncStarted}, {Event: store.SyncCompleted, ItemsSynced: 5},
		{Event: store.SyncStarted}, {Event: store.SyncFailed, ItemsSynced: 2},
		{Event: store.SyncRetried, ItemsSynced: 100}, {Event: 99},
	} {
		s.ReportSyncEvent(ctx, m)
	}
	s.ReportError(ctx, store.ErrorMetric{Err: errUnavailable})
	s.ReportError(ctx, store.ErrorMetric{Err: errUnavailable, Recoverable: true})

	st := s.Stats()
	checks := []struct {
		name      string
		got, want any
	}{
		{"OperationCounts", st.OperationCounts, map[store.OperationType]int64{store.OpGet: 2, store.OpSave: 1}},
		{"TotalDurations", st.TotalDurations, map[store.OperationType]time.Duration{store.OpGet: 4 * time.Millisecond, store.OpSave: 10 * time.Millisecond}},
		{"AverageDurations", st.AverageDurations, map[store.OperationType]time.Duration{store.OpGet: 2 * time.Millisecond, store.OpSave: 10 * time.Millisecond}},
		{"FailureCounts", st.FailureCounts, map[store.OperationType]int64{store.OpSave: 1}},
		{"CacheEvents", st.CacheEvents, map[store.CacheEvent]int64{store.CacheHit: 3, store.CacheMiss: 1, store.CacheEviction: 1}},
		{"SyncEvents", st.SyncEvents, map[store.SyncEvent]int64{store.SyncStarted: 2, store.SyncCompleted: 1, store.SyncFailed: 1, store.SyncRetried: 1}},
		{"CacheHitRate", st.CacheHitRate, 0.75},
		{"SyncSuccessRate", st.SyncSuccessRate, 0.5},
		{"ErrorCount", st.ErrorCount, int64(2)},
		{"ItemsSynced", st.ItemsSynced, int64(7)},
		{"Estimated", st.Estimated, false},
	}
	for _, c := range checks {
		if !equalAny(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if st.Start.IsZero() || st.End.Before(st.Start) {
		t.Errorf("window %v..%v", st.Start, st.End)
	}
	h := st.Durations[store.OpGet]
	if h.Count() != 2 || len(h.Bounds) != 22 || h.Bounds[0] != time.Microsecond || h.Bounds[21] != 10*time.Second {
		t.Errorf("histogram %+v", h)
	}
	if _, ok := st.Durations[store.OpDelete]; ok {
		t.Error("a histogram for an operation that never ran")
	}
	// The caller owns the snapshot.
	h.Bounds[0] = 0
	if s.Stats().Durations[store.OpGet].Bounds[0] != time.Microsecond {
		t.Error("a snapshot shares its bounds")
	}
	if err := s.Flush(ctx); err != nil {
		t.Error(err)
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case map[store.OperationType]int64:
		return maps.Equal(a, b.(map[store.OperationType]int64))
	case map[store.OperationType]time.Duration:
		return maps.Equal(a, b.(map[store.OperationType]time.Duration))
	case map[store.CacheEvent]int64:
		return maps.Equal(a, b.(map[store.CacheEvent]int64))
	case map[store.SyncEvent]int64:
		return maps.Equal(a, b.(map[store.SyncEvent]int64))
	}
	return a == b
}

func TestStatsHistogram(t *testing.T) {
	s := NewStats()
	ctx := context.Background()
	durations := []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0}, {time.Microsecond, 0}, {time.Microsecond + 1, 1}, {2 * time.Microsecond, 1},
		{3 * time.Millisecond, 11}, {10 * time.Second, 21}, {10*time.Second + 1, 22}, {time.Hour, 22},
	}
	for _, d := range durations {
		s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, Duration: d.d, Success: true})
	}
	h := s.Stats().Durations[store.OpGet]
	want := make([]int64, 23)
	for _, d := range durations {
		want[d.bucket]++
	}
	for i := range want {
		if h.Counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", h.Counts, want)
		}
	}

	// Quantiles of a uniform load.
	s = NewStats()
	for i := range 1000 {
		s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpSave, Duration: time.Duration(i+1) * 10 * time.Microsecond, Success: true})
	}
	st := s.Stats()
	for _, q := range []struct {
		q        float64
		min, max time.Duration
	}{{0.5, 4 * time.Millisecond, 6 * time.Millisecond}, {0.99, 9 * time.Millisecond, 10 * time.Millisecond}} {
		if got := st.Quantile(store.OpSave, q.q); got < q.min || got > q.max {
			t.Errorf("p%v = %v, want within [%v, %v]", q.q*100, got, q.min, q.max)
		}
	}
}

func TestStatsExtrapolation(t *testing.T) {
	s := NewStats()
	ctx := context.Background()
	for range 7 {
		s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, Duration: time.Millisecond, Success: true, SampleRate: 0.1})
	}
	for range 3 {
		s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpSave, Duration: time.Millisecond, Err: errUnavailable, SampleRate: 0.3})
	}
	s.ReportCacheEvent(ctx, store.CacheMetric{Event: store.CacheHit, SampleRate: 0.25})
	s.ReportCacheEvent(ctx, store.CacheMetric{Event: store.CacheEviction, SampleRate: 1})
	s.ReportError(ctx, store.ErrorMetric{})
	s.ReportSyncEvent(ctx, store.SyncMetric{Event: store.SyncCompleted, ItemsSynced: 2})
	st := s.Stats()
	if !st.Estimated {
		t.Error("Estimated not set")
	}
	if st.OperationCounts[store.OpGet] != 70 || st.OperationCounts[store.OpSave] != 10 || st.FailureCounts[store.OpSave] != 10 {
		t.Errorf("counts %v failures %v, want get 70, save 10 (10 failed)", st.OperationCounts, st.FailureCounts)
	}
	if st.TotalDurations[store.OpGet] != 70*time.Millisecond || st.AverageDurations[store.OpGet] != time.Millisecond {
		t.Errorf("total %v average %v, want 70ms 1ms", st.TotalDurations[store.OpGet], st.AverageDurations[store.OpGet])
	}
	if st.Durations[store.OpGet].Count() != 70 {
		t.Errorf("histogram counts %d, want 70", st.Durations[store.OpGet].Count())
	}
	if st.CacheEvents[store.CacheHit] != 4 || st.CacheEvents[store.CacheEviction] != 1 || st.ErrorCount != 1 || st.ItemsSynced != 2 {
		t.Errorf("cache %v errors %d items %d", st.CacheEvents, st.ErrorCount, st.ItemsSynced)
	}
	// A window without sampled metrics is exact again.
	s.ResetStats()
	s.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, SampleRate: 1})
	if st := s.Stats(); st.Estimated || st.OperationCounts[store.OpGet] != 1 {
		t.Errorf("after reset: estimated %v, counts %v", st.Estimated, st.OperationCounts)
	}
}

// TestStatsResetUnderLoad resets while many goroutines report: every
// report lands in exactly one window.
func TestStatsResetUnderLoad(t *testing.T) {
	s := NewStats()
	child := s.Bind(store.StoreInfo{Name: "user"}).Reporter.(*Stats)
	const goroutines, perG = 8, 5000
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		windows []store.StoreStats
	)
	resetter := make(chan struct{})
	go func() {
		defer close(resetter)
		for !stop.Load() {
			windows = append(windows, child.ResetStats())
		}
	}()
	ctx := context.Background()
	for range goroutines {
		wg.Go(func() {
			for i := range perG {
				child.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, Duration: time.Duration(i), Success: i%2 == 0})
				child.ReportCacheEvent(ctx, store.CacheMetric{Event: store.CacheHit})
				child.ReportError(ctx, store.ErrorMetric{})
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	<-resetter
	windows = append(windows, child.ResetStats())
	var ops, fails, hits, errs, hist int64
	var total time.Duration
	for i, w := range windows {
		ops += w.OperationCounts[store.OpGet]
		fails += w.FailureCounts[store.OpGet]
		total += w.TotalDurations[store.OpGet]
		hits += w.CacheEvents[store.CacheHit]
		errs += w.ErrorCount
		hist += w.Durations[store.OpGet].Count()
		if i > 0 && !w.Start.Equal(windows[i-1].End) {
			t.Fatalf("window %d starts at %v, the previous ended at %v", i, w.Start, windows[i-1].End)
		}
	}
	const n = goroutines * perG
	wantTotal := time.Duration(goroutines * perG * (perG - 1) / 2)
	if ops != n || fails != n/2 || hits != n || errs != n || hist != n || total != wantTotal {
		t.Errorf("over %d windows: ops %d fails %d hits %d errors %d histogram %d total %v, want %d %d %d %d %d %v",
			len(windows), ops, fails, hits, errs, hist, total, n, n/2, n, n, n, wantTotal)
	}
	if st := s.Stats(); st.OperationCounts[store.OpGet] != n {
		t.Errorf("the parent counts %d, want %d: resetting a child must not reset it", st.OperationCounts[store.OpGet], n)
	}
}

func TestStatsBindSeparatesStores(t *testing.T) {
	root := NewStats()
	users, _ := newUserStore(t, root, func(c *store.Config[user, string]) { c.Name = "user" })
	admins, _ := newUserStore(t, root, func(c *store.Config[user, string]) { c.Name = "admin" })
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := users.Save(ctx, user{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admins.Save(ctx, user{ID: "root"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admins.Get(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admins.Get(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	us, as, all := users.Stats(), admins.Stats(), root.Stats()
	if us.OperationCounts[store.OpSave] != 3 || us.OperationCounts[store.OpGet] != 0 {
		t.Errorf("user store: %v", us.OperationCounts)
	}
	if as.OperationCounts[store.OpSave] != 1 || as.OperationCounts[store.OpGet] != 2 || as.CacheHitRate != 0.5 {
		t.Errorf("admin store: %v, hit rate %v", as.OperationCounts, as.CacheHitRate)
	}
	if all.OperationCounts[store.OpSave] != 4 || all.OperationCounts[store.OpGet] != 2 {
		t.Errorf("all stores: %v", all.OperationCounts)
	}
	if w := admins.ResetStats(); w.OperationCounts[store.OpGet] != 2 {
		t.Errorf("ResetStats window %v", w.OperationCounts)
	}
	if n := admins.Stats().OperationCounts[store.OpGet]; n != 0 {
		t.Errorf("after ResetStats the store counts %d gets", n)
	}
	if n := root.Stats().OperationCounts[store.OpGet]; n != 2 {
		t.Errorf("a store's ResetStats reset the shared Stats (%d gets)", n)
	}
}

func TestStatsReportAllocs(t *testing.T) {
	s := NewStats().Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	sampledOp := opGetHit
	sampledOp.SampleRate = 0.5
	allocs := testing.AllocsPerRun(1000, func() {
		s.ReportOperation(ctx, opGetHit)
		s.ReportOperation(ctx, sampledOp)
		s.ReportCacheEvent(ctx, cacheEviction)
		s.ReportSyncEvent(ctx, syncCompleted)
		s.ReportError(ctx, store.ErrorMetric{Err: errUnavailable})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per report, want 0", allocs)
	}
}

func BenchmarkStatsReportOperation(b *testing.B) {
	s := NewStats().Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.ReportOperation(ctx, opGetHit)
	}
}

func BenchmarkStatsReportOperationParallel(b *testing.B) {
	s := NewStats().Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.ReportOperation(ctx, opGetHit)
		}
	})
}

package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestStoreStatsThroughTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(10*time.Millisecond))
		f.seed(User{ID: "a"}, User{ID: "b"})
		_, _ = f.s.Get(bg, "a") // miss: 10ms
		_, _ = f.s.Get(bg, "a") // hit: 0 (fake time stands still)
		_, _ = f.s.Get(bg, "a") // hit
		_, _ = f.s.Get(bg, "b") // miss: 10ms
		_, _ = f.s.Save(bg, User{ID: "c"}, store.WithWritePolicy(store.WriteCacheFirst))
		_ = f.s.Sync(bg) // one push: 10ms
		f.b.SetUnavailable(true)
		_, _ = f.s.Save(bg, User{ID: "d"}) // fails after 10ms
		_, _ = f.s.Save(bg, User{ID: "e"}, store.WithWritePolicy(store.WriteCacheFirst))
		_ = f.s.Sync(bg) // fails: 3 attempts with 100ms, 200ms backoff
		st := f.s.Stats()

		wantCounts := map[store.OperationType]int64{store.OpGet: 4, store.OpSave: 3, store.OpSync: 2}
		for op, n := range wantCounts {
			if st.OperationCounts[op] != n {
				t.Errorf("count[%v] = %d, want %d", op, st.OperationCounts[op], n)
			}
		}
		if got := st.AverageDurations[store.OpGet]; got != 5*time.Millisecond {
			t.Errorf("average get = %v, want 5ms (two 10ms misses, two instant hits)", got)
		}
		if got := st.AverageDurations[store.OpSave]; got != 10*time.Millisecond/3 {
			t.Errorf("average save = %v, want 10ms/3", got)
		}
		if st.CacheHitRate != 0.5 {
			t.Errorf("hit rate = %v, want 0.5", st.CacheHitRate)
		}
		if st.SyncSuccessRate != 0.5 {
			t.Errorf("sync success rate = %v, want 0.5", st.SyncSuccessRate)
		}
		// Failed save; two retried attempts (recovered) and the failed sync.
		if st.ErrorCount != 4 {
			t.Errorf("errors = %d, want 4", st.ErrorCount)
		}
		if st.FailureCounts[store.OpSave] != 1 || st.FailureCounts[store.OpSync] != 1 || st.ItemsSynced != 1 {
			t.Errorf("failures %v, items synced %d", st.FailureCounts, st.ItemsSynced)
		}
		if st.CacheEvents[store.CacheHit] != 2 || st.CacheEvents[store.CacheMiss] != 2 || st.SyncEvents[store.SyncRetried] != 2 {
			t.Errorf("cache events %v, sync events %v", st.CacheEvents, st.SyncEvents)
		}

		closed := f.s.ResetStats()
		if closed.OperationCounts[store.OpGet] != 4 {
			t.Errorf("ResetStats returned %v", closed.OperationCounts)
		}
		if after := f.s.Stats(); after.OperationCounts[store.OpGet] != 0 || after.ErrorCount != 0 || after.CacheHitRate != 0 {
			t.Errorf("after reset: %+v", after)
		}
		f.b.SetUnavailable(false)
		if err := f.s.Close(bg); err != nil {
			t.Logf("close: %v", err) // e is still unsynced: expected
		}
	})
}

func TestStoreStatsSub(t *testing.T) {
	t0 := time.Unix(0, 0)
	prev := store.StoreStats{
		OperationCounts: map[store.OperationType]int64{store.OpGet: 10},
		TotalDurations:  map[store.OperationType]time.Duration{store.OpGet: 100 * time.Millisecond},
		CacheEvents:     map[store.CacheEvent]int64{store.CacheHit: 8, store.CacheMiss: 2},
		SyncEvents:      map[store.SyncEvent]int64{store.SyncCompleted: 1},
		ErrorCount:      1,
		Durations: map[store.OperationType]store.DurationHistogram{
			store.OpGet: {Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond}, Counts: []int64{5, 5, 0}},
		},
		Start: t0, End: t0.Add(time.Minute),
	}
	cur := store.StoreStats{
		OperationCounts: map[store.OperationType]int64{store.OpGet: 30, store.OpSave: 5},
		TotalDurations:  map[store.OperationType]time.Duration{store.OpGet: 500 * time.Millisecond, store.OpSave: 50 * time.Millisecond},
		CacheEvents:     map[store.CacheEvent]int64{store.CacheHit: 18, store.CacheMiss: 12},
		SyncEvents:      map[store.SyncEvent]int64{store.SyncCompleted: 2, store.SyncFailed: 2},
		ErrorCount:      4,
		Durations: map[store.OperationType]store.DurationHistogram{
			store.OpGet: {Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond}, Counts: []int64{5, 15, 10}},
		},
		Start: t0, End: t0.Add(2 * time.Minute),
	}
	d := cur.Sub(prev)
	if d.OperationCounts[store.OpGet] != 20 || d.OperationCounts[store.OpSave] != 5 {
		t.Errorf("counts %v", d.OperationCounts)
	}
	if d.AverageDurations[store.OpGet] != 20*time.Millisecond || d.AverageDurations[store.OpSave] != 10*time.Millisecond {
		t.Errorf("averages %v", d.AverageDurations)
	}
	if d.CacheHitRate != 0.5 || d.SyncSuccessRate != 1.0/3 || d.ErrorCount != 3 {
		t.Errorf("hit rate %v, sync rate %v, errors %d", d.CacheHitRate, d.SyncSuccessRate, d.ErrorCount)
	}
	if !d.Start.Equal(prev.End) || !d.End.Equal(cur.End) {
		t.Errorf("window %v..%v", d.Start, d.End)
	}
	h := d.Durations[store.OpGet]
	if h.Count() != 20 {
		t.Fatalf("histogram %v", h)
	}
	// 0 in the first bucket, 10 in (1ms,10ms], 10 above: the median is the
	// top of the second bucket, the 25th percentile halfway through it.
	if q := d.Quantile(store.OpGet, 0.5); q != 10*time.Millisecond {
		t.Errorf("p50 = %v", q)
	}
	if q := d.Quantile(store.OpGet, 0.25); q != 5500*time.Microsecond {
		t.Errorf("p25 = %v", q)
	}
	if q := d.Quantile(store.OpGet, 0.99); q != 10*time.Millisecond {
		t.Errorf("p99 (overflow bucket) = %v", q)
	}
	var zero store.StoreStats
	if zero.Quantile(store.OpGet, 0.5) != 0 || (store.DurationHistogram{}).Quantile(0.5) != 0 {
		t.Error("empty quantile is not 0")
	}
}

// Reset windows under concurrent load: every operation lands in exactly one
// window.
func TestResetStatsUnderLoad(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a"})
	var done atomic.Bool
	var ops atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				_, _ = f.s.Get(context.Background(), "a")
				ops.Add(1)
			}
		}()
	}
	var windows int64
	for range 200 {
		windows += f.s.ResetStats().OperationCounts[store.OpGet]
	}
	done.Store(true)
	wg.Wait()
	windows += f.s.ResetStats().OperationCounts[store.OpGet]
	if windows != ops.Load() {
		t.Errorf("windows add up to %d operations, %d were made", windows, ops.Load())
	}
}

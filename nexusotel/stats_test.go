package nexusotel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
)

// The figures of the scripted workload, counted by hand from its comments.
func TestStatsOfScriptedWorkload(t *testing.T) {
	configs := []struct {
		name string
		rep  func(t *testing.T) *nexusotel.Reporter
	}{
		{"defaults: global provider and private stats", func(t *testing.T) *nexusotel.Reporter {
			rep, err := nexusotel.NewReporter()
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}},
		{"user provider and private stats", func(t *testing.T) *nexusotel.Reporter {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp))
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}},
		{"user provider with a stats reader", func(t *testing.T) *nexusotel.Reporter {
			return newSDKPipeline(t, nil).rep
		}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			s, _ := workload(t, c.rep(t))
			st := s.Stats()
			if errs := takeStatsErrors(); len(errs) > 0 {
				t.Fatalf("Stats reported errors: %v", errs)
			}
			wantCounts := map[store.OperationType]int64{store.OpSave: 3, store.OpGet: 6, store.OpSync: 2}
			equalMaps(t, "OperationCounts", st.OperationCounts, wantCounts)
			equalMaps(t, "FailureCounts", st.FailureCounts, map[store.OperationType]int64{store.OpGet: 1, store.OpSync: 1})
			equalMaps(t, "CacheEvents", st.CacheEvents, map[store.CacheEvent]int64{
				store.CacheWrite: 3, store.CacheHit: 4, store.CacheMiss: 2, store.CacheInvalidation: 1,
			})
			equalMaps(t, "SyncEvents", st.SyncEvents, map[store.SyncEvent]int64{
				store.SyncStarted: 2, store.SyncCompleted: 1, store.SyncFailed: 1,
			})
			if st.CacheHitRate != 4.0/6 {
				t.Errorf("CacheHitRate %v, want 4/6", st.CacheHitRate)
			}
			if st.SyncSuccessRate != 0.5 {
				t.Errorf("SyncSuccessRate %v, want 0.5", st.SyncSuccessRate)
			}
			if st.ErrorCount != 3 || st.ItemsSynced != 1 {
				t.Errorf("ErrorCount %d, ItemsSynced %d; want 3, 1", st.ErrorCount, st.ItemsSynced)
			}
			if st.Estimated {
				t.Error("Estimated set at full sampling")
			}
			for op, n := range wantCounts {
				if got := st.Durations[op].Count(); got != n {
					t.Errorf("Durations[%v].Count() = %d, want %d", op, got, n)
				}
				if st.TotalDurations[op] <= 0 || st.AverageDurations[op] != st.TotalDurations[op]/time.Duration(n) {
					t.Errorf("%v: total %v, average %v", op, st.TotalDurations[op], st.AverageDurations[op])
				}
				if q := st.Quantile(op, 0.99); q <= 0 || q > time.Second {
					t.Errorf("%v: p99 %v", op, q)
				}
			}
			if st.Start.Before(start) || st.End.Before(st.Start) || st.End.After(time.Now()) {
				t.Errorf("window %v..%v, test started %v", st.Start, st.End, start)
			}
		})
	}
}

func equalMaps[K comparable](t *testing.T, what string, got, want map[K]int64) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Stats and the exported data agree: a ManualReader standing for an
// exporter sees the same counts as Stats.
func TestStatsAgreeWithExport(t *testing.T) {
	p := newSDKPipeline(t, nil)
	s, _ := workload(t, p.rep)
	st := s.Stats()
	got := collect(t, p.export)

	perOp := make(map[store.OperationType]int64)
	failed := make(map[store.OperationType]int64)
	for _, dp := range got[nexusotel.MetricOperationDuration].Data.(metricdata.Histogram[float64]).DataPoints {
		v, _ := dp.Attributes.Value(nexusotel.KeyOperation)
		op := opByName(t, v.AsString())
		perOp[op] += int64(dp.Count)
		if dp.Attributes.HasValue(nexusotel.KeyErrorType) {
			failed[op] += int64(dp.Count)
		}
	}
	equalMaps(t, "exported operation counts vs Stats", perOp, st.OperationCounts)
	equalMaps(t, "exported failures vs Stats", failed, st.FailureCounts)

	events := make(map[store.CacheEvent]int64)
	for _, dp := range got[nexusotel.MetricCacheEvents].Data.(metricdata.Sum[int64]).DataPoints {
		v, _ := dp.Attributes.Value(nexusotel.KeyCacheEvent)
		for ev := store.CacheHit; ev.Valid(); ev++ {
			if ev.String() == v.AsString() {
				events[ev] += dp.Value
			}
		}
	}
	equalMaps(t, "exported cache events vs Stats", events, st.CacheEvents)

	var errs int64
	for _, dp := range got[nexusotel.MetricErrors].Data.(metricdata.Sum[int64]).DataPoints {
		errs += dp.Value
	}
	if errs != st.ErrorCount {
		t.Errorf("exported errors %d, Stats %d", errs, st.ErrorCount)
	}
}

func opByName(t *testing.T, name string) store.OperationType {
	for op := store.OpGet; op.Valid(); op++ {
		if op.String() == name {
			return op
		}
	}
	t.Fatalf("unknown operation %q", name)
	return 0
}

// Windows under concurrent load: workers run operations while ResetStats
// closes windows; every operation is in exactly one window.
func TestResetStatsUnderConcurrentLoad(t *testing.T) {
	rep, err := nexusotel.NewReporter()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "load", rep)
	ctx := context.Background()
	if _, err := s.Save(ctx, item{ID: "hot"}); err != nil {
		t.Fatal(err)
	}
	first := s.ResetStats() // the Save above
	if first.OperationCounts[store.OpSave] != 1 {
		t.Fatalf("first window %v", first.OperationCounts)
	}

	const workers, perWorker = 8, 300
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				var err error
				if i%5 == 0 {
					_, err = s.Save(ctx, item{ID: fmt.Sprintf("w%d-%d", w, i)})
				} else {
					_, err = s.Get(ctx, "hot")
				}
				if err != nil {
					t.Error(err)
					return
				}
				done.Add(1)
			}
		})
	}
	var windows []store.StoreStats
	stop := make(chan struct{})
	resetDone := make(chan struct{})
	go func() {
		defer close(resetDone)
		for {
			select {
			case <-stop:
				return
			default:
				windows = append(windows, s.ResetStats())
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-resetDone
	windows = append(windows, s.Stats())

	var ops, hits int64
	prevEnd := first.End
	for i, w := range windows {
		for op, n := range w.OperationCounts {
			if n < 0 {
				t.Errorf("window %d: negative count %d for %v", i, n, op)
			}
			ops += n
		}
		hits += w.CacheEvents[store.CacheHit]
		if !w.Start.Equal(prevEnd) {
			t.Errorf("window %d starts at %v, the previous ended at %v", i, w.Start, prevEnd)
		}
		prevEnd = w.End
	}
	if ops != done.Load() {
		t.Errorf("the %d windows count %d operations, %d were done", len(windows), ops, done.Load())
	}
	if want := int64(workers * perWorker * 4 / 5); hits != want {
		t.Errorf("the windows count %d hits, want %d", hits, want)
	}
	t.Logf("%d windows", len(windows))
}

// With SampleRate 0.1, Stats extrapolates: the estimated count of 20000
// operations is within 5 standard deviations of the truth, and the rate is
// exported.
func TestSampledExtrapolation(t *testing.T) {
	const n, rate = 20000, 0.1
	p := newSDKPipeline(t, nil)
	s, _ := newStore(t, "sampled", p.rep, func(c *store.Config[item, string]) { c.Metrics.SampleRate = rate })
	ctx := context.Background()
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	s.Invalidate("a") // never sampled: counted exactly
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	s.ResetStats()
	for range n {
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	s.Invalidate("a")
	st := s.Stats()
	if !st.Estimated {
		t.Error("Estimated not set under sampling")
	}
	// Each sampled Get stands for 1/rate: the estimate is k/rate with k
	// binomial(n, rate), whose standard deviation is sqrt(n(1-rate)/rate).
	bound := 5 * math.Sqrt(n*(1-rate)/rate)
	for what, got := range map[string]int64{
		"gets": st.OperationCounts[store.OpGet],
		"hits": st.CacheEvents[store.CacheHit],
	} {
		if math.Abs(float64(got-n)) > bound {
			t.Errorf("estimated %s %d, want %d ± %.0f", what, got, n, bound)
		}
	}
	if got := st.CacheEvents[store.CacheInvalidation]; got != 1 {
		t.Errorf("invalidations %d, want exactly 1 (never sampled, never scaled)", got)
	}
	if st.CacheHitRate != 1 {
		t.Errorf("hit rate %v", st.CacheHitRate)
	}
	g := collect(t, p.export)[nexusotel.MetricSampleRate].Data.(metricdata.Gauge[float64])
	if len(g.DataPoints) != 1 || g.DataPoints[0].Value != rate {
		t.Errorf("sample rate gauge %+v, want %v", g.DataPoints, rate)
	}
}

// Two stores on one provider are kept apart by nexus.store.name.
func TestTwoStoresOnOneProvider(t *testing.T) {
	for _, private := range []bool{false, true} {
		t.Run(fmt.Sprintf("private=%v", private), func(t *testing.T) {
			var rep *nexusotel.Reporter
			if private {
				var err error
				if rep, err = nexusotel.NewReporter(); err != nil {
					t.Fatal(err)
				}
			} else {
				rep = newSDKPipeline(t, nil).rep
			}
			ctx := context.Background()
			a, _ := newStore(t, "a", rep)
			b, _ := newStore(t, "b", rep)
			for i := range 3 {
				if _, err := a.Save(ctx, item{ID: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			for range 5 {
				if _, err := b.Get(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
			}
			sa, sb := a.Stats(), b.Stats()
			equalMaps(t, "a", sa.OperationCounts, map[store.OperationType]int64{store.OpSave: 3})
			equalMaps(t, "b", sb.OperationCounts, map[store.OperationType]int64{store.OpGet: 5})
			equalMaps(t, "a cache", sa.CacheEvents, map[store.CacheEvent]int64{store.CacheWrite: 3})
			equalMaps(t, "b cache", sb.CacheEvents, map[store.CacheEvent]int64{store.CacheMiss: 5})
			b.ResetStats()
			if got := a.Stats().OperationCounts[store.OpSave]; got != 3 {
				t.Errorf("resetting b changed a: %d saves", got)
			}
			viaName, err := rep.CollectStats(ctx, "b")
			if err != nil || len(viaName.OperationCounts) != 0 {
				t.Errorf("CollectStats(b) after reset = %v, %v", viaName.OperationCounts, err)
			}
		})
	}
}

// A View selecting base-2 exponential histograms: Stats reads them, across
// windows whose scales differ.
func TestExponentialHistograms(t *testing.T) {
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
	p := newSDKPipeline(t, []sdkmetric.Option{sdkmetric.WithView(view)})
	s, b := newStore(t, "exp", p.rep)
	ctx := context.Background()
	if _, ok := collect(t, p.export)[nexusotel.MetricOperationDuration]; ok {
		t.Fatal("data before any operation")
	}
	if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	for range 50 { // fast: cache hits
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := collect(t, p.export)[nexusotel.MetricOperationDuration].Data.(metricdata.ExponentialHistogram[float64]); !ok {
		t.Fatal("the View did not apply")
	}
	w1 := s.ResetStats()
	if got := w1.Durations[store.OpGet].Count(); got != 50 {
		t.Errorf("first window: %d gets in the histogram, want 50", got)
	}
	if q := w1.Quantile(store.OpGet, 0.5); q <= 0 || q > 10*time.Millisecond {
		t.Errorf("median cache hit %v", q)
	}

	b.SetLatency(2 * time.Millisecond) // slow: misses read through, forcing a coarser scale
	for i := range 10 {
		if _, err := s.Get(ctx, fmt.Sprint("absent", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	w2, err := p.rep.CollectStats(ctx, "exp")
	if err != nil {
		t.Fatal(err)
	}
	h := w2.Durations[store.OpGet]
	if h.Count() != 10 || w2.OperationCounts[store.OpGet] != 10 {
		t.Fatalf("second window: histogram %d, count %d, want 10", h.Count(), w2.OperationCounts[store.OpGet])
	}
	for i, c := range h.Counts {
		if c < 0 {
			t.Errorf("bucket %d: %d", i, c)
		}
	}
	if q := h.Quantile(0.5); q < 2*time.Millisecond*9/10 || q > time.Second {
		t.Errorf("median of 2ms reads %v", q)
	}
}

// A View that removes what Stats needs gives a clear error, not a wrong
// number.
func TestViewsThatBreakStats(t *testing.T) {
	scope := sdkmetric.Instrument{Name: "nexus.store.*"}
	cases := []struct {
		name string
		view sdkmetric.View
		want string
		// counted: the operation counts survive (only failures are lost)
		counted bool
	}{
		{"store name filtered", sdkmetric.NewView(scope, sdkmetric.Stream{
			AttributeFilter: attribute.NewDenyKeysFilter(nexusotel.KeyStoreName),
		}), "lack the nexus.store.name attribute", false},
		{"operation filtered", sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration}, sdkmetric.Stream{
			AttributeFilter: attribute.NewDenyKeysFilter(nexusotel.KeyOperation),
		}), "lack the nexus.store.operation attribute", false},
		{"histogram dropped", sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration}, sdkmetric.Stream{
			Aggregation: sdkmetric.AggregationDrop{},
		}), "a View dropped or renamed it", false},
		{"error type filtered", sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration}, sdkmetric.Stream{
			AttributeFilter: attribute.NewDenyKeysFilter(nexusotel.KeyErrorType),
		}), "failures cannot be counted", true},
		{"histogram renamed", sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration}, sdkmetric.Stream{
			Name: "store.latency",
		}), "dropped or renamed", false},
		{"histogram made a sum", sdkmetric.NewView(sdkmetric.Instrument{Name: nexusotel.MetricOperationDuration}, sdkmetric.Stream{
			Aggregation: sdkmetric.AggregationSum{},
		}), "Stats needs a histogram", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newSDKPipeline(t, []sdkmetric.Option{sdkmetric.WithView(c.view)})
			s, b := newStore(t, "users", p.rep)
			if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
				t.Fatal(err)
			}
			b.FailNext(1, nil)
			if _, err := s.Save(context.Background(), item{ID: "b"}); err == nil {
				t.Fatal("no failure")
			}
			st, err := p.rep.CollectStats(context.Background(), "users")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "nexusotel: stats: ") {
				t.Fatalf("CollectStats error %v, want one containing %q", err, c.want)
			}
			if n := st.OperationCounts[store.OpSave]; (c.counted && n != 2) || (!c.counted && n != 0) {
				t.Errorf("%d saves", n)
			}
			otelErrors.Take()
			s.Stats()
			if errs := takeStatsErrors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
				t.Errorf("Stats handed %v to otel.Handle", errs)
			}
		})
	}
}

func TestStatsReaderNotRegistered(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(nexusotel.NewStatsReader()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rep.CollectStats(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("error %v", err)
	}
}

// A StatsReader aggregates deltas whatever its options say, and counts
// what a caller's own Collect takes; a StatsReader not made by
// NewStatsReader is refused.
func TestStatsReaderCountsEveryDelta(t *testing.T) {
	cumulative := sdkmetric.WithTemporalitySelector(sdkmetric.CumulativeTemporalitySelector)
	sr := nexusotel.NewStatsReader(cumulative)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t, "c", rep)
	for range 2 {
		if _, err := s.Save(context.Background(), item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		var rm metricdata.ResourceMetrics
		if err := sr.Collect(context.Background(), &rm); err != nil { // the caller's own collection
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if h, ok := m.Data.(metricdata.Histogram[float64]); ok && h.Temporality != metricdata.DeltaTemporality {
					t.Errorf("%s: %v temporality", m.Name, h.Temporality)
				}
			}
		}
	}
	if got := s.Stats().OperationCounts[store.OpSave]; got != 2 {
		t.Errorf("saves %d, want 2", got)
	}
	hand := &nexusotel.StatsReader{ManualReader: sdkmetric.NewManualReader()}
	if _, err := nexusotel.NewReporter(nexusotel.WithStatsReader(hand)); err == nil || !strings.Contains(err.Error(), "NewStatsReader") {
		t.Errorf("a hand-made StatsReader: %v", err)
	}
}

// Called directly, a Reporter reports for an unnamed store.
func TestUnboundReporter(t *testing.T) {
	rep, err := nexusotel.NewReporter()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep.ReportOperation(ctx, store.OperationMetric{Operation: store.OpGet, Success: true, Duration: time.Millisecond, CacheResult: store.CacheResultHit, Policy: store.FetchCacheFirst.Policy(), SampleRate: 1})
	rep.ReportOperation(ctx, store.OperationMetric{Operation: store.OpSave, Err: errBoom, Duration: time.Millisecond, SampleRate: 1})
	rep.ReportCacheEvent(ctx, store.CacheMetric{Event: store.CacheHit, SampleRate: 1})
	rep.ReportSyncEvent(ctx, store.SyncMetric{Event: store.SyncCompleted, ItemsSynced: 2})
	rep.ReportError(ctx, store.ErrorMetric{Err: errBoom, Operation: store.OpSave})
	if err := rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := rep.Stats()
	equalMaps(t, "OperationCounts", st.OperationCounts, map[store.OperationType]int64{store.OpGet: 1, store.OpSave: 1})
	equalMaps(t, "FailureCounts", st.FailureCounts, map[store.OperationType]int64{store.OpSave: 1})
	if st.AverageDurations[store.OpGet] != time.Millisecond || st.ErrorCount != 1 || st.ItemsSynced != 2 || st.CacheHitRate != 1 {
		t.Errorf("stats %+v", st)
	}
	if w := rep.ResetStats(); w.OperationCounts[store.OpGet] != 1 {
		t.Errorf("window %v", w.OperationCounts)
	}
	if st, err := rep.CollectStats(ctx, ""); err != nil || len(st.OperationCounts) != 0 {
		t.Errorf("after reset: %v, %v", st.OperationCounts, err)
	}
}

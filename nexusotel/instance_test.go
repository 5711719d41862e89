package nexusotel_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// statsConfigs are the two places Stats reads from: the reporter's
// private pipeline, and a StatsReader on the caller's provider.
var statsConfigs = []struct {
	name string
	rep  func(t *testing.T) *nexusotel.Reporter
}{
	{"private pipeline", func(t *testing.T) *nexusotel.Reporter { return mustReporter(t, nexusotel.WithoutTracing()) }},
	{"caller's StatsReader", func(t *testing.T) *nexusotel.Reporter { return newSDKPipeline(t, nil).rep }},
}

// openStore is newStore without the cleanup, for stores a test closes.
func openStore(t testing.TB, name string, rep store.MetricsReporter) (*store.Store[item, string], error) {
	return store.New(memory.New[item, string](), store.Config[item, string]{IDOf: itemID, Name: name, MetricsReporter: rep})
}

// Issue 10, item 1: a store re-created under the name of a closed one
// starts at zero, whatever the provider's cumulative series remember.
func TestNewStoreOfClosedNameStartsAtZero(t *testing.T) {
	for _, c := range statsConfigs {
		t.Run(c.name, func(t *testing.T) {
			rep := c.rep(t)
			ctx := context.Background()
			old, err := openStore(t, "users", rep)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if _, err := old.Save(ctx, item{ID: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := old.Get(ctx, "0"); err != nil {
				t.Fatal(err)
			}
			if err := old.Close(ctx); err != nil {
				t.Fatal(err)
			}
			// Stats still works after Close, with the store's last figures.
			if got := old.Stats().OperationCounts[store.OpSave]; got != 5 {
				t.Errorf("closed store: %d saves, want 5", got)
			}

			s, _ := newStore(t, "users", rep)
			if st := s.Stats(); len(st.OperationCounts) != 0 || st.CacheHitRate != 0 || len(st.CacheEvents) != 0 {
				t.Errorf("a new store inherits %v, hit rate %v, cache events %v", st.OperationCounts, st.CacheHitRate, st.CacheEvents)
			}
			if _, err := s.Get(ctx, "x"); !isNotFound(err) {
				t.Fatal(err)
			}
			st := s.Stats()
			equalMaps(t, "OperationCounts", st.OperationCounts, map[store.OperationType]int64{store.OpGet: 1})
			if st.CacheHitRate != 0 {
				t.Errorf("hit rate %v, want 0 (one miss)", st.CacheHitRate)
			}
			if errs := takeStatsErrors(); len(errs) > 0 {
				t.Errorf("Stats errors: %v", errs)
			}
		})
	}
}

// Issue 10, item 1: two live stores of one name on one StatsReader would
// mix; the second is refused with an error that says why, through the same
// reporter or another one on the reader.
func TestSameNameOnOneStatsReaderIsRefused(t *testing.T) {
	p := newSDKPipeline(t, nil)
	other, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(p.mp), nexusotel.WithStatsReader(p.stats), nexusotel.WithoutTracing())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := newStore(t, "users", p.rep)
	for _, rep := range []*nexusotel.Reporter{p.rep, other} {
		s, err := openStore(t, "users", rep)
		if err == nil {
			s.Close(context.Background())
			t.Fatal("a second live store named users was accepted")
		}
		if !strings.Contains(err.Error(), `store named "users" is already bound`) || !strings.Contains(err.Error(), "store.Config.Name") {
			t.Errorf("error %q does not say what is wrong and what to do", err)
		}
	}
	// The refusal left the first store's binding alone; another name is fine.
	if _, err := first.Save(context.Background(), item{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if got := first.Stats().OperationCounts[store.OpSave]; got != 1 {
		t.Errorf("first store: %d saves", got)
	}
	newStore(t, "orders", other)
}

// Issue 10, item 2: the series of closed stores leave the StatsReader, so
// a collection holds what the live stores recorded, however many stores
// came and went. The one exception is the first collection after a close
// that is not Stats' own: it still observes the closed stores' cache-event
// counts, once, so that an exporter's final export has them.
func TestClosedStoresLeaveTheStatsReader(t *testing.T) {
	p := newSDKPipeline(t, nil)
	live, _ := newStore(t, "live", p.rep)
	ctx := context.Background()
	churn := func(n int) {
		for i := range n {
			s, err := openStore(t, fmt.Sprintf("tenant-%d", i), p.rep)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "a"); !isNotFound(err) {
				t.Fatal(err)
			}
			if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
				t.Fatal(err)
			}
			s.Stats()
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	churn(300)
	if _, err := live.Get(ctx, "a"); !isNotFound(err) {
		t.Fatal(err)
	}
	collect := func() (names, cacheOnly map[string]bool) {
		var rm metricdata.ResourceMetrics
		if err := p.stats.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		names, other := map[string]bool{}, map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				forEachPoint(m, func(name string) {
					names[name] = true
					if m.Name != nexusotel.MetricCacheEvents {
						other[name] = true
					}
				})
			}
		}
		return names, other
	}
	first, other := collect()
	if len(first) != 301 {
		t.Errorf("the first collection after the closes has the cache-event counts of %d stores, want the 300 closed ones and the live one", len(first))
	}
	if len(other) != 1 || !other["live"] {
		t.Errorf("the StatsReader holds the series of %d stores (%v) besides their cache-event counts, want only the live one", len(other), keys(other))
	}
	if second, _ := collect(); len(second) != 1 || !second["live"] {
		t.Errorf("the StatsReader still holds the series of %d stores (%v), want only the live one", len(second), keys(second))
	}
}

// forEachPoint calls f with the store name of each data point of m.
func forEachPoint(m metricdata.Metrics, f func(store string)) {
	switch d := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			v, _ := dp.Attributes.Value(nexusotel.KeyStoreName)
			f(v.AsString())
		}
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			v, _ := dp.Attributes.Value(nexusotel.KeyStoreName)
			f(v.AsString())
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
		if len(out) == 5 {
			return append(out, "...")
		}
	}
	return out
}

// Issue 10, item 2: the cost of Stats does not grow with the stores that
// came and went (measured as allocations, which follow the data points a
// collection copies), in both places Stats reads from.
func TestStatsCostFlatAfterClosedStores(t *testing.T) {
	for _, c := range statsConfigs {
		t.Run(c.name, func(t *testing.T) {
			rep := c.rep(t)
			ctx := context.Background()
			s, _ := newStore(t, "live", rep)
			measure := func() float64 {
				return testing.AllocsPerRun(20, func() {
					if _, err := s.Get(ctx, "a"); !isNotFound(err) {
						t.Fatal(err)
					}
					s.Stats()
				})
			}
			before := measure()
			for i := range 300 {
				o, err := openStore(t, fmt.Sprintf("tenant-%d", i), rep)
				if err != nil {
					t.Fatal(err)
				}
				for j := range 3 {
					if _, err := o.Save(ctx, item{ID: fmt.Sprint(j)}); err != nil {
						t.Fatal(err)
					}
				}
				if err := o.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s.Stats() // the collection that lets the closed stores go
			after := measure()
			t.Logf("allocations per Get+Stats: %v before, %v after 300 closed stores", before, after)
			if after > before+2 {
				t.Errorf("Stats allocates %v times after 300 closed stores, %v before", after, before)
			}
		})
	}
}

// Issue 10, item 2: Stats runs the observable callbacks other libraries
// registered on the caller's provider only when it must collect: not for
// a store that recorded nothing since, and at most once per
// WithStatsMaxAge for a busy one.
func TestStatsRunsForeignCallbacksOnlyWhenNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := nexusotel.NewStatsReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr))
		defer mp.Shutdown(context.Background())
		var calls atomic.Int64
		_, err := mp.Meter("other.library").Int64ObservableGauge("other.gauge",
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				calls.Add(1)
				o.Observe(1)
				return nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr),
			nexusotel.WithStatsMaxAge(time.Second), nexusotel.WithoutTracing())
		if err != nil {
			t.Fatal(err)
		}
		s, _ := newStore(t, "users", rep)
		ctx := context.Background()
		if _, err := s.Save(ctx, item{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		s.Stats()
		for range 10 { // idle: no collection
			s.Stats()
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("11 Stats of an idle store ran the foreign callback %d times, want 1", n)
		}
		for range 10 { // busy, within the max age: no collection
			if _, err := s.Get(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			s.Stats()
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("10 Stats within WithStatsMaxAge ran the foreign callback %d more times, want 0", n-1)
		}
		time.Sleep(time.Second) // fake time: the collection is now a second old
		if got := s.Stats().OperationCounts[store.OpGet]; got != 10 || calls.Load() != 2 {
			t.Errorf("after the max age: %d gets (want 10), %d callback runs (want 2)", got, calls.Load())
		}
		s.Close(ctx)
	})
}

package store_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// step is one scripted action and the exact metrics it must produce.
type step struct {
	name string
	do   func(f *fixture) error
	want []string
}

func runSteps(t *testing.T, f *fixture, steps []step) {
	t.Helper()
	for _, st := range steps {
		f.rec.Reset()
		_ = st.do(f)
		if got := f.rec.Sequence(); !slices.Equal(got, st.want) {
			t.Errorf("%s:\n got  %q\n want %q", st.name, got, st.want)
		}
	}
}

var bg = context.Background()

func get(id string, opts ...store.ReadOption) func(*fixture) error {
	return func(f *fixture) error { _, err := f.s.Get(bg, id, opts...); return err }
}

func save(u User, opts ...store.WriteOption) func(*fixture) error {
	return func(f *fixture) error { _, err := f.s.Save(bg, u, opts...); return err }
}

func TestMetricsReads(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a"}, User{ID: "b"}, User{ID: "c"})
	nf := store.WithFetchPolicy(store.FetchNetworkFirst)
	runSteps(t, f, []step{
		{"miss", get("a"), []string{"cache:miss", "cache:write", "get[cache_first] miss ok n=1"}},
		{"hit", get("a"), []string{"cache:hit", "get[cache_first] hit ok n=1"}},
		{"absent is a success with no item", get("zz"), []string{"cache:miss", "get[cache_first] miss ok n=0"}},
		{"cache only miss", get("b", store.WithFetchPolicy(store.FetchCacheOnly)), []string{"cache:miss", "get[cache_only] miss ok n=0"}},
		{"network only: no hit or miss", get("a", store.WithFetchPolicy(store.FetchNetworkOnly)), []string{"cache:write", "get[network_only] ok n=1"}},
		{"network first answered by the backend", get("a", nf), []string{"cache:write", "get[network_first] ok n=1"}},
		{"network first falls back", func(f *fixture) error {
			f.b.SetUnavailable(true)
			defer f.b.SetUnavailable(false)
			return get("a", nf)(f)
		}, []string{"cache:hit", "error:get:recovered", "get[network_first] hit ok n=1"}},
		{"network first, nothing to fall back to", func(f *fixture) error {
			f.b.SetUnavailable(true)
			defer f.b.SetUnavailable(false)
			return get("b", nf)(f)
		}, []string{"cache:miss", "error:get", "get[network_first] miss failed n=0"}},
		{"get_all miss", func(f *fixture) error { _, err := f.s.GetAll(bg); return err },
			[]string{"cache:miss", "cache:write", "cache:write", "cache:write", "get_all[cache_first] miss ok n=3"}},
		{"get_all hit", func(f *fixture) error { _, err := f.s.GetAll(bg, store.WithLimit(2)); return err },
			[]string{"cache:hit", "get_all[cache_first] hit ok n=2"}},
		{"invalidation, per entry", func(f *fixture) error { f.s.InvalidateAll(); return nil },
			[]string{"cache:invalidation", "cache:invalidation", "cache:invalidation"}},
		{"watch opens", func(f *fixture) error {
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			for range f.s.Watch(ctx, "a") {
				cancel()
			}
			return nil
		}, []string{"cache:miss", "cache:write", "watch[cache_first] miss ok n=1"}},
		{"watch_all opens", func(f *fixture) error {
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			for range f.s.WatchAll(ctx) {
				cancel()
			}
			return nil
		}, []string{"cache:miss", "cache:write", "cache:write", "cache:write", "watch_all[cache_first] miss ok n=3"}},
		{"a bad option is a failed operation, without a policy", get("a", store.WithFetchPolicy(42)),
			[]string{"error:get", "get failed n=0"}},
		{"a bad filter too", func(f *fixture) error {
			_, err := f.s.GetAll(bg, store.WithFilter(func(int) bool { return true }))
			return err
		}, []string{"error:get_all", "get_all failed n=0"}},
	})
}

func TestMetricsWrites(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{MaxCacheSize: 2})
	f.seed(User{ID: "a"})
	down := func(do func(*fixture) error) func(*fixture) error {
		return func(f *fixture) error {
			f.b.SetUnavailable(true)
			defer f.b.SetUnavailable(false)
			return do(f)
		}
	}
	runSteps(t, f, []step{
		{"save", save(User{ID: "a", Name: "x"}), []string{"cache:write", "save[cache_and_network] ok n=1"}},
		{"failed save rolls back", down(save(User{ID: "a", Name: "y"})),
			[]string{"cache:write", "cache:write", "error:save", "save[cache_and_network] failed n=0"}},
		{"failed save of a new item", down(save(User{ID: "n"})),
			[]string{"cache:write", "error:save", "save[cache_and_network] failed n=0"}},
		{"network first", save(User{ID: "b"}, store.WithWritePolicy(store.WriteNetworkFirst)),
			[]string{"cache:write", "save[network_first] ok n=1"}},
		{"eviction", save(User{ID: "c"}, store.WithWritePolicy(store.WriteCacheOnly)),
			[]string{"cache:write", "cache:eviction", "save[cache_only] ok n=1"}},
		{"save_all", func(f *fixture) error { _, err := f.s.SaveAll(bg, []User{{ID: "c"}, {ID: "d"}}); return err },
			[]string{"cache:write", "cache:write", "cache:eviction", "save_all[cache_and_network] ok n=2"}},
		{"delete", func(f *fixture) error { return f.s.Delete(bg, "d") }, []string{"delete[cache_and_network] ok n=1"}},
		{"delete_all", func(f *fixture) error { _, err := f.s.DeleteAll(bg, []string{"a", "b", "zz"}); return err },
			[]string{"delete_all[cache_and_network] ok n=2"}},
		{"failed delete", down(func(f *fixture) error { return f.s.Delete(bg, "c") }),
			[]string{"cache:write", "error:delete", "delete[cache_and_network] failed n=0"}},
		{"write-behind", save(User{ID: "w"}, store.WithWritePolicy(store.WriteCacheFirst)),
			[]string{"cache:write", "save[cache_first] ok n=1"}},
		{"transaction", func(f *fixture) error {
			return f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
				if _, err := tx.Get(bg, "c"); err != nil {
					return err
				}
				_, err := tx.Save(bg, User{ID: "t"})
				return err
			})
			// c's failed delete left it unverified: the read revalidates it.
		}, []string{"cache:miss", "cache:write", "cache:write", "cache:eviction", "transaction[cache_and_network] ok n=1"}},
		{"a bad option is a failed operation, without a policy", save(User{ID: "a"}, store.WithWritePolicy(42)),
			[]string{"error:save", "save failed n=0"}},
		{"failed transaction", func(f *fixture) error {
			return f.s.Transaction(bg, func(*store.Tx[User, string]) error { return errors.New("no") })
		}, []string{"error:transaction", "transaction[cache_and_network] failed n=0"}},
	})
	for _, m := range f.rec.Errors() {
		if m.Stack != nil {
			t.Error("a stack was captured without MetricsConfig.CaptureStacks")
		}
	}
}

func TestMetricsSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{WritePolicy: store.WriteCacheFirst, Retry: store.RetryConfig{Jitter: store.NoJitter}})
		runSteps(t, f, []step{
			{"nothing pending", func(f *fixture) error { return f.s.Sync(bg) },
				[]string{"sync:started", "sync:completed n=0", "sync ok n=0"}},
			{"two pushed", func(f *fixture) error {
				_, _ = f.s.SaveAll(bg, []User{{ID: "a"}, {ID: "b"}})
				f.rec.Reset()
				return f.s.Sync(bg)
			}, []string{"sync:started", "sync:completed n=2", "sync ok n=2"}},
			{"retried then pushed", func(f *fixture) error {
				_, _ = f.s.Save(bg, User{ID: "a", Name: "2"})
				f.rec.Reset()
				f.b.FailNext(1, nil)
				return f.s.Sync(bg)
			}, []string{"sync:started", "error:sync:recovered", "sync:retried", "sync:completed n=1", "sync ok n=1"}},
			{"retries exhausted", func(f *fixture) error {
				_, _ = f.s.Save(bg, User{ID: "a", Name: "3"})
				f.rec.Reset()
				f.b.FailNext(3, nil)
				return f.s.Sync(bg)
			}, []string{"sync:started", "error:sync:recovered", "sync:retried", "error:sync:recovered", "sync:retried",
				"sync:failed n=0", "error:sync", "sync failed n=0"}},
			{"conflict resolved", func(f *fixture) error {
				_, _ = f.s.Get(bg, "b") // base version known
				_, _ = f.b.Save(bg, "b", User{ID: "b", Name: "remote"})
				_, _ = f.s.Save(bg, User{ID: "b", Name: "local"})
				f.b.FailNext(0, nil)
				f.rec.Reset()
				return f.s.Sync(bg)
			}, []string{"sync:started", "sync:conflict_resolved", "sync:completed n=1", "sync ok n=1"}},
		})
		if err := f.s.Close(bg); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMetricsErrorStacks(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{Metrics: store.MetricsConfig{CaptureStacks: true}})
	f.b.SetUnavailable(true)
	_, _ = f.s.Save(bg, User{ID: "a"})
	errs := f.rec.Errors()
	if len(errs) != 1 || !strings.Contains(string(errs[0].Stack), "goroutine") || errs[0].Operation != store.OpSave || errs[0].Recoverable {
		t.Errorf("error metric = %+v, want a stack for the failed save", errs)
	}
	if !errors.Is(errs[0].Err, store.ErrUnavailable) {
		t.Errorf("error metric carries %v", errs[0].Err)
	}
}

func TestMetricsFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(25*time.Millisecond))
		f.seed(User{ID: "a"})
		_, _ = f.s.Get(bg, "a")
		ops := f.rec.Operations()
		if len(ops) != 1 {
			t.Fatalf("ops = %+v", ops)
		}
		m := ops[0]
		// Real durations: the backend's fake 25ms is the whole of it.
		if m.Duration != 25*time.Millisecond || m.ItemID != "a" || m.SampleRate != 1 || m.Timestamp.IsZero() || m.Policy != store.FetchCacheFirst.Policy() {
			t.Errorf("operation metric = %+v", m)
		}
		if err := f.s.Close(bg); err != nil {
			t.Fatal(err)
		}
	})
}

// Without WantItemIDs the store never hands an ID over.
func TestMetricsNoIDsUnlessAsked(t *testing.T) {
	rec := reportertest.New()
	f := newFixture(t, store.Config[User, string]{MetricsReporter: rec, MaxCacheSize: 1})
	f.rec = rec
	f.seed(User{ID: "a"}, User{ID: "b"})
	_, _ = f.s.Get(bg, "a")
	_, _ = f.s.Get(bg, "b")
	f.s.InvalidateAll()
	for _, e := range rec.Events() {
		if e.Operation.ItemID != nil || e.Cache.ItemID != nil || e.Error.ItemID != nil || e.Sync.ItemID != nil {
			t.Errorf("ID reported without being asked for: %+v", e)
		}
	}
	binds := rec.Binds()
	if len(binds) != 1 || binds[0].Name != "user" || binds[0].SampleRate != 1 || binds[0].Live == nil {
		t.Errorf("Bind got %+v", binds)
	}
	if live := binds[0].Live(); live.CacheEntries != 0 {
		t.Errorf("Live() = %+v", live)
	}
}

func TestSampling(t *testing.T) {
	for _, rate := range []float64{1, 0.5, 0.01} {
		t.Run("", func(t *testing.T) {
			f := newFixture(t, store.Config[User, string]{Metrics: store.MetricsConfig{SampleRate: rate}, MaxCacheSize: 10})
			f.seed(User{ID: "a"})
			const n = 20000
			for range n {
				_, _ = f.s.Get(bg, "a")
			}
			f.s.Invalidate("a")
			ops := f.rec.Operations()
			// Binomial: mean n*rate, sd sqrt(n*rate*(1-rate)); allow 5 sd.
			mean, sd := n*rate, math.Sqrt(n*rate*(1-rate))
			if got := float64(len(ops)); math.Abs(got-mean) > 5*sd+0.5 {
				t.Errorf("rate %v: %d of %d operations reported, want %.0f ± %.0f", rate, len(ops), n, mean, 5*sd)
			}
			for _, m := range ops {
				if m.SampleRate != rate {
					t.Fatalf("metric says rate %v, want %v", m.SampleRate, rate)
				}
			}
			// Sampled-out operations report no hit/miss/write either; events
			// that belong to no operation are never sampled.
			var hits, invalidations int
			for _, c := range f.rec.CacheEvents() {
				switch c.Event {
				case store.CacheHit, store.CacheMiss:
					hits++
				case store.CacheInvalidation:
					invalidations++
					if c.SampleRate != 1 {
						t.Errorf("invalidation carries rate %v", c.SampleRate)
					}
				}
			}
			if hits != len(ops) || invalidations != 1 {
				t.Errorf("hits+misses = %d for %d operations, invalidations = %d", hits, len(ops), invalidations)
			}
			// Spans stay paired for every operation, sampled or not.
			spans := f.rec.Spans()
			if len(spans) < n {
				t.Fatalf("%d spans for %d operations", len(spans), n)
			}
			sampled := 0
			for _, sp := range spans {
				if !sp.Ended {
					t.Fatal("a span was never ended")
				}
				if sp.Sampled && !sp.Backend {
					sampled++
				}
			}
			if sampled != len(ops) {
				t.Errorf("%d spans marked sampled, %d metrics reported", sampled, len(ops))
			}
			if rate < 1 && !f.s.Stats().Estimated {
				t.Error("stats from sampled metrics are not marked Estimated")
			}
		})
	}
}

// Backend calls run under the context StartOperation returned.
func TestSpansParentBackendCalls(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a"})
	_, _ = f.s.Get(bg, "a")
	spans := f.rec.Spans()
	if len(spans) != 2 || spans[0].Backend || !spans[1].Backend || spans[1].Parent != 0 || spans[1].Operation != store.OpGet {
		t.Errorf("spans = %+v, want the get and its backend call as a child", spans)
	}
}

type panicky struct{ store.NoOpMetricsReporter }

func (panicky) ReportOperation(context.Context, store.OperationMetric) { panic("boom") }
func (panicky) ReportCacheEvent(context.Context, store.CacheMetric)    { panic("boom") }
func (panicky) Flush(context.Context) error                            { panic("flush boom") }

func TestPanickingReporterIsContained(t *testing.T) {
	var mu sync.Mutex
	var handled []error
	f := newFixture(t, store.Config[User, string]{
		MetricsReporter: panicky{},
		ErrorHandler: func(err error) {
			mu.Lock()
			handled = append(handled, err)
			mu.Unlock()
		},
	})
	f.seed(User{ID: "a"})
	u, err := f.s.Get(bg, "a")
	if err != nil || u.ID != "a" {
		t.Fatalf("Get = %+v, %v: the reporter's panic reached the caller", u, err)
	}
	if _, err := f.s.Save(bg, User{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := f.s.Live().ReporterPanics; got != 5 { // miss, write, get, write, save
		t.Errorf("ReporterPanics = %d, want 5", got)
	}
	err = f.s.Close(bg)
	var pe *store.ReporterPanicError
	if !errors.As(err, &pe) || pe.Method != "Flush" {
		t.Errorf("Close = %v, want the Flush panic as an error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 6 || !errors.Is(handled[0], store.ErrReporterPanic) {
		t.Errorf("ErrorHandler got %v", handled)
	}
}

type plain struct {
	store.NoOpMetricsReporter
	mu  sync.Mutex
	ops int
}

func (p *plain) ReportOperation(context.Context, store.OperationMetric) {
	p.mu.Lock()
	p.ops++
	p.mu.Unlock()
}

// A reporter with none of the optional capabilities works unchanged, and
// Stats is the zero value.
func TestPlainReporter(t *testing.T) {
	p := &plain{}
	f := newFixture(t, store.Config[User, string]{MetricsReporter: p})
	f.seed(User{ID: "a"})
	_, _ = f.s.Get(bg, "a")
	_, _ = f.s.Get(bg, "a")
	if p.ops != 2 {
		t.Errorf("ops = %d", p.ops)
	}
	if st := f.s.Stats(); st.OperationCounts != nil || st.ErrorCount != 0 {
		t.Errorf("Stats = %+v, want zero", st)
	}
	if st := f.s.ResetStats(); st.OperationCounts != nil {
		t.Errorf("ResetStats = %+v, want zero", st)
	}
}

// On the real clock (the CPU's time-stamp counter where the kernel keeps
// time with it, see internal/clock) the durations and timestamps the store
// reports agree with time.Now taken around the calls: a miss over a 5ms
// backend, a hit, a save.
func TestDurationsOnTheRealClock(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(5*time.Millisecond))
	f.seed(User{ID: "a"})
	for _, call := range []struct {
		name string
		min  time.Duration
		do   func() error
	}{
		{"miss", 5 * time.Millisecond, func() error { _, err := f.s.Get(bg, "a"); return err }},
		{"hit", 0, func() error { _, err := f.s.Get(bg, "a"); return err }},
		{"save", 5 * time.Millisecond, func() error { _, err := f.s.Save(bg, User{ID: "b"}); return err }},
	} {
		f.rec.Reset()
		before := time.Now()
		if err := call.do(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(before)
		ops := f.rec.Operations()
		if len(ops) != 1 {
			t.Fatalf("%s: %d operation metrics", call.name, len(ops))
		}
		m := ops[0]
		// A calibrated counter is off by far less than 0.1%.
		if m.Duration < call.min || m.Duration > took+took/1000+time.Microsecond {
			t.Errorf("%s: Duration %v; want between %v and the %v the call took", call.name, m.Duration, call.min, took)
		}
		if m.Timestamp.Before(before.Add(-50*time.Microsecond)) || m.Timestamp.After(time.Now().Add(50*time.Microsecond)) {
			t.Errorf("%s: Timestamp %v; want within the call, from %v", call.name, m.Timestamp, before)
		}
	}
}

// errorsOnly records ErrorMetrics; it traces nothing, so that an unsampled
// operation is not timed at all.
type errorsOnly struct {
	store.NoOpMetricsReporter
	mu   sync.Mutex
	errs []store.ErrorMetric
}

func (r *errorsOnly) ReportError(_ context.Context, m store.ErrorMetric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, m)
}

// A failure is reported whether or not its operation is sampled; an
// unsampled one is not timed, and its ErrorMetric carries the wall clock.
func TestUnsampledFailureTimestamp(t *testing.T) {
	rec := &errorsOnly{}
	f := newFixture(t, store.Config[User, string]{MetricsReporter: rec, Metrics: store.MetricsConfig{SampleRate: 1e-300}})
	f.b.SetUnavailable(true)
	before := time.Now()
	if _, err := f.s.Get(bg, "a"); err == nil {
		t.Fatal("Get on an unavailable backend succeeded")
	}
	after := time.Now()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 1 {
		t.Fatalf("%d error metrics; want 1", len(rec.errs))
	}
	if ts := rec.errs[0].Timestamp; ts.Before(before.Add(-time.Millisecond)) || ts.After(after.Add(time.Millisecond)) {
		t.Errorf("ErrorMetric.Timestamp = %v; want between %v and %v", ts, before, after)
	}
}

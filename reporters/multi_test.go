package reporters

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
)

func TestMultiSimplifies(t *testing.T) {
	rec := reportertest.New()
	tests := []struct {
		name string
		rs   []store.MetricsReporter
		want store.MetricsReporter
	}{
		{"none", nil, store.NoOpMetricsReporter{}},
		{"nil and no-ops", []store.MetricsReporter{nil, store.NoOpMetricsReporter{}, &store.NoOpMetricsReporter{}}, store.NoOpMetricsReporter{}},
		{"one left", []store.MetricsReporter{nil, rec, store.NoOpMetricsReporter{}}, rec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Multi(tt.rs...); got != tt.want {
				t.Errorf("Multi = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestMultiDelivers(t *testing.T) {
	a, b := reportertest.New(), reportertest.New()
	m := Multi(a, nil, b)
	for _, metric := range []any{opGetHit, cacheEviction, syncCompleted, store.ErrorMetric{Operation: store.OpSave}} {
		report(m, metric)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"get[cache_first] hit ok n=1", "cache:eviction", "sync:completed n=12", "error:save"}
	for _, r := range []*reportertest.Recorder{a, b} {
		if got := r.Sequence(); !slices.Equal(got, want) {
			t.Errorf("received %q, want %q", got, want)
		}
		if r.Flushes() != 1 {
			t.Errorf("flushed %d times", r.Flushes())
		}
	}
}

// explosive panics in every method, and fails Flush.
type explosive struct{ flushErr error }

func (explosive) ReportOperation(context.Context, store.OperationMetric) { panic("op") }
func (explosive) ReportCacheEvent(context.Context, store.CacheMetric)    { panic("cache") }
func (explosive) ReportSyncEvent(context.Context, store.SyncMetric)      { panic("sync") }
func (explosive) ReportError(context.Context, store.ErrorMetric)         { panic("error") }
func (e explosive) Flush(context.Context) error {
	if e.flushErr != nil {
		return e.flushErr
	}
	panic("flush")
}

// catch calls f and returns what it panicked with.
func catch(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

func TestMultiContainsPanics(t *testing.T) {
	a, b := reportertest.New(), reportertest.New()
	boom := errors.New("flush failed")
	m := Multi(a, nil, explosive{}, b, explosive{flushErr: boom}, explosive{})
	for _, metric := range []any{opGetHit, cacheEviction, syncCompleted, store.ErrorMetric{Operation: store.OpSave}} {
		p := catch(func() { report(m, metric) })
		pe, ok := p.(*PanicError)
		if !ok || pe.Index != 2 {
			t.Fatalf("Multi panicked with %#v, want a *PanicError for reporter 2", p)
		}
	}
	want := []string{"get[cache_first] hit ok n=1", "cache:eviction", "sync:completed n=12", "error:save"}
	for _, r := range []*reportertest.Recorder{a, b} {
		if got := r.Sequence(); !slices.Equal(got, want) {
			t.Errorf("received %q, want %q", got, want)
		}
	}
	err := m.Flush(context.Background())
	var pe *PanicError
	if !errors.Is(err, boom) || !errors.As(err, &pe) || pe.Index != 2 || pe.Value != "flush" {
		t.Errorf("Flush = %v", err)
	}
	if n := strings.Count(err.Error(), "panicked"); n != 2 {
		t.Errorf("Flush = %v, want the two panics", err)
	}
	if a.Flushes() != 1 || b.Flushes() != 1 {
		t.Error("a failing reporter stopped the others' Flush")
	}
	wrapped := &PanicError{Index: 1, Value: boom}
	if !errors.Is(wrapped, boom) || errors.Unwrap(&PanicError{Value: "x"}) != nil {
		t.Error("PanicError does not unwrap an error value, or unwraps a non-error")
	}
}

// flushes panics in every report, and flushes fine.
type flushes struct{ explosive }

func (flushes) Flush(context.Context) error { return nil }

// TestMultiPanicThroughStore checks that the store counts the panic Multi
// raises again, and that the other reporter got the metric.
func TestMultiPanicThroughStore(t *testing.T) {
	rec := reportertest.New()
	var mu sync.Mutex
	var handled []error
	s, _ := newUserStore(t, Multi(flushes{}, rec), func(c *store.Config[user, string]) {
		c.ErrorHandler = func(err error) {
			mu.Lock()
			handled = append(handled, err)
			mu.Unlock()
		}
	})
	if _, err := s.Save(context.Background(), user{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.Sequence(); !slices.Equal(got, []string{"cache:write", "save[cache_and_network] ok n=1"}) {
		t.Errorf("the other reporter received %q", got)
	}
	if n := s.Live().ReporterPanics; n != 2 {
		t.Errorf("store counted %d reporter panics, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	var rp *store.ReporterPanicError
	if len(handled) != 2 || !errors.As(handled[0], &rp) {
		t.Fatalf("error handler got %v", handled)
	}
	if pe, ok := rp.Value.(*PanicError); !ok || pe.Index != 0 {
		t.Errorf("panic value %#v, want a *PanicError for reporter 0", rp.Value)
	}
}

// chainTracer records the context values it sees and adds its own.
type chainTracer struct {
	store.NoOpMetricsReporter
	name       string
	log        *[]string
	panicStart bool
	panicEnd   bool
}

type chainKey string

func (c *chainTracer) StartOperation(ctx context.Context, _ store.OperationStart) (context.Context, any) {
	return c.start(ctx, "op")
}

func (c *chainTracer) EndOperation(ctx context.Context, h any, _ store.OperationEnd) { c.end(ctx, h) }

func (c *chainTracer) StartBackendCall(ctx context.Context, _ store.BackendCall) (context.Context, any) {
	return c.start(ctx, "call")
}

func (c *chainTracer) EndBackendCall(ctx context.Context, h any, _ store.BackendCallEnd) {
	c.end(ctx, h)
}

func (c *chainTracer) start(ctx context.Context, what string) (context.Context, any) {
	if c.panicStart {
		panic(c.name + " start")
	}
	seen, _ := ctx.Value(chainKey("seen")).(string)
	*c.log = append(*c.log, c.name+" starts "+what+" after ["+seen+"]")
	return context.WithValue(ctx, chainKey("seen"), seen+c.name), c.name + "-" + what
}

func (c *chainTracer) end(ctx context.Context, h any) {
	seen, _ := ctx.Value(chainKey("seen")).(string)
	*c.log = append(*c.log, c.name+" ends "+h.(string)+" in ["+seen+"]")
	if c.panicEnd {
		panic(c.name + " end")
	}
}

func TestMultiTracers(t *testing.T) {
	var log []string
	a := &chainTracer{name: "a", log: &log}
	b := &chainTracer{name: "b", log: &log}
	r := Multi(a, NewStats(), b).(store.Binder).Bind(store.StoreInfo{Name: "x"}).Reporter
	tr, ok := r.(store.OperationTracer)
	if !ok {
		t.Fatal("the bound Multi does not trace")
	}
	ctx := context.Background()
	octx, oh := tr.StartOperation(ctx, store.OperationStart{})
	cctx, ch := tr.StartBackendCall(octx, store.BackendCall{})
	tr.EndBackendCall(cctx, ch, store.BackendCallEnd{})
	tr.EndOperation(octx, oh, store.OperationEnd{})
	want := []string{
		"a starts op after []", "b starts op after [a]",
		"a starts call after [ab]", "b starts call after [aba]",
		"b ends b-call in [abab]", "a ends a-call in [abab]",
		"b ends b-op in [ab]", "a ends a-op in [ab]",
	}
	if !slices.Equal(log, want) {
		t.Errorf("log\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}

	// A start that panics: the other tracer's span still starts and ends,
	// and the end call raises the panic for the store to count.
	log = nil
	a.panicStart = true
	octx, oh = tr.StartOperation(ctx, store.OperationStart{})
	p := catch(func() { tr.EndOperation(octx, oh, store.OperationEnd{}) })
	if pe, ok := p.(*PanicError); !ok || pe.Index != 0 || pe.Value != "a start" {
		t.Errorf("EndOperation panicked with %#v", p)
	}
	if want := []string{"b starts op after []", "b ends b-op in [b]"}; !slices.Equal(log, want) {
		t.Errorf("log %q, want %q", log, want)
	}

	// An end that panics does not stop the others.
	log = nil
	a.panicStart, b.panicEnd = false, true
	octx, oh = tr.StartOperation(ctx, store.OperationStart{})
	p = catch(func() { tr.EndOperation(octx, oh, store.OperationEnd{}) })
	if pe, ok := p.(*PanicError); !ok || pe.Index != 2 {
		t.Errorf("EndOperation panicked with %#v", p)
	}
	if len(log) != 4 || log[3] != "a ends a-op in [ab]" {
		t.Errorf("log %q", log)
	}

	// A foreign handle is ignored.
	tr.EndOperation(ctx, "not ours", store.OperationEnd{})
}

func TestMultiSingleTracerPassesThrough(t *testing.T) {
	tr := &tracerOnly{}
	m := Multi(tr, NewConsole(&lineWriter{t: t}))
	for _, r := range []store.MetricsReporter{m, m.(store.Binder).Bind(store.StoreInfo{}).Reporter} {
		ot := r.(store.OperationTracer)
		ctx := context.Background()
		c, h := ot.StartOperation(ctx, store.OperationStart{})
		if c != ctx || h != tr {
			t.Errorf("the handle was wrapped: %#v", h)
		}
		allocs := testing.AllocsPerRun(100, func() {
			c, h := ot.StartOperation(ctx, store.OperationStart{})
			ot.EndOperation(c, h, store.OperationEnd{})
			c, h = ot.StartBackendCall(ctx, store.BackendCall{})
			ot.EndBackendCall(c, h, store.BackendCallEnd{})
		})
		if allocs != 0 {
			t.Errorf("%v allocations per traced operation, want 0", allocs)
		}
	}
}

// binderOnly counts binds and releases; it has no other capability.
type binderOnly struct {
	store.NoOpMetricsReporter
	wantIDs  bool
	panics   bool
	released int
}

func (b *binderOnly) Bind(store.StoreInfo) store.Binding {
	if b.panics {
		panic("bind exploded")
	}
	return store.Binding{WantItemIDs: b.wantIDs, Release: func() { b.released++ }}
}

func TestMultiBind(t *testing.T) {
	tests := []struct {
		name    string
		rs      []store.MetricsReporter
		caps    string
		wantIDs bool
	}{
		{"recorder and console", []store.MetricsReporter{reportertest.New(), NewConsole(&lineWriter{t: t})}, "TS", true},
		{"console and slog", []store.MetricsReporter{NewConsole(&lineWriter{t: t}), NewSlog(nil)}, "", true},
		{"stats and binder", []store.MetricsReporter{NewStats(), &binderOnly{}}, "S", false},
		{"tracer and binder", []store.MetricsReporter{&tracerOnly{}, &binderOnly{wantIDs: true}}, "T", true},
		{"two recorders", []store.MetricsReporter{reportertest.New(), reportertest.New()}, "TS", false},
		{"panicking bind", []store.MetricsReporter{&binderOnly{panics: true}, &tracerOnly{}}, "T", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Multi(tt.rs...)
			if got := capabilities(m); got != "BTS" {
				t.Errorf("unbound capabilities %q, want BTS", got)
			}
			bd := m.(store.Binder).Bind(store.StoreInfo{Name: "user"})
			if got := capabilities(bd.Reporter); got != tt.caps {
				t.Errorf("bound capabilities %q, want %q", got, tt.caps)
			}
			if bd.WantItemIDs != tt.wantIDs {
				t.Errorf("WantItemIDs %v, want %v", bd.WantItemIDs, tt.wantIDs)
			}
			report(bd.Reporter, opGetHit) // every child gets it, bound or not
			if bd.Release != nil {
				bd.Release()
			}
		})
	}
}

func TestMultiRelease(t *testing.T) {
	a, b := &binderOnly{}, &binderOnly{}
	rec := reportertest.New()
	bd := Multi(a, rec, b).(store.Binder).Bind(store.StoreInfo{})
	bd.Release()
	if a.released != 1 || b.released != 1 || rec.Released() != 1 {
		t.Errorf("released %d %d %d, want 1 each", a.released, rec.Released(), b.released)
	}
	if bd := Multi(&tracerOnly{}, NewStats()).(store.Binder).Bind(store.StoreInfo{}); bd.Release != nil {
		t.Error("a Release with nothing to release")
	}

	// A panicking Release does not stop the others; the panic is raised
	// again for the store to count.
	panicky := &releasePanics{}
	a.released = 0
	bd = Multi(panicky, a).(store.Binder).Bind(store.StoreInfo{})
	if p := catch(bd.Release); p != "release exploded" {
		t.Errorf("Release panicked with %v", p)
	}
	if a.released != 1 {
		t.Error("a panicking Release stopped the others")
	}
}

type releasePanics struct{ store.NoOpMetricsReporter }

func (releasePanics) Bind(store.StoreInfo) store.Binding {
	return store.Binding{Release: func() { panic("release exploded") }}
}

func TestMultiStats(t *testing.T) {
	first, second := NewStats(), NewStats()
	m := Multi(NewConsole(&lineWriter{t: t}), first, second)
	sp := m.(store.StatsProvider)
	report(m, opGetHit)
	if n := sp.Stats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("Stats counts %d gets, want 1", n)
	}
	if n := sp.ResetStats().OperationCounts[store.OpGet]; n != 1 || first.Stats().OperationCounts[store.OpGet] != 0 || second.Stats().OperationCounts[store.OpGet] != 1 {
		t.Error("ResetStats did not reset the first provider only")
	}

	bound := m.(store.Binder).Bind(store.StoreInfo{Name: "user"}).Reporter
	report(bound, opGetHit)
	report(bound, opGetHit)
	if n := bound.(store.StatsProvider).Stats().OperationCounts[store.OpGet]; n != 2 {
		t.Errorf("bound Stats counts %d gets, want 2 (the first provider's bound child)", n)
	}

	plain := Multi(NewConsole(&lineWriter{t: t}), &tracerOnly{}).(store.StatsProvider)
	if plain.Stats().OperationCounts != nil || plain.ResetStats().OperationCounts != nil {
		t.Error("a Multi without stats providers returns stats")
	}
	tr := Multi(NewConsole(&lineWriter{t: t}), NewStats()).(store.OperationTracer)
	ctx := context.Background()
	if c, h := tr.StartOperation(ctx, store.OperationStart{}); c != ctx || h != nil {
		t.Error("a Multi without tracers changed the context")
	}
	tr.EndOperation(ctx, nil, store.OperationEnd{})
	if c, h := tr.StartBackendCall(ctx, store.BackendCall{}); c != ctx || h != nil {
		t.Error("a Multi without tracers changed the context")
	}
	tr.EndBackendCall(ctx, nil, store.BackendCallEnd{})
}

// TestMultiEndToEnd is Multi(otelReporter, console) with the recorder in
// place of the OpenTelemetry reporter: stats and spans keep working.
func TestMultiEndToEnd(t *testing.T) {
	rec := reportertest.New()
	w := &lineWriter{t: t}
	s, _ := newUserStore(t, Multi(rec, NewConsole(w)))
	ctx := context.Background()
	if _, err := s.Save(ctx, user{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.OperationCounts[store.OpGet] != 1 || st.OperationCounts[store.OpSave] != 1 || st.CacheHitRate != 1 {
		t.Errorf("Store.Stats through Multi: %+v", st)
	}
	if n := s.ResetStats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("ResetStats counted %d gets", n)
	}
	spans := rec.Spans()
	if len(spans) < 2 || spans[0].Operation != store.OpSave || !spans[0].Ended {
		t.Errorf("spans through Multi: %+v", spans)
	}
	if len(w.lines) != 4 || !strings.Contains(w.lines[3], "get(u1) completed in") {
		t.Errorf("console lines through Multi: %q", w.lines)
	}
	if ops := rec.Operations(); ops[1].ItemID != "u1" {
		t.Error("item IDs missing: the console asked for them")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.Released() != 1 || rec.Flushes() != 1 {
		t.Errorf("released %d flushed %d, want 1 1", rec.Released(), rec.Flushes())
	}
}

func BenchmarkMultiReportOperation(b *testing.B) {
	r := Multi(NewStats(), NewStats()).(store.Binder).Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.ReportOperation(ctx, opGetHit)
	}
}

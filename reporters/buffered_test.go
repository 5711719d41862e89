package reporters

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
)

// op returns an operation metric numbered n (in ItemCount).
func op(n int) store.OperationMetric {
	return store.OperationMetric{Operation: store.OpGet, Success: true, ItemCount: n, SampleRate: 1}
}

// numbers returns the ItemCount of every operation rec received.
func numbers(rec *reportertest.Recorder) []int {
	var out []int
	for _, m := range rec.Operations() {
		out = append(out, m.ItemCount)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func closeBuffered(t testing.TB, b *Buffered) {
	t.Helper()
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// stalled delivers operations to its recorder only once release is
// closed.
type stalled struct {
	*reportertest.Recorder
	release chan struct{}
}

func newStalled() *stalled {
	return &stalled{Recorder: reportertest.New(), release: make(chan struct{})}
}

func (s *stalled) ReportOperation(ctx context.Context, m store.OperationMetric) {
	<-s.release
	s.Recorder.ReportOperation(ctx, m)
}

// errorSink collects what an error handler receives.
type errorSink struct {
	mu   sync.Mutex
	errs []error
}

func (s *errorSink) handle(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *errorSink) all() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

func TestBufferedOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       []BufferedOption
		size       int
		interval   time.Duration
		maxPending int
	}{
		{"defaults", nil, 100, 30 * time.Second, 4},
		{"explicit", []BufferedOption{WithBufferSize(10), WithFlushInterval(time.Second), WithMaxPendingBatches(8)}, 10, time.Second, 8},
		{"non-positive means default", []BufferedOption{WithBufferSize(10), WithBufferSize(-1), WithFlushInterval(0), WithMaxPendingBatches(0)}, 100, 30 * time.Second, 4},
		{"from zero config", []BufferedOption{WithBufferSize(10), FromConfig(store.MetricsConfig{})}, 100, 30 * time.Second, 4},
		{"from config", []BufferedOption{FromConfig(store.MetricsConfig{BufferSize: 7, FlushInterval: time.Minute})}, 7, time.Minute, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuffered(reportertest.New(), tt.opts...)
			defer closeBuffered(t, b)
			cfg := b.c.cfg
			if cfg.size != tt.size || cfg.interval != tt.interval || cfg.maxPending != tt.maxPending || cap(b.c.queue) != tt.maxPending {
				t.Errorf("size %d interval %v maxPending %d, want %d %v %d", cfg.size, cfg.interval, cfg.maxPending, tt.size, tt.interval, tt.maxPending)
			}
		})
	}
}

func TestBufferedFlushOnSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := reportertest.New()
		b := NewBuffered(rec, WithBufferSize(3))
		defer closeBuffered(t, b)
		b.ReportOperation(context.Background(), op(0))
		b.ReportOperation(context.Background(), op(1))
		synctest.Wait()
		if n := len(rec.Events()); n != 0 {
			t.Fatalf("%d metrics delivered before the buffer was full", n)
		}
		b.ReportOperation(context.Background(), op(2))
		synctest.Wait()
		if got := numbers(rec); !slices.Equal(got, seq(0, 3)) {
			t.Fatalf("delivered %v, want [0 1 2]", got)
		}
		if rec.Flushes() != 1 {
			t.Errorf("delegate flushed %d times after one buffer, want 1", rec.Flushes())
		}
	})
}

func TestBufferedFlushOnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := reportertest.New()
		b := NewBuffered(rec, WithFlushInterval(time.Second))
		defer closeBuffered(t, b)
		b.ReportOperation(context.Background(), op(0))
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n := len(rec.Events()); n != 0 {
			t.Fatalf("%d metrics delivered before the interval", n)
		}
		b.ReportCacheEvent(context.Background(), cacheEviction)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := rec.Sequence(); !slices.Equal(got, []string{"get ok n=0", "cache:eviction"}) {
			t.Fatalf("delivered %q after the interval", got)
		}
		// Nothing buffered: the next ticks deliver nothing; a new metric
		// waits for the next tick.
		time.Sleep(2500 * time.Millisecond)
		b.ReportOperation(context.Background(), op(1))
		synctest.Wait()
		if n := len(rec.Events()); n != 2 {
			t.Fatalf("%d metrics delivered, want 2", n)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if got := numbers(rec); !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("delivered %v, want [0 1]", got)
		}
	})
}

func TestBufferedFlush(t *testing.T) {
	rec := reportertest.New()
	b := NewBuffered(rec)
	defer closeBuffered(t, b)
	ctx := context.Background()
	if err := b.Flush(ctx); err != nil { // nothing buffered, no goroutine yet
		t.Fatal(err)
	}
	b.ReportOperation(ctx, op(0))
	b.ReportCacheEvent(ctx, cacheEviction)
	b.ReportSyncEvent(ctx, syncCompleted)
	b.ReportError(ctx, store.ErrorMetric{Err: errUnavailable, Operation: store.OpSave, Recoverable: true})
	b.ReportOperation(ctx, op(1))
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"get ok n=0", "cache:eviction", "sync:completed n=12", "error:save:recovered", "get ok n=1"}
	if got := rec.Sequence(); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	// The empty Flush, the buffer delivered, the second Flush.
	if rec.Flushes() != 3 {
		t.Errorf("delegate flushed %d times, want 3", rec.Flushes())
	}
	if got := rec.SyncEvents()[0]; got != syncCompleted {
		t.Errorf("sync metric delivered as %+v, want %+v", got, syncCompleted)
	}
}

func TestBufferedClose(t *testing.T) {
	rec := reportertest.New()
	errs := &errorSink{}
	b := NewBuffered(rec, WithErrorHandler(errs.handle))
	ctx := context.Background()
	for i := range 5 {
		b.ReportOperation(ctx, op(i))
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := numbers(rec); !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("Close delivered %v", got)
	}
	select {
	case <-b.c.stopped:
	default:
		t.Fatal("the goroutine is still running after Close")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Once after the buffer Close delivered, once by Close; the second
	// Close does nothing.
	if rec.Flushes() != 2 {
		t.Errorf("delegate flushed %d times by two Closes, want 2", rec.Flushes())
	}
	b.ReportOperation(ctx, op(5))
	b.ReportError(ctx, store.ErrorMetric{})
	if b.Dropped() != 2 {
		t.Errorf("Dropped = %d after reports after Close, want 2", b.Dropped())
	}
	if err := b.Flush(ctx); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
	if len(rec.Events()) != 5 {
		t.Errorf("%d metrics delivered, want 5", len(rec.Events()))
	}
}

func TestBufferedCloseUnused(t *testing.T) {
	b := NewBuffered(reportertest.New())
	closeBuffered(t, b)
	closeBuffered(t, b)
}

// TestBufferedBurst fills the buffer, the whole queue and the current
// buffer while the delegate is stalled: nothing is dropped up to that
// capacity, everything beyond it is, and the burst is delivered whole once
// the delegate recovers.
func TestBufferedBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size, pending = 10, 4
		d := newStalled()
		errs := &errorSink{}
		b := NewBuffered(d, WithBufferSize(size), WithMaxPendingBatches(pending), WithErrorHandler(errs.handle))
		defer closeBuffered(t, b)
		ctx := context.Background()
		for i := range size {
			b.ReportOperation(ctx, op(i))
		}
		synctest.Wait() // the goroutine took the first buffer and is stuck in the delegate
		capacity := size * (pending + 2)
		for i := size; i < capacity; i++ {
			b.ReportOperation(ctx, op(i))
		}
		if b.Dropped() != 0 {
			t.Fatalf("Dropped = %d within capacity", b.Dropped())
		}
		for i := capacity; i < capacity+7; i++ {
			b.ReportOperation(ctx, op(i))
		}
		if b.Dropped() != 7 {
			t.Fatalf("Dropped = %d, want 7", b.Dropped())
		}
		close(d.release)
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := numbers(d.Recorder); !slices.Equal(got, seq(0, capacity)) {
			t.Fatalf("delivered %d metrics %v, want 0..%d", len(got), got, capacity-1)
		}
		got := errs.all()
		var de *DroppedError
		if len(got) != 1 || !errors.As(got[0], &de) || de.Count != 7 || !errors.Is(got[0], ErrDropped) {
			t.Fatalf("error handler got %v, want one DroppedError of 7", got)
		}
		// The drops were reported once.
		b.ReportOperation(ctx, op(0))
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(errs.all()); n != 1 {
			t.Errorf("error handler called %d times, want 1", n)
		}
	})
}

// TestBufferedBoundedMemory keeps reporting into a stalled delegate: the
// buffer never holds more than its capacity and the reports that are
// dropped allocate nothing.
func TestBufferedBoundedMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newStalled()
		b := NewBuffered(d, WithBufferSize(8), WithMaxPendingBatches(2))
		defer closeBuffered(t, b)
		ctx := context.Background()
		const n = 100_000
		for i := range n {
			b.ReportOperation(ctx, op(i))
			if i == 7 {
				synctest.Wait() // the first buffer is stuck in the delegate
			}
		}
		allocs := testing.AllocsPerRun(1000, func() { b.ReportOperation(ctx, op(-1)) })
		if allocs != 0 {
			t.Errorf("%v allocations per dropped report", allocs)
		}
		c := b.c
		c.mu.Lock()
		held := len(c.queue)*8 + len(c.cur.order)
		batches := len(c.queue) + 1 + len(c.free) + 1 // queued, current, free, in delivery
		c.mu.Unlock()
		if held != 8*3 || batches > 2+2 {
			t.Errorf("holding %d metrics in %d batches, want 24 in at most 4", held, batches)
		}
		if want := uint64(n + 1001 - 8*4); b.Dropped() != want {
			t.Errorf("Dropped = %d, want %d", b.Dropped(), want)
		}
		close(d.release)
	})
}

// panicky panics on operations numbered 13 and fails Flush.
type panicky struct {
	*reportertest.Recorder
	flushErr   error
	flushPanic bool
}

func (p *panicky) ReportOperation(ctx context.Context, m store.OperationMetric) {
	if m.ItemCount == 13 {
		panic("unlucky")
	}
	p.Recorder.ReportOperation(ctx, m)
}

func (p *panicky) Flush(context.Context) error {
	if p.flushPanic {
		panic("flush exploded")
	}
	return p.flushErr
}

func TestBufferedContainment(t *testing.T) {
	boom := errors.New("delegate flush failed")
	d := &panicky{Recorder: reportertest.New(), flushErr: boom}
	errs := &errorSink{}
	b := NewBuffered(d, WithBufferSize(4), WithErrorHandler(func(err error) {
		errs.handle(err)
		panic("the error handler panics too")
	}))
	defer func() {
		if err := b.Close(context.Background()); !errors.Is(err, boom) {
			t.Errorf("Close = %v, want the delegate's flush error", err)
		}
	}()
	ctx := context.Background()
	for i := 10; i < 20; i++ {
		b.ReportOperation(ctx, op(i))
	}
	if err := b.Flush(ctx); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want the delegate's error", err)
	}
	if got, want := numbers(d.Recorder), []int{10, 11, 12, 14, 15, 16, 17, 18, 19}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if b.Panics() != 1 {
		t.Errorf("Panics = %d, want 1", b.Panics())
	}
	// The panic, then the failed flush after each of the 3 buffers.
	var pe *store.ReporterPanicError
	got := errs.all()
	if len(got) != 4 || !errors.As(got[0], &pe) || pe.Method != "ReportOperation" || pe.Value != "unlucky" {
		t.Errorf("error handler got %v", got)
	}
	for _, err := range got[1:] {
		if !errors.Is(err, boom) {
			t.Errorf("error handler got %v, want the delegate's flush error", err)
		}
	}
	d.flushPanic = true
	if err := b.Flush(ctx); !errors.As(err, &pe) || pe.Method != "Flush" {
		t.Errorf("Flush with a panicking delegate = %v", err)
	}
	if b.Panics() != 2 {
		t.Errorf("Panics = %d, want 2", b.Panics())
	}
	d.flushPanic = false
}

type ctxKey struct{}

// ctxRecorder keeps the contexts it receives.
type ctxRecorder struct {
	store.NoOpMetricsReporter
	mu   sync.Mutex
	ctxs []context.Context
}

func (r *ctxRecorder) ReportOperation(ctx context.Context, _ store.OperationMetric) {
	r.mu.Lock()
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
}

func TestBufferedDetachedContext(t *testing.T) {
	d := &ctxRecorder{}
	b := NewBuffered(d)
	defer closeBuffered(t, b)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "request"))
	b.ReportOperation(ctx, op(0))
	cancel()
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := d.ctxs[0]
	if got.Value(ctxKey{}) != nil || got.Done() != nil || got.Err() != nil {
		t.Errorf("the delegate received the caller's context (value %v, err %v)", got.Value(ctxKey{}), got.Err())
	}
}

func TestBufferedFlushAndCloseContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newStalled()
		b := NewBuffered(d)
		b.ReportOperation(context.Background(), op(0))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush on a stalled delegate = %v", err)
		}
		if n := len(b.c.waiters); n != 0 {
			t.Errorf("%d waiters left after Flush gave up", n)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close on a stalled delegate = %v", err)
		}
		close(d.release)
		closeBuffered(t, b)
		if got := numbers(d.Recorder); !slices.Equal(got, []int{0}) {
			t.Errorf("delivered %v", got)
		}
	})
}

// tracerOnly is a plain reporter with spans but no Bind and no stats.
type tracerOnly struct {
	store.NoOpMetricsReporter
	started atomic.Int32
}

func (t *tracerOnly) StartOperation(ctx context.Context, _ store.OperationStart) (context.Context, any) {
	t.started.Add(1)
	return ctx, t
}
func (t *tracerOnly) EndOperation(context.Context, any, store.OperationEnd) {}
func (t *tracerOnly) StartBackendCall(ctx context.Context, _ store.BackendCall) (context.Context, any) {
	return ctx, nil
}
func (t *tracerOnly) EndBackendCall(context.Context, any, store.BackendCallEnd) {}

// capabilities lists the optional capabilities of r.
func capabilities(r store.MetricsReporter) string {
	var s string
	if _, ok := r.(store.Binder); ok {
		s += "B"
	}
	if _, ok := r.(store.OperationTracer); ok {
		s += "T"
	}
	if _, ok := r.(store.StatsProvider); ok {
		s += "S"
	}
	return s
}

func TestBufferedBindCapabilities(t *testing.T) {
	tests := []struct {
		name     string
		delegate store.MetricsReporter
		caps     string
		wantIDs  bool
		release  bool
	}{
		{"recorder", reportertest.New(reportertest.WithItemIDs()), "TS", true, true},
		{"console", NewConsole(&lineWriter{t: t}), "", true, true},
		{"stats", NewStats(), "S", false, false},
		{"tracer without bind", &tracerOnly{}, "T", false, false},
		{"no-op", store.NoOpMetricsReporter{}, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuffered(tt.delegate)
			defer closeBuffered(t, b)
			bd := b.Bind(store.StoreInfo{Name: "user", SampleRate: 1})
			if got := capabilities(bd.Reporter); got != tt.caps {
				t.Errorf("bound capabilities %q, want %q", got, tt.caps)
			}
			if bd.WantItemIDs != tt.wantIDs || (bd.Release != nil) != tt.release {
				t.Errorf("WantItemIDs %v Release %v, want %v %v", bd.WantItemIDs, bd.Release != nil, tt.wantIDs, tt.release)
			}
		})
	}
}

func TestBufferedForwarding(t *testing.T) {
	rec := reportertest.New(reportertest.WithItemIDs())
	b := NewBuffered(rec)
	defer closeBuffered(t, b)
	ctx := context.Background()
	bd := b.Bind(store.StoreInfo{Name: "user", SampleRate: 1})
	if binds := rec.Binds(); len(binds) != 1 || binds[0].Name != "user" {
		t.Fatalf("delegate binds %v", binds)
	}
	r := bd.Reporter

	// Spans go through synchronously, with the delegate's handles.
	tr := r.(store.OperationTracer)
	octx, h := tr.StartOperation(ctx, store.OperationStart{Operation: store.OpGet, Sampled: true})
	bctx, bh := tr.StartBackendCall(octx, store.BackendCall{Operation: store.OpGet})
	tr.EndBackendCall(bctx, bh, store.BackendCallEnd{})
	tr.EndOperation(octx, h, store.OperationEnd{})
	spans := rec.Spans()
	if len(spans) != 2 || !spans[0].Ended || !spans[1].Ended || spans[1].Parent != 0 {
		t.Errorf("spans %+v", spans)
	}

	// Stats lag by what is buffered.
	r.ReportOperation(ctx, op(1))
	sp := r.(store.StatsProvider)
	if n := sp.Stats().OperationCounts[store.OpGet]; n != 0 {
		t.Errorf("stats before Flush count %d gets", n)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sp.Stats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("stats after Flush count %d gets, want 1", n)
	}
	if n := sp.ResetStats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("ResetStats counted %d gets, want 1", n)
	}
	bd.Release()
	if rec.Released() != 1 {
		t.Errorf("delegate released %d times", rec.Released())
	}

	// The unbound Buffered forwards too.
	_, h = b.StartOperation(ctx, store.OperationStart{})
	b.EndOperation(ctx, h, store.OperationEnd{})
	_, h = b.StartBackendCall(ctx, store.BackendCall{})
	b.EndBackendCall(ctx, h, store.BackendCallEnd{})
	if n := len(rec.Spans()); n != 4 {
		t.Errorf("%d spans, want 4", n)
	}
	b.ReportOperation(ctx, op(2))
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.Stats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("Buffered.Stats counts %d gets, want 1", n)
	}
	if n := b.ResetStats().OperationCounts[store.OpGet]; n != 1 {
		t.Errorf("Buffered.ResetStats counts %d gets, want 1", n)
	}

	// Without capabilities in the delegate: nothing to forward.
	plain := NewBuffered(store.NoOpMetricsReporter{})
	defer closeBuffered(t, plain)
	if c, h := plain.StartOperation(ctx, store.OperationStart{}); c != ctx || h != nil {
		t.Error("StartOperation without a tracing delegate changed the context")
	}
	plain.EndOperation(ctx, nil, store.OperationEnd{})
	if c, h := plain.StartBackendCall(ctx, store.BackendCall{}); c != ctx || h != nil {
		t.Error("StartBackendCall without a tracing delegate changed the context")
	}
	plain.EndBackendCall(ctx, nil, store.BackendCallEnd{})
	if st := plain.Stats(); st.OperationCounts != nil {
		t.Error("Stats without a stats delegate is not the zero StoreStats")
	}
	if st := plain.ResetStats(); st.OperationCounts != nil {
		t.Error("ResetStats without a stats delegate is not the zero StoreStats")
	}
}

// TestBufferedPerStoreDelegates checks that each bound store's metrics
// reach the delegate its Bind returned, in one shared buffer.
func TestBufferedPerStoreDelegates(t *testing.T) {
	w := &lineWriter{t: t}
	b := NewBuffered(NewConsole(w))
	defer closeBuffered(t, b)
	a := b.Bind(store.StoreInfo{Name: "user"}).Reporter
	o := b.Bind(store.StoreInfo{Name: "order"}).Reporter
	report(a, cacheEviction)
	report(o, syncCompleted)
	report(b, syncCompleted)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[NexusStore] user: cache eviction user-7\n",
		"[NexusStore] order: sync completed in 40ms (12 items)\n",
		"[NexusStore] sync completed in 40ms (12 items)\n",
	}
	if !slices.Equal(w.lines, want) {
		t.Errorf("got %q, want %q", w.lines, want)
	}
}

func TestBufferedConcurrent(t *testing.T) {
	rec := reportertest.New()
	b := NewBuffered(rec, WithBufferSize(16), WithMaxPendingBatches(1<<10))
	const goroutines, perG = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				b.ReportOperation(context.Background(), op(g*perG+i))
				if i%500 == 0 {
					if err := b.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	closeBuffered(t, b)
	got := numbers(rec)
	if uint64(len(got))+b.Dropped() != goroutines*perG {
		t.Fatalf("delivered %d + dropped %d, want %d", len(got), b.Dropped(), goroutines*perG)
	}
	// Each goroutine's metrics arrive in the order it reported them.
	last := make(map[int]int)
	for _, n := range got {
		g := n / perG
		if prev, ok := last[g]; ok && n <= prev {
			t.Fatalf("goroutine %d: %d delivered after %d", g, n, prev)
		}
		last[g] = n
	}
}

// warmBuffered returns a Buffered over a no-op delegate whose free list
// holds every batch it can ever need, so that the following reports
// allocate nothing whatever the timing of the flushing goroutine.
func warmBuffered(t testing.TB, size, pending int) *Buffered {
	d := &gated{entered: make(chan struct{}), release: make(chan struct{})}
	b := NewBuffered(d, WithBufferSize(size), WithMaxPendingBatches(pending))
	ctx := context.Background()
	for i := 0; b.Dropped() == 0; i++ {
		b.ReportOperation(ctx, op(0))
		if i == size-1 {
			<-d.entered // one batch in delivery: the others fill the queue
		}
	}
	d.open.Store(true)
	close(d.release)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.c.dropped.Store(0)
	return b
}

// gated holds its first ReportOperation call until release is closed,
// then costs nothing once open is set.
type gated struct {
	store.NoOpMetricsReporter
	open    atomic.Bool
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gated) ReportOperation(context.Context, store.OperationMetric) {
	if g.open.Load() {
		return
	}
	g.once.Do(func() { close(g.entered) })
	<-g.release
}

func TestBufferedReportAllocs(t *testing.T) {
	b := warmBuffered(t, 64, 2)
	defer closeBuffered(t, b)
	ctx := context.Background()
	m := opGetHit
	allocs := testing.AllocsPerRun(10_000, func() {
		b.ReportOperation(ctx, m)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per ReportOperation, want 0", allocs)
	}
}

func TestBufferedEndToEnd(t *testing.T) {
	rec := reportertest.New(reportertest.WithItemIDs())
	mc := store.MetricsConfig{BufferSize: 1000, FlushInterval: time.Hour}
	b := NewBuffered(rec, FromConfig(mc))
	defer closeBuffered(t, b)
	s, _ := newUserStore(t, b, func(c *store.Config[user, string]) { c.Metrics = mc })
	ctx := context.Background()
	if _, err := s.Save(ctx, user{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("%d metrics delivered before any flush", n)
	}
	if n := len(rec.Spans()); n == 0 {
		t.Error("spans did not reach the delegate synchronously")
	}
	if err := s.Close(ctx); err != nil { // flushes the reporter
		t.Fatal(err)
	}
	want := []string{"cache:write", "save[cache_and_network] ok n=1", "cache:hit", "get[cache_first] hit ok n=1"}
	if got := rec.Sequence(); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
	if id := rec.Operations()[1].ItemID; id != "u1" {
		t.Errorf("item ID %v, want u1 (the delegate asked for IDs)", id)
	}
	st := s.Stats()
	if st.OperationCounts[store.OpGet] != 1 || st.CacheHitRate != 1 {
		t.Errorf("Store.Stats through the buffer: %+v", st)
	}
	if rec.Released() != 1 {
		t.Errorf("delegate released %d times", rec.Released())
	}
}

// BenchmarkBufferedReportOperation measures the report call with a no-op
// delegate and a queue deep enough that the flushing goroutine keeps up
// (drops, which are cheaper, would flatter the figure).
func BenchmarkBufferedReportOperation(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			buf := warmBuffered(b, store.DefaultMetricsBufferSize, 1<<10)
			defer closeBuffered(b, buf)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						buf.ReportOperation(ctx, opGetHit)
					}
				})
			} else {
				for b.Loop() {
					buf.ReportOperation(ctx, opGetHit)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(buf.Dropped())/float64(b.N), "dropped/op")
		})
	}
}

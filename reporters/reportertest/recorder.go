package reportertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Kind is the kind of a recorded metric.
type Kind uint8

// The kinds of metrics.
const (
	KindOperation Kind = iota
	KindCache
	KindSync
	KindError
	KindFeed
)

func (k Kind) String() string {
	switch k {
	case KindOperation:
		return "operation"
	case KindCache:
		return "cache"
	case KindSync:
		return "sync"
	case KindError:
		return "error"
	case KindFeed:
		return "feed"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event is one recorded metric; the field named by Kind is set.
type Event struct {
	Kind      Kind
	Operation store.OperationMetric
	Cache     store.CacheMetric
	Sync      store.SyncMetric
	Error     store.ErrorMetric
	Feed      store.FeedMetric
}

// String renders the event compactly, without durations or timestamps, for
// comparing sequences:
//
//	get[cache_first] hit ok n=1      an operation (policy, cache result, outcome, items)
//	cache:write                      a cache event
//	sync:completed n=3               a sync event (items synced for completed/failed)
//	error:save                       an error metric (":recovered" when Recoverable)
//	feed:changed                     a change-feed event
func (e Event) String() string {
	switch e.Kind {
	case KindOperation:
		m := e.Operation
		var b strings.Builder
		b.WriteString(m.Operation.String())
		if m.Policy != store.PolicyNone {
			b.WriteString("[" + m.Policy.String() + "]")
		}
		if m.CacheResult != store.CacheResultNone {
			b.WriteString(" " + m.CacheResult.String())
		}
		if m.Success {
			b.WriteString(" ok")
		} else {
			b.WriteString(" failed")
		}
		fmt.Fprintf(&b, " n=%d", m.ItemCount)
		return b.String()
	case KindCache:
		if e.Cache.Remote {
			return "cache:" + e.Cache.Event.String() + ":remote"
		}
		return "cache:" + e.Cache.Event.String()
	case KindFeed:
		return "feed:" + e.Feed.Event.String()
	case KindSync:
		s := "sync:" + e.Sync.Event.String()
		if e.Sync.Event == store.SyncCompleted || e.Sync.Event == store.SyncFailed {
			s += fmt.Sprintf(" n=%d", e.Sync.ItemsSynced)
		}
		return s
	case KindError:
		s := "error:" + e.Error.Operation.String()
		if e.Error.Recoverable {
			s += ":recovered"
		}
		return s
	}
	return e.Kind.String()
}

// Span is one OperationTracer bracket the recorder saw: an operation or a
// backend call.
type Span struct {
	Operation  store.OperationType
	Backend    bool // a backend call, not an operation
	Background bool
	Sampled    bool
	Ended      bool
	Err        error
	Parent     int // index of the enclosing operation span, -1 if none
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithItemIDs makes the Recorder ask for item IDs at Bind.
func WithItemIDs() Option { return func(r *Recorder) { r.wantIDs = true } }

// Recorder keeps every metric it receives. The zero value is not usable;
// call New. Safe for concurrent use.
type Recorder struct {
	wantIDs bool

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every record
	events   []Event
	binds    []store.StoreInfo
	released int
	flushes  int
	spans    []Span
	window   int       // index of the first event of the current stats window
	start    time.Time // when the window started
}

var (
	_ store.MetricsReporter = (*Recorder)(nil)
	_ store.Binder          = (*Recorder)(nil)
	_ store.OperationTracer = (*Recorder)(nil)
	_ store.StatsProvider   = (*Recorder)(nil)
	_ store.FeedReporter    = (*Recorder)(nil)
)

// New returns an empty Recorder.
func New(opts ...Option) *Recorder {
	r := &Recorder{changed: make(chan struct{}), start: time.Now()}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Recorder) record(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// ReportOperation records m.
func (r *Recorder) ReportOperation(_ context.Context, m store.OperationMetric) {
	r.record(Event{Kind: KindOperation, Operation: m})
}

// ReportCacheEvent records m.
func (r *Recorder) ReportCacheEvent(_ context.Context, m store.CacheMetric) {
	r.record(Event{Kind: KindCache, Cache: m})
}

// ReportSyncEvent records m.
func (r *Recorder) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	r.record(Event{Kind: KindSync, Sync: m})
}

// ReportError records m.
func (r *Recorder) ReportError(_ context.Context, m store.ErrorMetric) {
	r.record(Event{Kind: KindError, Error: m})
}

// ReportFeedEvent records m.
func (r *Recorder) ReportFeedEvent(_ context.Context, m store.FeedMetric) {
	r.record(Event{Kind: KindFeed, Feed: m})
}

// Flush counts the call and returns nil.
func (r *Recorder) Flush(context.Context) error {
	r.mu.Lock()
	r.flushes++
	r.mu.Unlock()
	return nil
}

// Bind records info and serves the store itself.
func (r *Recorder) Bind(info store.StoreInfo) store.Binding {
	r.mu.Lock()
	r.binds = append(r.binds, info)
	r.mu.Unlock()
	return store.Binding{WantItemIDs: r.wantIDs, Release: func() {
		r.mu.Lock()
		r.released++
		r.mu.Unlock()
	}}
}

type spanKey struct{}

// StartOperation records an operation span; the handle is its index.
func (r *Recorder) StartOperation(ctx context.Context, op store.OperationStart) (context.Context, any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	parent := -1
	if p, ok := ctx.Value(spanKey{}).(int); ok {
		parent = p
	}
	i := len(r.spans)
	r.spans = append(r.spans, Span{Operation: op.Operation, Sampled: op.Sampled, Background: op.Background, Parent: parent})
	return context.WithValue(ctx, spanKey{}, i), i
}

// EndOperation marks the span ended.
func (r *Recorder) EndOperation(_ context.Context, handle any, end store.OperationEnd) {
	r.end(handle, end.Err)
}

// StartBackendCall records a backend span under the operation in ctx.
func (r *Recorder) StartBackendCall(ctx context.Context, call store.BackendCall) (context.Context, any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	parent := -1
	if p, ok := ctx.Value(spanKey{}).(int); ok {
		parent = p
	}
	i := len(r.spans)
	r.spans = append(r.spans, Span{Operation: call.Operation, Backend: true, Sampled: call.Sampled, Background: call.Background, Parent: parent})
	return ctx, i
}

// EndBackendCall marks the span ended.
func (r *Recorder) EndBackendCall(_ context.Context, handle any, end store.BackendCallEnd) {
	r.end(handle, end.Err)
}

func (r *Recorder) end(handle any, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := handle.(int); ok && i >= 0 && i < len(r.spans) {
		if r.spans[i].Ended {
			panic(fmt.Sprintf("reportertest: span %d ended twice", i))
		}
		r.spans[i].Ended, r.spans[i].Err = true, err
	}
}

// Events returns a copy of everything recorded, in order.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Sequence returns the recorded events rendered by Event.String.
func (r *Recorder) Sequence() []string {
	evs := r.Events()
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.String()
	}
	return out
}

// Operations returns the recorded operation metrics.
func (r *Recorder) Operations() []store.OperationMetric {
	var out []store.OperationMetric
	for _, e := range r.Of(KindOperation) {
		out = append(out, e.Operation)
	}
	return out
}

// CacheEvents returns the recorded cache metrics.
func (r *Recorder) CacheEvents() []store.CacheMetric {
	var out []store.CacheMetric
	for _, e := range r.Of(KindCache) {
		out = append(out, e.Cache)
	}
	return out
}

// SyncEvents returns the recorded sync metrics.
func (r *Recorder) SyncEvents() []store.SyncMetric {
	var out []store.SyncMetric
	for _, e := range r.Of(KindSync) {
		out = append(out, e.Sync)
	}
	return out
}

// Errors returns the recorded error metrics.
func (r *Recorder) Errors() []store.ErrorMetric {
	var out []store.ErrorMetric
	for _, e := range r.Of(KindError) {
		out = append(out, e.Error)
	}
	return out
}

// Of returns the recorded events of one kind.
func (r *Recorder) Of(k Kind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many events match keep (nil: all).
func (r *Recorder) Count(keep func(Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if keep == nil || keep(e) {
			n++
		}
	}
	return n
}

// WaitFor blocks until at least n recorded events match keep (nil: all) or
// ctx ends, for metrics reported by background work. It never sleeps: it
// wakes on each new event.
func (r *Recorder) WaitFor(ctx context.Context, n int, keep func(Event) bool) error {
	for {
		r.mu.Lock()
		got := 0
		for _, e := range r.events {
			if keep == nil || keep(e) {
				got++
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("reportertest: waiting for %d events, have %d: %w", n, got, ctx.Err())
		}
	}
}

// Is returns a filter for WaitFor and Count matching events whose String
// is s.
func Is(s string) func(Event) bool { return func(e Event) bool { return e.String() == s } }

// Reset forgets everything recorded (not the binds) and starts a new stats
// window.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events, r.spans, r.window, r.flushes = nil, nil, 0, 0
	r.start = time.Now()
}

// Binds returns the StoreInfo of every Bind call.
func (r *Recorder) Binds() []store.StoreInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.StoreInfo(nil), r.binds...)
}

// Released returns how many bound stores released the recorder (Close).
func (r *Recorder) Released() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}

// Flushes returns how many times Flush was called.
func (r *Recorder) Flushes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

// Spans returns the recorded spans.
func (r *Recorder) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Stats computes store.StoreStats from the events of the current window.
func (r *Recorder) Stats() store.StoreStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return compute(r.events[r.window:], r.start)
}

// ResetStats returns the current window and starts a new one, atomically.
func (r *Recorder) ResetStats() store.StoreStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := compute(r.events[r.window:], r.start)
	r.window, r.start = len(r.events), st.End
	return st
}

// compute aggregates events exactly; a sampled metric counts 1/SampleRate.
func compute(events []Event, start time.Time) store.StoreStats {
	st := store.StoreStats{
		OperationCounts: map[store.OperationType]int64{},
		TotalDurations:  map[store.OperationType]time.Duration{},
		FailureCounts:   map[store.OperationType]int64{},
		CacheEvents:     map[store.CacheEvent]int64{},
		SyncEvents:      map[store.SyncEvent]int64{},
		Start:           start,
		End:             time.Now(),
	}
	opW := map[store.OperationType]float64{}
	failW := map[store.OperationType]float64{}
	durW := map[store.OperationType]float64{}
	cacheW := map[store.CacheEvent]float64{}
	for _, e := range events {
		switch e.Kind {
		case KindOperation:
			m := e.Operation
			w := weight(m.SampleRate, &st)
			opW[m.Operation] += w
			durW[m.Operation] += w * float64(m.Duration)
			if !m.Success {
				failW[m.Operation] += w
			}
		case KindCache:
			cacheW[e.Cache.Event] += weight(e.Cache.SampleRate, &st)
		case KindSync:
			st.SyncEvents[e.Sync.Event]++
			if e.Sync.Event == store.SyncCompleted || e.Sync.Event == store.SyncFailed {
				st.ItemsSynced += int64(e.Sync.ItemsSynced)
			}
		case KindError:
			st.ErrorCount++
		}
	}
	for op, w := range opW {
		st.OperationCounts[op] = round(w)
		st.TotalDurations[op] = time.Duration(round(durW[op]))
		if failW[op] > 0 {
			st.FailureCounts[op] = round(failW[op])
		}
	}
	for ev, w := range cacheW {
		st.CacheEvents[ev] = round(w)
	}
	st.Recompute()
	return st
}

func weight(rate float64, st *store.StoreStats) float64 {
	if rate <= 0 || rate >= 1 {
		return 1
	}
	st.Estimated = true
	return 1 / rate
}

func round(f float64) int64 { return int64(f + 0.5) }

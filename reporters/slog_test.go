package reporters

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
)

// captured is a record a captureHandler handled, with its attributes
// (those added by Logger.With first) rendered as strings.
type captured struct {
	Level slog.Level
	Msg   string
	Time  time.Time
	Ctx   context.Context
	Attrs map[string]string
}

// captureHandler keeps the records it handles.
type captureHandler struct {
	level slog.Level
	attrs []slog.Attr // from WithAttrs
	sink  *captureSink
}

type captureSink struct {
	mu      sync.Mutex
	records []captured
	enabled int // calls to Enabled
}

func newCaptureHandler(level slog.Level) *captureHandler {
	return &captureHandler{level: level, sink: &captureSink{}}
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool {
	h.sink.mu.Lock()
	h.sink.enabled++
	h.sink.mu.Unlock()
	return l >= h.level
}

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	c := captured{Level: r.Level, Msg: r.Message, Time: r.Time, Ctx: ctx, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		c.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		c.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.sink.mu.Lock()
	h.sink.records = append(h.sink.records, c)
	h.sink.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{level: h.level, attrs: append(slices.Clone(h.attrs), as...), sink: h.sink}
}

func (h *captureHandler) WithGroup(string) slog.Handler { panic("not used") }

func (h *captureHandler) records() []captured {
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	return slices.Clone(h.sink.records)
}

func TestSlogRecords(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		metric any
		level  slog.Level
		msg    string
		attrs  map[string]string
	}{
		{"operation", withTime(opGetHit, ts), slog.LevelDebug, SlogOperationMessage, map[string]string{
			"operation": "get", "policy": "cache_first", "duration": "15ms", "success": "true",
			"items": "1", "cache": "hit", "id": "user-123",
		}},
		{"operation failed", opSaveAllFailed, slog.LevelWarn, SlogOperationMessage, map[string]string{
			"operation": "save_all", "policy": "cache_and_network", "duration": "2.1ms", "success": "false",
			"items": "3", "error": "store: backend unavailable", "error_type": "_OTHER",
		}},
		{"operation sampled", store.OperationMetric{Operation: store.OpSync, Success: true, SampleRate: 0.25}, slog.LevelDebug, SlogOperationMessage, map[string]string{
			"operation": "sync", "duration": "0s", "success": "true", "items": "0", "sample_rate": "0.25",
		}},
		{"cache", store.CacheMetric{Event: store.CacheInvalidation, ItemID: 7, Tags: []string{"a", "b"}, SampleRate: 1}, slog.LevelDebug, SlogCacheMessage, map[string]string{
			"cache": "invalidation", "id": "7", "tags": "[a b]",
		}},
		{"sync started", store.SyncMetric{Event: store.SyncStarted}, slog.LevelDebug, SlogSyncMessage, map[string]string{"event": "started"}},
		{"sync completed", syncCompleted, slog.LevelDebug, SlogSyncMessage, map[string]string{"event": "completed", "duration": "40ms", "items": "12"}},
		{"sync failed", store.SyncMetric{Event: store.SyncFailed, Duration: time.Second, ItemsSynced: 2, Err: store.ErrUnavailable}, slog.LevelWarn, SlogSyncMessage, map[string]string{
			"event": "failed", "duration": "1s", "items": "2", "error": "store: backend unavailable", "error_type": "store.ErrUnavailable",
		}},
		{"sync retried", store.SyncMetric{Event: store.SyncRetried, Duration: time.Millisecond, ItemID: "u", Err: store.ErrUnavailable}, slog.LevelInfo, SlogSyncMessage, map[string]string{
			"event": "retried", "duration": "1ms", "id": "u", "error": "store: backend unavailable", "error_type": "store.ErrUnavailable",
		}},
		{"sync conflict", store.SyncMetric{Event: store.SyncConflictResolved, ItemID: "u"}, slog.LevelInfo, SlogSyncMessage, map[string]string{
			"event": "conflict_resolved", "id": "u",
		}},
		{"error", store.ErrorMetric{Err: store.ErrClosed, Operation: store.OpSave, ItemID: "u"}, slog.LevelError, SlogErrorMessage, map[string]string{
			"operation": "save", "recoverable": "false", "id": "u", "error": "store: closed", "error_type": "store.ErrClosed",
		}},
		{"error recovered", store.ErrorMetric{Err: store.ErrUnavailable, Operation: store.OpGet, Recoverable: true, Stack: []byte("stack")}, slog.LevelWarn, SlogErrorMessage, map[string]string{
			"operation": "get", "recoverable": "true", "error": "store: backend unavailable", "error_type": "store.ErrUnavailable", "stack": "stack",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newCaptureHandler(slog.LevelDebug)
			report(NewSlog(slog.New(h)), tt.metric)
			rs := h.records()
			if len(rs) != 1 {
				t.Fatalf("%d records, want 1", len(rs))
			}
			r := rs[0]
			if r.Level != tt.level || r.Msg != tt.msg {
				t.Errorf("level %v msg %q, want %v %q", r.Level, r.Msg, tt.level, tt.msg)
			}
			if !maps.Equal(r.Attrs, tt.attrs) {
				t.Errorf("attrs\n got %v\nwant %v", r.Attrs, tt.attrs)
			}
		})
	}
}

func withTime(m store.OperationMetric, ts time.Time) store.OperationMetric {
	m.Timestamp = ts
	return m
}

func TestSlogTimeAndContext(t *testing.T) {
	h := newCaptureHandler(slog.LevelDebug)
	s := NewSlog(slog.New(h))
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "trace")
	s.ReportOperation(ctx, withTime(opGetHit, ts))
	before := time.Now()
	s.ReportCacheEvent(ctx, cacheEviction) // no timestamp: now
	rs := h.records()
	if !rs[0].Time.Equal(ts) {
		t.Errorf("record time %v, want the metric's %v", rs[0].Time, ts)
	}
	if rs[1].Time.Before(before) {
		t.Errorf("record time %v for a metric without timestamp, want now", rs[1].Time)
	}
	for _, r := range rs {
		if r.Ctx.Value(key{}) != "trace" {
			t.Error("the handler did not receive the store's context")
		}
	}
}

func TestSlogLevels(t *testing.T) {
	h := newCaptureHandler(slog.LevelInfo)
	s := NewSlog(slog.New(h), WithLevel(CategoryCache, slog.LevelInfo), WithLevel(CategoryOperationFailed, slog.LevelError))
	for _, m := range []any{opGetHit, opSaveAllFailed, cacheEviction, syncCompleted} {
		report(s, m)
	}
	var got []string
	for _, r := range h.records() {
		got = append(got, r.Level.String()+" "+r.Msg)
	}
	want := []string{"ERROR " + SlogOperationMessage, "INFO " + SlogCacheMessage}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSlogFilter(t *testing.T) {
	h := newCaptureHandler(slog.LevelDebug)
	s := NewSlog(slog.New(h), WithKinds(KindOperation, KindError), WithMinDuration(10*time.Millisecond))
	fast := opGetHit
	fast.Duration = time.Millisecond
	for _, m := range []any{opGetHit, fast, cacheEviction, syncCompleted, store.ErrorMetric{Err: errUnavailable}} {
		report(s, m)
	}
	var got []string
	for _, r := range h.records() {
		got = append(got, r.Msg+" "+r.Attrs["duration"])
	}
	want := []string{SlogOperationMessage + " 15ms", SlogErrorMessage + " "}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSlogDisabledBuildsNothing(t *testing.T) {
	h := newCaptureHandler(slog.LevelError)
	s := NewSlog(slog.New(h)).Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		s.ReportOperation(ctx, opGetHit)
		s.ReportCacheEvent(ctx, cacheEviction)
		s.ReportSyncEvent(ctx, syncCompleted)
		s.ReportError(ctx, store.ErrorMetric{Err: errUnavailable, Recoverable: true})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per disabled report, want 0", allocs)
	}
	if len(h.records()) != 0 {
		t.Error("disabled records were handled")
	}
	if h.sink.enabled == 0 {
		t.Error("Enabled was not asked")
	}
}

func TestSlogBind(t *testing.T) {
	h := newCaptureHandler(slog.LevelDebug)
	s := NewSlog(slog.New(h))
	bd := s.Bind(store.StoreInfo{Name: "user"})
	if !bd.WantItemIDs {
		t.Error("Bind does not ask for item IDs")
	}
	report(bd.Reporter, opGetHit)
	report(s, opGetHit)
	rs := h.records()
	if rs[0].Attrs["store"] != "user" {
		t.Errorf("bound record attrs %v, want store=user", rs[0].Attrs)
	}
	if _, ok := rs[1].Attrs["store"]; ok {
		t.Errorf("unbound record attrs %v, want no store", rs[1].Attrs)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestSlogNilLogger(t *testing.T) {
	if NewSlog(nil).logger != slog.Default() {
		t.Error("a nil logger is not slog.Default()")
	}
}

func TestSlogEndToEnd(t *testing.T) {
	h := newCaptureHandler(slog.LevelDebug)
	s, b := newUserStore(t, NewSlog(slog.New(h)), func(c *store.Config[user, string]) {
		c.Name = "people"
		c.FetchPolicy = store.FetchNetworkOnly
	})
	ctx := context.Background()
	if _, err := s.Save(ctx, user{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	b.SetUnavailable(true)
	if _, err := s.Get(ctx, "u1"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on an unavailable backend: %v", err)
	}
	var got []string
	for _, r := range h.records() {
		if r.Attrs["store"] != "people" {
			t.Errorf("record without the store's name: %v", r.Attrs)
		}
		l := r.Level.String() + " " + r.Msg
		for _, k := range []string{"operation", "cache", "success", "id", "error_type"} {
			if v, ok := r.Attrs[k]; ok {
				l += " " + k + "=" + v
			}
		}
		got = append(got, l)
	}
	want := []string{
		"DEBUG nexus cache event cache=write id=u1",
		"DEBUG nexus operation operation=save success=true id=u1",
		"ERROR nexus error operation=get id=u1 error_type=store.ErrUnavailable",
		"WARN nexus operation operation=get success=false id=u1 error_type=store.ErrUnavailable",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func BenchmarkSlogReportOperation(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		level slog.Level
	}{{"disabled", slog.LevelInfo}, {"enabled", slog.LevelDebug}} {
		b.Run(bc.name, func(b *testing.B) {
			h := slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: bc.level})
			s := NewSlog(slog.New(h)).Bind(store.StoreInfo{Name: "user"}).Reporter
			b.ReportAllocs()
			for b.Loop() {
				s.ReportOperation(ctx, opGetHit)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

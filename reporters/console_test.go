package reporters

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
)

// report sends m, whatever its kind, to r.
func report(r store.MetricsReporter, m any) {
	ctx := context.Background()
	switch m := m.(type) {
	case store.OperationMetric:
		r.ReportOperation(ctx, m)
	case store.CacheMetric:
		r.ReportCacheEvent(ctx, m)
	case store.SyncMetric:
		r.ReportSyncEvent(ctx, m)
	case store.ErrorMetric:
		r.ReportError(ctx, m)
	default:
		panic(fmt.Sprintf("not a metric: %T", m))
	}
}

type stringerID struct{ n int }

func (s stringerID) String() string { return fmt.Sprintf("id#%d", s.n) }

func TestConsoleLines(t *testing.T) {
	tests := []struct {
		name   string
		metric any
		want   string
	}{
		{"get hit", opGetHit, "get(user-123) completed in 15ms (cache hit)"},
		{"save_all failed", opSaveAllFailed, "save_all(3 items) failed in 2.1ms: store: backend unavailable"},
		{"get miss not found", store.OperationMetric{Operation: store.OpGet, Duration: 3 * time.Microsecond, Success: true, CacheResult: store.CacheResultMiss, ItemID: "u1", SampleRate: 1},
			"get(u1) completed in 3µs (cache miss, not found)"},
		{"get network not found", store.OperationMetric{Operation: store.OpGet, Duration: 1234567, Success: true, ItemID: "u1"},
			"get(u1) completed in 1.23ms (not found)"},
		{"get without id", store.OperationMetric{Operation: store.OpGet, Duration: 850 * time.Microsecond, Success: true, ItemCount: 1, CacheResult: store.CacheResultHit},
			"get completed in 850µs (cache hit)"},
		{"get failed", store.OperationMetric{Operation: store.OpGet, Duration: 2 * time.Second, CacheResult: store.CacheResultMiss, ItemID: 42, Err: errUnavailable},
			"get(42) failed in 2s (cache miss): store: backend unavailable"},
		{"get sampled", store.OperationMetric{Operation: store.OpGet, Duration: 15 * time.Millisecond, Success: true, ItemCount: 1, CacheResult: store.CacheResultHit, ItemID: "u1", SampleRate: 0.1},
			"get(u1) completed in 15ms (cache hit, sampled 1/10)"},
		{"save", store.OperationMetric{Operation: store.OpSave, Duration: 1500 * time.Millisecond, Success: true, ItemCount: 1, ItemID: stringerID{7}, SampleRate: 0.3},
			"save(id#7) completed in 1.5s (sampled 1/3.33)"},
		{"delete absent", store.OperationMetric{Operation: store.OpDelete, Duration: 999 * time.Nanosecond, Success: true, ItemID: uint64(9)},
			"delete(9) completed in 999ns (not found)"},
		{"delete", store.OperationMetric{Operation: store.OpDelete, Duration: 999600 * time.Nanosecond, Success: true, ItemCount: 1, ItemID: int64(-3)},
			"delete(-3) completed in 1ms"},
		{"get_all", store.OperationMetric{Operation: store.OpGetAll, Duration: 12345 * time.Microsecond, Success: true, ItemCount: 1, CacheResult: store.CacheResultHit},
			"get_all(1 item) completed in 12.3ms (cache hit)"},
		{"get_all empty", store.OperationMetric{Operation: store.OpGetAll, Success: true},
			"get_all(0 items) completed in 0s"},
		{"delete_all", store.OperationMetric{Operation: store.OpDeleteAll, Duration: 90 * time.Second, Success: true, ItemCount: 5},
			"delete_all(5 items) completed in 1m30s"},
		{"watch", store.OperationMetric{Operation: store.OpWatch, Duration: time.Microsecond, Success: true, ItemCount: 1, ItemID: "w"},
			"watch(w) completed in 1µs"},
		{"watch_all", store.OperationMetric{Operation: store.OpWatchAll, Duration: time.Millisecond, Success: true, ItemCount: 2},
			"watch_all(2 items) completed in 1ms"},
		{"sync op", store.OperationMetric{Operation: store.OpSync, Duration: 40 * time.Millisecond, Success: true, ItemCount: 12},
			"sync(12 items) completed in 40ms"},
		{"transaction failed without error", store.OperationMetric{Operation: store.OpTransaction, Duration: 7 * time.Millisecond, ItemCount: 2},
			"transaction(2 items) failed in 7ms"},
		{"unknown op", store.OperationMetric{Operation: 200, Success: true},
			"OperationType(200)(0 items) completed in 0s"},

		{"cache eviction", cacheEviction, "cache eviction user-7"},
		{"cache hit without id", store.CacheMetric{Event: store.CacheHit, SampleRate: 1}, "cache hit"},
		{"cache invalidation tags", store.CacheMetric{Event: store.CacheInvalidation, ItemID: "user-7", Tags: []string{"vip", "beta"}, SampleRate: 1},
			"cache invalidation user-7 [vip beta]"},
		{"cache write sampled", store.CacheMetric{Event: store.CacheWrite, ItemID: 3, SampleRate: 0.5}, "cache write 3 (sampled 1/2)"},
		{"cache miss", store.CacheMetric{Event: store.CacheMiss, ItemID: "u"}, "cache miss u"},
		{"cache expiration", store.CacheMetric{Event: store.CacheExpiration, ItemID: "u"}, "cache expiration u"},

		{"sync started", store.SyncMetric{Event: store.SyncStarted}, "sync started"},
		{"sync completed", syncCompleted, "sync completed in 40ms (12 items)"},
		{"sync completed one", store.SyncMetric{Event: store.SyncCompleted, Duration: time.Millisecond, ItemsSynced: 1}, "sync completed in 1ms (1 item)"},
		{"sync failed", store.SyncMetric{Event: store.SyncFailed, Duration: 40 * time.Millisecond, ItemsSynced: 3, Err: errUnavailable},
			"sync failed in 40ms (3 items): store: backend unavailable"},
		{"sync retried", store.SyncMetric{Event: store.SyncRetried, Duration: 5 * time.Millisecond, ItemID: "user-7", Err: errUnavailable},
			"sync retried user-7: attempt failed in 5ms: store: backend unavailable"},
		{"sync retried without id", store.SyncMetric{Event: store.SyncRetried, Duration: 5 * time.Millisecond, Err: errUnavailable},
			"sync retried: attempt failed in 5ms: store: backend unavailable"},
		{"sync conflict", store.SyncMetric{Event: store.SyncConflictResolved, ItemID: "user-7"}, "sync conflict resolved user-7"},
		{"sync unknown", store.SyncMetric{Event: 99}, "sync SyncEvent(99)"},

		{"error", store.ErrorMetric{Err: errUnavailable, Operation: store.OpSave, ItemID: "user-7"},
			"error in save(user-7): store: backend unavailable"},
		{"error recovered", store.ErrorMetric{Err: errUnavailable, Operation: store.OpGet, ItemID: "user-7", Recoverable: true, Stack: []byte("goroutine 1")},
			"recovered error in get(user-7): store: backend unavailable"},
		{"error multi-item", store.ErrorMetric{Err: errUnavailable, Operation: store.OpSaveAll, ItemID: "ignored"},
			"error in save_all: store: backend unavailable"},
		{"error sync", store.ErrorMetric{Err: errUnavailable, Operation: store.OpSync, Recoverable: true},
			"recovered error in sync: store: backend unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			report(NewConsole(&buf), tt.metric)
			if got, want := buf.String(), "[NexusStore] "+tt.want+"\n"; got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestAppendDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1, "1ns"},
		{999, "999ns"},
		{1000, "1µs"},
		{1001, "1µs"},
		{1234, "1.23µs"},
		{1235, "1.24µs"},
		{99999, "100µs"},
		{850 * time.Microsecond, "850µs"},
		{2100 * time.Microsecond, "2.1ms"},
		{2134567, "2.13ms"},
		{15 * time.Millisecond, "15ms"},
		{15049 * time.Microsecond, "15ms"},
		{999499 * time.Microsecond, "999ms"},
		{999500 * time.Microsecond, "1s"},
		{12345 * time.Millisecond, "12.3s"},
		{59940 * time.Millisecond, "59.9s"},
		{59960 * time.Millisecond, "1m0s"},
		{61 * time.Minute, "1h1m0s"},
		{-2134567, "-2.13ms"},
	}
	for _, tt := range tests {
		if got := string(appendDuration(nil, tt.d)); got != tt.want {
			t.Errorf("appendDuration(%d) = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

func TestConsoleOptions(t *testing.T) {
	slow := store.OperationMetric{Operation: store.OpGet, Duration: 20 * time.Millisecond, Success: true, ItemCount: 1, ItemID: "slow"}
	fast := store.OperationMetric{Operation: store.OpGet, Duration: 2 * time.Millisecond, Success: true, ItemCount: 1, ItemID: "fast"}
	all := []any{slow, fast, cacheEviction, syncCompleted, store.ErrorMetric{Err: errUnavailable, Operation: store.OpGet}}
	tests := []struct {
		name string
		opts []ConsoleOption
		want []string
	}{
		{"defaults", nil, []string{
			"[NexusStore] get(slow) completed in 20ms",
			"[NexusStore] get(fast) completed in 2ms",
			"[NexusStore] cache eviction user-7",
			"[NexusStore] sync completed in 40ms (12 items)",
			"[NexusStore] error in get: store: backend unavailable",
		}},
		{"prefix", []ConsoleOption{WithPrefix("nexus>"), WithKinds(KindSync)}, []string{
			"nexus> sync completed in 40ms (12 items)",
		}},
		{"no prefix", []ConsoleOption{WithPrefix(""), WithKinds(KindCache, KindError)}, []string{
			"cache eviction user-7",
			"error in get: store: backend unavailable",
		}},
		{"min duration", []ConsoleOption{WithMinDuration(10 * time.Millisecond)}, []string{
			"[NexusStore] get(slow) completed in 20ms",
			"[NexusStore] cache eviction user-7",
			"[NexusStore] sync completed in 40ms (12 items)",
			"[NexusStore] error in get: store: backend unavailable",
		}},
		{"operations only", []ConsoleOption{WithKinds(KindOperation), WithMinDuration(20 * time.Millisecond)}, []string{
			"[NexusStore] get(slow) completed in 20ms",
		}},
		{"nothing", []ConsoleOption{WithKinds()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := NewConsole(&buf, tt.opts...)
			for _, m := range all {
				report(c, m)
			}
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if buf.Len() == 0 {
				got = nil
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// lineWriter fails the test if a Write is not exactly one line, and keeps
// the lines.
type lineWriter struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') != len(p)-1 {
		w.t.Errorf("a Write that is not one line: %q", p)
	}
	w.mu.Lock()
	w.lines = append(w.lines, string(p))
	w.mu.Unlock()
	return len(p), nil
}

func TestConsoleConcurrent(t *testing.T) {
	const goroutines, perG = 16, 300
	w := &lineWriter{t: t}
	c := NewConsole(w)
	bound := c.Bind(store.StoreInfo{Name: "a"}).Reporter
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				bound.ReportOperation(context.Background(), store.OperationMetric{
					Operation: store.OpSave, Duration: time.Duration(i) * time.Microsecond, Success: true,
					ItemCount: 1, ItemID: fmt.Sprintf("g%d-%d", g, i), Err: nil,
				})
				bound.ReportError(context.Background(), store.ErrorMetric{
					Operation: store.OpGet, ItemID: fmt.Sprintf("g%d-%d", g, i), Err: errors.New(strings.Repeat("x", i)),
				})
			}
		})
	}
	wg.Wait()
	opLine := regexp.MustCompile(`^\[NexusStore\] save\(g(\d+)-(\d+)\) completed in (\d+(\.\d+)?(ns|µs|ms)|0s)\n$`)
	errLine := regexp.MustCompile(`^\[NexusStore\] error in get\(g(\d+)-(\d+)\): (x*)\n$`)
	seen := make(map[string]int)
	for _, l := range w.lines {
		if m := opLine.FindStringSubmatch(l); m != nil {
			seen["op "+m[1]+"-"+m[2]]++
			continue
		}
		m := errLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unparsable line %q", l)
		}
		var i int
		fmt.Sscan(m[2], &i)
		if len(m[3]) != i {
			t.Fatalf("line %q: message of %d x, want %d", l, len(m[3]), i)
		}
		seen["err "+m[1]+"-"+m[2]]++
	}
	if len(seen) != 2*goroutines*perG || len(w.lines) != 2*goroutines*perG {
		t.Fatalf("%d distinct lines of %d, want %d", len(seen), len(w.lines), 2*goroutines*perG)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write(p []byte) (int, error) { return 0, w.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("writer exploded") }
func (panicWriter) Flush() error              { panic("flush exploded") }

func TestConsoleFailingWriter(t *testing.T) {
	for _, w := range []io.Writer{errWriter{errors.New("disk full")}, shortWriter{}, panicWriter{}} {
		t.Run(fmt.Sprintf("%T", w), func(t *testing.T) {
			c := NewConsole(w)
			report(c, opGetHit)
			report(c, cacheEviction)
			if got := c.WriteErrors(); got != 2 {
				t.Errorf("WriteErrors = %d, want 2", got)
			}
			// The Console still works and its mutex is free.
			report(c, syncCompleted)
			if got := c.WriteErrors(); got != 3 {
				t.Errorf("WriteErrors = %d, want 3", got)
			}
		})
	}
	t.Run("flush panics", func(t *testing.T) {
		c := NewConsole(panicWriter{})
		if err := c.Flush(context.Background()); err != nil {
			t.Errorf("Flush = %v", err)
		}
		if c.WriteErrors() != 1 {
			t.Errorf("WriteErrors = %d, want 1", c.WriteErrors())
		}
	})
}

func TestConsoleFlush(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	c := NewConsole(bw)
	report(c, syncCompleted)
	if out.Len() != 0 {
		t.Fatalf("written before Flush: %q", out.String())
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[NexusStore] sync completed in 40ms (12 items)\n" {
		t.Errorf("after Flush: %q", out.String())
	}
	// A writer without Flush: nothing to do.
	if err := NewConsole(io.Discard).Flush(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestConsoleBindNamesStores(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf)
	a := c.Bind(store.StoreInfo{Name: "user"})
	if !a.WantItemIDs {
		t.Error("Bind does not ask for item IDs")
	}
	report(a.Reporter, cacheEviction)
	b := c.Bind(store.StoreInfo{Name: "order"})
	report(a.Reporter, cacheEviction)
	report(b.Reporter, syncCompleted)
	report(c, syncCompleted) // the unbound Console names no store
	b.Release()
	b.Release() // at most once
	report(a.Reporter, cacheEviction)
	want := "[NexusStore] cache eviction user-7\n" +
		"[NexusStore] user: cache eviction user-7\n" +
		"[NexusStore] order: sync completed in 40ms (12 items)\n" +
		"[NexusStore] sync completed in 40ms (12 items)\n" +
		"[NexusStore] cache eviction user-7\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestConsoleEndToEnd(t *testing.T) {
	w := &lineWriter{t: t}
	s, _ := newUserStore(t, NewConsole(w))
	ctx := context.Background()
	if _, err := s.Save(ctx, user{ID: "u1", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(nobody) = %v", err)
	}
	var got []string
	dur := regexp.MustCompile(`in (\d+(\.\d+)?(ns|µs|ms|s)|0s)`)
	for _, l := range w.lines {
		got = append(got, dur.ReplaceAllString(strings.TrimSuffix(l, "\n"), "in D"))
	}
	want := []string{
		"[NexusStore] cache write u1",
		"[NexusStore] save(u1) completed in D",
		"[NexusStore] cache hit u1",
		"[NexusStore] get(u1) completed in D (cache hit)",
		"[NexusStore] cache miss nobody",
		"[NexusStore] get(nobody) completed in D (cache miss, not found)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func BenchmarkConsoleReportOperation(b *testing.B) {
	c := NewConsole(io.Discard).Bind(store.StoreInfo{Name: "user"}).Reporter
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.ReportOperation(ctx, opGetHit)
	}
}

// Issue 9, item 9: IDs, tags and error messages are escaped, so that one
// metric is one line and cannot forge another.
func TestConsoleEscapesControlCharacters(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf)
	forged := "u1\n[NexusStore] save(admin) completed"
	report(c, store.OperationMetric{Operation: store.OpGet, ItemID: forged, Success: false,
		Err: errors.New("bad\r\nthing"), SampleRate: 1})
	report(c, store.CacheMetric{Event: store.CacheInvalidation, ItemID: forged, Tags: []string{"t\n2"}, SampleRate: 1})
	report(c, store.ErrorMetric{Operation: store.OpSave, ItemID: stringerID{1}, Err: errors.New("x\ny")})
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("3 metrics wrote %d lines:\n%s", n, out)
	}
	for _, want := range []string{`"u1\n[NexusStore] save(admin) completed"`, `"bad\r\nthing"`, `"t\n2"`, `"x\ny"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

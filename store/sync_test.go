package store_test

import (
	"context"
	"errors"
	"fmt"
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

// pushLog records the writes a backend receives.
type pushLog struct {
	mu    sync.Mutex
	calls []string
	times []time.Duration
	start time.Time
	fail  func(op memory.Op, id string) error
}

func (l *pushLog) hook(_ context.Context, op memory.Op, id any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if op != memory.OpSave && op != memory.OpDelete {
		return nil
	}
	l.calls = append(l.calls, fmt.Sprintf("%s %v", op, id))
	l.times = append(l.times, time.Since(l.start))
	if l.fail != nil {
		return l.fail(op, fmt.Sprint(id))
	}
	return nil
}

func (l *pushLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func newSyncFixture(t *testing.T, cfg store.Config[User, string]) (*fixture, *pushLog) {
	l := &pushLog{start: time.Now()}
	cfg.WritePolicy = store.WriteCacheFirst
	if cfg.Retry.Jitter == 0 {
		cfg.Retry.Jitter = store.NoJitter
	}
	f := newFixture(t, cfg, memory.WithFault(l.hook))
	return f, l
}

func TestSyncPushesInOrderAndCoalesces(t *testing.T) {
	f, l := newSyncFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "d", Name: "old"})
	l.calls = nil
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.s.Save(bg, User{ID: "a", Name: "a1"})
	must(err)
	_, err = f.s.Save(bg, User{ID: "b", Name: "b1"})
	must(err)
	_, err = f.s.Save(bg, User{ID: "a", Name: "a2"}) // coalesces; a now changed last
	must(err)
	_, err = f.s.Save(bg, User{ID: "c", Name: "c1"})
	must(err)
	must(f.s.Delete(bg, "c")) // a delete after a save pushes the delete
	must(f.s.Delete(bg, "d"))
	if got := f.s.SyncStatus(); got != store.SyncStatusPending {
		t.Errorf("status = %v", got)
	}
	p := f.s.PendingChanges()
	var ids []string
	for _, c := range p {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"b", "a", "c", "d"}) || p[1].Value.Name != "a2" || !p[2].Deleted {
		t.Fatalf("pending = %+v", p)
	}
	if p[1].QueuedAt.After(p[1].UpdatedAt) {
		t.Errorf("queued %v after updated %v", p[1].QueuedAt, p[1].UpdatedAt)
	}
	must(f.s.Sync(bg))
	if want := []string{"save b", "save a", "delete c", "delete d"}; !slices.Equal(l.got(), want) {
		t.Errorf("pushed %v, want %v", l.got(), want)
	}
	if a, _ := f.backendHas("a"); a.Name != "a2" {
		t.Errorf("backend a = %+v, want the latest state", a)
	}
	if _, ok := f.backendHas("d"); ok {
		t.Error("d not deleted")
	}
	if len(f.s.PendingChanges()) != 0 || f.s.SyncStatus() != store.SyncStatusSynced {
		t.Errorf("after sync: pending %v, status %v", f.s.PendingChanges(), f.s.SyncStatus())
	}
	if _, ok := f.cached("c"); ok {
		t.Error("deleted c still readable")
	}
}

func TestSyncRetries(t *testing.T) {
	errBad := errors.New("bad request")
	tests := []struct {
		name      string
		fail      error // what each push fails with
		failures  int   // how many pushes fail before success
		retryable func(error) bool
		attempts  int
		wantErr   bool
		wantTimes []time.Duration
	}{
		{name: "retryable, succeeds on the third attempt", fail: store.ErrUnavailable, failures: 2, attempts: 3,
			wantTimes: []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}},
		{name: "exhausted", fail: store.ErrUnavailable, failures: 10, attempts: 3, wantErr: true,
			wantTimes: []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}},
		{name: "not retryable by the option", fail: errBad, failures: 10, attempts: 1, wantErr: true,
			retryable: func(err error) bool { return errors.Is(err, store.ErrUnavailable) },
			wantTimes: []time.Duration{0}},
		{name: "retryable by the option", fail: store.ErrUnavailable, failures: 1, attempts: 2,
			retryable: func(err error) bool { return errors.Is(err, store.ErrUnavailable) },
			wantTimes: []time.Duration{0, 100 * time.Millisecond}},
		{name: "a context error is never retried", fail: context.DeadlineExceeded, failures: 10, attempts: 1, wantErr: true,
			retryable: func(error) bool { return true },
			wantTimes: []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, l := newSyncFixture(t, store.Config[User, string]{Retry: store.RetryConfig{Retryable: tt.retryable}})
				n := 0
				l.fail = func(memory.Op, string) error {
					n++
					if n <= tt.failures {
						return tt.fail
					}
					return nil
				}
				if _, err := f.s.Save(bg, User{ID: "a"}); err != nil {
					t.Fatal(err)
				}
				l.start = time.Now()
				err := f.s.Sync(bg)
				if (err != nil) != tt.wantErr {
					t.Fatalf("Sync: %v", err)
				}
				if len(l.times) != tt.attempts || !slices.Equal(l.times, tt.wantTimes) {
					t.Errorf("attempts at %v, want %v", l.times, tt.wantTimes)
				}
				if tt.wantErr {
					// Nothing is dropped: the change stays, with its error.
					p := f.s.PendingChanges()
					if len(p) != 1 || !errors.Is(p[0].LastError, tt.fail) || p[0].Attempts != tt.attempts {
						t.Errorf("pending = %+v", p)
					}
					var se *store.SyncError[string]
					if !errors.As(err, &se) || !slices.Equal(se.IDs, []string{"a"}) || !errors.Is(err, tt.fail) {
						t.Errorf("Sync error = %v", err)
					}
					if f.s.SyncStatus() != store.SyncStatusError {
						t.Errorf("status = %v", f.s.SyncStatus())
					}
				} else if len(f.s.PendingChanges()) != 0 {
					t.Error("change still pending")
				}
				l.fail = nil
				_ = f.s.Close(bg)
			})
		})
	}
}

func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, l := newSyncFixture(t, store.Config[User, string]{Retry: store.RetryConfig{
			MaxAttempts: 6, InitialDelay: time.Second, MaxDelay: 5 * time.Second, Multiplier: 3, Jitter: 0.5,
		}})
		l.fail = func(memory.Op, string) error { return store.ErrUnavailable }
		if _, err := f.s.Save(bg, User{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		l.start = time.Now()
		_ = f.s.Sync(bg)
		// Waits: 1s, 3s, 5s (capped), 5s, 5s, each within ±50%.
		want := []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
		for i := 1; i < len(l.times); i++ {
			wait := l.times[i] - l.times[i-1]
			if lo, hi := want[i-1]/2, want[i-1]*3/2; wait < lo || wait > hi {
				t.Errorf("wait %d = %v, want within [%v, %v]", i, wait, lo, hi)
			}
		}
		if len(l.times) != 6 {
			t.Errorf("%d attempts, want 6", len(l.times))
		}
		l.fail = nil
		_ = f.s.Close(bg)
	})
}

func TestSyncBackoffHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, l := newSyncFixture(t, store.Config[User, string]{Retry: store.RetryConfig{InitialDelay: time.Hour}})
		l.fail = func(memory.Op, string) error { return store.ErrUnavailable }
		if _, err := f.s.Save(bg, User{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, time.Second)
		defer cancel()
		start := time.Now()
		if err := f.s.Sync(ctx); err == nil {
			t.Fatal("Sync succeeded")
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Sync returned after %v, want 1s (its deadline)", d)
		}
		l.fail = nil
		_ = f.s.Close(bg)
	})
}

func TestConflictResolution(t *testing.T) {
	type want struct {
		backend  string // name in the backend after Sync ("" = absent)
		cached   string // name the store shows after Sync ("" = not found)
		resolved int    // conflict_resolved events
		pending  int
		err      bool
	}
	tests := []struct {
		name          string
		strategy      store.ConflictStrategy
		resolver      func(store.Conflict[User, string]) store.Resolution[User]
		localDelete   bool
		remoteDelete  bool
		remoteIsNewer bool
		want          want
	}{
		{name: "server wins", strategy: store.ConflictServerWins, want: want{backend: "remote", cached: "remote", resolved: 1}},
		{name: "server wins, remote deleted", strategy: store.ConflictServerWins, remoteDelete: true, want: want{resolved: 1}},
		{name: "client wins", strategy: store.ConflictClientWins, want: want{backend: "local", cached: "local", resolved: 1}},
		{name: "client wins, remote deleted", strategy: store.ConflictClientWins, remoteDelete: true, want: want{backend: "local", cached: "local", resolved: 1}},
		{name: "client wins, local delete", strategy: store.ConflictClientWins, localDelete: true, want: want{resolved: 1}},
		{name: "latest wins: local", strategy: store.ConflictLatestWins, want: want{backend: "local", cached: "local", resolved: 1}},
		{name: "latest wins: remote", strategy: store.ConflictLatestWins, remoteIsNewer: true, want: want{backend: "remote", cached: "remote", resolved: 1}},
		{name: "custom keep local", strategy: store.ConflictCustom, resolver: func(store.Conflict[User, string]) store.Resolution[User] { return store.KeepLocal[User]() },
			want: want{backend: "local", cached: "local", resolved: 1}},
		{name: "custom keep remote", strategy: store.ConflictCustom, resolver: func(store.Conflict[User, string]) store.Resolution[User] { return store.KeepRemote[User]() },
			want: want{backend: "remote", cached: "remote", resolved: 1}},
		{name: "custom merged", strategy: store.ConflictCustom, resolver: func(c store.Conflict[User, string]) store.Resolution[User] {
			return store.Merged(User{ID: c.ID, Name: c.Local.Name + "+" + c.Remote.Item.Name})
		}, want: want{backend: "local+remote", cached: "local+remote", resolved: 1}},
		{name: "custom skip", strategy: store.ConflictCustom, resolver: func(store.Conflict[User, string]) store.Resolution[User] { return store.Skip[User]() },
			want: want{backend: "remote", cached: "local", pending: 1, err: true}},
		{name: "custom panics", strategy: store.ConflictCustom, resolver: func(store.Conflict[User, string]) store.Resolution[User] { panic("oops") },
			want: want{backend: "remote", cached: "local", pending: 1, err: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, _ := newSyncFixture(t, store.Config[User, string]{Conflict: tt.strategy, ResolveConflict: tt.resolver})
				f.seed(User{ID: "a", Name: "base"})
				if _, err := f.s.Get(bg, "a"); err != nil { // the base version
					t.Fatal(err)
				}
				// The remote moves on, then the local change is made (or the
				// other way round for remoteIsNewer).
				remote := func() {
					if tt.remoteDelete {
						_, _ = f.b.Delete(bg, "a")
					} else {
						f.seed(User{ID: "a", Name: "remote"})
					}
				}
				if !tt.remoteIsNewer {
					remote()
				}
				time.Sleep(time.Second)
				var err error
				if tt.localDelete {
					err = f.s.Delete(bg, "a")
				} else {
					_, err = f.s.Save(bg, User{ID: "a", Name: "local"})
				}
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				if tt.remoteIsNewer {
					remote()
				}
				ctx, cancel := context.WithCancel(bg)
				defer cancel()
				changes, _ := collect(f.s.Watch(ctx, "a", store.WithFetchPolicy(store.FetchCacheOnly)))
				synctest.Wait()
				<-changes
				f.rec.Reset()

				err = f.s.Sync(bg)
				if (err != nil) != tt.want.err {
					t.Fatalf("Sync: %v", err)
				}
				if tt.want.err && !errors.Is(err, store.ErrConflict) && !strings.Contains(err.Error(), "panicked") {
					t.Errorf("Sync error %v does not say conflict", err)
				}
				b, _ := f.backendHas("a")
				if b.Name != tt.want.backend {
					t.Errorf("backend = %q, want %q", b.Name, tt.want.backend)
				}
				c, err := f.s.Get(bg, "a", store.WithFetchPolicy(store.FetchCacheOnly))
				if err != nil {
					c.Name = ""
				}
				if c.Name != tt.want.cached {
					t.Errorf("store shows %q, want %q", c.Name, tt.want.cached)
				}
				if n := f.rec.Count(reportertest.Is("sync:conflict_resolved")); n != tt.want.resolved {
					t.Errorf("conflict_resolved events = %d, want %d", n, tt.want.resolved)
				}
				if p := f.s.PendingChanges(); len(p) != tt.want.pending {
					t.Errorf("pending = %+v", p)
				}
				// Watchers see the resolved value.
				synctest.Wait()
				localState := "local"
				if tt.localDelete {
					localState = ""
				}
				if tt.want.resolved > 0 && tt.want.cached != localState {
					seen := latest(t, changes)
					if (tt.want.cached == "" && !seen.Deleted) || (tt.want.cached != "" && seen.Value.Name != tt.want.cached) {
						t.Errorf("watcher saw %+v, want %q", seen, tt.want.cached)
					}
				}
				cancel()
				synctest.Wait()
				_ = f.s.Close(bg)
			})
		})
	}
}

func TestCancelAndRetryPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, l := newSyncFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "server"})
		if _, err := f.s.Save(bg, User{ID: "a", Name: "local"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Save(bg, User{ID: "b", Name: "local"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RetryPending(bg, "zz"); !errors.Is(err, store.ErrNotPending) {
			t.Errorf("RetryPending(zz) = %v", err)
		}
		if err := f.s.CancelPending(bg, "zz"); !errors.Is(err, store.ErrNotPending) {
			t.Errorf("CancelPending(zz) = %v", err)
		}
		// Cancel fails while the backend cannot be read: the change stays.
		f.b.SetUnavailable(true)
		if err := f.s.CancelPending(bg, "a"); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("CancelPending with the backend down = %v", err)
		}
		f.b.SetUnavailable(false)
		if len(f.s.PendingChanges()) != 2 {
			t.Fatal("a failed cancel dropped the change")
		}
		if err := f.s.CancelPending(bg, "a"); err != nil {
			t.Fatal(err)
		}
		if u, _ := f.cached("a"); u.Name != "server" {
			t.Errorf("after cancel the cache holds %+v, want the backend's value", u)
		}
		if err := f.s.CancelPending(bg, "b"); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.cached("b"); ok {
			t.Error("cancelled create still cached")
		}
		if _, err := f.s.Save(bg, User{ID: "c"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.RetryPending(bg, "c"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.got(), []string{"save a", "save c"}) { // the seed, then the retry
			t.Errorf("pushes = %v", l.got())
		}
		_ = f.s.Close(bg)
	})
}

func TestBackgroundSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, l := newSyncFixture(t, store.Config[User, string]{SyncInterval: time.Minute})
		if _, err := f.s.Save(bg, User{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if len(l.got()) != 0 {
			t.Fatal("pushed before the interval")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !slices.Equal(l.got(), []string{"save a"}) {
			t.Fatalf("after the interval: %v", l.got())
		}
		ops := f.rec.Operations()
		if len(ops) == 0 || ops[len(ops)-1].Operation != store.OpSync {
			t.Errorf("background sync not reported as an operation: %+v", ops)
		}
		// The interval's run is a background operation; its push runs under it.
		var syncSpan = -1
		for i, sp := range f.rec.Spans() {
			switch {
			case !sp.Backend && sp.Operation == store.OpSync:
				syncSpan = i
				if !sp.Background {
					t.Errorf("interval sync span not marked background: %+v", sp)
				}
			case sp.Backend && sp.Operation == store.OpSave && sp.Parent != syncSpan:
				t.Errorf("push span %+v not under the sync span %d", sp, syncSpan)
			}
		}
		if syncSpan < 0 {
			t.Error("no span for the interval sync")
		}
		// Close stops the loop (goleak checks no goroutine is left).
		if err := f.s.Close(bg); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Save(bg, User{ID: "b"}); !errors.Is(err, store.ErrClosed) {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if len(l.got()) != 1 {
			t.Errorf("pushes after Close: %v", l.got())
		}
	})
}

func TestCloseWithUnsyncedChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _ := newSyncFixture(t, store.Config[User, string]{Retry: store.RetryConfig{MaxAttempts: 1}})
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			if _, err := f.s.Save(bg, User{ID: id}); err != nil {
				t.Fatal(err)
			}
		}
		f.b.SetUnavailable(true)
		err := f.s.Close(bg)
		var ue *store.UnsyncedError[string]
		if !errors.As(err, &ue) || !slices.Equal(ue.IDs, []string{"a", "b", "c", "d", "e"}) {
			t.Fatalf("Close = %v, want an UnsyncedError with every ID", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "5 changes remain unsynced: a, b, c and 2 more") {
			t.Errorf("message %q does not name the first IDs", msg)
		}
		if len(f.s.PendingChanges()) != 5 {
			t.Error("the unsynced changes are no longer listed after Close")
		}
	})
}

func TestCloseSyncsPendingChanges(t *testing.T) {
	f, l := newSyncFixture(t, store.Config[User, string]{})
	if _, err := f.s.Save(bg, User{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Close(bg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.got(), []string{"save a"}) {
		t.Errorf("Close pushed %v", l.got())
	}
}

func TestSyncRefreshesStaleEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _ := newSyncFixture(t, store.Config[User, string]{CacheTTL: time.Minute})
		f.seed(User{ID: "a", Name: "v1"})
		if _, err := f.s.Get(bg, "a"); err != nil {
			t.Fatal(err)
		}
		f.seed(User{ID: "a", Name: "v2"})
		time.Sleep(2 * time.Minute)
		if err := f.s.Sync(bg); err != nil {
			t.Fatal(err)
		}
		before := f.gets()
		if u, err := f.s.Get(bg, "a"); err != nil || u.Name != "v2" || f.gets() != before {
			t.Errorf("after Sync: %+v, %v, %d backend reads", u, err, f.gets()-before)
		}
		_ = f.s.Close(bg)
	})
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestNewValidatesConfig(t *testing.T) {
	b := memory.New[User, string]()
	ok := store.Config[User, string]{IDOf: userID}
	tests := []struct {
		name  string
		edit  func(*store.Config[User, string])
		field string
	}{
		{"IDOf", func(c *store.Config[User, string]) { c.IDOf = nil }, "IDOf"},
		{"FetchPolicy", func(c *store.Config[User, string]) { c.FetchPolicy = 99 }, "FetchPolicy"},
		{"WritePolicy", func(c *store.Config[User, string]) { c.WritePolicy = 99 }, "WritePolicy"},
		{"CacheTTL", func(c *store.Config[User, string]) { c.CacheTTL = -1 }, "CacheTTL"},
		{"MaxCacheSize", func(c *store.Config[User, string]) { c.MaxCacheSize = -5 }, "MaxCacheSize"},
		{"RefreshWorkers", func(c *store.Config[User, string]) { c.RefreshWorkers = -1 }, "RefreshWorkers"},
		{"SyncInterval", func(c *store.Config[User, string]) { c.SyncInterval = -1 }, "SyncInterval"},
		{"Conflict", func(c *store.Config[User, string]) { c.Conflict = 9 }, "Conflict"},
		{"ResolveConflict", func(c *store.Config[User, string]) { c.Conflict = store.ConflictCustom }, "ResolveConflict"},
		{"TransactionTimeout", func(c *store.Config[User, string]) { c.TransactionTimeout = -1 }, "TransactionTimeout"},
		{"Name", func(c *store.Config[User, string]) { c.Name = " users" }, "Name"},
		{"SampleRate above 1", func(c *store.Config[User, string]) { c.Metrics.SampleRate = 1.5 }, "Metrics.SampleRate"},
		{"SampleRate negative", func(c *store.Config[User, string]) { c.Metrics.SampleRate = -0.1 }, "Metrics.SampleRate"},
		{"SampleRate NaN", func(c *store.Config[User, string]) { c.Metrics.SampleRate = math.NaN() }, "Metrics.SampleRate"},
		{"BufferSize", func(c *store.Config[User, string]) { c.Metrics.BufferSize = -1 }, "Metrics.BufferSize"},
		{"FlushInterval", func(c *store.Config[User, string]) { c.Metrics.FlushInterval = -1 }, "Metrics.FlushInterval"},
		{"Retry.MaxAttempts", func(c *store.Config[User, string]) { c.Retry.MaxAttempts = -1 }, "Retry.MaxAttempts"},
		{"Retry.InitialDelay", func(c *store.Config[User, string]) { c.Retry.InitialDelay = -1 }, "Retry.InitialDelay"},
		{"Retry.MaxDelay below initial", func(c *store.Config[User, string]) { c.Retry.InitialDelay, c.Retry.MaxDelay = 10, 5 }, "Retry.MaxDelay"},
		{"Retry.Multiplier", func(c *store.Config[User, string]) { c.Retry.Multiplier = 0.5 }, "Retry.Multiplier"},
		{"Retry.Jitter", func(c *store.Config[User, string]) { c.Retry.Jitter = 2 }, "Retry.Jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			s, err := store.New[User, string](b, cfg)
			if s != nil || err == nil {
				t.Fatalf("New accepted a bad config")
			}
			var ce *store.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, store.ErrInvalidConfig) {
				t.Fatalf("err = %v, want a ConfigError naming %s", err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "store: ") || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
	if _, err := store.New[User, string](nil, ok); !errors.Is(err, store.ErrInvalidConfig) {
		t.Errorf("nil backend: err = %v", err)
	}
	cfg := ok
	cfg.Retry.Jitter = store.NoJitter
	cfg.Metrics.SampleRate = 1
	s, err := store.New[User, string](b, cfg)
	if err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if s.Name() != "user" {
		t.Errorf("default name = %q, want %q", s.Name(), "user")
	}
	_ = s.Close(context.Background())
}

func TestCloseMakesEveryOperationFail(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{})
	if err := f.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Get"] = f.s.Get(ctx, "u1")
	_, checks["GetAll"] = f.s.GetAll(ctx)
	_, checks["Save"] = f.s.Save(ctx, User{ID: "u1"})
	_, checks["SaveAll"] = f.s.SaveAll(ctx, []User{{ID: "u1"}})
	checks["Delete"] = f.s.Delete(ctx, "u1")
	_, checks["DeleteAll"] = f.s.DeleteAll(ctx, []string{"u1"})
	checks["Sync"] = f.s.Sync(ctx)
	checks["Transaction"] = f.s.Transaction(ctx, func(*store.Tx[User, string]) error { return nil })
	checks["CancelPending"] = f.s.CancelPending(ctx, "u1")
	for _, err := range f.s.Watch(ctx, "u1") {
		checks["Watch"] = err
	}
	for _, err := range f.s.WatchAll(ctx) {
		checks["WatchAll"] = err
	}
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	if f.rec.Flushes() != 1 || f.rec.Released() != 1 {
		t.Errorf("Close flushed %d times and released %d times, want 1 and 1", f.rec.Flushes(), f.rec.Released())
	}
}

// TestConcurrentUse hammers one store from many goroutines under -race,
// mixing every operation and policy, then checks the cache agrees with the
// backend.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{MaxCacheSize: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := fmt.Sprint("u", (g*7+i)%40)
				switch i % 8 {
				case 0:
					_, _ = f.s.Save(ctx, User{ID: id, Age: i})
				case 1:
					_ = f.s.Delete(ctx, id)
				case 2:
					_, _ = f.s.GetAll(ctx)
				case 3:
					f.s.Invalidate(id)
				case 4:
					_, _ = f.s.Get(ctx, id, store.WithFetchPolicy(store.FetchNetworkFirst))
				case 5:
					_, _ = f.s.SaveAll(ctx, []User{{ID: id}, {ID: id + "x"}})
				case 6:
					_, _ = f.s.Get(ctx, id, store.WithFetchPolicy(store.FetchStaleWhileRevalidate))
				default:
					_, _ = f.s.Get(ctx, id)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 40 {
		id := fmt.Sprint("u", i)
		c, inCache := f.cached(id)
		b, inBackend := f.backendHas(id)
		if inCache && (!inBackend || c != b) {
			t.Errorf("%s: cache %+v (%v) disagrees with backend %+v (%v)", id, c, inCache, b, inBackend)
		}
	}
}

func TestSaveAllPartialFailure(t *testing.T) {
	ctx := context.Background()
	calls := 0
	b := memory.New[User, string](memory.WithFault(func(_ context.Context, op memory.Op, _ any) error {
		if op == memory.OpSave {
			calls++
			if calls == 3 {
				return store.ErrUnavailable
			}
		}
		return nil
	}))
	s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	users := []User{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}
	saved, err := s.SaveAll(ctx, users)
	if !errors.Is(err, store.ErrUnavailable) || len(saved) != 2 {
		t.Fatalf("SaveAll = %v, %v; want the first 2 saved and the error", saved, err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchCacheOnly)); err != nil {
			t.Errorf("%s was saved but is not cached: %v", id, err)
		}
	}
	for _, id := range []string{"c", "d"} {
		if _, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchCacheOnly)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s was not saved but is cached: %v", id, err)
		}
	}
}

// A batch that names an ID twice and fails rolls the cache back to the
// state before the batch.
func TestSaveAllDuplicateIDsRollBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a", Name: "orig"})
	if _, err := f.s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	f.b.SetUnavailable(true)
	if _, err := f.s.SaveAll(ctx, []User{{ID: "a", Name: "one"}, {ID: "a", Name: "two"}}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("SaveAll: %v", err)
	}
	if _, err := f.s.DeleteAll(ctx, []string{"a", "a"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("DeleteAll: %v", err)
	}
	if u, ok := f.cached("a"); !ok || u.Name != "orig" {
		t.Errorf("cache holds %+v (%v), want the value before the batch", u, ok)
	}
}

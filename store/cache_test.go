package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func names(us []User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name
	}
	return out
}

func TestLRUEvictionOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{MaxCacheSize: 3, WritePolicy: store.WriteCacheOnly})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := f.s.Save(ctx, User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Reading a makes b the least recently used.
	if _, ok := f.cached("a"); !ok {
		t.Fatal("a not cached")
	}
	if _, err := f.s.Save(ctx, User{ID: "d", Name: "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Save(ctx, User{ID: "e", Name: "e"}); err != nil {
		t.Fatal(err)
	}
	var evicted []any
	for _, m := range f.rec.CacheEvents() {
		if m.Event == store.CacheEviction {
			evicted = append(evicted, m.ItemID)
		}
	}
	if want := []any{"b", "c"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %v, want %v (least recently used first)", evicted, want)
	}
	for id, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true} {
		if _, ok := f.cached(id); ok != want {
			t.Errorf("cached(%s) = %v, want %v", id, ok, want)
		}
	}
	if got := f.s.Live().CacheEntries; got != 3 {
		t.Errorf("CacheEntries = %d, want 3", got)
	}
}

func TestEvictionSparesPendingChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{MaxCacheSize: 1, WritePolicy: store.WriteCacheFirst})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := f.s.Save(ctx, User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, ok := f.cached(id); !ok {
			t.Errorf("%s was evicted while holding an unsynced change", id)
		}
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Synced, the entries may go: the next write brings the cache back to 1.
	if _, err := f.s.Save(ctx, User{ID: "d"}, store.WithWritePolicy(store.WriteCacheOnly)); err != nil {
		t.Fatal(err)
	}
	if got := f.s.Live().CacheEntries; got != 1 {
		t.Errorf("CacheEntries = %d, want 1", got)
	}
}

func TestInvalidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a"}, User{ID: "b"}, User{ID: "c"})
	if _, err := f.s.Save(ctx, User{ID: "a", Name: "A"}, store.WithTags("team:red", "vip")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Save(ctx, User{ID: "b", Name: "B"}, store.WithTags("team:red")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Save(ctx, User{ID: "c", Name: "C"}, store.WithTags("team:blue")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Save(ctx, User{ID: "p", Name: "P"}, store.WithTags("team:red"), store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
		t.Fatal(err)
	}
	f.rec.Reset()

	f.s.InvalidateTags("team:red")
	for id, want := range map[string]bool{"a": false, "b": false, "c": true, "p": true} {
		if _, ok := f.cached(id); ok != want {
			t.Errorf("after InvalidateTags: cached(%s) = %v, want %v", id, ok, want)
		}
	}
	inv := map[any][]string{}
	for _, m := range f.rec.CacheEvents() {
		if m.Event == store.CacheInvalidation {
			inv[m.ItemID] = m.Tags
		}
	}
	if len(inv) != 2 || !slices.Equal(inv["a"], []string{"team:red", "vip"}) || !slices.Equal(inv["b"], []string{"team:red"}) {
		t.Errorf("invalidation events = %v, want a and b with their tags", inv)
	}

	f.s.Invalidate("c")
	if _, ok := f.cached("c"); ok {
		t.Error("Invalidate(c) left c cached")
	}
	// Reads go back to the backend.
	before := f.gets()
	if u, err := f.s.Get(ctx, "c"); err != nil || u.Name != "C" {
		t.Errorf("Get(c) = %+v, %v", u, err)
	}
	if f.gets() != before+1 {
		t.Error("Get after Invalidate did not read the backend")
	}

	f.s.InvalidateAll()
	if got := f.s.Live().CacheEntries; got != 1 {
		t.Errorf("after InvalidateAll: %d entries, want 1 (the pending change)", got)
	}
	if _, ok := f.cached("p"); !ok {
		t.Error("InvalidateAll dropped an unsynced change")
	}
}

func TestTTLExpiration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{CacheTTL: time.Minute})
		f.seed(User{ID: "u1", Name: "v1"})
		if _, err := f.s.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		if _, err := f.s.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if f.gets() != 1 {
			t.Fatalf("a fresh entry was read from the backend")
		}
		time.Sleep(2 * time.Second)
		f.rec.Reset()
		// Cache-only reads serve the stale value; the expiration is
		// reported once, not on every read.
		for range 3 {
			if _, err := f.s.Get(ctx, "u1", store.WithFetchPolicy(store.FetchCacheOnly)); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.rec.Count(reportertest.Is("cache:expiration")); n != 1 {
			t.Errorf("expiration events = %d, want 1", n)
		}
		if _, err := f.s.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if f.gets() != 2 {
			t.Errorf("backend gets = %d, want 2 (stale entry re-read)", f.gets())
		}
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestGetAll(t *testing.T) {
	ctx := context.Background()
	adult := store.WithFilter(func(u User) bool { return u.Age >= 18 })
	t.Run("full listing completes the cache", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "a", Age: 30}, User{ID: "b", Name: "b", Age: 10}, User{ID: "c", Name: "c", Age: 40})
		all, err := f.s.GetAll(ctx)
		if err != nil || !slices.Equal(names(all), []string{"a", "b", "c"}) {
			t.Fatalf("GetAll = %v, %v", names(all), err)
		}
		calls := f.b.Calls(memory.OpGetAll)
		got, err := f.s.GetAll(ctx, adult)
		if err != nil || !slices.Equal(names(got), []string{"a", "c"}) {
			t.Errorf("filtered from cache = %v, %v", names(got), err)
		}
		got, _ = f.s.GetAll(ctx, store.WithLimit(2))
		if !slices.Equal(names(got), []string{"a", "b"}) {
			t.Errorf("limited from cache = %v", names(got))
		}
		if f.b.Calls(memory.OpGetAll) != calls {
			t.Error("a complete cache still listed the backend")
		}
		// Writes through the store keep the listing complete and current.
		if _, err := f.s.Save(ctx, User{ID: "d", Name: "d", Age: 20}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		got, _ = f.s.GetAll(ctx)
		if !slices.Equal(names(got), []string{"b", "c", "d"}) {
			t.Errorf("after writes = %v", names(got))
		}
		// Invalidation breaks completeness: the backend is listed again.
		f.s.Invalidate("b")
		if _, err := f.s.GetAll(ctx); err != nil {
			t.Fatal(err)
		}
		if f.b.Calls(memory.OpGetAll) != calls+1 {
			t.Error("GetAll after Invalidate did not list the backend")
		}
	})
	t.Run("filtered listing does not complete the cache", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "a", Age: 30}, User{ID: "b", Name: "b", Age: 10})
		got, err := f.s.GetAll(ctx, adult)
		if err != nil || !slices.Equal(names(got), []string{"a"}) {
			t.Fatalf("GetAll(adult) = %v, %v", names(got), err)
		}
		if _, err := f.s.GetAll(ctx); err != nil {
			t.Fatal(err)
		}
		if n := f.b.Calls(memory.OpGetAll); n != 2 {
			t.Errorf("backend listings = %d, want 2", n)
		}
	})
	t.Run("remote deletions leave the cache on a full listing", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "a"}, User{ID: "b", Name: "b"})
		if _, err := f.s.GetAll(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.b.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		got, _ := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkOnly))
		if !slices.Equal(names(got), []string{"b"}) {
			t.Errorf("GetAll = %v", names(got))
		}
		if _, ok := f.cached("a"); ok {
			t.Error("a, deleted remotely, is still cached")
		}
	})
	t.Run("unsynced changes overlay the backend listing", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{WritePolicy: store.WriteCacheFirst})
		f.seed(User{ID: "a", Name: "a"}, User{ID: "b", Name: "b"})
		if _, err := f.s.Save(ctx, User{ID: "a", Name: "a2"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Save(ctx, User{ID: "c", Name: "c"}); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkOnly))
		if err != nil || !slices.Equal(names(got), []string{"a2", "c"}) {
			t.Errorf("GetAll = %v, %v; want [a2 c]", names(got), err)
		}
	})
	t.Run("network first falls back to a complete listing", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "a"})
		if _, err := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkFirst)); !errors.Is(err, nil) {
			t.Fatal(err)
		}
		f.b.SetUnavailable(true)
		got, err := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkFirst))
		if err != nil || !slices.Equal(names(got), []string{"a"}) {
			t.Errorf("GetAll = %v, %v", names(got), err)
		}
		f.s.InvalidateAll()
		if _, err := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkFirst)); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("with nothing to fall back to: err = %v", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{})
		_, err := f.s.GetAll(ctx, store.WithFilter(func(int) bool { return true }))
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("wrong filter type: err = %v", err)
		}
		if _, err := f.s.GetAll(ctx, store.WithLimit(-1)); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("negative limit: err = %v", err)
		}
		if _, err := f.s.Get(ctx, "x", store.WithFetchPolicy(store.FetchPolicy(42))); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("bad policy: err = %v", err)
		}
	})
}

func TestSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(10*time.Millisecond))
		f.seed(User{ID: "u1", Name: "v1"})
		before := f.gets()
		errs := make(chan error, 50)
		for range 50 {
			go func() {
				u, err := f.s.Get(ctx, "u1")
				if err == nil && u.Name != "v1" {
					err = fmt.Errorf("got %+v", u)
				}
				errs <- err
			}()
		}
		for range 50 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if n := f.gets() - before; n != 1 {
			t.Errorf("50 concurrent misses made %d backend calls, want 1", n)
		}
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSingleflightLeaderCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(10*time.Millisecond))
		f.seed(User{ID: "u1", Name: "v1"})
		leaderCtx, cancel := context.WithCancel(context.Background())
		leaderErr := make(chan error, 1)
		go func() {
			_, err := f.s.Get(leaderCtx, "u1")
			leaderErr <- err
		}()
		synctest.Wait() // the leader is in the backend call
		follower := make(chan error, 1)
		go func() {
			_, err := f.s.Get(context.Background(), "u1")
			follower <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-leaderErr; !errors.Is(err, context.Canceled) {
			t.Errorf("leader: err = %v, want context.Canceled", err)
		}
		if err := <-follower; err != nil {
			t.Errorf("follower failed with the leader's cancellation: %v", err)
		}
		if err := f.s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBackgroundRefreshIsBoundedAndDeduplicated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{RefreshWorkers: 2, FetchPolicy: store.FetchCacheAndNetwork},
			memory.WithLatency(time.Second))
		ids := make([]string, 10)
		for i := range ids {
			ids[i] = fmt.Sprint("u", i)
			if _, err := f.s.Save(ctx, User{ID: ids[i], Name: "v1"}, store.WithWritePolicy(store.WriteCacheOnly)); err != nil {
				t.Fatal(err)
			}
			f.seed(User{ID: ids[i], Name: "v2"})
		}
		before := f.gets()
		// 10 IDs, each read 5 times: 50 cache hits asking for 50 refreshes.
		for range 5 {
			for _, id := range ids {
				if u, err := f.s.Get(ctx, id); err != nil || u.Name != "v1" {
					t.Fatalf("Get(%s) = %+v, %v", id, u, err)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if n := f.gets() - before; n != 2 {
			t.Errorf("refreshes in flight = %d, want 2 (RefreshWorkers)", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := f.gets() - before; n != 10 {
			t.Errorf("refreshes made = %d, want 10 (one per ID)", n)
		}
		for _, id := range ids {
			if u, _ := f.cached(id); u.Name != "v2" {
				t.Errorf("%s not refreshed: %+v", id, u)
			}
		}
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCloseCancelsBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{FetchPolicy: store.FetchCacheAndNetwork}, memory.WithLatency(time.Hour))
		if _, err := f.s.Save(ctx, User{ID: "u1"}, store.WithWritePolicy(store.WriteCacheOnly)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the refresh waits on the hour-long backend
		start := time.Now()
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 0 {
			t.Errorf("Close waited %v for a background refresh instead of cancelling it", d)
		}
	})
}

// A cache-only entry has no backend copy: it never goes stale, but
// invalidation drops it.
func TestCacheOnlyEntriesDoNotExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{CacheTTL: time.Minute})
		if _, err := f.s.Save(bg, User{ID: "local", Name: "x"}, store.WithWritePolicy(store.WriteCacheOnly)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		if u, err := f.s.Get(bg, "local"); err != nil || u.Name != "x" {
			t.Errorf("cache-first read of a cache-only entry after the TTL = %+v, %v", u, err)
		}
		if f.gets() != 0 {
			t.Error("the backend was asked for a cache-only entry")
		}
		f.s.Invalidate("local")
		if _, err := f.s.Get(bg, "local"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after Invalidate: %v", err)
		}
		_ = f.s.Close(bg)
	})
}

package store_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// Negative caching (Config.NotFoundTTL): repeated reads of an unknown ID
// stop reaching the backend for the TTL; a write of the ID is visible at
// once; reads served by a negative entry are cache hits.
func TestNotFoundTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{NotFoundTTL: time.Minute})
		for range 3 {
			if _, err := f.s.Get(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get(ghost) = %v, want ErrNotFound", err)
			}
		}
		if n := f.gets(); n != 1 {
			t.Errorf("3 reads of an unknown ID made %d backend calls, want 1", n)
		}
		ops := f.rec.Operations()
		want := []store.CacheResult{store.CacheResultMiss, store.CacheResultHit, store.CacheResultHit}
		for i, m := range ops {
			if !m.Success || m.CacheResult != want[i] {
				t.Errorf("read %d: success %v, %v; want a successful %v", i, m.Success, m.CacheResult, want[i])
			}
		}
		if st := f.s.Stats(); st.CacheHitRate < 0.66 || st.CacheHitRate > 0.67 {
			t.Errorf("hit rate = %v, want 2/3", st.CacheHitRate)
		}

		// Listings are not affected, and a network read still asks.
		if all, err := f.s.GetAll(ctx); err != nil || len(all) != 0 {
			t.Errorf("GetAll = %v, %v; want nothing", all, err)
		}
		if _, err := f.s.Get(ctx, "ghost", store.WithFetchPolicy(store.FetchNetworkOnly)); !errors.Is(err, store.ErrNotFound) || f.gets() != 2 {
			t.Errorf("network-only read: %v after %d calls", err, f.gets())
		}

		// Another writer creates it: the negative entry hides it until its TTL.
		f.seed(User{ID: "ghost", Name: "boo"})
		if _, err := f.s.Get(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("within the TTL: %v, want the remembered ErrNotFound", err)
		}
		time.Sleep(time.Minute + time.Second)
		if u, err := f.s.Get(ctx, "ghost"); err != nil || u.Name != "boo" {
			t.Errorf("after the TTL: %+v, %v; want the item", u, err)
		}
		expirations := 0
		for _, m := range f.rec.CacheEvents() {
			if m.Event == store.CacheExpiration {
				expirations++
			}
		}
		if expirations != 1 {
			t.Errorf("%d expirations reported, want 1", expirations)
		}
	})
}

// A write of a remembered-absent ID is visible at once, under every write
// policy; invalidation drops negative entries.
func TestNotFoundTTLWrites(t *testing.T) {
	ctx := context.Background()
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteNetworkFirst, store.WriteCacheFirst, store.WriteCacheOnly} {
		t.Run(p.String(), func(t *testing.T) {
			f := newFixture(t, store.Config[User, string]{NotFoundTTL: time.Hour})
			if _, err := f.s.Get(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if _, err := f.s.Save(ctx, User{ID: "x", Name: "new"}, store.WithWritePolicy(p)); err != nil {
				t.Fatal(err)
			}
			if u := mustGet(t, f.s, "x"); u.Name != "new" {
				t.Errorf("Get after Save = %+v", u)
			}
		})
	}
	t.Run("a failed write of a remembered-absent ID", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{NotFoundTTL: time.Hour})
		_, _ = f.s.Get(ctx, "x")
		f.b.SetUnavailable(true)
		if _, err := f.s.Save(ctx, User{ID: "x"}); err == nil {
			t.Fatal("Save succeeded with the backend down")
		}
		f.b.SetUnavailable(false)
		calls := f.gets()
		if _, err := f.s.Get(ctx, "x"); !errors.Is(err, store.ErrNotFound) || f.gets() != calls+1 {
			t.Errorf("Get after the failed save: %v, %d backend calls; want it to ask the backend", err, f.gets()-calls)
		}
	})
	t.Run("invalidation", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{NotFoundTTL: time.Hour})
		_, _ = f.s.Get(ctx, "x")
		f.seed(User{ID: "x", Name: "later"})
		f.s.Invalidate("x")
		if u := mustGet(t, f.s, "x"); u.Name != "later" {
			t.Errorf("after Invalidate: %+v", u)
		}
	})
	t.Run("bounded by MaxCacheSize", func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{NotFoundTTL: time.Hour, MaxCacheSize: 2}, memory.WithLatency(0))
		for _, id := range []string{"a", "b", "c", "d"} {
			_, _ = f.s.Get(ctx, id)
		}
		if n := f.s.Live().CacheEntries; n != 2 {
			t.Errorf("%d entries, want 2", n)
		}
	})
}

package store_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
)

// TestFetchPolicies runs every fetch policy through every state the cache
// and the backend can be in. The backend holds v2 while the cache holds v1
// (when cached), so each answer shows where it came from.
func TestFetchPolicies(t *testing.T) {
	v1 := User{ID: "u1", Name: "cached"}
	v2 := User{ID: "u1", Name: "backend"}
	type state struct {
		cached, stale, down bool
	}
	type want struct {
		name     string // "" means an error
		notFound bool
		gets     uint64 // backend Get calls made by the read itself, refresh included
		after    string // the cached name once background work settled ("" = not cached)
		hit      store.CacheResult
	}
	var (
		fresh       = state{cached: true}
		stale       = state{cached: true, stale: true}
		miss        = state{}
		downCached  = state{cached: true, down: true}
		downStale   = state{cached: true, stale: true, down: true}
		downNothing = state{down: true}
	)
	tests := []struct {
		policy store.FetchPolicy
		state  state
		want   want
	}{
		{store.FetchCacheFirst, fresh, want{name: "cached", gets: 0, after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheFirst, stale, want{name: "backend", gets: 1, after: "backend", hit: store.CacheResultMiss}},
		{store.FetchCacheFirst, miss, want{name: "backend", gets: 1, after: "backend", hit: store.CacheResultMiss}},
		{store.FetchCacheFirst, downCached, want{name: "cached", gets: 0, after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheFirst, downStale, want{gets: 1, after: "cached", hit: store.CacheResultMiss}},
		{store.FetchCacheFirst, downNothing, want{gets: 1, hit: store.CacheResultMiss}},

		{store.FetchNetworkFirst, fresh, want{name: "backend", gets: 1, after: "backend"}},
		{store.FetchNetworkFirst, stale, want{name: "backend", gets: 1, after: "backend"}},
		{store.FetchNetworkFirst, miss, want{name: "backend", gets: 1, after: "backend"}},
		{store.FetchNetworkFirst, downCached, want{name: "cached", gets: 1, after: "cached", hit: store.CacheResultHit}},
		{store.FetchNetworkFirst, downStale, want{name: "cached", gets: 1, after: "cached", hit: store.CacheResultHit}},
		{store.FetchNetworkFirst, downNothing, want{gets: 1, hit: store.CacheResultMiss}},

		{store.FetchCacheAndNetwork, fresh, want{name: "cached", gets: 1, after: "backend", hit: store.CacheResultHit}},
		{store.FetchCacheAndNetwork, stale, want{name: "cached", gets: 1, after: "backend", hit: store.CacheResultHit}},
		{store.FetchCacheAndNetwork, miss, want{name: "backend", gets: 1, after: "backend", hit: store.CacheResultMiss}},
		{store.FetchCacheAndNetwork, downCached, want{name: "cached", gets: 1, after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheAndNetwork, downNothing, want{gets: 1, hit: store.CacheResultMiss}},

		{store.FetchCacheOnly, fresh, want{name: "cached", after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheOnly, stale, want{name: "cached", after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheOnly, miss, want{notFound: true, hit: store.CacheResultMiss}},
		{store.FetchCacheOnly, downCached, want{name: "cached", after: "cached", hit: store.CacheResultHit}},
		{store.FetchCacheOnly, downNothing, want{notFound: true, hit: store.CacheResultMiss}},

		{store.FetchNetworkOnly, fresh, want{name: "backend", gets: 1, after: "backend"}},
		{store.FetchNetworkOnly, miss, want{name: "backend", gets: 1, after: "backend"}},
		{store.FetchNetworkOnly, downCached, want{gets: 1, after: "cached"}},
		{store.FetchNetworkOnly, downNothing, want{gets: 1}},

		{store.FetchStaleWhileRevalidate, fresh, want{name: "cached", gets: 0, after: "cached", hit: store.CacheResultHit}},
		{store.FetchStaleWhileRevalidate, stale, want{name: "cached", gets: 1, after: "backend", hit: store.CacheResultHit}},
		{store.FetchStaleWhileRevalidate, miss, want{name: "backend", gets: 1, after: "backend", hit: store.CacheResultMiss}},
		{store.FetchStaleWhileRevalidate, downStale, want{name: "cached", gets: 1, after: "cached", hit: store.CacheResultHit}},
		{store.FetchStaleWhileRevalidate, downNothing, want{gets: 1, hit: store.CacheResultMiss}},
	}
	for _, tt := range tests {
		name := tt.policy.String()
		switch tt.state {
		case fresh:
			name += "/fresh"
		case stale:
			name += "/stale"
		case miss:
			name += "/miss"
		case downCached:
			name += "/backend_down_cached"
		case downStale:
			name += "/backend_down_stale"
		case downNothing:
			name += "/backend_down_nothing_cached"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var handled []error
				f := newFixture(t, store.Config[User, string]{
					CacheTTL:     time.Minute,
					ErrorHandler: func(err error) { handled = append(handled, err) },
				})
				ctx := context.Background()
				if tt.state.cached {
					f.seed(v1)
					if _, err := f.s.Get(ctx, "u1"); err != nil {
						t.Fatal(err)
					}
				}
				if tt.state.stale {
					time.Sleep(2 * time.Minute) // fake time: the entry goes stale
				}
				f.seed(v2)
				f.b.SetUnavailable(tt.state.down)
				before := f.gets()
				f.rec.Reset()

				got, err := f.s.Get(ctx, "u1", store.WithFetchPolicy(tt.policy))
				synctest.Wait() // background refreshes settle

				switch {
				case tt.want.notFound:
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("Get: err = %v, want ErrNotFound", err)
					}
				case tt.want.name == "":
					if !errors.Is(err, store.ErrUnavailable) {
						t.Fatalf("Get: err = %v, want ErrUnavailable", err)
					}
				default:
					if err != nil || got.Name != tt.want.name {
						t.Fatalf("Get = %+v, %v; want name %q", got, err, tt.want.name)
					}
				}
				if n := f.gets() - before; n != tt.want.gets {
					t.Errorf("backend Get calls = %d, want %d", n, tt.want.gets)
				}
				f.b.SetUnavailable(false)
				after, ok := f.cached("u1")
				if !ok {
					after.Name = ""
				}
				if after.Name != tt.want.after {
					t.Errorf("cached after = %q, want %q", after.Name, tt.want.after)
				}
				ops := f.rec.Operations()
				if len(ops) == 0 || ops[0].CacheResult != tt.want.hit {
					t.Errorf("operation metric = %+v, want cache result %v", ops, tt.want.hit)
				}
				// A background refresh that failed reaches the ErrorHandler.
				if tt.policy == store.FetchCacheAndNetwork && tt.state == downCached && len(handled) != 1 {
					t.Errorf("ErrorHandler got %v, want the refresh failure", handled)
				}
				if err := f.s.Close(ctx); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestWritePolicies checks where each write policy puts a save and a delete,
// with the backend up and down.
func TestWritePolicies(t *testing.T) {
	u := User{ID: "u1", Name: "new"}
	old := User{ID: "u1", Name: "old"}
	tests := []struct {
		policy      store.WritePolicy
		down        bool
		wantErr     bool
		cached      string // name in the cache after the save ("" = absent)
		backend     string // name in the backend after the save
		pending     int
		watchedMiss bool
	}{
		{policy: store.WriteCacheAndNetwork, cached: "new", backend: "new"},
		{policy: store.WriteCacheAndNetwork, down: true, wantErr: true, cached: "old", backend: "old"},
		{policy: store.WriteNetworkFirst, cached: "new", backend: "new"},
		{policy: store.WriteNetworkFirst, down: true, wantErr: true, cached: "old", backend: "old"},
		{policy: store.WriteCacheFirst, cached: "new", backend: "old", pending: 1},
		{policy: store.WriteCacheFirst, down: true, cached: "new", backend: "old", pending: 1},
		{policy: store.WriteCacheOnly, cached: "new", backend: "old"},
		{policy: store.WriteCacheOnly, down: true, cached: "new", backend: "old"},
	}
	for _, tt := range tests {
		name := tt.policy.String()
		if tt.down {
			name += "/backend_down"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, store.Config[User, string]{WritePolicy: tt.policy})
			f.seed(old)
			if _, err := f.s.Get(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
			f.b.SetUnavailable(tt.down)
			got, err := f.s.Save(ctx, u)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Save: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != u {
				t.Errorf("Save returned %+v, want %+v", got, u)
			}
			f.b.SetUnavailable(false)
			if c, _ := f.cached("u1"); c.Name != tt.cached {
				t.Errorf("cache holds %q, want %q", c.Name, tt.cached)
			}
			if b, _ := f.backendHas("u1"); b.Name != tt.backend {
				t.Errorf("backend holds %q, want %q", b.Name, tt.backend)
			}
			if p := f.s.PendingChanges(); len(p) != tt.pending {
				t.Errorf("pending = %+v, want %d", p, tt.pending)
			}
		})
	}
}

func TestDeletePolicies(t *testing.T) {
	old := User{ID: "u1", Name: "old"}
	tests := []struct {
		policy      store.WritePolicy
		down        bool
		wantErr     bool
		cached      bool // still readable from the cache (not deleted locally)
		backend     bool
		pending     int
		cacheOnlyNF bool
	}{
		{policy: store.WriteCacheAndNetwork},
		{policy: store.WriteCacheAndNetwork, down: true, wantErr: true, cached: true, backend: true},
		{policy: store.WriteNetworkFirst},
		{policy: store.WriteNetworkFirst, down: true, wantErr: true, cached: true, backend: true},
		{policy: store.WriteCacheFirst, backend: true, pending: 1},
		{policy: store.WriteCacheFirst, down: true, backend: true, pending: 1},
		{policy: store.WriteCacheOnly, backend: true},
	}
	for _, tt := range tests {
		name := tt.policy.String()
		if tt.down {
			name += "/backend_down"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, store.Config[User, string]{WritePolicy: tt.policy})
			f.seed(old)
			if _, err := f.s.Get(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
			f.b.SetUnavailable(tt.down)
			err := f.s.Delete(ctx, "u1")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Delete: err = %v, wantErr %v", err, tt.wantErr)
			}
			f.b.SetUnavailable(false)
			if _, ok := f.cached("u1"); ok != tt.cached {
				t.Errorf("cached = %v, want %v", ok, tt.cached)
			}
			if _, ok := f.backendHas("u1"); ok != tt.backend {
				t.Errorf("backend has = %v, want %v", ok, tt.backend)
			}
			if p := f.s.PendingChanges(); len(p) != tt.pending {
				t.Errorf("pending = %+v, want %d", p, tt.pending)
			}
			// A pending delete hides the item from every read, network ones
			// included: reads see the store's own unsynced writes.
			if tt.pending > 0 {
				if _, err := f.s.Get(ctx, "u1", store.WithFetchPolicy(store.FetchNetworkOnly)); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("network read of a pending delete: err = %v, want ErrNotFound", err)
				}
			}
		})
	}
}

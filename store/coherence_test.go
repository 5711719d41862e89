package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// The tests of this file pin the cache's coherence rules (docs/store.md,
// "Consistency model"): each one reproduces a race or a sequence that once
// made the store serve a value older than one it acknowledged, or lose an
// acknowledged write. They hold backend calls at a chosen point with a
// holdGate and use synctest to reach the interleaving deterministically.

// holdGate holds the next backend call of one operation and ID until the
// test releases it with the error the call should fail with (nil: the call
// goes on).
type holdGate struct {
	mu      sync.Mutex
	armed   bool
	op      memory.Op
	id      any
	arrived chan struct{}
	release chan error
}

func (g *holdGate) hook(ctx context.Context, op memory.Op, id any) error {
	g.mu.Lock()
	if !g.armed || op != g.op || id != g.id {
		g.mu.Unlock()
		return nil
	}
	g.armed = false
	arrived, release := g.arrived, g.release
	g.mu.Unlock()
	close(arrived)
	select {
	case err := <-release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// arm makes the next call of op on id wait; wait for it with <-g.arrived.
func (g *holdGate) arm(op memory.Op, id any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.op, g.id = true, op, id
	g.arrived, g.release = make(chan struct{}), make(chan error)
}

// gated builds a fixture whose backend calls can be held.
func gated(t *testing.T, cfg store.Config[User, string]) (*fixture, *holdGate) {
	g := &holdGate{}
	return newFixture(t, cfg, memory.WithFault(g.hook)), g
}

// async runs f in a goroutine and returns a channel with its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

var errInjected = fmt.Errorf("%w: injected by the test", store.ErrUnavailable)

func mustGet(t *testing.T, s *store.Store[User, string], id string, opts ...store.ReadOption) User {
	t.Helper()
	u, err := s.Get(context.Background(), id, opts...)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return u
}

// Issue 9, item 1: a backend read that raced an optimistic write must not
// fill the cache with the value the write replaced.
func TestReadRacingOptimisticWriteDoesNotWin(t *testing.T) {
	reads := []struct {
		name string
		read func(s *store.Store[User, string]) error
	}{
		{"network_first", func(s *store.Store[User, string]) error {
			_, err := s.Get(context.Background(), "u1", store.WithFetchPolicy(store.FetchNetworkFirst))
			return err
		}},
		{"network_only", func(s *store.Store[User, string]) error {
			_, err := s.Get(context.Background(), "u1", store.WithFetchPolicy(store.FetchNetworkOnly))
			return err
		}},
		{"cache_and_network_refresh", func(s *store.Store[User, string]) error {
			_, err := s.Get(context.Background(), "u1", store.WithFetchPolicy(store.FetchCacheAndNetwork))
			return err
		}},
		{"listing", func(s *store.Store[User, string]) error {
			_, err := s.GetAll(context.Background(), store.WithFetchPolicy(store.FetchNetworkOnly))
			return err
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				f, g := gated(t, store.Config[User, string]{})
				f.seed(User{ID: "u1", Name: "v0"})
				mustGet(t, f.s, "u1")
				g.arm(memory.OpSave, "u1")
				saved := async(func() error {
					_, err := f.s.Save(ctx, User{ID: "u1", Name: "v1"})
					return err
				})
				<-g.arrived // v1 is in the cache; the backend still holds v0
				if err := r.read(f.s); err != nil {
					t.Fatalf("read: %v", err)
				}
				synctest.Wait() // background refreshes settle
				g.release <- nil
				if err := <-saved; err != nil {
					t.Fatalf("Save: %v", err)
				}
				synctest.Wait()
				if u := mustGet(t, f.s, "u1"); u.Name != "v1" {
					t.Errorf("Get after the acknowledged Save = %q, want v1", u.Name)
				}
				all, err := f.s.GetAll(ctx)
				if err != nil || len(all) != 1 || all[0].Name != "v1" {
					t.Errorf("GetAll after the Save = %+v, %v; want [v1]", all, err)
				}
			})
		})
	}
}

// Issue 9, item 1 (listings): a full listing that raced the Save of a new
// item must not mark the cache complete without it.
func TestListingRacingSaveOfNewItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f, g := gated(t, store.Config[User, string]{})
		f.seed(User{ID: "u1", Name: "a"})
		g.arm(memory.OpSave, "u2")
		saved := async(func() error {
			_, err := f.s.Save(ctx, User{ID: "u2", Name: "b"})
			return err
		})
		<-g.arrived
		if _, err := f.s.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkOnly)); err != nil {
			t.Fatal(err)
		}
		g.release <- nil
		if err := <-saved; err != nil {
			t.Fatal(err)
		}
		all, err := f.s.GetAll(ctx) // cache-first: from the cache if it is complete
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Errorf("GetAll after saving u2 = %+v, want u1 and u2", all)
		}
	})
}

// Issue 9, item 2: a failed write-through must not drop an earlier pending
// write-behind change of the same ID, even when a read races it.
func TestFailedWriteThroughKeepsPendingChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f, g := gated(t, store.Config[User, string]{})
		f.seed(User{ID: "u1", Name: "v0"})
		if _, err := f.s.Save(ctx, User{ID: "u1", Name: "pending"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
			t.Fatal(err)
		}
		g.arm(memory.OpSave, "u1")
		saved := async(func() error {
			_, err := f.s.Save(ctx, User{ID: "u1", Name: "through"})
			return err
		})
		<-g.arrived
		if _, err := f.s.Get(ctx, "u1", store.WithFetchPolicy(store.FetchNetworkOnly)); err != nil {
			t.Fatal(err)
		}
		g.release <- errInjected
		if err := <-saved; !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Save: %v, want the injected failure", err)
		}
		pcs := f.s.PendingChanges()
		if len(pcs) != 1 || pcs[0].Value.Name != "pending" {
			t.Fatalf("PendingChanges = %+v, want the acknowledged write-behind change", pcs)
		}
		if u := mustGet(t, f.s, "u1"); u.Name != "pending" {
			t.Errorf("Get = %q, want the pending change", u.Name)
		}
		if err := f.s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if u, _ := f.backendHas("u1"); u.Name != "pending" {
			t.Errorf("backend holds %q after Sync, want the pending change", u.Name)
		}
	})
}

// Issue 9, item 3: after a transaction is undone by compensating writes,
// the next write-behind change of an ID it touched must reach the backend
// (not conflict with the compensation's version and be dropped).
func TestWriteBehindAfterCompensatedTransaction(t *testing.T) {
	ctx := context.Background()
	fail := false
	f := newFixture(t, store.Config[User, string]{}, memory.WithFault(func(_ context.Context, op memory.Op, id any) error {
		if fail && op == memory.OpSave && id == "u2" {
			return errInjected
		}
		return nil
	}))
	f.seed(User{ID: "u1", Name: "v0"})
	mustGet(t, f.s, "u1") // the store learns u1's version
	fail = true
	err := f.s.Transaction(ctx, func(tx *store.Tx[User, string]) error {
		if _, err := tx.Save(ctx, User{ID: "u1", Name: "tx"}); err != nil {
			return err
		}
		_, err := tx.Save(ctx, User{ID: "u2", Name: "tx"})
		return err
	})
	var te *store.TxError
	if !errors.As(err, &te) || !te.RolledBack {
		t.Fatalf("Transaction: %v, want a rolled-back *TxError", err)
	}
	fail = false
	if _, err := f.s.Save(ctx, User{ID: "u1", Name: "later"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if u, _ := f.backendHas("u1"); u.Name != "later" {
		t.Errorf("backend holds %q, want the acknowledged write-behind change", u.Name)
	}
	conflicts := 0
	for _, m := range f.rec.SyncEvents() {
		if m.Event == store.SyncConflictResolved {
			conflicts++
		}
	}
	if n := conflicts; n != 0 {
		t.Errorf("%d conflicts resolved with a single writer, want 0", n)
	}
}

// Issue 9, item 4: the undo of a failed write must not bring back a value
// that an invalidation dropped while the write was in flight.
func TestUndoRespectsInvalidation(t *testing.T) {
	for _, inv := range []struct {
		name string
		do   func(s *store.Store[User, string])
	}{
		{"Invalidate", func(s *store.Store[User, string]) { s.Invalidate("u1") }},
		{"InvalidateTags", func(s *store.Store[User, string]) { s.InvalidateTags("team") }},
		{"InvalidateAll", func(s *store.Store[User, string]) { s.InvalidateAll() }},
	} {
		t.Run(inv.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				f, g := gated(t, store.Config[User, string]{})
				if _, err := f.s.Save(ctx, User{ID: "u1", Name: "v0"}, store.WithTags("team")); err != nil {
					t.Fatal(err)
				}
				g.arm(memory.OpSave, "u1")
				saved := async(func() error {
					_, err := f.s.Save(ctx, User{ID: "u1", Name: "v1"}, store.WithTags("team"))
					return err
				})
				<-g.arrived
				f.seed(User{ID: "u1", Name: "remote"}) // another writer; the app learns of it and invalidates
				inv.do(f.s)
				g.release <- errInjected
				if err := <-saved; err == nil {
					t.Fatal("Save succeeded, want the injected failure")
				}
				if u := mustGet(t, f.s, "u1"); u.Name != "remote" {
					t.Errorf("Get after the invalidation = %q, want the backend's %q", u.Name, "remote")
				}
			})
		})
	}
}

// Issue 9, item 5: a batch naming one ID twice whose first write succeeded
// and second failed leaves the cache at the first write (the backend holds
// it), not at the value before the batch.
func TestBatchDuplicateIDPartialFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("SaveAll", func(t *testing.T) {
		saves := 0
		f := newFixture(t, store.Config[User, string]{}, memory.WithFault(func(_ context.Context, op memory.Op, _ any) error {
			if op == memory.OpSave {
				saves++
				if saves == 3 { // the seed's save is the first
					return errInjected
				}
			}
			return nil
		}))
		if _, err := f.s.Save(ctx, User{ID: "a", Name: "orig"}); err != nil {
			t.Fatal(err)
		}
		saved, err := f.s.SaveAll(ctx, []User{{ID: "a", Name: "one"}, {ID: "a", Name: "two"}})
		if !errors.Is(err, store.ErrUnavailable) || len(saved) != 1 {
			t.Fatalf("SaveAll = %v, %v; want one saved and the failure", saved, err)
		}
		b, _ := f.backendHas("a")
		if u := mustGet(t, f.s, "a"); u.Name != b.Name || u.Name != "one" {
			t.Errorf("cache holds %q, backend %q; want both %q", u.Name, b.Name, "one")
		}
	})
	t.Run("DeleteAll", func(t *testing.T) {
		deletes := 0
		f := newFixture(t, store.Config[User, string]{}, memory.WithFault(func(_ context.Context, op memory.Op, _ any) error {
			if op == memory.OpDelete {
				deletes++
				if deletes == 2 {
					return errInjected
				}
			}
			return nil
		}))
		if _, err := f.s.Save(ctx, User{ID: "a", Name: "orig"}); err != nil {
			t.Fatal(err)
		}
		n, err := f.s.DeleteAll(ctx, []string{"a", "a"})
		if !errors.Is(err, store.ErrUnavailable) || n != 1 {
			t.Fatalf("DeleteAll = %d, %v; want 1 and the failure", n, err)
		}
		if _, ok := f.backendHas("a"); ok {
			t.Fatal("backend still holds a")
		}
		if u, err := f.s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get = %+v, %v; want ErrNotFound (the backend deleted it)", u, err)
		}
	})
}

// Issue 9, item 6: a limited (and filtered) listing overlays pending changes
// before it applies the limit: a pending delete lets the next item in.
func TestListingLimitAfterPendingOverlay(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []store.FetchPolicy{store.FetchNetworkOnly, store.FetchNetworkFirst, store.FetchCacheFirst} {
		t.Run(policy.String(), func(t *testing.T) {
			f := newFixture(t, store.Config[User, string]{})
			f.seed(User{ID: "u1", Age: 1}, User{ID: "u2", Age: 2}, User{ID: "u3", Age: 3}, User{ID: "u4", Age: 4})
			if err := f.s.Delete(ctx, "u1", store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
				t.Fatal(err)
			}
			// u2's pending value no longer matches the filter.
			if _, err := f.s.Save(ctx, User{ID: "u2", Age: -2}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
				t.Fatal(err)
			}
			adults := store.WithFilter(func(u User) bool { return u.Age > 0 })
			got, err := f.s.GetAll(ctx, store.WithFetchPolicy(policy), store.WithLimit(2), adults)
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got); !slices.Equal(ids, []string{"u3", "u4"}) {
				t.Errorf("GetAll(limit 2, filter) = %v, want [u3 u4]", ids)
			}
			got, err = f.s.GetAll(ctx, store.WithFetchPolicy(policy), store.WithLimit(2))
			if err != nil {
				t.Fatal(err)
			}
			if ids := idsOf(got); !slices.Equal(ids, []string{"u2", "u3"}) {
				t.Errorf("GetAll(limit 2) = %v, want [u2 u3]", ids)
			}
		})
	}
}

func idsOf(us []User) []string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return ids
}

// stampingBackend sets a field on every save, as a backend with
// server-side timestamps does.
type stampingBackend struct {
	*memory.Backend[User, string]
}

func (b stampingBackend) SaveVersioned(ctx context.Context, id string, u User, expect uint64) (store.Versioned[User], error) {
	u.Name += " (stamped)"
	return b.Backend.SaveVersioned(ctx, id, u, expect)
}

func (b stampingBackend) Save(ctx context.Context, id string, u User) (User, error) {
	v, err := b.SaveVersioned(ctx, id, u, store.VersionAny)
	return v.Item, err
}

// Issue 9, item 7: watchers see the value a backend returned when Sync
// pushed a change, as they do for a write-through.
func TestSyncNotifiesWatchersOfStoredValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := store.New[User, string](stampingBackend{memory.New[User, string]()}, store.Config[User, string]{IDOf: userID})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		var mu sync.Mutex
		var seen []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for c, err := range s.Watch(ctx, "u1") {
				if err != nil {
					return
				}
				mu.Lock()
				seen = append(seen, c.Value.Name)
				mu.Unlock()
			}
		}()
		synctest.Wait()
		if _, err := s.Save(ctx, User{ID: "u1", Name: "x"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1] != "x (stamped)" {
			t.Errorf("watcher saw %q, want the stored value last", seen)
		}
		if u := mustGet(t, s, "u1"); u.Name != "x (stamped)" {
			t.Errorf("Get = %q, want the stored value", u.Name)
		}
	})
}

// Issue 9, item 8: a listing served from the cache comes in the backend's
// order, whatever order the entries were cached in.
func TestCachedListingKeepsBackendOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "u1"}, User{ID: "u2"}, User{ID: "u3"})
	mustGet(t, f.s, "u3")
	mustGet(t, f.s, "u2")
	fromBackend, err := f.s.GetAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.b.Calls(memory.OpGetAll)
	fromCache, err := f.s.GetAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.b.Calls(memory.OpGetAll) != calls {
		t.Fatal("the second listing was not served from the cache")
	}
	want := []string{"u1", "u2", "u3"}
	if !slices.Equal(idsOf(fromBackend), want) || !slices.Equal(idsOf(fromCache), want) {
		t.Errorf("listings = %v (backend), %v (cache); want %v", idsOf(fromBackend), idsOf(fromCache), want)
	}
	// A new item goes last, as in the backend.
	if _, err := f.s.Save(ctx, User{ID: "u0"}); err != nil {
		t.Fatal(err)
	}
	fromCache, _ = f.s.GetAll(ctx)
	if want := []string{"u1", "u2", "u3", "u0"}; !slices.Equal(idsOf(fromCache), want) {
		t.Errorf("after a save: %v, want %v", idsOf(fromCache), want)
	}
}

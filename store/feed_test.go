package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// testFeed is a memory backend with a change feed the test drives: emit
// calls the subscribers on the test's goroutine, so that every interleaving
// is the test's choice.
type testFeed struct {
	*memory.Backend[User, string]
	mu      sync.Mutex
	subs    map[int]func(store.FeedEvent[string])
	next    int
	stopped int
}

func newTestFeed(opts ...memory.Option) *testFeed {
	return &testFeed{Backend: memory.New[User, string](opts...), subs: map[int]func(store.FeedEvent[string]){}}
}

func (f *testFeed) Subscribe(fn func(store.FeedEvent[string])) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.next
	f.next++
	f.subs[k] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs, k)
			f.stopped++
		})
	}, nil
}

func (f *testFeed) emit(ev store.FeedEvent[string]) {
	f.mu.Lock()
	subs := make([]func(store.FeedEvent[string]), 0, len(f.subs))
	for _, fn := range f.subs {
		subs = append(subs, fn)
	}
	f.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

// remoteSave saves u as another writer would, and tells the feed.
func (f *testFeed) remoteSave(t *testing.T, u User) {
	t.Helper()
	v, err := f.Backend.SaveVersioned(context.Background(), u.ID, u, store.VersionAny)
	if err != nil {
		t.Fatal(err)
	}
	f.emit(store.FeedEvent[string]{Kind: store.FeedChanged, ID: u.ID, Version: v.Version, Committed: time.Now()})
}

type feedFixture struct {
	s    *store.Store[User, string]
	b    *testFeed
	rec  *reportertest.Recorder
	errs []error
}

func newFeedFixture(t *testing.T, cfg store.Config[User, string], b *testFeed) *feedFixture {
	t.Helper()
	f := &feedFixture{b: b, rec: reportertest.New(reportertest.WithItemIDs())}
	cfg.IDOf, cfg.MetricsReporter = userID, f.rec
	cfg.ErrorHandler = func(err error) { f.errs = append(f.errs, err) }
	s, err := store.New[User, string](b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return f
}

func (f *feedFixture) gets() uint64 { return f.b.Calls(memory.OpGet) }

func reset() store.FeedEvent[string] { return store.FeedEvent[string]{Kind: store.FeedReset} }

// Until the feed's first reset, and between an error and the next reset,
// the cache is not trusted: reads ask the backend.
func TestFeedTrustsTheCacheOnlyWhileLive(t *testing.T) {
	b := newTestFeed()
	f := newFeedFixture(t, store.Config[User, string]{}, b)
	if _, err := f.s.Save(context.Background(), User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, f.s, "u1")
	if f.gets() != 1 {
		t.Errorf("before the first reset: %d backend reads, want 1 (the cache is not trusted)", f.gets())
	}
	b.emit(reset())
	mustGet(t, f.s, "u1") // refills
	mustGet(t, f.s, "u1")
	if f.gets() != 2 {
		t.Errorf("after the reset: %d backend reads, want 2", f.gets())
	}
	b.emit(store.FeedEvent[string]{Kind: store.FeedError, Err: errors.New("connection refused")})
	mustGet(t, f.s, "u1")
	if f.gets() != 3 {
		t.Errorf("feed down: %d backend reads, want 3", f.gets())
	}
	if len(f.errs) != 1 || !strings.Contains(f.errs[0].Error(), "store: change feed: connection refused") {
		t.Errorf("ErrorHandler got %v", f.errs)
	}
	// Network-first still falls back to the cache while the feed is down.
	b.SetUnavailable(true)
	if _, err := f.s.Get(context.Background(), "u1", store.WithFetchPolicy(store.FetchNetworkFirst)); err != nil {
		t.Errorf("network-first fallback while the feed is down: %v", err)
	}
	b.SetUnavailable(false)
	b.emit(reset())
	mustGet(t, f.s, "u1")
	mustGet(t, f.s, "u1")
	if f.gets() != 5 {
		t.Errorf("after the second reset: %d backend reads, want 5", f.gets())
	}
	var kinds []string
	for _, m := range f.rec.Of(reportertest.KindFeed) {
		kinds = append(kinds, m.Feed.Event.String())
	}
	if strings.Join(kinds, ",") != "reset,error,reset" {
		t.Errorf("feed events reported: %v", kinds)
	}
}

// Another writer's change drops the cached entry; the store's own writes
// coming back through the feed do not.
func TestFeedChangeDropsStaleEntry(t *testing.T) {
	ctx := context.Background()
	b := newTestFeed()
	f := newFeedFixture(t, store.Config[User, string]{}, b)
	b.emit(reset())
	v, err := f.s.Save(ctx, User{ID: "u1", Name: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := b.GetVersioned(ctx, "u1")
	b.emit(store.FeedEvent[string]{Kind: store.FeedChanged, ID: "u1", Version: sv.Version}) // the echo
	before := f.gets()
	mustGet(t, f.s, "u1")
	if f.gets() != before {
		t.Errorf("the echo of the store's own write dropped its entry (%d backend reads)", f.gets())
	}
	b.remoteSave(t, User{ID: "u1", Name: "theirs"})
	if u := mustGet(t, f.s, "u1"); u.Name != "theirs" {
		t.Errorf("Get after another writer's change = %q (cached %q), want theirs", u.Name, v.Name)
	}
	var remote int
	for _, m := range f.rec.CacheEvents() {
		if m.Event == store.CacheInvalidation && m.Remote {
			remote++
		}
	}
	if remote != 1 {
		t.Errorf("%d remote invalidations reported, want 1", remote)
	}
	feed := f.rec.Of(reportertest.KindFeed)
	last := feed[len(feed)-1].Feed
	if last.Event != store.FeedChanged || last.Invalidated != 1 || last.Lag < 0 || last.ItemID != "u1" {
		t.Errorf("last feed metric = %+v", last)
	}
	// A remote delete reaches the cache too.
	if _, err := b.Delete(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	b.emit(store.FeedEvent[string]{Kind: store.FeedChanged, ID: "u1", Deleted: true})
	if _, err := f.s.Get(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after a remote delete: %v", err)
	}
}

// A backend read that raced another writer's change cannot fill the value
// it read once the change was heard.
func TestFeedChangeRefusesRacingFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := &holdGate{}
		b := newTestFeed(memory.WithFault(g.hook))
		f := newFeedFixture(t, store.Config[User, string]{}, b)
		b.emit(reset())
		if _, err := b.Backend.Save(ctx, "u1", User{ID: "u1", Name: "old"}); err != nil {
			t.Fatal(err)
		}
		g.arm(memory.OpGet, "u1")
		read := async(func() error { _, err := f.s.Get(ctx, "u1"); return err })
		<-g.arrived
		g.release <- nil // the read has "old"...
		synctest.Wait()
		b.remoteSave(t, User{ID: "u1", Name: "new"}) // ...which changes before it fills
		if err := <-read; err != nil {
			t.Fatal(err)
		}
		if u := mustGet(t, f.s, "u1"); u.Name != "new" {
			t.Errorf("Get = %q, want new", u.Name)
		}
	})
}

// A write-through in flight when another writer's change is heard settles
// unverified: the next read asks the backend.
func TestFeedChangeDuringWriteThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := &holdGate{}
		b := newTestFeed(memory.WithFault(g.hook))
		f := newFeedFixture(t, store.Config[User, string]{}, b)
		b.emit(reset())
		g.arm(memory.OpSave, "u1")
		saved := async(func() error { _, err := f.s.Save(ctx, User{ID: "u1", Name: "mine"}); return err })
		<-g.arrived
		b.emit(store.FeedEvent[string]{Kind: store.FeedChanged, ID: "u1", Version: 1000})
		g.release <- nil
		if err := <-saved; err != nil {
			t.Fatal(err)
		}
		before := f.gets()
		mustGet(t, f.s, "u1")
		if f.gets() != before+1 {
			t.Error("the write settled as verified although another change was heard during it")
		}
	})
}

// Watchers hear of other writers' changes.
func TestFeedReachesWatchers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b := newTestFeed()
		f := newFeedFixture(t, store.Config[User, string]{}, b)
		b.emit(reset())
		var mu sync.Mutex
		var seen []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for c, err := range f.s.Watch(ctx, "u1") {
				if err != nil {
					return
				}
				mu.Lock()
				if c.Deleted {
					seen = append(seen, "deleted")
				} else {
					seen = append(seen, c.Value.Name)
				}
				mu.Unlock()
			}
		}()
		synctest.Wait()
		b.remoteSave(t, User{ID: "u1", Name: "a"})
		synctest.Wait()
		b.remoteSave(t, User{ID: "u1", Name: "b"})
		synctest.Wait()
		if _, err := b.Delete(context.Background(), "u1"); err != nil {
			t.Fatal(err)
		}
		b.emit(store.FeedEvent[string]{Kind: store.FeedChanged, ID: "u1", Deleted: true})
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(seen, ","); got != "deleted,a,b,deleted" {
			t.Errorf("watcher saw %s, want deleted,a,b,deleted", got)
		}
	})
}

// Close ends the subscription.
func TestFeedCloseUnsubscribes(t *testing.T) {
	b := newTestFeed()
	s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped != 1 || len(b.subs) != 0 {
		t.Errorf("after Close: %d stopped, %d subscribed", b.stopped, len(b.subs))
	}
}

// Two stores over one memory backend with its change feed stay coherent:
// a write through one reaches the other's Get and Watch.
func TestTwoStoresOverOneMemoryBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b := memory.New[User, string](memory.WithChangeFeed())
		open := func() *store.Store[User, string] {
			s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			return s
		}
		a, c := open(), open()
		if _, err := a.Save(ctx, User{ID: "u1", Name: "v1"}); err != nil {
			t.Fatal(err)
		}
		if u := mustGet(t, c, "u1"); u.Name != "v1" {
			t.Fatalf("c reads %q", u.Name)
		}
		var mu sync.Mutex
		var seen []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ch, err := range c.Watch(ctx, "u1") {
				if err != nil {
					return
				}
				mu.Lock()
				seen = append(seen, ch.Value.Name)
				mu.Unlock()
			}
		}()
		synctest.Wait()
		if _, err := a.Save(ctx, User{ID: "u1", Name: "v2"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the feed delivers, c's watcher refreshes
		calls := b.Calls(memory.OpGet)
		if u := mustGet(t, c, "u1"); u.Name != "v2" {
			t.Errorf("c reads %q after a's write, want v2", u.Name)
		}
		if b.Calls(memory.OpGet) != calls {
			t.Error("c's read of the refreshed entry went to the backend")
		}
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(seen, ","); got != "v1,v2" {
			t.Errorf("c's watcher saw %s, want v1,v2", got)
		}
	})
}

// mergeNames is a resolver that keeps both sides' names.
func mergeNames(c store.Conflict[User, string]) store.Resolution[User] {
	if c.RemoteDeleted {
		return store.KeepLocal[User]()
	}
	return store.Merged(User{ID: c.ID, Name: c.Remote.Item.Name + "+" + c.Local.Name})
}

// Two stores that both found an ID absent and then created it write-behind:
// the second push expects the item absent, meets the first, and the
// conflict is resolved (here, merged); neither create silently replaces
// the other.
func TestWriteBehindCreatesAfterNotFoundConflict(t *testing.T) {
	ctx := context.Background()
	b := memory.New[User, string]()
	open := func() *store.Store[User, string] {
		s, err := store.New[User, string](b, store.Config[User, string]{IDOf: userID,
			WritePolicy: store.WriteCacheFirst, Conflict: store.ConflictCustom, ResolveConflict: mergeNames})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(ctx) })
		return s
	}
	s1, s2 := open(), open()
	for _, s := range []*store.Store[User, string]{s1, s2} {
		if _, err := s.Get(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	for i, s := range []*store.Store[User, string]{s1, s2} {
		if _, err := s.Save(ctx, User{ID: "x", Name: strings.Repeat("ab"[i:i+1], 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := b.Get(ctx, "x"); u.Name != "a+b" {
		t.Errorf("backend holds %q, want both creates merged (a+b)", u.Name)
	}
}

// A read whose fill was refused (another writer's change was heard during
// it) still tells the store which version a change made on its result is
// based on: the change is pushed conditionally and meets the conflict.
func TestWriteBehindBaseFromRefusedFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		g := &holdGate{}
		b := newTestFeed(memory.WithFault(g.hook))
		f := newFeedFixture(t, store.Config[User, string]{WritePolicy: store.WriteCacheFirst,
			Conflict: store.ConflictCustom, ResolveConflict: mergeNames}, b)
		b.emit(reset())
		if _, err := b.Backend.Save(ctx, "u1", User{ID: "u1", Name: "old"}); err != nil {
			t.Fatal(err)
		}
		g.arm(memory.OpGet, "u1")
		read := make(chan User, 1)
		go func() { u, _ := f.s.Get(ctx, "u1"); read <- u }()
		<-g.arrived
		g.release <- nil
		synctest.Wait()
		b.remoteSave(t, User{ID: "u1", Name: "theirs"}) // heard before the read fills
		u := <-read
		if u.Name != "old" {
			t.Fatalf("the read returned %q", u.Name)
		}
		u.Name = "mine" // a change made on what the read returned
		if _, err := f.s.Save(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Get(ctx, "u1"); got.Name != "theirs+mine" {
			t.Errorf("backend holds %q, want the conflict merged (theirs+mine)", got.Name)
		}
	})
}

package store_test

// Deterministic reproductions of what the replica checker
// (TestReplicaLinearizability) found at random: each is a deviation from
// docs/store.md ("Many replicas") that the store had, kept as a regression
// test.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// seededFeedBackend returns a memory backend with a change feed that holds
// u1 = v0.
func seededFeedBackend(t *testing.T) *memory.Backend[User, string] {
	t.Helper()
	mb := memory.New[User, string](memory.WithChangeFeed())
	if _, err := mb.Save(context.Background(), "u1", User{ID: "u1", Name: "v0"}); err != nil {
		t.Fatal(err)
	}
	return mb
}

// openReplica opens a store over backend (a replica's view of a shared
// one), closed when the test ends, and returns it with its recorder.
func openReplica(t *testing.T, backend store.Backend[User, string]) (*store.Store[User, string], *reportertest.Recorder) {
	t.Helper()
	rec := reportertest.New()
	s, err := store.New[User, string](backend, store.Config[User, string]{IDOf: userID, MetricsReporter: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, rec
}

// getName reads id with policy fp; a cache-only read may miss (the store
// dropped the entry): it returns "(miss)" then.
func getName(t *testing.T, s *store.Store[User, string], id string, fp store.FetchPolicy) string {
	t.Helper()
	u, err := s.Get(context.Background(), id, store.WithFetchPolicy(fp))
	if fp == store.FetchCacheOnly && errors.Is(err, store.ErrNotFound) {
		return "(miss)"
	}
	if err != nil {
		t.Fatalf("Get(%s) [%v]: %v", id, fp, err)
	}
	return u.Name
}

// afterGate is a replica's view of a shared memory backend whose next save
// can be held after it committed (the answer on its way back), as a
// network holds it.
type afterGate struct {
	*memory.Backend[User, string]
	armed   chan struct{} // closed by the held save once committed
	release chan struct{}
	// saveFail holds the save before the backend instead, and fails it.
	saveFail bool
	// getArmed, getRelease: the same for the next read (getFail: it fails
	// instead, as a lost connection's would).
	getArmed, getRelease chan struct{}
	getFail              bool
	// listArmed, listRelease: the same for the next listing.
	listArmed, listRelease chan struct{}
}

func (b *afterGate) GetAllVersioned(ctx context.Context, q store.Query[User]) ([]store.Versioned[User], error) {
	vs, err := b.Backend.GetAllVersioned(ctx, q)
	if armed := b.listArmed; armed != nil {
		b.listArmed = nil
		close(armed)
		<-b.listRelease
	}
	return vs, err
}

func (b *afterGate) GetVersioned(ctx context.Context, id string) (store.Versioned[User], error) {
	v, err := b.Backend.GetVersioned(ctx, id)
	if b.getArmed != nil {
		armed := b.getArmed
		b.getArmed = nil
		close(armed)
		<-b.getRelease
		if b.getFail {
			return store.Versioned[User]{}, errInjected
		}
	}
	return v, err
}

func (b *afterGate) SaveVersioned(ctx context.Context, id string, u User, expect uint64) (store.Versioned[User], error) {
	if b.armed != nil && b.saveFail {
		// Held before the backend, then failed: the write changed nothing.
		armed := b.armed
		b.armed = nil
		close(armed)
		<-b.release
		return store.Versioned[User]{}, errInjected
	}
	v, err := b.Backend.SaveVersioned(ctx, id, u, expect)
	if b.armed != nil {
		armed := b.armed
		b.armed = nil
		close(armed)
		<-b.release
	}
	return v, err
}

// waitFeed waits until rec saw n feed events of the kind.
func waitFeed(t *testing.T, rec *reportertest.Recorder, kind store.FeedEventKind, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rec.WaitFor(ctx, n, func(e reportertest.Event) bool {
		return e.Kind == reportertest.KindFeed && e.Feed.Event == kind
	}); err != nil {
		t.Fatal(err)
	}
}

// waitFeedChanges waits until rec saw n FeedChanged events.
func waitFeedChanges(t *testing.T, rec *reportertest.Recorder, n int) {
	t.Helper()
	waitFeed(t, rec, store.FeedChanged, n)
}

// A write through replica A commits; before its answer reaches A, replica
// B's later write commits and A hears of it. A's write then settles
// "unverified" with A's value, and the policies that serve stale entries
// (cache-and-network, stale-while-revalidate, cache-only, network-first's
// fallback) keep serving it long after the feed's lag, although A heard of
// the newer version before its write settled. docs/store.md: "a value
// another replica wrote is served from a cache at most the feed's lag
// after it committed".
func TestReplicaOwnWriteOutlivesRemoteChange(t *testing.T) {
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteNetworkFirst} {
		t.Run(p.String(), func(t *testing.T) {
			ctx := context.Background()
			mb := seededFeedBackend(t)
			ga := &afterGate{Backend: mb, armed: make(chan struct{}), release: make(chan struct{})}
			a, recA := openReplica(t, ga)
			b, _ := openReplica(t, mb)
			mustGet(t, a, "u1") // A caches v0

			armed := ga.armed
			saved := async(func() error {
				_, err := a.Save(ctx, User{ID: "u1", Name: "a"}, store.WithWritePolicy(p))
				return err
			})
			<-armed // A's write committed; its answer is held
			if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
				t.Fatal(err)
			}
			waitFeedChanges(t, recA, 2) // A heard of its own write and of B's
			close(ga.release)
			if err := <-saved; err != nil {
				t.Fatal(err)
			}
			// The entry A's write dropped as it settled is a remote invalidation.
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := recA.WaitFor(wctx, 1, func(e reportertest.Event) bool {
				return e.Kind == reportertest.KindCache && e.Cache.Event == store.CacheInvalidation && e.Cache.Remote
			}); err != nil {
				t.Errorf("no remote invalidation reported for the entry A's write dropped: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // far beyond the feed's lag
			if u, err := mb.Get(ctx, "u1"); err != nil || u.Name != "b" {
				t.Fatalf("the backend holds %q (%v), want b", u.Name, err)
			}
			for _, fp := range []store.FetchPolicy{store.FetchCacheOnly, store.FetchStaleWhileRevalidate, store.FetchCacheAndNetwork} {
				if got := getName(t, a, "u1", fp); got != "b" && got != "(miss)" {
					t.Errorf("A's Get[%v] = %q 50ms after A heard of B's write of b", fp, got)
				}
			}
		})
	}
}

// watchLast runs a watcher of id on s and returns a function that reports
// its latest value, waiting up to d for it to be want.
func watchLast(t *testing.T, s *store.Store[User, string], id string) func(want string, d time.Duration) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	last := make(chan string, 1024)
	go func() {
		for ch, err := range s.Watch(ctx, id) {
			if err != nil {
				return
			}
			name := ch.Value.Name
			if ch.Deleted {
				name = "(deleted)"
			}
			last <- name
		}
	}()
	cur := ""
	return func(want string, d time.Duration) string {
		timer := time.NewTimer(d)
		defer timer.Stop()
		for cur != want {
			select {
			case cur = <-last:
			case <-timer.C:
				return cur
			}
		}
		return cur
	}
}

// Another replica's change reaches a watcher through a background refresh
// of the watched ID. If that refresh cannot land, the watcher never hears
// of the change: when a second change is heard while the first one's
// refresh is in flight (the second refresh is absorbed by the one running,
// whose answer the store then refuses as older than the drop), or when the
// refresh fails. docs/store.md: another replica's change "reaches Watch
// and WatchAll subscribers, who get the new value".
func TestReplicaWatcherMissesRemoteChange(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := "second_change_during_refresh"
		if fail {
			name = "refresh_fails"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mb := seededFeedBackend(t)
			ga := &afterGate{Backend: mb}
			a, recA := openReplica(t, ga)
			b, _ := openReplica(t, mb)
			last := watchLast(t, a, "u1")
			if got := last("v0", 5*time.Second); got != "v0" {
				t.Fatalf("the watcher starts at %q", got)
			}

			// B's first change: A drops u1 and refreshes it for its
			// watcher; the refresh's answer is held (or fails).
			ga.getArmed, ga.getRelease, ga.getFail = make(chan struct{}), make(chan struct{}), fail
			armed := ga.getArmed
			if _, err := b.Save(ctx, User{ID: "u1", Name: "b1"}); err != nil {
				t.Fatal(err)
			}
			<-armed
			want := "b1"
			if !fail {
				// B's second change, heard while the refresh is in flight.
				if _, err := b.Save(ctx, User{ID: "u1", Name: "b2"}); err != nil {
					t.Fatal(err)
				}
				waitFeedChanges(t, recA, 2)
				want = "b2"
			}
			close(ga.getRelease)
			if got := last(want, time.Second); got != want {
				t.Errorf("A's watcher is at %q one second after B wrote %q (A's cache-first Get: %q)", got, want, mustGet(t, a, "u1").Name)
			}
		})
	}
}

// A network-first write holds its store's entry while in flight; another
// replica's change heard meanwhile only marks it. If the write then fails,
// the held value comes back (unverified) instead of going: the policies
// that serve stale entries (cache-only, stale-while-revalidate,
// cache-and-network, network-first's fallback) serve the value the other
// replica replaced, for as long as no read through the backend replaces it.
// (A cache-and-network write that fails drops its entry in that case:
// cache.rollback checks e.invalidated; the network-first failure path,
// release and unverify in store/write.go, does not.)
func TestReplicaFailedNetworkFirstWriteKeepsReplacedValue(t *testing.T) {
	ctx := context.Background()
	mb := seededFeedBackend(t)
	ga := &afterGate{Backend: mb, armed: make(chan struct{}), release: make(chan struct{}), saveFail: true}
	a, recA := openReplica(t, ga)
	b, _ := openReplica(t, mb)
	mustGet(t, a, "u1") // A caches v0

	armed := ga.armed
	saved := async(func() error {
		_, err := a.Save(ctx, User{ID: "u1", Name: "a"}, store.WithWritePolicy(store.WriteNetworkFirst))
		return err
	})
	<-armed // A's write holds u1, before the backend
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	waitFeedChanges(t, recA, 1) // A heard of B's write
	close(ga.release)
	if err := <-saved; err == nil {
		t.Fatal("A's write succeeded; the test fails it")
	}
	time.Sleep(50 * time.Millisecond) // far beyond the feed's lag
	for _, fp := range []store.FetchPolicy{store.FetchCacheOnly, store.FetchStaleWhileRevalidate} {
		if got := getName(t, a, "u1", fp); got != "b" && got != "(miss)" {
			t.Errorf("A's Get[%v] = %q 50ms after A heard of B's write of b", fp, got)
		}
	}
}

// While a store knows its feed is down (it applied a FeedError), another
// replica's change may go unheard, so its entries read as stale
// (docs/store.md, "Many replicas"): a cache-first read asks the database; a
// stale-tolerant read (cache-and-network, stale-while-revalidate) answers
// from the cache and refreshes in the background, so the next one sees the
// change; a cache-only read answers from the cache.
func TestReplicaOutageReadsAsStale(t *testing.T) {
	for _, fp := range []store.FetchPolicy{store.FetchCacheFirst, store.FetchCacheAndNetwork, store.FetchStaleWhileRevalidate, store.FetchCacheOnly} {
		t.Run(fp.String(), func(t *testing.T) {
			ctx := context.Background()
			mb := seededFeedBackend(t)
			a, recA := openReplica(t, mb)
			b, _ := openReplica(t, mb)
			mustGet(t, a, "u1") // A caches v0
			mb.SetFeedDown(true)
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := recA.WaitFor(wctx, 1, func(e reportertest.Event) bool {
				return e.Kind == reportertest.KindFeed && e.Feed.Event == store.FeedError
			}); err != nil {
				t.Fatal(err)
			}
			// A heard of the outage. B's write is lost to A.
			if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			got := getName(t, a, "u1", fp)
			switch fp {
			case store.FetchCacheFirst:
				if got != "b" {
					t.Errorf("A's cache-first Get during the outage = %q, want b (the database's)", got)
				}
			case store.FetchCacheOnly:
				if got != "v0" {
					t.Errorf("A's cache-only Get during the outage = %q, want the cached v0", got)
				}
			default:
				if got != "v0" && got != "b" {
					t.Errorf("A's Get during the outage = %q", got)
				}
				deadline := time.Now().Add(5 * time.Second)
				for got != "b" && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
					got = getName(t, a, "u1", fp)
				}
				if got != "b" {
					t.Errorf("A's stale-tolerant Get still = %q 5s after its background refresh was due", got)
				}
			}
		})
	}
}

// pausedFeed is a replica's view of a shared memory backend whose change
// feed can be paused (a slow network between the database and this
// replica): while paused, the events wait.
type pausedFeed struct {
	*afterGate
	paused atomic.Pointer[chan struct{}] // closed to resume
}

func (b *pausedFeed) pause() func() {
	ch := make(chan struct{})
	b.paused.Store(&ch)
	return func() { b.paused.Store(nil); close(ch) }
}

func (b *pausedFeed) Subscribe(fn func(store.FeedEvent[string])) (func(), error) {
	return b.afterGate.Backend.Subscribe(func(ev store.FeedEvent[string]) {
		if ch := b.paused.Load(); ch != nil {
			<-*ch
		}
		fn(ev)
	})
}

// Concurrent reads of one ID share one backend call, and a read joins a
// call in flight only if nothing changed the ID since it started, as far as
// the store knows. Another replica's write that committed (and returned)
// after the shared call read the backend, but that the store has not heard
// of yet, does not stop a network-only read that starts after that write
// returned from joining, and returning the older value. docs/store.md:
// "For a read that must see the latest committed value, use
// FetchNetworkOnly (or FetchNetworkFirst)."
func TestReplicaNetworkReadJoinsOlderRead(t *testing.T) {
	ctx := context.Background()
	mb := seededFeedBackend(t)
	pa := &pausedFeed{afterGate: &afterGate{Backend: mb}}
	a, _ := openReplica(t, pa)
	b, _ := openReplica(t, mb)

	resume := pa.pause() // A's feed is slow
	pa.getArmed, pa.getRelease = make(chan struct{}), make(chan struct{})
	armed := pa.getArmed
	first := async(func() error { _, err := a.Get(ctx, "u1", store.WithFetchPolicy(store.FetchNetworkOnly)); return err })
	<-armed // A's first read has v0, on its way back
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	// B's write returned; A's second network-only read starts after it.
	var got User
	second := async(func() error {
		var err error
		got, err = a.Get(ctx, "u1", store.WithFetchPolicy(store.FetchNetworkOnly))
		return err
	})
	time.Sleep(20 * time.Millisecond) // it joins the first
	close(pa.getRelease)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	resume()
	if got.Name != "b" {
		t.Errorf("A's network-only Get, started after B's write of b returned, = %q", got.Name)
	}
}

// The same for a write-behind change: Sync pushes it, and another
// replica's later write is heard before the push's answer comes back. The
// store must not cache the pushed value over the newer one.
func TestReplicaSyncedChangeOutlivesRemoteChange(t *testing.T) {
	ctx := context.Background()
	mb := seededFeedBackend(t)
	ga := &afterGate{Backend: mb}
	a, recA := openReplica(t, ga)
	b, _ := openReplica(t, mb)
	mustGet(t, a, "u1") // A caches v0
	if _, err := a.Save(ctx, User{ID: "u1", Name: "a"}, store.WithWritePolicy(store.WriteCacheFirst)); err != nil {
		t.Fatal(err)
	}
	ga.armed, ga.release = make(chan struct{}), make(chan struct{})
	armed := ga.armed
	synced := async(func() error { return a.Sync(ctx) })
	<-armed // the push committed; its answer is held
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	waitFeedChanges(t, recA, 2) // A heard of its push and of B's write
	close(ga.release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	for _, fp := range []store.FetchPolicy{store.FetchCacheOnly, store.FetchStaleWhileRevalidate, store.FetchCacheAndNetwork, store.FetchCacheFirst} {
		if got := getName(t, a, "u1", fp); got != "b" && got != "(miss)" {
			t.Errorf("A's Get[%v] = %q after A heard of B's write of b", fp, got)
		}
	}
}

// A watcher of an ID its store holds no entry for hears of the changes a
// feed outage hid, once the feed is back.
func TestReplicaOutageReachesWatcherOfUncachedID(t *testing.T) {
	ctx := context.Background()
	mb := seededFeedBackend(t)
	a, recA := openReplica(t, mb)
	b, _ := openReplica(t, mb)
	last := watchLast(t, a, "u1")
	if got := last("v0", 5*time.Second); got != "v0" {
		t.Fatalf("the watcher starts at %q", got)
	}
	a.Invalidate("u1") // A holds nothing of u1
	mb.SetFeedDown(true)
	waitFeed(t, recA, store.FeedError, 1)
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	mb.SetFeedDown(false)
	if got := last("b", 5*time.Second); got != "b" {
		t.Errorf("A's watcher is at %q after the feed came back; B wrote b during the outage", got)
	}
}

// steppedFeed is a replica's view of a shared memory backend whose change
// feed delivers a change only when the test lets one through (step), and
// whose calls can be held as afterGate's are.
type steppedFeed struct {
	*afterGate
	step chan struct{}
}

func (b *steppedFeed) Subscribe(fn func(store.FeedEvent[string])) (func(), error) {
	return b.afterGate.Backend.Subscribe(func(ev store.FeedEvent[string]) {
		if ev.Kind == store.FeedChanged {
			<-b.step
		}
		fn(ev)
	})
}

// A delete heard late, after the store cached a save that followed it,
// neither drops that value nor reaches its watchers: the feed's versions
// say the delete is older. Found by the replica checker over PostgreSQL
// (a Watch whose first value was the absence its own store had already
// written over).
func TestReplicaLateDeleteDoesNotHideNewerSave(t *testing.T) {
	ctx := context.Background()
	mb := seededFeedBackend(t)
	sf := &steppedFeed{afterGate: &afterGate{Backend: mb}, step: make(chan struct{})}
	a, recA := openReplica(t, sf)
	waitFeed(t, recA, store.FeedReset, 1) // A listens; its changes wait for a step
	if err := a.Delete(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Save(ctx, User{ID: "u1", Name: "a2"}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make(chan string, 16)
	go func() {
		for ch, err := range a.Watch(wctx, "u1") {
			if err != nil {
				return
			}
			if ch.Deleted {
				seen <- "(deleted)"
			} else {
				seen <- ch.Value.Name
			}
		}
	}()
	if got := <-seen; got != "a2" {
		t.Fatalf("the watcher starts at %q", got)
	}
	sf.step <- struct{}{} // A hears its delete, of the version before a2
	waitFeedChanges(t, recA, 1)
	if got := getName(t, a, "u1", store.FetchCacheOnly); got != "a2" {
		t.Errorf("A's cache holds %q after hearing its delete of the version before a2; want a2", got)
	}
	select {
	case got := <-seen:
		t.Errorf("A's watcher saw %q after a2; A deleted u1 before it saved a2", got)
	case <-time.After(50 * time.Millisecond):
	}
	sf.step <- struct{}{} // and its save
	waitFeedChanges(t, recA, 2)
	if got := getName(t, a, "u1", store.FetchCacheOnly); got != "a2" {
		t.Errorf("A's cache holds %q after hearing its own save; want a2", got)
	}
}

// An optimistic write (cache-and-network) over a cached absence fails; while
// it was in flight, another replica saved the item and this store heard of
// it. The rollback tells the watchers the item is absent again, and then
// what the backend holds: they must not stay at "absent". Found by the
// replica checker (a watcher that ended at absent while the backend held a
// value).
func TestReplicaRolledBackWriteOverAbsenceRefreshesWatchers(t *testing.T) {
	ctx := context.Background()
	mb := memory.New[User, string](memory.WithChangeFeed())
	ga := &afterGate{Backend: mb}
	rec := reportertest.New()
	a, err := store.New[User, string](ga, store.Config[User, string]{IDOf: userID, MetricsReporter: rec, NotFoundTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	b, _ := openReplica(t, mb)
	if _, err := a.Get(ctx, "u1"); !errors.Is(err, store.ErrNotFound) { // A caches the absence
		t.Fatalf("Get of an absent item: %v", err)
	}
	last := watchLast(t, a, "u1")
	if got := last("(deleted)", 5*time.Second); got != "(deleted)" {
		t.Fatalf("the watcher starts at %q", got)
	}
	ga.armed, ga.release, ga.saveFail = make(chan struct{}), make(chan struct{}), true
	armed := ga.armed
	failed := async(func() error {
		_, err := a.Save(ctx, User{ID: "u1", Name: "a"}, store.WithWritePolicy(store.WriteCacheAndNetwork))
		return err
	})
	<-armed // A shows a, its write held before the backend
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	waitFeedChanges(t, rec, 1) // A heard of B's write
	close(ga.release)
	if err := <-failed; !errors.Is(err, errInjected) {
		t.Fatalf("A's held write: %v; want the injected failure", err)
	}
	if got := last("b", 5*time.Second); got != "b" {
		t.Errorf("A's watcher is at %q; B saved b while A's failed write was in flight", got)
	}
}

// A network-first listing answers with what the backend said during the
// call, even where the cache took a value meanwhile from a read that began
// earlier: here a not-found that A's Get read before B created the item,
// filled after A's listing began. Found by the replica checker over
// PostgreSQL (a network-first GetAll that returned "absent" for an item
// another replica's acknowledged save had created before the call).
func TestReplicaNetworkListingAnswersWithTheBackend(t *testing.T) {
	ctx := context.Background()
	mb := memory.New[User, string](memory.WithChangeFeed())
	ga := &steppedFeed{afterGate: &afterGate{Backend: mb}, step: make(chan struct{})}
	rec := reportertest.New()
	a, err := store.New[User, string](ga, store.Config[User, string]{IDOf: userID, MetricsReporter: rec, NotFoundTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(ga.step); a.Close(context.Background()) })
	b, _ := openReplica(t, mb)

	ga.getArmed, ga.getRelease = make(chan struct{}), make(chan struct{})
	armed := ga.getArmed
	get := async(func() error {
		_, err := a.Get(ctx, "u1")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	<-armed // A's Get read "not found"; it has not filled the cache yet
	if _, err := b.Save(ctx, User{ID: "u1", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	// B's save returned; A has not heard of it (its feed waits for a step).
	ga.listArmed, ga.listRelease = make(chan struct{}), make(chan struct{})
	listArmed := ga.listArmed
	var items []User
	list := async(func() error {
		var err error
		items, err = a.GetAll(ctx, store.WithFetchPolicy(store.FetchNetworkFirst))
		return err
	})
	<-listArmed // A's listing read u1 = b from the backend
	close(ga.getRelease)
	if err := <-get; err != nil { // the Get fills its not-found now
		t.Fatal(err)
	}
	close(ga.listRelease)
	if err := <-list; err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Name != "b" {
		t.Errorf("A's network-first GetAll, started after B's save of u1 returned, = %+v; want [b]", items)
	}
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// These tests run stores, not bare Backends, as replicas do: each store over
// a Backend of its own pool (and in TestReplicaProcesses its own process),
// all on one table. The store subscribes to the Backend's change feed by
// itself; what one replica writes reaches the others' caches and watchers.

// replicaBound is how long a replica may take to see another's write: a
// correctness ceiling (the measured p99 is a few milliseconds), not a
// performance target.
const replicaBound = 2 * time.Second

type replica[T any] struct {
	s   *store.Store[T, string]
	b   *postgres.Backend[T, string]
	rec *reportertest.Recorder
}

// openReplica opens a store over a Backend of a new pool on table, and
// waits for its change feed to be live.
func openReplica[T any](t *testing.T, dsn, table string, idOf func(T) string, cfg store.Config[T, string], opts ...postgres.Option) *replica[T] {
	t.Helper()
	opts = append(opts, postgres.WithTable(table))
	r := &replica[T]{b: open[T, string](t, pgtest.Pool(t, dsn), opts...), rec: reportertest.New()}
	cfg.IDOf, cfg.MetricsReporter = idOf, r.rec
	s, err := store.New[T, string](r.b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	r.s = s
	r.waitFeed(t, store.FeedReset, 1)
	return r
}

// waitFeed waits until the replica's store applied n feed events of kind.
func (r *replica[T]) waitFeed(t *testing.T, kind store.FeedEventKind, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := r.rec.WaitFor(ctx, n, func(e reportertest.Event) bool {
		return e.Kind == reportertest.KindFeed && e.Feed.Event == kind
	})
	if err != nil {
		t.Fatalf("waiting for %d feed %v events: %v", n, kind, err)
	}
}

// eventually polls f until it returns nil or replicaBound passes, and
// returns how long it took.
func eventually(t *testing.T, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > replicaBound {
			t.Fatalf("%s: not within %v: %v", what, replicaBound, err)
		}
		time.Sleep(200 * time.Microsecond) // polling a real server, not waiting for time
	}
}

// TestReplicasSeeEachOthersWrites measures how long a write through replica
// A takes to reach replica B's cache-first Get and B's watcher.
func TestReplicasSeeEachOthersWrites(t *testing.T) {
	const writes = 300
	dsn := pgtest.Shared(t).Database(t)
	table := newTable()
	cfg := store.Config[counter, string]{}
	a := openReplica(t, dsn, table, counterID, cfg)
	b := openReplica(t, dsn, table, counterID, cfg)
	ctx := t.Context()

	if _, err := a.s.Save(ctx, counter{"c", 0}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first read", func() error { _, err := b.s.Get(ctx, "c"); return err })

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	seen := make(chan int, writes+2)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ch, err := range b.s.Watch(wctx, "c") {
			if err != nil {
				return
			}
			seen <- ch.Value.N
		}
	})

	getLag := make([]time.Duration, 0, writes)
	watchLag := make([]time.Duration, 0, writes)
	for i := 1; i <= writes; i++ {
		if _, err := a.s.Save(ctx, counter{"c", i}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		getLag = append(getLag, eventually(t, "B's Get", func() error {
			c, err := b.s.Get(ctx, "c")
			if err == nil && c.N != i {
				err = fmt.Errorf("B reads %d, A wrote %d", c.N, i)
			}
			return err
		}))
		for {
			select {
			case n := <-seen:
				if n != i {
					continue // an older state, coalesced or not
				}
			case <-time.After(replicaBound):
				t.Fatalf("B's watcher did not see write %d within %v", i, replicaBound)
			}
			break
		}
		watchLag = append(watchLag, time.Since(start))
	}
	stopWatch()
	wg.Wait()
	t.Logf("A's write to B's Get: p50 %v, p99 %v; to B's watcher: p50 %v, p99 %v (%d writes)",
		percentile(getLag, 50), percentile(getLag, 99), percentile(watchLag, 50), percentile(watchLag, 99), writes)
	remote := 0
	for _, m := range b.rec.CacheEvents() {
		if m.Event == store.CacheInvalidation && m.Remote {
			remote++
		}
	}
	if remote == 0 {
		t.Error("B reported no remote invalidation")
	}
}

// tally is a grow-only counter per replica: merging two tallies keeps
// the larger count of each replica, so no increment is lost whatever the
// order of the merges.
type tally struct {
	ID     string         `json:"id"`
	Counts map[string]int `json:"counts"`
}

func tallyID(t tally) string { return t.ID }

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, n := range m {
		out[k] = n
	}
	return out
}

func mergeTallies(a, b tally) tally {
	out := tally{ID: a.ID, Counts: cloneCounts(a.Counts)}
	for k, n := range b.Counts {
		out.Counts[k] = max(out.Counts[k], n)
	}
	return out
}

// TestReplicasConcurrentWritersLoseNothing has two replicas increment the
// same items write-behind, each its own count, and sync as they go. Their
// pushes are conditional on the version each based its change on, so they
// conflict; a resolver merges both sides. In the end every increment of
// both replicas is in the database.
func TestReplicasConcurrentWritersLoseNothing(t *testing.T) {
	const perReplica = 150
	ids := []string{"x", "y", "z"}
	dsn := pgtest.Shared(t).Database(t)
	table := newTable()
	cfg := store.Config[tally, string]{
		WritePolicy: store.WriteCacheFirst,
		Conflict:    store.ConflictCustom,
		ResolveConflict: func(c store.Conflict[tally, string]) store.Resolution[tally] {
			if c.RemoteDeleted {
				return store.KeepLocal[tally]()
			}
			return store.Merged(mergeTallies(c.Local, c.Remote.Item))
		},
		Retry: store.RetryConfig{MaxAttempts: 10, InitialDelay: time.Millisecond, Jitter: store.NoJitter},
	}
	replicas := map[string]*replica[tally]{
		"a": openReplica(t, dsn, table, tallyID, cfg),
		"b": openReplica(t, dsn, table, tallyID, cfg),
	}
	var wg sync.WaitGroup
	for name, r := range replicas {
		wg.Go(func() {
			ctx := context.Background()
			for i := range perReplica {
				id := ids[i%len(ids)]
				cur, err := r.s.Get(ctx, id)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: Get: %v", name, err)
					return
				}
				next := tally{ID: id, Counts: cloneCounts(cur.Counts)}
				next.Counts[name]++
				if _, err := r.s.Save(ctx, next); err != nil {
					t.Errorf("%s: Save: %v", name, err)
					return
				}
				if rand.IntN(3) == 0 {
					_ = r.s.Sync(ctx) // conflicts are resolved; failures stay pending
				}
			}
		})
	}
	wg.Wait()
	for name, r := range replicas {
		for attempt := 0; len(r.s.PendingChanges()) > 0; attempt++ {
			if attempt == 20 {
				t.Fatalf("%s: changes still pending: %+v", name, r.s.PendingChanges())
			}
			_ = r.s.Sync(t.Context())
		}
	}
	want := map[string]int{}
	for i := range perReplica {
		want[ids[i%len(ids)]]++
	}
	conflicts := 0
	for _, r := range replicas {
		for _, m := range r.rec.SyncEvents() {
			if m.Event == store.SyncConflictResolved {
				conflicts++
			}
		}
	}
	for _, id := range ids {
		v, err := replicas["a"].b.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		for name := range replicas {
			if v.Counts[name] != want[id] {
				t.Errorf("%s: %s's count is %d, want %d (all %v)", id, name, v.Counts[name], want[id], v.Counts)
			}
		}
	}
	t.Logf("%d increments per replica over %d items, %d conflicts resolved by merging", perReplica, len(ids), conflicts)
}

// TestReplicasThroughRestart runs a writer replica and a reader replica
// while the server restarts, gracefully and then after a kill. No call
// hangs (each is bounded by its context), every acknowledged write is in
// the database after, the reader's feed reports the outage and the reset,
// and the reader's cache then agrees with the database.
func TestReplicasThroughRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.Database(t)
	table := newTable()
	backoff := postgres.WithFeedBackoff(20*time.Millisecond, 200*time.Millisecond)
	w := openReplica(t, dsn, table, counterID, store.Config[counter, string]{}, backoff)
	r := openReplica(t, dsn, table, counterID, store.Config[counter, string]{}, backoff)

	const callBound = 3 * time.Second
	var mu sync.Mutex
	acked := map[string]int{}
	slowest := time.Duration(0)
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		defer cancel()
		start := time.Now()
		err := f(ctx)
		mu.Lock()
		slowest = max(slowest, time.Since(start))
		mu.Unlock()
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the writer
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := "k" + strconv.Itoa(i%20)
			if err := call(func(ctx context.Context) error { _, err := w.s.Save(ctx, counter{id, i}); return err }); err == nil {
				mu.Lock()
				acked[id] = i
				mu.Unlock()
			}
		}
	})
	wg.Go(func() { // the reader
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = call(func(ctx context.Context) error { _, err := r.s.Get(ctx, "k"+strconv.Itoa(i%20)); return err })
		}
	})
	pause := func() { time.Sleep(300 * time.Millisecond) } // let the workload run against the server
	pause()
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.waitFeed(t, store.FeedReset, 2)
	pause()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	pause()
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.waitFeed(t, store.FeedReset, 3)
	pause()
	close(stop)
	wg.Wait()

	if n := len(r.rec.Of(reportertest.KindFeed)); n < 5 {
		t.Errorf("the reader's feed reported %d events, want at least reset, error, reset, error, reset", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if slowest > callBound+time.Second {
		t.Errorf("a call took %v, beyond its context's %v", slowest, callBound)
	}
	ctx := t.Context()
	for id, n := range acked {
		v, err := w.b.Get(ctx, id)
		if err != nil || v.N < n {
			// The writer's later, unacknowledged writes may be there too;
			// an acknowledged one must be.
			t.Errorf("%s: database holds %+v (%v), the writer acknowledged %d", id, v, err, n)
		}
		eventually(t, "the reader agrees with the database", func() error {
			c, err := r.s.Get(ctx, id)
			if err == nil && c.N != v.N {
				err = fmt.Errorf("reader has %d, database %d", c.N, v.N)
			}
			return err
		})
	}
	t.Logf("%d items acknowledged; slowest call %v (bound %v)", len(acked), slowest, callBound)
}

// TestReplicaProcesses runs a writer replica in another OS process; this
// process's replica watches and reads what it writes.
func TestReplicaProcesses(t *testing.T) {
	if spec := os.Getenv("NEXUS_PG_REPLICA"); spec != "" {
		replicaChild(spec)
		return
	}
	const writes = 50
	dsn := pgtest.Shared(t).Database(t)
	table := newTable()
	r := openReplica(t, dsn, table, counterID, store.Config[counter, string]{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	last := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ch, err := range r.s.Watch(ctx, "p") {
			if err != nil {
				return
			}
			if !ch.Deleted && ch.Value.N == writes {
				last <- ch.Value.N
				return
			}
		}
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcesses$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("NEXUS_PG_REPLICA=%s|%s|%d", dsn, table, writes))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	select {
	case <-last:
	case <-time.After(replicaBound):
		t.Fatalf("the watcher did not see the child's last write within %v", replicaBound)
	}
	cancel()
	wg.Wait()
	if c := mustGetCounter(t, r.s, "p"); c.N != writes {
		t.Errorf("this replica reads %d, the child wrote %d last", c.N, writes)
	}
	if !strings.Contains(string(out), "wrote "+strconv.Itoa(writes)) {
		t.Errorf("child output: %s", out)
	}
}

func mustGetCounter(t *testing.T, s *store.Store[counter, string], id string) counter {
	t.Helper()
	c, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replicaChild is the other process: a store over its own pool that writes
// p = 1..n.
func replicaChild(spec string) {
	parts := strings.Split(spec, "|")
	n, _ := strconv.Atoi(parts[2])
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	pool, err := pgxpool.New(ctx, parts[0])
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	b, err := postgres.New[counter, string](ctx, pool, postgres.WithTable(parts[1]))
	if err != nil {
		fail(err)
	}
	defer b.Close()
	s, err := store.New[counter, string](b, store.Config[counter, string]{IDOf: counterID})
	if err != nil {
		fail(err)
	}
	defer s.Close(ctx)
	for i := 1; i <= n; i++ {
		if _, err := s.Save(ctx, counter{"p", i}); err != nil {
			fail(err)
		}
	}
	fmt.Printf("wrote %d\n", n)
}

package postgres_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// These tests run Backends on separate pools (separate sessions, as
// separate replicas have) and in separate processes against one database.

// counter is the item of the cross-instance tests.
type counter struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

// twoBackends returns two Backends on one table of one database, each with
// its own pool.
func twoBackends(t *testing.T, dsn string, opts ...postgres.Option) (a, b *postgres.Backend[counter, string]) {
	t.Helper()
	table := newTable()
	opts = append(opts, postgres.WithTable(table))
	a = open[counter, string](t, pgtest.Pool(t, dsn), opts...)
	b = open[counter, string](t, pgtest.Pool(t, dsn), opts...)
	return a, b
}

// percentile returns the p-th percentile (0 < p <= 100) of ds, sorted in
// place.
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// TestCrossInstanceLag writes through one Backend and measures how long
// each change takes to reach the other Backend's feed subscriber. Every
// change must arrive, in order.
func TestCrossInstanceLag(t *testing.T) {
	const writes = 500
	// lagBound is a generous ceiling for the p99 (measured: a few
	// milliseconds on loopback): a feed that delivers late is a bug.
	const lagBound = 500 * time.Millisecond
	ctx := t.Context()
	a, b := twoBackends(t, pgtest.Shared(t).Database(t))
	r := subscribe(t, b)
	r.next(t, store.FeedReset)

	afterAck := make([]time.Duration, 0, writes)
	fromCommit := make([]time.Duration, 0, writes)
	for i := range writes {
		id := "k" + strconv.Itoa(i%20)
		v, err := a.SaveVersioned(ctx, id, counter{ID: id, N: i}, store.VersionAny)
		if err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		e := r.next(t, store.FeedChanged)
		seen := time.Now()
		wantChange(t, e, id, false, v.Version)
		afterAck = append(afterAck, seen.Sub(acked))
		fromCommit = append(fromCommit, seen.Sub(e.Committed))
	}
	p50, p99 := percentile(fromCommit, 50), percentile(fromCommit, 99)
	t.Logf("feed lag over %d writes, from the row's commit stamp (server clock, same host) to B's callback: p50 %v, p99 %v, max %v",
		writes, p50, p99, fromCommit[len(fromCommit)-1])
	t.Logf("feed lag from A's Save returning to B's callback: p50 %v, p99 %v, max %v",
		percentile(afterAck, 50), percentile(afterAck, 99), afterAck[len(afterAck)-1])
	if p99 > lagBound {
		t.Errorf("feed lag p99 %v; want under %v", p99, lagBound)
	}
}

// TestCrossInstanceConditionalWriters has goroutines on two Backends
// increment shared counters with read-modify-conditional-write loops: no
// increment is lost, and the feed reports each counter's versions in
// increasing order, ending at the final one.
func TestCrossInstanceConditionalWriters(t *testing.T) {
	const counters, perSide, perWorker = 3, 4, 25
	ctx := t.Context()
	a, b := twoBackends(t, pgtest.Shared(t).Database(t))
	r := subscribe(t, b)
	r.next(t, store.FeedReset)
	for i := range counters {
		id := "c" + strconv.Itoa(i)
		if _, err := a.SaveVersioned(ctx, id, counter{ID: id}, store.VersionAbsent); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := map[string]int{} // increments acknowledged per counter
	conflicts := 0
	for _, be := range []*postgres.Backend[counter, string]{a, b} {
		for w := range perSide {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range perWorker {
					id := "c" + strconv.Itoa(rng.IntN(counters))
					for {
						v, err := be.GetVersioned(ctx, id)
						if err != nil {
							t.Error(err)
							return
						}
						v.Item.N++
						_, err = be.SaveVersioned(ctx, id, v.Item, v.Version)
						if err == nil {
							break
						}
						if _, ok := errors.AsType[*store.ConflictError[counter]](err); !ok {
							t.Error(err)
							return
						}
						mu.Lock()
						conflicts++
						mu.Unlock()
					}
					mu.Lock()
					done[id]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := map[string]uint64{}
	for i := range counters {
		id := "c" + strconv.Itoa(i)
		v, err := b.GetVersioned(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Item.N != done[id] {
			t.Errorf("%s = %d after %d acknowledged increments", id, v.Item.N, done[id])
		}
		last[id] = v.Version
	}
	// Creates and increments: one event each, per counter in version order.
	seen := map[string]uint64{}
	for range counters + 2*perSide*perWorker {
		e := r.next(t, store.FeedChanged)
		if e.Version <= seen[e.ID] {
			t.Fatalf("%s: version %d after %d in the feed", e.ID, e.Version, seen[e.ID])
		}
		seen[e.ID] = e.Version
	}
	if !maps(seen, last) {
		t.Errorf("the feed ended at versions %v; the table holds %v", seen, last)
	}
	t.Logf("%d increments from two Backends, %d conflicts resolved by retrying", 2*perSide*perWorker, conflicts)
}

func maps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// callBound is the timeout each call gets in the restart test; a call may
// take a little longer than its context (the driver notices, then returns).
const callBound = 2 * time.Second

// writer saves counters through b until stopped, each call under its own
// timeout, and keeps what was acknowledged.
type writer struct {
	mu      sync.Mutex
	acked   map[string]int // the last acknowledged value per ID
	failed  []error
	slowest time.Duration
	writes  int
	wrote   chan struct{} // signalled after each write
}

func (w *writer) run(ctx context.Context, b *postgres.Backend[counter, string], prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		id := prefix + strconv.Itoa(i%10)
		cctx, cancel := context.WithTimeout(context.Background(), callBound)
		start := time.Now()
		_, err := b.Save(cctx, id, counter{ID: id, N: i})
		took := time.Since(start)
		cancel()
		w.mu.Lock()
		w.writes++
		w.slowest = max(w.slowest, took)
		if err == nil {
			w.acked[id] = i
		} else {
			w.failed = append(w.failed, err)
		}
		w.mu.Unlock()
		select {
		case w.wrote <- struct{}{}:
		default:
		}
		if err != nil {
			// The server is away: do not spin.
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// TestCrossInstanceRestart restarts the server (gracefully, then with a
// kill) under a writer on one Backend and a feed subscriber on another:
// the feed reports FeedError then FeedReset each time and carries the
// writes made after it; no call outlives its context by much; every
// acknowledged write survives; failures match store.ErrUnavailable (or are
// the call's timeout).
func TestCrossInstanceRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := srv.Database(t)
	backoff := postgres.WithFeedBackoff(20*time.Millisecond, 200*time.Millisecond)
	a, b := twoBackends(t, dsn, backoff)
	r := subscribe(t, b)
	r.next(t, store.FeedReset)

	w := &writer{acked: map[string]int{}, wrote: make(chan struct{}, 1)}
	wctx, stopWriter := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { w.run(wctx, a, "w") })
	defer func() {
		stopWriter()
		wg.Wait()
	}()

	// waitWrites waits until the writer has made n more writes (it runs all
	// along, so they come).
	waitWrites := func(n int) {
		t.Helper()
		w.mu.Lock()
		target := w.writes + n
		w.mu.Unlock()
		deadline := time.NewTimer(30 * time.Second)
		defer deadline.Stop()
		for {
			w.mu.Lock()
			got := w.writes
			w.mu.Unlock()
			if got >= target {
				return
			}
			select {
			case <-w.wrote:
			case <-deadline.C:
				t.Fatalf("the writer made %d of %d writes in 30s", got-target+n, n)
			}
		}
	}
	// afterOutage checks the feed's report of an outage: changes until a
	// FeedError, possibly more of them, then a FeedReset, and after it the
	// changes of a new write.
	afterOutage := func(what string) {
		t.Helper()
		sawError := false
		for {
			var e store.FeedEvent[string]
			select {
			case e = <-r.events:
			case <-time.After(eventTimeout):
				t.Fatalf("%s: no FeedReset within %v (error seen: %t)", what, eventTimeout, sawError)
			}
			switch e.Kind {
			case store.FeedError:
				if !errors.Is(e.Err, store.ErrUnavailable) {
					t.Errorf("%s: FeedError %v; want it to match ErrUnavailable", what, e.Err)
				}
				sawError = true
				continue
			case store.FeedChanged:
				if !sawError {
					continue // before the outage
				}
				t.Fatalf("%s: a change after FeedError and before FeedReset: %+v", what, e)
			}
			if !sawError {
				t.Fatalf("%s: FeedReset without a FeedError first", what)
			}
			break
		}
		// The feed works again: a marker write arrives (after writes the
		// writer may make meanwhile).
		v := mustSave(t, a, "marker", counter{ID: "marker"})
		for {
			e := r.next(t, store.FeedChanged)
			if e.ID == "marker" && e.Version == v.Version {
				return
			}
		}
	}

	waitWrites(50)
	if err := srv.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	afterOutage("graceful restart")
	waitWrites(50)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	// A subscription made while the server is down reports that first.
	late := subscribe(t, b)
	e := late.next(t, store.FeedError)
	if !errors.Is(e.Err, store.ErrUnavailable) {
		t.Errorf("first event of a subscription made while the server is down: %v; want ErrUnavailable", e.Err)
	}
	waitWrites(5) // writes failing against the dead server
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	afterOutage("kill and start")
	untilReset(t, late)
	waitWrites(50)
	stopWriter()
	wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.slowest > callBound+time.Second {
		t.Errorf("the slowest write took %v with a %v timeout", w.slowest, callBound)
	}
	for _, err := range w.failed {
		if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("write failed with %v; want ErrUnavailable or the call's timeout", err)
		}
	}
	for id, n := range w.acked {
		got, err := b.Get(t.Context(), id)
		if err != nil || got.N != n {
			// One writer per ID: the last acknowledged value is what it holds.
			t.Errorf("%s: acknowledged %d, server holds %+v, %v", id, n, got, err)
		}
	}
	t.Logf("%d writes across a restart and a kill: %d failed while the server was away, slowest call %v", w.writes, len(w.failed), w.slowest)
}

// untilReset reads r's events up to a FeedReset; only FeedErrors may come
// before it.
func untilReset(t *testing.T, r *recorder[string]) {
	t.Helper()
	for {
		tm := time.NewTimer(eventTimeout)
		select {
		case e := <-r.events:
			tm.Stop()
			switch e.Kind {
			case store.FeedReset:
				return
			case store.FeedChanged:
				t.Fatalf("a change before the first FeedReset: %+v", e)
			}
		case <-tm.C:
			t.Fatalf("no FeedReset within %v", eventTimeout)
		}
	}
}

// TestCrossProcess runs a writer in a child process (this test binary, run
// again) and checks that this process's feed sees every write the child
// acknowledged.
func TestCrossProcess(t *testing.T) {
	if spec := os.Getenv("NEXUS_PG_CHILD"); spec != "" {
		crossProcessChild(spec)
		return
	}
	const writes = 100
	dsn := pgtest.Shared(t).Database(t)
	table := newTable()
	b := open[counter, string](t, pgtest.Pool(t, dsn), postgres.WithTable(table))
	r := subscribe(t, b)
	r.next(t, store.FeedReset)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcess$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("NEXUS_PG_CHILD=%s|%s|%d", dsn, table, writes))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		id      string
		version uint64
	}
	var acks []ack
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var a ack
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %d", &a.id, &a.version); err == nil {
			acks = append(acks, a)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if len(acks) != writes {
		t.Fatalf("the child acknowledged %d writes; want %d", len(acks), writes)
	}
	for _, a := range acks {
		wantChange(t, r.next(t, store.FeedChanged), a.id, false, a.version)
	}
}

// crossProcessChild writes through its own Backend and prints each
// acknowledged write.
func crossProcessChild(spec string) {
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
	for i := range n {
		id := "p" + strconv.Itoa(i)
		v, err := b.SaveVersioned(ctx, id, counter{ID: id, N: i}, store.VersionAny)
		if err != nil {
			fail(err)
		}
		fmt.Printf("ack %s %d\n", id, v.Version)
	}
}

// After the server restarts, the pool still holds the connections it
// opened before; their first use fails (57P01). A read gets past them, as
// database/sql's do: Get and GetAll right after a restart succeed.
func TestReadsGetPastDeadConnections(t *testing.T) {
	srv := pgtest.NewServer(t)
	pool := pgtest.Pool(t, srv.Database(t))
	b := open[counter, string](t, pool)
	ctx := t.Context()
	if _, err := b.Save(ctx, "a", counter{ID: "a", N: 1}); err != nil {
		t.Fatal(err)
	}
	// Open as many connections as the pool holds, all idle afterwards.
	n := int(pool.Config().MaxConns)
	var conns []*pgxpool.Conn
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n + 1 {
		if got, err := b.Get(ctx, "a"); err != nil || got.N != 1 {
			t.Fatalf("Get %d after a restart: %+v, %v", i, got, err)
		}
		if all, err := b.GetAll(ctx, store.Query[counter]{}); err != nil || len(all) != 1 {
			t.Fatalf("GetAll %d after a restart: %+v, %v", i, all, err)
		}
	}
}

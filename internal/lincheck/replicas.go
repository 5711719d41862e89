package lincheck

// The replica checker: two or three stores, each with its own cache, over
// one backend whose change feed tells every store of every committed change
// (docs/store.md, "Many replicas"). Several clients per store run random
// reads (every fetch policy), network writes (cache-and-network and
// network-first: write-behind and cache-only writes resolve conflicts
// across replicas, which the durability checks cover), invalidations and
// watches, with injected latency and faults, and optionally outages of the
// feed. No other writer touches the backend.
//
// The model, per ID:
//
//   - Writes are linearizable in the backend. A successful network-first
//     write is one atomic step within its call. A successful
//     cache-and-network write is Begin, Take and End: the writing store
//     shows its value from the call (optimistic), it takes effect at the
//     backend's commit. A write that failed with an injected fault changed
//     nothing (faults are raised before the backend call): a network-first
//     one is a Note, a cache-and-network one Begin and End (visible in
//     flight on its store); besides, no read on another store ever returns
//     its value, nor a read on its store that starts after it returned.
//   - Reads answered by the backend (network-only; network-first when its
//     own backend call succeeded) are linearizable: held at their real call.
//   - Reads a store may answer from its cache (cache-first, cache-and-
//     network, stale-while-revalidate, cache-only, a network-first read
//     that fell back, a Watch's first value, a listing's items) may return
//     a value another store has since replaced, within the feed's lag: any
//     value current at some moment within [call − Δ, return] (Δ-atomicity:
//     the read's call is moved back by Δ before porcupine checks it), Δ the
//     largest lag the stores reported (store.FeedMetric.Lag of the changes
//     they applied) plus DeltaMargin.
//   - Read-your-writes per store: a read on store X never returns a value
//     older than X's last acknowledged write of the ID before its call (the
//     model's Input.After: that write takes effect before the read, wherever
//     Δ moved the read's call). Not "never before that write returned": the
//     write may have been superseded by another store's before it returned,
//     and X may serve it within the lag.
//   - A network-first write holds its store's entry until it settles
//     (docs/store.md: visible once the backend took it), so a read on X
//     that overlaps X's network-first write of the ID (whatever its policy:
//     the held entry answers network reads too) may return the value the
//     store held when the write started: its call moves back to that
//     write's call − Δ.
//   - Feed outages lose the changes made during them. Until a store hears
//     of the outage (it applies a FeedError) it trusts its cache, so a read
//     its cache answers may return what the cache held when the outage
//     began; from then until the feed's next reset, only a network-first
//     read that fell back to the cache may (docs/store.md: it "can still
//     fall back to the cache"; the other reads the cache would answer ask
//     the backend). Such a read's call moves back to the outage's start −
//     Δ.
//   - Invalidate and InvalidateAll, on any store, change nothing.
//   - Watchers converge: once the workload stopped, faults are off, the
//     feeds are live and every store's cache agrees with the backend, every
//     watcher's last value is the backend's.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/nexusstore/nexus/store"
)

// DeltaMargin is added to the largest observed lag to make Δ: the store
// drops an entry a little after it reports the event's lag.
const DeltaMargin = 2 * time.Millisecond

// HideFeedEnv names the environment variable that demonstrates the
// checker failing: NEXUS_REPLICA_HIDE_FEED=1 hides the change feed from the
// second store (its backend answers store.ErrNoChangeFeed), which then
// serves values the others replaced long ago. The checker must report
// stale reads (and a cache that does not converge). Never set in CI.
const HideFeedEnv = "NEXUS_REPLICA_HIDE_FEED"

// TolerateEnv names the environment variable that makes the checker
// tolerate (and count) store deviations from docs/store.md that it found
// before they were fixed, for diagnosing a regression: with it, a failing
// history that passes with the tolerances points at one of them. Each is
// reproduced deterministically by a test in store/replicas_test.go. Never
// set in CI; by default the checker is strict.
//
//   - A store's entry that holds a write in flight when the store hears of
//     another replica's change kept the write's value (it succeeded) or the
//     value it held before (a network-first write that failed), unverified;
//     the policies that serve stale entries then served a value the other
//     replica replaced, beyond the feed's lag. Tolerated: a read a cache
//     may answer, after its store's last write of the ID, that returns that
//     write's value or a value current when it began; and, once the
//     workload stopped, a cache entry in that state, if a read through the
//     backend then replaces it.
//   - A network-only read that started after another replica's write
//     returned, but before the store heard of it, joined a backend call in
//     flight that read the backend before that write. Tolerated: a network
//     read that made no backend call of its own is held to Δ, like a cached
//     one.
//   - A watcher missed another replica's change when the refresh the change
//     scheduled was absorbed by one already running or failed. Tolerated: a
//     watcher that is stale once the caches converged, if a read through
//     the backend then brings it the backend's value.
const TolerateEnv = "NEXUS_REPLICA_TOLERATE"

// ReplicaRun is one configuration of the replica workload.
type ReplicaRun struct {
	Name            string
	Stores          int // 2 or 3
	IDs             int
	ClientsPerStore int
	Ops             int // per history, about
	FaultRate       float64
	// Latency bounds the latency injected before and after each backend
	// call (writes: twice as long).
	Latency     time.Duration
	TTL         time.Duration // Config.CacheTTL
	NotFoundTTL time.Duration // Config.NotFoundTTL
	MaxSize     int           // Config.MaxCacheSize
	// Outages toggles the feed down and up during the workload (the
	// cluster's SetFeedDown).
	Outages bool
}

// Cluster is one history's shared backend, seen by each store through a
// backend of its own.
type Cluster struct {
	// Backends has one backend per store, all over one source of truth.
	Backends []FeedBackend
	// Direct reads the source of truth without faults: the token, 0 when
	// absent.
	Direct func(ctx context.Context, id string) (int64, error)
	// SetFeedDown, if set, stops and restarts every store's feed (it must
	// deliver a store.FeedError on the way down, and a store.FeedReset on
	// the way up, to every subscriber).
	SetFeedDown func(on bool)
	// Live is how long to wait for every store's feed to be live after the
	// stores open, and for the caches to converge at the end.
	Live time.Duration
}

// Counts sums what a replica checker did.
type Counts struct {
	Histories, Ops, Faults, Undecided int64
	Outages                           int64
	Shifted                           int64 // reads whose call moved back (Δ)
	// Known store deviations tolerated under TolerateEnv: histories
	// linearizable only with the tolerances, cache entries left stale at
	// the end, and watchers that missed a remote change until a read
	// refilled the entry.
	ToleratedStale, ToleratedWatchers int64
	ToleratedCached                   int64 // entries left with the store's own superseded write at the end
	FeedChanges                       int64 // change events the stores applied
	MaxLag                            time.Duration
	MaxDelta                          time.Duration
	MaxHeard                          time.Duration // the longest a store took to hear of an outage
}

func (c *Counts) String() string {
	s := fmt.Sprintf("%d histories, %d operations checked (%d reads moved back by Δ), %d faults injected, %d feed outages, %d feed changes applied, largest lag %v, Δ max %v, outages heard within %v, %d undecided",
		c.Histories, c.Ops, c.Shifted, c.Faults, c.Outages, c.FeedChanges, c.MaxLag, c.MaxDelta, c.MaxHeard, c.Undecided)
	if c.ToleratedStale+c.ToleratedCached+c.ToleratedWatchers > 0 {
		s += fmt.Sprintf("; known deviations tolerated (%s): %d histories linearizable only so, %d cache entries left stale, %d stale watchers",
			TolerateEnv, c.ToleratedStale, c.ToleratedCached, c.ToleratedWatchers)
	}
	return s
}

var tokens atomic.Int64

func nextTok() int64 { return tokens.Add(1) }

// RunReplicas runs the configurations in turn, one history each, until the
// budget is spent (each runs at least once) or one fails. newCluster makes
// a history's backends; it registers their cleanup with t.
func RunReplicas(t *testing.T, name string, budget time.Duration, runs []ReplicaRun, newCluster func(t *testing.T, run ReplicaRun) Cluster) *Counts {
	t.Helper()
	deadline := time.Now().Add(budget)
	c := &Counts{}
	start := time.Now()
	defer func() { // also when a history stops the test
		t.Logf("%s: %s (budget %v, took %v)", name, c, budget, time.Since(start).Round(time.Millisecond))
	}()
	hide := os.Getenv(HideFeedEnv) != ""
	strict := os.Getenv(TolerateEnv) == ""
	for round := 0; round == 0 || (time.Now().Before(deadline) && !t.Failed()); round++ {
		for _, run := range runs {
			if round > 0 && (!time.Now().Before(deadline) || t.Failed()) {
				break
			}
			n := int(c.Histories)
			c.Histories++
			t.Run(run.Name, func(t *testing.T) {
				cl := newCluster(t, run)
				checkReplicaHistory(t, fmt.Sprintf("%s-%s-%d", name, run.Name, n), run, cl, hide, strict, c)
			})
		}
	}
	return c
}

// history records one replica history. Safe for concurrent use.
type history struct {
	start  time.Time
	opened int64 // when every store was open and its feed live
	mu     sync.Mutex
	reads  []rRead
	writes []rWrite
	notes  []rNote
	downs  []outage
	seen   []storeOutage
	// tried lists, per ID, every token a write tried.
	tried map[string]map[int64]bool
}

type rRead struct {
	store, client int
	id            string
	tok           int64
	call, ret     int64
	what          string
	network       bool // answered by the backend: held to linearizability
	miss          bool // may miss the cache: not-found is legal
	fallback      bool // a network-first read that may have fallen back to the cache
	staleOK       bool // its policy serves stale entries (cache-and-network, stale-while-revalidate, cache-only)
	joined        bool // a network read that made no backend call: it shared another's
}

type wOutcome uint8

const (
	wOK       wOutcome = iota
	wNoEffect          // failed with an injected fault: never reached the backend
	wMaybe             // failed otherwise: may have taken effect
)

type rWrite struct {
	store, client int
	id            string
	tok           int64 // 0: a delete
	call, ret     int64
	optimistic    bool // cache-and-network
	outcome       wOutcome
	what          string
}

type rNote struct {
	client    int
	id        string
	call, ret int64
	what      string
}

// outage is a feed outage: from SetFeedDown(true) to SetFeedDown(false).
type outage struct{ down, up int64 }

// storeOutage is an outage as one store lived it: from its start (down)
// until the store heard of it (a FeedError) it trusted a cache that may
// miss changes, and until the feed's next reset it distrusted it.
type storeOutage struct {
	store              int
	down, heard, reset int64
}

func newHistory() *history {
	return &history{start: time.Now(), tried: map[string]map[int64]bool{}}
}

// now is the monotonic time since the history started, in nanoseconds.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) read(r rRead) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads = append(h.reads, r)
}

func (h *history) write(w rWrite) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes = append(h.writes, w)
}

func (h *history) note(n rNote) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notes = append(h.notes, n)
}

func (h *history) try(id string, tok int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tried[id] == nil {
		h.tried[id] = map[int64]bool{}
	}
	h.tried[id][tok] = true
}

// lastWrite returns store si's last write of id (by return) that it did
// not roll back, if any.
func (h *history) lastWrite(si int, id string) (rWrite, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last rWrite
	found := false
	for _, w := range h.writes {
		if w.store == si && w.id == id && !undone(w) && (!found || w.ret > last.ret) {
			last, found = w, true
		}
	}
	return last, found
}

// undone reports whether w is a cache-and-network write that failed: its
// store rolled its entry back to what the write found there.
func undone(w rWrite) bool { return w.optimistic && w.outcome != wOK }

// keepsSuperseded reports whether w is a write after which its store may
// keep a value another store replaced, by a known deviation (see
// TolerateEnv): w succeeded and tok is its value, or w is a network-first
// write that failed.
func keepsSuperseded(w rWrite, tok int64) bool {
	return (w.outcome == wOK && w.tok == tok) || (!w.optimistic && w.outcome != wOK)
}

// globalID is the partition of the notes that concern every ID
// (InvalidateAll, outages): kept apart so that they cost the checker
// nothing and still show in the visualization.
const globalID = "*"

// answeredByBackend classifies a read under p whose backend calls probe
// recorded: answered by the backend (linearizable), or a network-first read
// that may have fallen back to the cache.
func answeredByBackend(p store.FetchPolicy, pr *probe) (network, fallback bool) {
	switch p {
	case store.FetchNetworkOnly:
		return true, false
	case store.FetchNetworkFirst:
		if pr.answered() {
			return true, false
		}
		return false, true
	}
	return false, false
}

// servesStale reports whether p's reads serve stale entries from the cache.
func servesStale(p store.FetchPolicy) bool {
	return p == store.FetchCacheAndNetwork || p == store.FetchStaleWhileRevalidate || p == store.FetchCacheOnly
}

var allFetchPolicies = []store.FetchPolicy{
	store.FetchCacheFirst, store.FetchNetworkFirst, store.FetchCacheAndNetwork,
	store.FetchCacheOnly, store.FetchNetworkOnly, store.FetchStaleWhileRevalidate,
}

func pick[E any](xs ...E) E { return xs[rand.N(len(xs))] }

// TokOf returns the token of what a read returned: 0 for not-found, an
// error for any other failure.
func TokOf(it Item, err error) (int64, error) {
	if tok, ok := tokOf(it, err); ok {
		return tok, nil
	}
	return 0, err
}

func tokOf(it Item, err error) (int64, bool) {
	switch {
	case err == nil:
		return it.Tok, true
	case errors.Is(err, store.ErrNotFound):
		return 0, true
	}
	return 0, false
}

// replicaEnv is one history in progress.
type replicaEnv struct {
	run    ReplicaRun
	stores []*store.Store[Item, string]
	h      *history
	ids    []string
	errsMu sync.Mutex
	errs   []string
}

func (e *replicaEnv) surprise(format string, args ...any) {
	e.errsMu.Lock()
	defer e.errsMu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func checkReplicaHistory(t *testing.T, name string, run ReplicaRun, cl Cluster, hideFeed, strict bool, c *Counts) {
	ctx := context.Background()
	if len(cl.Backends) != run.Stores {
		t.Fatalf("the cluster has %d backends for %d stores", len(cl.Backends), run.Stores)
	}
	if cl.Live == 0 {
		cl.Live = 5 * time.Second
	}
	f := newFaults(run.FaultRate, run.Latency)
	h := newHistory()
	e := &replicaEnv{run: run, h: h}
	for i := range run.IDs {
		e.ids = append(e.ids, fmt.Sprintf("k%d", i))
	}
	clients := run.Stores * run.ClientsPerStore
	seedClient := clients
	finalClient := clients + 1
	firstWatcher := clients + 2

	// Some IDs exist before the stores start, written straight to the
	// backend.
	for _, id := range e.ids {
		if rand.N(2) == 0 {
			tok := nextTok()
			h.try(id, tok)
			call := h.now()
			if _, err := cl.Backends[0].Save(ctx, id, Item{ID: id, Tok: tok}); err != nil {
				t.Fatal(err)
			}
			h.write(rWrite{store: -1, client: seedClient, id: id, tok: tok, call: call, ret: h.now(), outcome: wOK, what: "seed"})
		}
	}

	recs := make([]*feedRecorder, run.Stores)
	hidden := make([]bool, run.Stores)
	for i, b := range cl.Backends {
		recs[i] = newFeedRecorder(h)
		hidden[i] = hideFeed && i == 1
		s, err := store.New[Item, string](&faultBackend{inner: b, f: f, hideFeed: hidden[i]}, store.Config[Item, string]{
			Name: fmt.Sprintf("replica%d", i), IDOf: ItemID,
			CacheTTL: run.TTL, NotFoundTTL: run.NotFoundTTL, MaxCacheSize: run.MaxSize, RefreshWorkers: 2,
			MetricsReporter: recs[i],
		})
		if err != nil {
			t.Fatal(err)
		}
		closeOnce := sync.OnceValue(func() error { return s.Close(context.Background()) })
		t.Cleanup(func() { closeOnce() })
		e.stores = append(e.stores, s)
		defer func() {
			if err := closeOnce(); err != nil {
				t.Errorf("closing store %d: %v", i, err)
			}
		}()
	}
	for i, r := range recs {
		if hidden[i] {
			continue
		}
		select {
		case <-r.resets:
		case <-time.After(cl.Live):
			t.Fatalf("store %d: its change feed was not live within %v", i, cl.Live)
		}
	}
	h.opened = h.now()

	// One long-lived watcher per store and ID.
	wctx, stopWatchers := context.WithCancel(ctx)
	var watchers []*watcher
	var wwg sync.WaitGroup
	for si := range e.stores {
		for _, id := range e.ids {
			w := &watcher{store: si, id: id, client: firstWatcher + len(watchers), changed: make(chan struct{}, 1)}
			watchers = append(watchers, w)
			wwg.Go(func() { w.run(wctx, e) })
		}
	}

	// Feed outages, while the clients run.
	done := make(chan struct{})
	var owg sync.WaitGroup
	if run.Outages && cl.SetFeedDown != nil {
		owg.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Duration(1+rand.N(4)) * time.Millisecond):
				}
				down := h.now()
				cl.SetFeedDown(true)
				time.Sleep(time.Duration(500+rand.N(2500)) * time.Microsecond)
				cl.SetFeedDown(false)
				h.mu.Lock()
				h.downs = append(h.downs, outage{down: down, up: h.now()})
				h.mu.Unlock()
			}
		})
	}

	opsPerClient := max(1, run.Ops/clients)
	var cwg sync.WaitGroup
	for ci := range clients {
		cwg.Go(func() {
			for range opsPerClient {
				e.step(ctx, ci%run.Stores, ci)
			}
		})
	}
	cwg.Wait()
	close(done)
	owg.Wait()

	// Quiesce: no more faults; the caches must converge, then the watchers.
	f.on.Store(false)
	want := e.converge(t, cl, recs, hidden, strict, c)
	e.convergeWatchers(t, watchers, want, cl, strict, c)
	stopWatchers()
	wwg.Wait()

	// Final reads, recorded: through the backend, from the caches, and the
	// backend itself.
	for _, id := range e.ids {
		for si, s := range e.stores {
			for _, p := range []store.FetchPolicy{store.FetchNetworkOnly, store.FetchCacheFirst} {
				call := h.now()
				v, err := s.Get(ctx, id, store.WithFetchPolicy(p))
				ret := h.now()
				tok, ok := tokOf(v, err)
				if !ok {
					t.Errorf("final Get(%s, %v) on store %d, with no faults: %v", id, p, si, err)
					continue
				}
				h.read(rRead{store: si, client: finalClient, id: id, tok: tok, call: call, ret: ret,
					what: fmt.Sprintf("final s%d.Get[%v]", si, p), network: p == store.FetchNetworkOnly})
			}
		}
		call := h.now()
		tok, err := cl.Direct(ctx, id)
		if err != nil {
			t.Fatalf("reading %s from the backend: %v", id, err)
		}
		h.read(rRead{store: -1, client: finalClient, id: id, tok: tok, call: call, ret: h.now(), what: "backend.Get", network: true})
	}

	h.checkTokens(t, watchers)
	for _, msg := range e.errs {
		t.Error(msg)
	}

	lag, heardLag, changes := h.lags(recs, hidden)
	delta := lag + DeltaMargin
	ops, shifted := h.operations(int64(delta), false)
	c.Ops += int64(len(ops))
	c.Faults += f.injected.Load()
	c.Outages += int64(len(h.downs))
	c.Shifted += shifted
	c.FeedChanges += changes
	c.MaxLag = max(c.MaxLag, lag)
	c.MaxHeard = max(c.MaxHeard, heardLag)
	c.MaxDelta = max(c.MaxDelta, delta)
	verdict, report := Check(ops, name, 5*time.Second)
	if verdict == Illegal && !strict {
		// Known deviations (see TolerateEnv).
		tops, _ := h.operations(int64(delta), true)
		switch v, treport := Check(tops, name+"-tolerant", 5*time.Second); v {
		case Linearizable:
			c.ToleratedStale++
			t.Logf("history %s is linearizable under the replica model (Δ %v) only with the tolerances of known store deviations (it fails without %s):\n%s", name, delta, TolerateEnv, report)
			verdict = v
		case Undecided:
			verdict = v
		default:
			report = treport
		}
	}
	if (t.Failed() && verdict != Illegal) || verdict == Undecided {
		// Failed otherwise (convergence, a watcher): the history helps.
		path := filepath.Join(os.TempDir(), "nexus-"+name+".txt")
		if err := os.WriteFile(path, []byte(Listing(ops)), 0o644); err == nil {
			t.Logf("every operation of history %s (Δ %v), by ID and call: %s", name, delta, path)
		}
	}
	switch verdict {
	case Undecided:
		c.Undecided++
		t.Logf("porcupine could not decide history %s (%d operations) in time", name, len(ops))
	case Illegal:
		t.Errorf("history %s (%s; %d operations, %d faults, %d outages, Δ %v) is not linearizable under the replica model; %s",
			name, describeRun(run), len(ops), f.injected.Load(), len(h.downs), delta, report)
	}
}

// converge waits until every feed is live and every store's cache agrees
// with the backend (an entry holds the backend's value, or there is none),
// and returns the backend's values.
func (e *replicaEnv) converge(t *testing.T, cl Cluster, recs []*feedRecorder, hidden []bool, strict bool, c *Counts) map[string]int64 {
	ctx := context.Background()
	want := map[string]int64{}
	for by := time.Now().Add(cl.Live); ; {
		disagree := ""
		for i, r := range recs {
			if !hidden[i] && !r.live() {
				disagree = fmt.Sprintf("store %d's feed is not live", i)
			}
		}
		for _, id := range e.ids {
			tok, err := cl.Direct(ctx, id)
			if err != nil {
				t.Fatalf("reading %s from the backend: %v", id, err)
			}
			want[id] = tok
			for si, s := range e.stores {
				v, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchCacheOnly))
				got, ok := tokOf(v, err)
				if !ok || err != nil || got == tok {
					continue
				}
				msg := fmt.Sprintf("store %d's cache holds %s for %s, the backend %s", si, DescribeTok(got), id, DescribeTok(tok))
				if last, ok := e.h.lastWrite(si, id); ok && !strict && keepsSuperseded(last, got) {
					// Known: what the store's write left, superseded while
					// the write was in flight, stays (unverified) until a
					// read through the backend replaces it (see TolerateEnv).
					if _, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchNetworkOnly)); err == nil || errors.Is(err, store.ErrNotFound) {
						c.ToleratedCached++
						t.Logf("%s after its %s, until a read through the backend (a known store deviation, tolerated under %s)", msg, last.what, TolerateEnv)
					}
				}
				disagree = msg
			}
		}
		if disagree == "" {
			return want
		}
		if time.Now().After(by) {
			t.Errorf("the caches did not converge within %v after the workload: %s", cl.Live, disagree)
			return want
		}
		time.Sleep(time.Millisecond)
	}
}

// convergeWatchers checks that every watcher reaches the backend's value.
func (e *replicaEnv) convergeWatchers(t *testing.T, watchers []*watcher, want map[string]int64, cl Cluster, strict bool, c *Counts) {
	ctx := context.Background()
	// A watcher hears of the last change within a refresh once the caches
	// agree; strict mode waits longer before failing, the tolerant one
	// nudges it sooner (a stale watcher is common there).
	convergeBy := time.Now().Add(2 * time.Second)
	if !strict {
		convergeBy = time.Now().Add(100*time.Millisecond + 10*cl.Live/100)
	}
	for _, w := range watchers {
		wantTok := want[w.id]
		got, ok := w.await(wantTok, time.Until(convergeBy))
		if ok {
			continue
		}
		msg := fmt.Sprintf("the watcher of %s on store %d ended at %s while the backend holds %s", w.id, w.store, DescribeTok(got), DescribeTok(wantTok))
		if strict {
			t.Error(msg)
			continue
		}
		// Known: a remote change whose refresh was absorbed or failed
		// never reaches the watcher (see TolerateEnv). A read through the
		// backend refills the entry, and that must reach it.
		if _, err := e.stores[w.store].Get(ctx, w.id, store.WithFetchPolicy(store.FetchNetworkOnly)); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s; reading it through the backend: %v", msg, err)
		} else if got, ok := w.await(wantTok, time.Second); !ok {
			t.Errorf("%s, and still at %s after a read through the backend", msg, DescribeTok(got))
		} else {
			c.ToleratedWatchers++
			t.Logf("%s until a read through the backend (a known store deviation, tolerated under %s)", msg, TolerateEnv)
		}
	}
}

// checkTokens checks that watchers and reads never see a token no write
// tried, nor one that never reached the backend, except in flight on the
// store that tried it.
func (h *history) checkTokens(t *testing.T, watchers []*watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range watchers {
		for _, tok := range w.seen {
			if tok != 0 && !h.tried[w.id][tok] {
				t.Errorf("the watcher of %s on store %d saw %s, which no write of %s produced", w.id, w.store, DescribeTok(tok), w.id)
			}
		}
	}
	failed := map[int64]rWrite{}
	for _, w := range h.writes {
		if w.outcome == wNoEffect && w.tok != 0 {
			failed[w.tok] = w
		}
	}
	for _, r := range h.reads {
		if w, ok := failed[r.tok]; ok && (r.store != w.store || r.call > w.ret) {
			t.Errorf("%s(%s) on store %d at [%.1f, %.1f]µs returned %s, which %s on store %d at [%.1f, %.1f]µs failed to write (it never reached the backend)",
				r.what, r.id, r.store, us(r.call), us(r.ret), DescribeTok(r.tok), w.what, w.store, us(w.call), us(w.ret))
		}
	}
	for _, wt := range watchers {
		for _, tok := range wt.seen {
			if w, ok := failed[tok]; ok && wt.store != w.store {
				t.Errorf("the watcher of %s on store %d saw %s, which %s on store %d failed to write (it never reached the backend)", wt.id, wt.store, DescribeTok(tok), w.what, w.store)
			}
		}
	}
}

// lags returns the largest lag any store reported for a change, the
// longest a store took to hear of an outage, and the changes the stores
// applied; it records each outage as each store lived it (h.seen): when it
// heard of it (its first FeedError since the outage began) and when it
// trusted its cache again (its first FeedReset after that).
func (h *history) lags(recs []*feedRecorder, hidden []bool) (lag, heardLag time.Duration, changes int64) {
	end := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for si, r := range recs {
		evs, maxLag, n := r.snapshot()
		lag = max(lag, maxLag)
		changes += int64(n)
		if hidden[si] {
			continue
		}
		for _, o := range h.downs {
			so := storeOutage{store: si, down: o.down, heard: o.down, reset: end}
			i := slices.IndexFunc(evs, func(ev feedEvent) bool { return ev.kind == store.FeedError && ev.at >= o.down })
			if i >= 0 {
				so.heard = evs[i].at
				heardLag = max(heardLag, time.Duration(so.heard-o.down))
				if j := slices.IndexFunc(evs[i:], func(ev feedEvent) bool { return ev.kind == store.FeedReset }); j >= 0 {
					so.reset = evs[i+j].at
				}
			}
			h.seen = append(h.seen, so)
		}
	}
	return lag, heardLag, changes
}

func us(ns int64) float64 { return float64(ns) / 1e3 }

// operations turns the history into porcupine's operations under Δ (ns)
// and counts the reads whose call moved back. With tolerate, the known
// store deviations are part of the model (see TolerateEnv).
func (h *history) operations(delta int64, tolerate bool) ([]porcupine.Operation, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ops []porcupine.Operation
	add := func(client int, call, ret int64, in Input, out Output) {
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	}
	wids := make([]int32, len(h.writes))
	for i, w := range h.writes {
		wid := int32(i + 1)
		wids[i] = wid
		in := Input{ID: w.id, Tok: w.tok, What: w.what, WID: wid}
		if w.store >= 0 {
			in.What = fmt.Sprintf("s%d.%s", w.store, w.what)
		}
		switch {
		case w.outcome == wOK && !w.optimistic:
			in.Kind = Write
			add(w.client, w.call, w.ret, in, Output{})
			continue
		case w.outcome == wNoEffect && !w.optimistic:
			add(w.client, w.call, w.ret, Input{Kind: Note, ID: w.id, What: in.What + " = " + DescribeTok(w.tok) + " failed, no effect"}, Output{})
			continue
		}
		in.Kind = Begin
		add(w.client, w.call, w.ret, in, Output{})
		switch w.outcome {
		case wOK:
			in.Kind = Take
			add(w.client, w.call, w.ret, in, Output{})
			in.End = EndOK
		case wNoEffect:
			in.End = EndFailed
		default:
			in.End = EndMaybe
		}
		in.Kind = End
		add(w.client, w.call, w.ret, in, Output{})
	}
	for _, n := range h.notes {
		add(n.client, n.call, n.ret, Input{Kind: Note, ID: n.id, What: n.what}, Output{})
	}
	for _, o := range h.downs {
		add(-1, o.down, o.up, Input{Kind: Note, ID: globalID, What: "feed down"}, Output{})
	}
	var shifted int64
	for _, r := range h.reads {
		call, after := h.readCall(r, delta, wids, tolerate)
		in := Input{Kind: Read, ID: r.id, Miss: r.miss, What: r.what, Shift: r.call - call, After: after}
		if call < r.call {
			shifted++
		}
		add(r.client, call, r.ret, in, Output{Tok: r.tok})
	}
	return ops, shifted
}

// readCall is the call time the model holds a read to, and the write (by
// WID) that must come before it (see the top of this file). Callers hold
// h.mu.
func (h *history) readCall(r rRead, delta int64, wids []int32, tolerate bool) (int64, int32) {
	if r.store < 0 {
		return r.call, 0 // the backend itself
	}
	cached := !r.network || (tolerate && r.joined) // the latter: a known deviation (see TolerateEnv)
	lo := r.call - delta
	var own *rWrite  // the store's last acknowledged write of the ID before the read
	var last *rWrite // its last write of the ID before the read, not rolled back
	var after int32
	for i := range h.writes {
		w := &h.writes[i]
		if w.store != r.store || w.id != r.id {
			continue
		}
		if w.outcome == wOK && w.ret < r.call && (own == nil || w.ret > own.ret) {
			own, after = w, wids[i]
		}
		if w.ret < r.call && !undone(*w) && (last == nil || w.ret > last.ret) {
			last = w
		}
		if !w.optimistic && w.call < r.ret && w.ret > r.call {
			// A network-first write of the ID holds the store's entry.
			cached = true
			lo = min(lo, w.call-delta)
		}
	}
	if !cached {
		return r.call, 0 // linearizable: the real call is after the store's own writes
	}
	for _, o := range h.seen {
		// Changes lost in an outage: before the store heard of it, any
		// read its cache answered; until the reset, a network-first read
		// that fell back to the cache.
		end := o.heard
		if r.fallback || r.staleOK {
			// Until the reset, every entry reads as stale: a policy that
			// serves stale entries may answer from the cache
			// (docs/store.md, "Many replicas").
			end = o.reset
		}
		if o.store == r.store && o.down < r.ret && r.call <= end {
			lo = min(lo, o.down-delta)
		}
	}
	if tolerate && last != nil && keepsSuperseded(*last, r.tok) {
		if last.outcome == wOK {
			lo = min(lo, last.call) // its own value, since it took effect
		} else {
			lo = min(lo, last.call-delta) // the value it held when the write began
		}
	}
	call := min(r.call, max(lo, h.opened))
	if own == nil || call >= own.ret {
		after = 0 // real time orders them already
	}
	return call, after
}

// step runs one random operation of client on store si.
func (e *replicaEnv) step(ctx context.Context, si, client int) {
	h := e.h
	s := e.stores[si]
	id := pick(e.ids...)
	r := rand.N(100)
	switch {
	case r < 40: // Get
		p := pick(allFetchPolicies...)
		pctx, pr := withProbe(ctx)
		call := h.now()
		v, err := s.Get(pctx, id, store.WithFetchPolicy(p))
		ret := h.now()
		if tok, ok := tokOf(v, err); ok {
			if err == nil && v.ID != id {
				e.surprise("Get(%s) on store %d returned the item of %s", id, si, v.ID)
			}
			network, fallback := answeredByBackend(p, pr)
			h.read(rRead{store: si, client: client, id: id, tok: tok, call: call, ret: ret,
				what: fmt.Sprintf("s%d.Get[%v]", si, p), network: network, fallback: fallback, miss: p == store.FetchCacheOnly, staleOK: servesStale(p),
				joined: network && pr.joined()})
		}
	case r < 62: // Save
		tok := nextTok()
		h.try(id, tok)
		p := pick(store.WriteCacheAndNetwork, store.WriteNetworkFirst)
		what := "Save[" + p.String() + "]"
		call := h.now()
		v, err := s.Save(ctx, Item{ID: id, Tok: tok}, store.WithWritePolicy(p))
		ret := h.now()
		if err == nil && (v.Tok != tok || v.ID != id) {
			e.surprise("%s(%s, t%d) on store %d returned %+v", what, id, tok, si, v)
		}
		h.write(rWrite{store: si, client: client, id: id, tok: tok, call: call, ret: ret,
			optimistic: p == store.WriteCacheAndNetwork, outcome: outcomeOf(err), what: what})
	case r < 70: // Delete
		p := pick(store.WriteCacheAndNetwork, store.WriteNetworkFirst)
		what := "Delete[" + p.String() + "]"
		call := h.now()
		err := s.Delete(ctx, id, store.WithWritePolicy(p))
		ret := h.now()
		h.write(rWrite{store: si, client: client, id: id, call: call, ret: ret,
			optimistic: p == store.WriteCacheAndNetwork, outcome: outcomeOf(err), what: what})
	case r < 78: // GetAll, projected on every ID
		p := pick(allFetchPolicies...)
		pctx, pr := withProbe(ctx)
		call := h.now()
		items, err := s.GetAll(pctx, store.WithFetchPolicy(p))
		ret := h.now()
		if err != nil {
			return
		}
		got := map[string]int64{}
		for _, it := range items {
			if _, dup := got[it.ID]; dup {
				e.surprise("GetAll[%v] on store %d listed %s twice", p, si, it.ID)
			}
			got[it.ID] = it.Tok
		}
		network, fallback := answeredByBackend(p, pr)
		for _, id := range e.ids {
			h.read(rRead{store: si, client: client, id: id, tok: got[id], call: call, ret: ret,
				what: fmt.Sprintf("s%d.GetAll[%v]", si, p), network: network, fallback: fallback, miss: p == store.FetchCacheOnly,
				staleOK: p == store.FetchCacheOnly}) // the others need the complete listing, which an outage ends
		}
	case r < 84: // Watch: its first value is a read the cache may answer
		p := pick(allFetchPolicies...)
		wctx, cancel := context.WithCancel(ctx)
		call := h.now()
		for ch, err := range s.Watch(wctx, id, store.WithFetchPolicy(p)) {
			ret := h.now()
			if err == nil {
				tok := ch.Value.Tok
				if ch.Deleted {
					tok = 0
				}
				h.read(rRead{store: si, client: client, id: id, tok: tok, call: call, ret: ret,
					what: fmt.Sprintf("s%d.Watch[%v] first", si, p), fallback: p == store.FetchNetworkFirst, miss: p == store.FetchCacheOnly, staleOK: servesStale(p)})
			}
			break
		}
		cancel()
	case r < 96: // Invalidate
		call := h.now()
		s.Invalidate(id)
		h.note(rNote{client: client, id: id, call: call, ret: h.now(), what: fmt.Sprintf("s%d.Invalidate(%s)", si, id)})
	default:
		call := h.now()
		s.InvalidateAll()
		h.note(rNote{client: client, id: globalID, call: call, ret: h.now(), what: fmt.Sprintf("s%d.InvalidateAll", si)})
	}
}

func outcomeOf(err error) wOutcome {
	switch {
	case err == nil:
		return wOK
	case errors.Is(err, errInjected):
		return wNoEffect
	}
	return wMaybe
}

// watcher watches one ID on one store for the whole history.
type watcher struct {
	store   int
	id      string
	client  int
	mu      sync.Mutex
	last    int64
	has     bool
	seen    []int64
	changed chan struct{}
}

func (w *watcher) run(ctx context.Context, e *replicaEnv) {
	s := e.stores[w.store]
	for ctx.Err() == nil {
		p := pick(allFetchPolicies...)
		call := e.h.now()
		first := true
		for ch, err := range s.Watch(ctx, w.id, store.WithFetchPolicy(p)) {
			if err != nil {
				break // a failed first read (injected fault): watch again
			}
			tok := ch.Value.Tok
			if ch.Deleted {
				tok = 0
			}
			if first {
				e.h.read(rRead{store: w.store, client: w.client, id: w.id, tok: tok, call: call, ret: e.h.now(),
					what: fmt.Sprintf("s%d.Watch[%v] first", w.store, p), fallback: p == store.FetchNetworkFirst, miss: p == store.FetchCacheOnly, staleOK: servesStale(p)})
				first = false
			}
			w.mu.Lock()
			w.last, w.has = tok, true
			w.seen = append(w.seen, tok)
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}
}

// await waits until the watcher's latest value is want, or d passes.
func (w *watcher) await(want int64, d time.Duration) (int64, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		w.mu.Lock()
		last, has := w.last, w.has
		w.mu.Unlock()
		if has && last == want {
			return last, true
		}
		select {
		case <-w.changed:
		case <-timer.C:
			return last, false
		}
	}
}

// describeRun names a configuration's knobs, for logs.
func describeRun(r ReplicaRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d stores, %d IDs, %d clients each, %d ops, faults %.0f%%, latency ≤%v", r.Stores, r.IDs, r.ClientsPerStore, r.Ops, 100*r.FaultRate, r.Latency)
	if r.TTL > 0 {
		fmt.Fprintf(&b, ", TTL %v", r.TTL)
	}
	if r.NotFoundTTL > 0 {
		fmt.Fprintf(&b, ", not-found TTL %v", r.NotFoundTTL)
	}
	if r.MaxSize > 0 {
		fmt.Fprintf(&b, ", max size %d", r.MaxSize)
	}
	if r.Outages {
		b.WriteString(", feed outages")
	}
	return b.String()
}

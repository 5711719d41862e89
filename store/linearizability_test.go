package store_test

// The linearizability checker: several clients run random operations on a
// few IDs against one store, with injected latency and faults; every call is
// recorded with its real invocation and response times and porcupine checks
// the history against the model in internal/lincheck (model.go). After the
// workload the faults stop, a final Sync runs, and every watcher must have
// converged on what the store holds.
//
// A failing history is written as porcupine's HTML visualization to
// os.TempDir()/nexus-linearizability-<run>-<n>.html (the path is in the
// failure message). NEXUS_CHECK_LONG=10m runs it (with the other checkers)
// for ten minutes instead of the default budget.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/nexusstore/nexus/internal/lincheck"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/sqlite"
)

// linRun is one configuration of the workload.
type linRun struct {
	name      string
	policy    store.WritePolicy // Config.WritePolicy: the default write policy, and the transactions'
	mixed     bool              // every write picks its policy (WithWritePolicy)
	fetch     store.FetchPolicy // Config.FetchPolicy; reads also pick their own
	ttl       time.Duration
	notFound  time.Duration // Config.NotFoundTTL: negative caching
	maxSize   int
	faultRate float64
	latency   time.Duration
	// cacheOnly writes only with WriteCacheOnly and never invalidates: a
	// cache-only write is the logical value only until its entry goes.
	cacheOnly bool
	sqlite    bool
	ids       int
}

var linRuns = []linRun{
	{name: "cache_and_network", policy: store.WriteCacheAndNetwork, faultRate: 0.1, latency: 200 * time.Microsecond, ids: 4},
	{name: "network_first", policy: store.WriteNetworkFirst, notFound: time.Hour, faultRate: 0.1, latency: 200 * time.Microsecond, ids: 4},
	{name: "cache_first", policy: store.WriteCacheFirst, faultRate: 0.15, latency: 200 * time.Microsecond, ids: 4},
	{name: "mixed", policy: store.WriteCacheAndNetwork, mixed: true, notFound: 2 * time.Millisecond, faultRate: 0.1, latency: 200 * time.Microsecond, ids: 4},
	{name: "mixed_ttl_lru", policy: store.WriteCacheFirst, mixed: true, ttl: 2 * time.Millisecond, maxSize: 3, faultRate: 0.1, latency: 100 * time.Microsecond, ids: 4},
	{name: "mixed_swr", policy: store.WriteNetworkFirst, mixed: true, fetch: store.FetchStaleWhileRevalidate, ttl: time.Millisecond, faultRate: 0.05, latency: 200 * time.Microsecond, ids: 4},
	{name: "cache_only", policy: store.WriteCacheOnly, cacheOnly: true, faultRate: 0.1, latency: 100 * time.Microsecond, ids: 4},
	{name: "sqlite_mixed", policy: store.WriteCacheAndNetwork, mixed: true, sqlite: true, faultRate: 0.1, ids: 4},
}

var allFetchPolicies = []store.FetchPolicy{
	store.FetchCacheFirst, store.FetchNetworkFirst, store.FetchCacheAndNetwork,
	store.FetchCacheOnly, store.FetchNetworkOnly, store.FetchStaleWhileRevalidate,
}

// cacheOnlyFetchPolicies are the reads of the cache-only run: those that
// answer from the cache when it holds the entry and never read the backend
// then (a backend read, a refresh included, replaces a cache-only value;
// docs/store.md, consistency model).
var cacheOnlyFetchPolicies = []store.FetchPolicy{store.FetchCacheFirst, store.FetchCacheOnly}

// linCounts sums what the checker did.
type linCounts struct {
	histories, ops, faults int64
	unknown                int64 // histories porcupine could not decide in time
}

func TestLinearizability(t *testing.T) {
	budget := checkBudget(t, 24*time.Second, 0.5)
	deadline := time.Now().Add(budget)
	var c linCounts
	defer func() { // also when a history stops the test
		t.Logf("linearizability: %d histories, %d operations checked, %d faults injected, %d undecided (budget %v)",
			c.histories, c.ops, c.faults, c.unknown, budget)
	}()
	// Every configuration runs once; then they take turns until the budget
	// is spent or one fails.
	for round := 0; round == 0 || (time.Now().Before(deadline) && !t.Failed()); round++ {
		for _, run := range linRuns {
			if round > 0 && (!time.Now().Before(deadline) || t.Failed()) {
				break
			}
			n := int(c.histories)
			c.histories++
			t.Run(run.name, func(t *testing.T) {
				checkLinHistory(t, run, n, &c)
			})
		}
	}
}

// linHistory records a history. Safe for concurrent use.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	wid   atomic.Int32
	// written lists, per ID, every token a write tried (watchers must
	// never see another).
	written map[string]map[int64]bool
}

func newLinHistory() *linHistory {
	return &linHistory{start: time.Now(), written: map[string]map[int64]bool{}}
}

// now is the monotonic time since the history started, in nanoseconds.
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *linHistory) add(client int, call, ret int64, in linIn, out linOut) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

func (h *linHistory) read(client int, call, ret int64, id string, tok int64, miss bool, what string) {
	h.add(client, call, ret, linIn{Kind: linRead, ID: id, Miss: miss, What: what}, linOut{Tok: tok})
}

func (h *linHistory) note(client int, call, ret int64, id, what string) {
	h.add(client, call, ret, linIn{Kind: linNote, ID: id, What: what}, linOut{})
}

func (h *linHistory) tried(id string, tok int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.written[id] == nil {
		h.written[id] = map[int64]bool{}
	}
	h.written[id][tok] = true
}

// outcome is what became of one write.
type outcome uint8

const (
	wroteOK        outcome = iota // acknowledged
	failedNoEffect                // failed before anything was visible (network-first)
	failedUndone                  // failed; visible while in flight, then undone
	failedMaybe                   // failed; may have taken effect
)

// isAtomic reports whether a write under p is one step under the cache's
// lock (write-behind, cache-only), rather than a cache write and a backend
// write.
func isAtomic(p store.WritePolicy) bool {
	return p == store.WriteCacheFirst || p == store.WriteCacheOnly
}

// write records a write of tok (0: a delete) to id as the steps of the
// model (see internal/lincheck/model.go); atomicWrite is set for a write that is one
// step under any model (write-behind, cache-only).
func (h *linHistory) write(client int, call, ret int64, id string, tok int64, atomicWrite bool, o outcome, what string) {
	in := linIn{ID: id, Tok: tok, What: what}
	switch {
	case o == wroteOK && (atomicWrite || atomicWrites):
		in.Kind = linWrite
		h.add(client, call, ret, in, linOut{})
		return
	case o == failedNoEffect:
		h.note(client, call, ret, id, fmt.Sprintf("%s(%s) = %s failed, no effect", what, id, describeTok(tok)))
		return
	}
	in.WID = h.wid.Add(1)
	in.Kind = linBegin
	in.End = map[outcome]endMode{wroteOK: endOK, failedUndone: endFailed, failedMaybe: endMaybe}[o]
	if o == wroteOK {
		in.Kind = linCommit
	}
	h.add(client, call, ret, in, linOut{})
	in.Kind = linEnd
	h.add(client, call, ret, in, linOut{})
}

// globalID is the partition of the notes that concern every ID (Sync,
// InvalidateAll, InvalidateTags): kept apart so that they cost the checker
// nothing and still show in the visualization.
const globalID = "*"

func (h *linHistory) global(client int, call, ret int64, what string) {
	h.note(client, call, ret, globalID, what)
}

func tokOf(it ckItem, err error) (int64, bool) {
	switch {
	case err == nil:
		return it.Tok, true
	case errors.Is(err, store.ErrNotFound):
		return 0, true
	}
	return 0, false
}

// linEnv is one history in progress.
type linEnv struct {
	t       *testing.T
	run     linRun
	s       *store.Store[ckItem, string]
	h       *linHistory
	ids     []string
	tags    []string
	errsMu  sync.Mutex
	errs    []string // checker-side surprises, reported after the run
	counter *syncCounter
}

func (e *linEnv) surprise(format string, args ...any) {
	e.errsMu.Lock()
	defer e.errsMu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// writePolicy picks the policy of one write: the option to pass (nil for
// the store's default) and the policy in effect.
func (e *linEnv) writePolicy() (store.WritePolicy, []store.WriteOption) {
	var opts []store.WriteOption
	p := e.run.policy
	if e.run.mixed {
		p = pick(store.WriteCacheAndNetwork, store.WriteNetworkFirst, store.WriteCacheFirst)
		opts = append(opts, store.WithWritePolicy(p))
	}
	if !e.run.cacheOnly && chance(0.3) {
		opts = append(opts, store.WithTags(pick(e.tags...)))
	}
	return p, opts
}

// failed classifies a failed single write under policy p.
func (e *linEnv) failed(p store.WritePolicy, what string, err error) outcome {
	switch p {
	case store.WriteNetworkFirst:
		return failedNoEffect
	case store.WriteCacheAndNetwork:
		return failedUndone
	}
	e.surprise("%s failed under %v, which never waits for the backend: %v", what, p, err)
	return failedMaybe
}

func (e *linEnv) fetchPolicy() store.FetchPolicy {
	if e.run.cacheOnly {
		return pick(cacheOnlyFetchPolicies...)
	}
	return pick(allFetchPolicies...)
}

func checkLinHistory(t *testing.T, run linRun, n int, c *linCounts) {
	f := newFaults(run.faultRate, run.latency)
	var backend store.Backend[ckItem, string]
	var direct func(ctx context.Context, id string) (ckItem, error) // the backend, without faults
	if run.sqlite {
		sb, err := sqlite.Open[ckItem, string](filepath.Join(t.TempDir(), "lin.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close() })
		stamp := &stampBackend{VersionedBackend: sb, hook: f.hook}
		backend = &txStampBackend{stampBackend: stamp, txb: sb}
		direct = sb.Get
	} else {
		mb := memory.New[ckItem, string](memory.WithFault(f.hook))
		backend = &stampBackend{VersionedBackend: mb}
		direct = func(ctx context.Context, id string) (ckItem, error) {
			on := f.on.Swap(false)
			defer f.on.Store(on)
			return mb.Get(ctx, id)
		}
	}
	counter := &syncCounter{}
	s, closeStore := openChecked(t, backend, store.Config[ckItem, string]{
		IDOf: ckID, WritePolicy: run.policy, FetchPolicy: run.fetch,
		CacheTTL: run.ttl, NotFoundTTL: run.notFound, MaxCacheSize: run.maxSize, RefreshWorkers: 2,
		Retry:           store.RetryConfig{MaxAttempts: 2, InitialDelay: 20 * time.Microsecond, MaxDelay: 100 * time.Microsecond, Jitter: store.NoJitter},
		MetricsReporter: counter,
	})

	e := &linEnv{t: t, run: run, s: s, h: newLinHistory(), tags: []string{"red", "blue"}, counter: counter}
	for i := range run.ids {
		e.ids = append(e.ids, fmt.Sprintf("k%d", i))
	}
	ctx := context.Background()
	clients := 6 + rand.N(3)
	opsPerClient := (160 + rand.N(120)) / clients

	// Some IDs exist before the store starts, written straight to the
	// backend.
	if !run.cacheOnly {
		on := f.on.Swap(false)
		for _, id := range e.ids {
			if chance(0.5) {
				tok := nextTok()
				call := e.h.now()
				if _, err := backend.Save(ctx, id, ckItem{ID: id, Tok: tok}); err != nil {
					t.Fatal(err)
				}
				e.h.tried(id, tok)
				e.h.write(clients, call, e.h.now(), id, tok, true, wroteOK, "seed")
			}
		}
		f.on.Store(on)
	}

	// One long-lived watcher per ID.
	wctx, stopWatchers := context.WithCancel(ctx)
	watchers := make([]*linWatcher, len(e.ids))
	var wwg sync.WaitGroup
	for i, id := range e.ids {
		w := &linWatcher{id: id, client: clients + 1 + i, changed: make(chan struct{}, 1)}
		watchers[i] = w
		wwg.Go(func() { w.run(wctx, e) })
	}

	var cwg sync.WaitGroup
	for ci := range clients {
		cwg.Go(func() {
			for range opsPerClient {
				e.step(ctx, ci)
			}
		})
	}
	cwg.Wait()

	// Quiesce: no more faults, push what is pending, then every watcher
	// must reach what the store holds.
	f.on.Store(false)
	final := clients
	call := e.h.now()
	if err := s.Sync(ctx); err != nil {
		t.Errorf("the final Sync, with no faults, failed: %v", err)
	}
	e.h.global(final, call, e.h.now(), "final Sync")
	held := map[string]store.Change[ckItem]{}
	for _, id := range e.ids {
		call := e.h.now()
		v, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchCacheFirst))
		ret := e.h.now()
		tok, ok := tokOf(v, err)
		if !ok {
			t.Errorf("final Get(%s), with no faults: %v", id, err)
			continue
		}
		e.h.read(final, call, ret, id, tok, false, "final Get[cache_first]")
		held[id] = store.Change[ckItem]{Value: v, Deleted: tok == 0}
	}
	convergeBy := time.Now().Add(time.Second)
	for _, w := range watchers {
		if want, ok := held[w.id]; ok {
			if got, ok := w.await(want, time.Until(convergeBy)); !ok {
				t.Errorf("the watcher of %s ended at %s while the store holds %s (a change the store made was not shown to watchers)",
					w.id, describeChange(got), describeChange(want))
			}
		}
	}
	stopWatchers()
	wwg.Wait()
	for _, w := range watchers {
		for _, tok := range w.seen {
			if tok != 0 && !e.h.written[w.id][tok] {
				t.Errorf("the watcher of %s saw %s, which no write of %s produced", w.id, describeTok(tok), w.id)
			}
		}
	}
	for _, id := range e.ids {
		if run.cacheOnly {
			break // the backend never saw a cache-only write
		}
		call := e.h.now()
		v, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchNetworkOnly))
		ret := e.h.now()
		if tok, ok := tokOf(v, err); ok {
			e.h.read(final, call, ret, id, tok, false, "final Get[network_only]")
		} else {
			t.Errorf("final Get(%s, network_only), with no faults: %v", id, err)
		}
		call = e.h.now()
		v, err = direct(ctx, id)
		ret = e.h.now()
		if tok, ok := tokOf(v, err); ok {
			e.h.read(final, call, ret, id, tok, false, "backend.Get")
		} else {
			t.Errorf("reading %s from the backend: %v", id, err)
		}
	}
	if p := s.PendingChanges(); len(p) > 0 {
		t.Errorf("after the final Sync, %d changes are still pending (first: %s)", len(p), p[0].ID)
	}
	if n := counter.conflicts.Load(); n > 0 {
		t.Errorf("Sync resolved %d conflicts, with no other writer of the backend", n)
	}
	if err := closeStore(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, msg := range e.errs {
		t.Error(msg)
	}

	c.ops += int64(len(e.h.ops))
	c.faults += f.injected.Load()
	// The plain check stops at the first illegal ID; only a failing
	// history pays for the verbose one, which keeps the partial
	// linearizations the visualization and the explanation need.
	switch verdict, report := lincheck.Check(e.h.ops, fmt.Sprintf("linearizability-%s-%d", run.name, n), 5*time.Second); verdict {
	case lincheck.Undecided:
		c.unknown++
		t.Logf("porcupine could not decide history %d (%d operations) in time", n, len(e.h.ops))
	case lincheck.Illegal:
		t.Errorf("history %d (%d operations, %d clients, %d faults) is not linearizable; %s",
			n, len(e.h.ops), clients, f.injected.Load(), report)
	}
}

func describeChange(c store.Change[ckItem]) string {
	if c.Deleted {
		return "absent"
	}
	return fmt.Sprintf("%s (srv %d)", describeTok(c.Value.Tok), c.Value.Srv)
}

// step runs one random operation.
func (e *linEnv) step(ctx context.Context, client int) {
	h := e.h
	id := pick(e.ids...)
	r := rand.N(100)
	switch {
	case r < 28: // Get
		p := e.fetchPolicy()
		call := h.now()
		v, err := e.s.Get(ctx, id, store.WithFetchPolicy(p))
		ret := h.now()
		if tok, ok := tokOf(v, err); ok {
			if err == nil && v.ID != id {
				e.surprise("Get(%s) returned the item of %s", id, v.ID)
			}
			h.read(client, call, ret, id, tok, p == store.FetchCacheOnly, "Get["+p.String()+"]")
		}
	case r < 48: // Save
		tok := nextTok()
		h.tried(id, tok)
		p, opts := e.writePolicy()
		what := "Save[" + p.String() + "]"
		call := h.now()
		v, err := e.s.Save(ctx, ckItem{ID: id, Tok: tok}, opts...)
		ret := h.now()
		o := wroteOK
		if err != nil {
			o = e.failed(p, what, err)
		} else if v.Tok != tok || v.ID != id {
			e.surprise("%s(%s, t%d) returned %+v", what, id, tok, v)
		}
		h.write(client, call, ret, id, tok, isAtomic(p), o, what)
	case r < 55: // Delete
		p, opts := e.writePolicy()
		what := "Delete[" + p.String() + "]"
		call := h.now()
		err := e.s.Delete(ctx, id, opts...)
		ret := h.now()
		o := wroteOK
		if err != nil {
			o = e.failed(p, what, err)
		}
		h.write(client, call, ret, id, 0, isAtomic(p), o, what)
	case r < 60: // SaveAll, sometimes naming an ID twice
		p, opts := e.writePolicy()
		what := "SaveAll[" + p.String() + "]"
		items := make([]ckItem, 2+rand.N(2))
		for i := range items {
			items[i] = ckItem{ID: pick(e.ids...), Tok: nextTok()}
			h.tried(items[i].ID, items[i].Tok)
		}
		call := h.now()
		saved, err := e.s.SaveAll(ctx, items, opts...)
		ret := h.now()
		for i, it := range items {
			o := wroteOK
			if err != nil && i >= len(saved) {
				o = e.failed(p, what, err)
			}
			h.write(client, call, ret, it.ID, it.Tok, isAtomic(p), o, what)
		}
	case r < 63: // DeleteAll
		p, opts := e.writePolicy()
		what := "DeleteAll[" + p.String() + "]"
		ids := []string{pick(e.ids...), pick(e.ids...)}
		call := h.now()
		_, err := e.s.DeleteAll(ctx, ids, opts...)
		ret := h.now()
		for _, id := range ids {
			o := wroteOK
			if err != nil {
				// It stops at the first failure, and its count does not
				// say where.
				o = failedMaybe
				if isAtomic(p) {
					e.failed(p, what, err)
				}
			}
			h.write(client, call, ret, id, 0, isAtomic(p), o, what)
		}
	case r < 70: // GetAll, projected on every ID
		if e.run.cacheOnly {
			return // the listing comes from the backend, which cache-only writes never reach
		}
		p := e.fetchPolicy()
		call := h.now()
		items, err := e.s.GetAll(ctx, store.WithFetchPolicy(p))
		ret := h.now()
		if err != nil {
			return
		}
		got := map[string]int64{}
		for _, it := range items {
			if _, dup := got[it.ID]; dup {
				e.surprise("GetAll[%v] listed %s twice", p, it.ID)
			}
			got[it.ID] = it.Tok
		}
		for _, id := range e.ids {
			h.read(client, call, ret, id, got[id], p == store.FetchCacheOnly, "GetAll["+p.String()+"]")
		}
	case r < 74: // Watch: its first value is a read
		p := e.fetchPolicy()
		wctx, cancel := context.WithCancel(ctx)
		call := h.now()
		for ch, err := range e.s.Watch(wctx, id, store.WithFetchPolicy(p)) {
			ret := h.now()
			if err == nil {
				tok := ch.Value.Tok
				if ch.Deleted {
					tok = 0
				}
				h.read(client, call, ret, id, tok, p == store.FetchCacheOnly, "Watch["+p.String()+"] first")
			}
			break
		}
		cancel()
	case r < 80: // invalidations
		if e.run.cacheOnly {
			return
		}
		call := h.now()
		switch rand.N(4) {
		case 0, 1:
			e.s.Invalidate(id)
			h.note(client, call, h.now(), id, "Invalidate("+id+")")
		case 2:
			tag := pick(e.tags...)
			e.s.InvalidateTags(tag)
			h.global(client, call, h.now(), "InvalidateTags("+tag+")")
		default:
			e.s.InvalidateAll()
			h.global(client, call, h.now(), "InvalidateAll")
		}
	case r < 88: // Transaction
		e.transaction(ctx, client)
	default: // Sync
		call := h.now()
		err := e.s.Sync(ctx)
		ret := h.now()
		var serr *store.SyncError[string]
		if err != nil && !errors.As(err, &serr) {
			e.surprise("Sync: %v", err)
		}
		h.global(client, call, ret, "Sync")
	}
}

// transaction runs a Transaction of one to three operations on random IDs;
// reads of committed state inside it are reads of the history.
func (e *linEnv) transaction(ctx context.Context, client int) {
	h := e.h
	type txw struct {
		id  string
		tok int64
	}
	var writes []txw // the last write per ID, in the order IDs were first written
	p := e.run.policy
	what := "Tx[" + p.String() + "]"
	call := h.now()
	err := e.s.Transaction(ctx, func(tx *store.Tx[ckItem, string]) error {
		for range 1 + rand.N(3) {
			id := pick(e.ids...)
			i := slices.IndexFunc(writes, func(w txw) bool { return w.id == id })
			switch rand.N(3) {
			case 0:
				rcall := h.now()
				v, err := tx.Get(ctx, id)
				rret := h.now()
				tok, ok := tokOf(v, err)
				switch {
				case !ok:
				case i >= 0:
					if tok != writes[i].tok {
						e.surprise("%s: tx.Get(%s) after its own write of %s returned %s", what, id, describeTok(writes[i].tok), describeTok(tok))
					}
				default:
					h.read(client, rcall, rret, id, tok, false, "tx.Get")
				}
			case 1:
				tok := nextTok()
				h.tried(id, tok)
				if _, err := tx.Save(ctx, ckItem{ID: id, Tok: tok}); err != nil {
					return err
				}
				if i >= 0 {
					writes[i].tok = tok
				} else {
					writes = append(writes, txw{id, tok})
				}
			default:
				if err := tx.Delete(ctx, id); err != nil {
					return err
				}
				if i >= 0 {
					writes[i].tok = 0
				} else {
					writes = append(writes, txw{id, 0})
				}
			}
		}
		return nil
	})
	ret := h.now()
	o := wroteOK
	if err != nil {
		var te *store.TxError
		switch {
		case isAtomic(p):
			e.surprise("%s failed: %v", what, err)
			o = failedMaybe
		case errors.As(err, &te) && te.RolledBack:
			o = failedUndone
		default:
			o = failedMaybe
		}
	}
	for _, w := range writes {
		h.write(client, call, ret, w.id, w.tok, isAtomic(p), o, what)
	}
}

// linWatcher watches one ID for the whole history.
type linWatcher struct {
	id      string
	client  int
	mu      sync.Mutex
	last    store.Change[ckItem]
	has     bool
	seen    []int64
	changed chan struct{}
}

func (w *linWatcher) run(ctx context.Context, e *linEnv) {
	for ctx.Err() == nil {
		p := e.fetchPolicy()
		call := e.h.now()
		first := true
		for ch, err := range e.s.Watch(ctx, w.id, store.WithFetchPolicy(p)) {
			if err != nil {
				break // a failed first read (injected fault): watch again
			}
			tok := ch.Value.Tok
			if ch.Deleted {
				tok = 0
			}
			if first {
				e.h.read(w.client, call, e.h.now(), w.id, tok, p == store.FetchCacheOnly, "Watch["+p.String()+"] first")
				first = false
			}
			w.mu.Lock()
			w.last, w.has = ch, true
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
func (w *linWatcher) await(want store.Change[ckItem], d time.Duration) (store.Change[ckItem], bool) {
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

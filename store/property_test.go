package store_test

// The stateful property test: rapid drives one store (over the memory
// backend, one call at a time) with random actions and checks it against a
// sequential model after every step; on a failure it shrinks the sequence
// to a minimal one. Backend faults follow a schedule the model knows (let k
// calls pass, then fail n; or the backend down), so the model predicts the
// outcome of every write and the number of backend calls it makes.
//
// The model: the backend's items in its order (first save; a re-save keeps
// the place; a delete then save moves to the end), the write-behind queue
// (per ID the latest change, ordered by when it was last made), and the
// entries written with WriteCacheOnly (on their own IDs, L1 and L2, which
// the backend never holds: a backend read finds nothing to replace a
// cache-only value with). What a read must return is the pending change if
// there is one, else the cache-only entry (for the policies that answer from
// the cache), else the backend's item.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

var (
	propIDs      = []string{"a", "b", "c", "d"}
	propLocalIDs = []string{"L1", "L2"}
	// localTag is on every cache-only entry; InvalidateTags(localTag)
	// drops them all.
	localTag = "local"
)

var (
	fetchNames = map[string]store.FetchPolicy{}
	writeNames = map[string]store.WritePolicy{}
)

func init() {
	for _, p := range allFetchPolicies {
		fetchNames[p.String()] = p
	}
	for _, p := range []store.WritePolicy{store.WriteCacheAndNetwork, store.WriteNetworkFirst, store.WriteCacheFirst, store.WriteCacheOnly} {
		writeNames[p.String()] = p
	}
}

type propCounts struct {
	cases, actions, faults atomic.Int64
}

func TestStoreProperties(t *testing.T) {
	budget := checkBudget(t, 8*time.Second, 0.25)
	deadline := time.Now().Add(budget)
	var c propCounts
	defer func() { // also when rapid stops the test
		t.Logf("properties: %d sequences, %d actions checked, %d faults injected (budget %v)",
			c.cases.Load(), c.actions.Load(), c.faults.Load(), budget)
	}()
	// rapid.Check runs -rapid.checks cases (100 by default); repeat it
	// until the budget is spent.
	for round := 0; round == 0 || (time.Now().Before(deadline) && !t.Failed()); round++ {
		rapid.Check(t, func(rt *rapid.T) { newPropMachine(rt, &c).run(rt) })
	}
}

// propSchedule is the fault schedule: the next skip calls pass, the fail
// after them fail. It is consulted by memory.WithFault, which the backend
// runs only while it is not down (SetUnavailable).
type propSchedule struct {
	mu         sync.Mutex
	skip, fail int
	off        bool // reading the backend for a check
}

func (s *propSchedule) hook(context.Context, memory.Op, any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.off:
		return nil
	case s.skip > 0:
		s.skip--
		return nil
	case s.fail > 0:
		s.fail--
		return fmt.Errorf("%w: checker: scheduled fault", store.ErrUnavailable)
	}
	return nil
}

func (s *propSchedule) state() (skip, fail int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skip, s.fail
}

func (s *propSchedule) set(skip, fail int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip, s.fail = skip, fail
}

// conflictCounter is a MetricsReporter that counts resolved conflicts.
type conflictCounter struct{ conflicts atomic.Int64 }

func (r *conflictCounter) ReportOperation(context.Context, store.OperationMetric) {}
func (r *conflictCounter) ReportCacheEvent(context.Context, store.CacheMetric)    {}
func (r *conflictCounter) ReportError(context.Context, store.ErrorMetric)         {}
func (r *conflictCounter) Flush(context.Context) error                            { return nil }
func (r *conflictCounter) ReportSyncEvent(_ context.Context, m store.SyncMetric) {
	if m.Event == store.SyncConflictResolved {
		r.conflicts.Add(1)
	}
}

type propItem struct {
	id  string
	tok int64
}

type propChange struct {
	id      string
	tok     int64
	deleted bool
}

// propModel is the sequential model.
type propModel struct {
	backend []propItem   // in the backend's order
	pending []propChange // in the order each ID last changed
	local   map[string]int64
	down    bool
	// skip and fail mirror the fault schedule.
	skip, fail int
	calls      int // backend calls the last action should have made
}

// call simulates one backend call against the schedule: whether it works.
func (m *propModel) call() bool {
	m.calls++
	switch {
	case m.down:
		return false
	case m.skip > 0:
		m.skip--
		return true
	case m.fail > 0:
		m.fail--
		return false
	}
	return true
}

func (m *propModel) armed() bool { return m.down || m.fail > 0 }

func (m *propModel) backendGet(id string) (int64, bool) {
	i := slices.IndexFunc(m.backend, func(it propItem) bool { return it.id == id })
	if i < 0 {
		return 0, false
	}
	return m.backend[i].tok, true
}

func (m *propModel) backendSave(id string, tok int64) {
	if i := slices.IndexFunc(m.backend, func(it propItem) bool { return it.id == id }); i >= 0 {
		m.backend[i].tok = tok
		return
	}
	m.backend = append(m.backend, propItem{id, tok})
}

func (m *propModel) backendDelete(id string) bool {
	n := len(m.backend)
	m.backend = slices.DeleteFunc(m.backend, func(it propItem) bool { return it.id == id })
	return len(m.backend) < n
}

func (m *propModel) backendWrite(ch propChange) bool {
	if ch.deleted {
		return m.backendDelete(ch.id)
	}
	_, existed := m.backendGet(ch.id)
	m.backendSave(ch.id, ch.tok)
	return existed
}

func (m *propModel) pendingOf(id string) (propChange, bool) {
	i := slices.IndexFunc(m.pending, func(c propChange) bool { return c.id == id })
	if i < 0 {
		return propChange{}, false
	}
	return m.pending[i], true
}

func (m *propModel) queue(ch propChange) {
	m.unqueue(ch.id)
	m.pending = append(m.pending, ch)
}

func (m *propModel) unqueue(id string) {
	m.pending = slices.DeleteFunc(m.pending, func(c propChange) bool { return c.id == id })
}

// value is what a read of id under p must return (0: not found).
func (m *propModel) value(id string, p store.FetchPolicy) int64 {
	if pc, ok := m.pendingOf(id); ok {
		if pc.deleted {
			return 0
		}
		return pc.tok
	}
	if tok, ok := m.local[id]; ok && p != store.FetchNetworkOnly && p != store.FetchNetworkFirst {
		return tok
	}
	tok, _ := m.backendGet(id)
	return tok
}

// listing is what GetAll must return, before its filter and limit: the
// backend's items in its order with the pending changes laid over them,
// then the pending creates (IDs the backend does not hold), whose order
// among themselves no document promises. Cache-only entries are left out
// (the machine filters them out of every listing).
func (m *propModel) listing() (fixed, creates []propItem) {
	for _, it := range m.backend {
		if pc, ok := m.pendingOf(it.id); ok {
			if !pc.deleted {
				fixed = append(fixed, propItem{it.id, pc.tok})
			}
			continue
		}
		fixed = append(fixed, it)
	}
	for _, pc := range m.pending {
		if _, ok := m.backendGet(pc.id); !ok && !pc.deleted {
			creates = append(creates, propItem{pc.id, pc.tok})
		}
	}
	return fixed, creates
}

// listingMatches reports whether got is the listing of fixed and creates
// (see listing) under limit (0: none): fixed's items first, in order, then
// creates in any order. With partial (a cache-only read of an incomplete
// cache) any part of it will do, in any order.
func listingMatches(got, fixed, creates []propItem, limit int, partial bool) bool {
	i := 0 // in fixed
	seen := map[propItem]bool{}
	for _, it := range got {
		switch {
		case len(seen) == 0 && !partial && i < len(fixed) && it == fixed[i]:
			i++
		case partial && slices.Contains(fixed, it) && !seen[it]:
			// A cache-only listing of a partial cache promises what it
			// holds, not the backend's order (docs/store.md).
			seen[it] = true
		case slices.Contains(creates, it) && !seen[it]:
			seen[it] = true
		default:
			return false
		}
	}
	if partial {
		return limit == 0 || len(got) <= limit
	}
	want := len(fixed) + len(creates)
	if limit > 0 {
		want = min(want, limit)
	}
	return len(got) == want && (i == len(fixed) || len(seen) == 0)
}

func (m *propModel) String() string {
	var b strings.Builder
	b.WriteString("backend [")
	for i, it := range m.backend {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", it.id, describeTok(it.tok))
	}
	b.WriteString("] pending [")
	for i, pc := range m.pending {
		if i > 0 {
			b.WriteString(" ")
		}
		if pc.deleted {
			fmt.Fprintf(&b, "%s=deleted", pc.id)
		} else {
			fmt.Fprintf(&b, "%s=%s", pc.id, describeTok(pc.tok))
		}
	}
	b.WriteString("] cache-only [")
	for i, id := range propLocalIDs {
		if tok, ok := m.local[id]; ok {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s=%s", id, describeTok(tok))
		}
	}
	fmt.Fprintf(&b, "] backend down: %v, schedule: pass %d then fail %d", m.down, m.skip, m.fail)
	return b.String()
}

// propMachine is the real store and the model side by side.
type propMachine struct {
	c      *propCounts
	s      *store.Store[ckItem, string]
	mb     *memory.Backend[ckItem, string]
	b      *stampBackend
	sched  *propSchedule
	rep    *conflictCounter
	policy store.WritePolicy // Config.WritePolicy, for transactions
	ctx    context.Context   // every call's: its backend calls count as the action's
	// goroutines is how many ran when the store was new: more means
	// background work.
	goroutines int
	m          propModel
	tok        int64
}

func newPropMachine(t *rapid.T, c *propCounts) *propMachine {
	pm := &propMachine{c: c, sched: &propSchedule{}, rep: &conflictCounter{}, ctx: foreground(context.Background())}
	pm.mb = memory.New[ckItem, string](memory.WithFault(pm.sched.hook))
	pm.b = &stampBackend{VersionedBackend: pm.mb}
	pm.policy = writeNames[rapid.SampledFrom([]string{"cache_and_network", "network_first", "cache_first"}).Draw(t, "config write policy")]
	notFoundTTL := rapid.SampledFrom([]time.Duration{0, time.Hour}).Draw(t, "config NotFoundTTL")
	s, err := store.New(pm.b, store.Config[ckItem, string]{
		IDOf: ckID, WritePolicy: pm.policy, NotFoundTTL: notFoundTTL,
		Retry:           store.RetryConfig{MaxAttempts: 2, InitialDelay: time.Microsecond, MaxDelay: time.Microsecond, Jitter: store.NoJitter},
		MetricsReporter: pm.rep,
	})
	if err != nil {
		t.Fatal(err)
	}
	pm.s = s
	pm.goroutines = runtime.NumGoroutine()
	pm.m.local = map[string]int64{}
	c.cases.Add(1)
	return pm
}

func (pm *propMachine) run(t *rapid.T) {
	defer func() {
		pm.mb.SetUnavailable(false)
		pm.sched.set(0, 0)
		pm.s.Close(context.Background())
		pm.c.faults.Add(pm.b.unavailableResults.Load())
	}()
	actions := map[string]func(*rapid.T){
		"Get":            pm.get,
		"GetAll":         pm.getAll,
		"Save":           pm.save,
		"Delete":         pm.delete,
		"SaveAll":        pm.saveAll,
		"DeleteAll":      pm.deleteAll,
		"Transaction":    pm.transaction,
		"Sync":           pm.sync,
		"RetryPending":   pm.retryPending,
		"CancelPending":  pm.cancelPending,
		"Invalidate":     pm.invalidate,
		"InvalidateTags": pm.invalidateTags,
		"InvalidateAll":  pm.invalidateAll,
		"SetUnavailable": pm.setUnavailable,
		"FailCalls":      pm.failCalls,
		"":               pm.check,
	}
	for name, act := range actions {
		if name != "" {
			actions[name] = func(t *rapid.T) {
				pm.c.actions.Add(1)
				pm.m.calls = 0
				act(t)
				pm.awaitRefresh(t)
				pm.settle(t)
			}
		}
	}
	t.Repeat(actions)
}

// settle waits for the background refresh a cache-and-network hit
// started, and takes the fault schedule as the calls left it.
func (pm *propMachine) settle(t *rapid.T) {
	deadline := time.Now().Add(5 * time.Second)
	for pm.b.finished.Load() < pm.b.started.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("a backend call did not finish in 5s")
		}
		time.Sleep(50 * time.Microsecond)
	}
	pm.m.skip, pm.m.fail = pm.sched.state()
}

// expectCalls checks the number of backend calls the last action made
// for its caller (not in the background) against the model's prediction.
func (pm *propMachine) expectCalls(t *rapid.T, before int64, what string) {
	if got := pm.b.foregroundCalls.Load() - before; got != int64(pm.m.calls) {
		t.Fatalf("%s made %d backend calls, the model expected %d", what, got, pm.m.calls)
	}
}

func (pm *propMachine) nextTok() int64 { pm.tok++; return pm.tok }

func drawID(t *rapid.T) string { return rapid.SampledFrom(propIDs).Draw(t, "id") }

func drawNetworkOrBehind(t *rapid.T, label string) store.WritePolicy {
	return writeNames[rapid.SampledFrom([]string{"cache_and_network", "network_first", "cache_first"}).Draw(t, label)]
}

func (pm *propMachine) fail(t *rapid.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\n  model: %v", fmt.Sprintf(format, args...), &pm.m)
}

// check runs after every action: the pending changes, the backend and the
// conflicts must be what the model says.
func (pm *propMachine) check(t *rapid.T) {
	var got []propChange
	for _, pc := range pm.s.PendingChanges() {
		got = append(got, propChange{pc.ID, pc.Value.Tok, pc.Deleted})
	}
	if !slices.Equal(got, pm.m.pending) {
		pm.fail(t, "PendingChanges lists %v, want %v", got, pm.m.pending)
	}
	pm.sched.mu.Lock()
	pm.sched.off = true
	pm.sched.mu.Unlock()
	pm.mb.SetUnavailable(false)
	vs, err := pm.mb.GetAll(context.Background(), store.Query[ckItem]{})
	pm.mb.SetUnavailable(pm.m.down)
	pm.sched.mu.Lock()
	pm.sched.off = false
	pm.sched.mu.Unlock()
	if err != nil {
		t.Fatalf("reading the backend: %v", err)
	}
	var backend []propItem
	for _, v := range vs {
		backend = append(backend, propItem{v.ID, v.Tok})
	}
	if !slices.Equal(backend, pm.m.backend) {
		pm.fail(t, "the backend holds %v, want %v", backend, pm.m.backend)
	}
	if n := pm.rep.conflicts.Load(); n > 0 {
		pm.fail(t, "Sync resolved %d conflicts, with no other writer of the backend", n)
	}
}

func (pm *propMachine) get(t *rapid.T) {
	id := rapid.SampledFrom(append(slices.Clone(propIDs), propLocalIDs...)).Draw(t, "id")
	p := fetchNames[rapid.SampledFrom(sortedKeys(fetchNames)).Draw(t, "fetch policy")]
	armed := pm.m.armed()
	v, err := pm.s.Get(pm.ctx, id, store.WithFetchPolicy(p))
	want := pm.m.value(id, p)
	_, pending := pm.m.pendingOf(id)
	localTok, local := pm.m.local[id]
	// Network-first falls back to the cache when the backend fails: there,
	// a cache-only entry.
	fellBack := p == store.FetchNetworkFirst && local && armed && err == nil && v.Tok == localTok
	switch {
	case err == nil && v.Tok != want && !fellBack:
		pm.fail(t, "Get(%s, %v) = %s, want %s", id, p, describeTok(v.Tok), describeTok(want))
	case errors.Is(err, store.ErrNotFound) && want != 0 && (p != store.FetchCacheOnly || pending || local):
		pm.fail(t, "Get(%s, %v): %v, want %s", id, p, err, describeTok(want))
	case err != nil && !errors.Is(err, store.ErrNotFound) && !armed:
		pm.fail(t, "Get(%s, %v) with no fault armed: %v", id, p, err)
	}
}

// awaitRefresh waits until the background refresh an action may have
// scheduled (a cache-and-network read, a stale-while-revalidate read of an
// entry to revalidate, a failed optimistic write) is over: until the
// store runs no goroutine beyond those it had when it was new. Its backend
// call would otherwise run into the next action and take a fault meant for
// it.
func (pm *propMachine) awaitRefresh(t *rapid.T) {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > pm.goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("background work still runs after 5s:\n%s", buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// propFilters are the filters GetAll draws from.
var propFilters = map[string]func(ckItem) bool{
	"none":     nil,
	"odd tok":  func(it ckItem) bool { return it.Tok%2 == 1 },
	"not b":    func(it ckItem) bool { return it.ID != "b" },
	"a, b, c":  func(it ckItem) bool { return it.ID == "a" || it.ID == "b" || it.ID == "c" },
	"even tok": func(it ckItem) bool { return it.Tok%2 == 0 },
}

func (pm *propMachine) getAll(t *rapid.T) {
	fname := rapid.SampledFrom(sortedKeys(propFilters)).Draw(t, "filter")
	limit := rapid.IntRange(0, 3).Draw(t, "limit")
	p := fetchNames[rapid.SampledFrom(sortedKeys(fetchNames)).Draw(t, "fetch policy")]
	filter := propFilters[fname]
	opts := []store.ReadOption{store.WithFetchPolicy(p), store.WithLimit(limit)}
	keep := filter
	if len(pm.m.local) > 0 { // leave the cache-only entries out
		keep = func(it ckItem) bool { return !strings.HasPrefix(it.ID, "L") && (filter == nil || filter(it)) }
	}
	if keep != nil {
		opts = append(opts, store.WithFilter(keep))
	}
	armed := pm.m.armed()
	items, err := pm.s.GetAll(pm.ctx, opts...)
	match := func(it propItem) bool { return filter == nil || filter(ckItem{ID: it.id, Tok: it.tok}) }
	fixed, creates := pm.m.listing()
	fixed, creates = slices.DeleteFunc(fixed, func(it propItem) bool { return !match(it) }), slices.DeleteFunc(creates, func(it propItem) bool { return !match(it) })
	var got []propItem
	for _, it := range items {
		got = append(got, propItem{it.ID, it.Tok})
	}
	switch {
	case err != nil && !armed:
		pm.fail(t, "GetAll(%s, limit %d, %v) with no fault armed: %v", fname, limit, p, err)
	case err != nil:
	case !listingMatches(got, fixed, creates, limit, p == store.FetchCacheOnly):
		pm.fail(t, "GetAll(%s, limit %d, %v) = %v, want %v then (in any order) %v, within the limit", fname, limit, p, got, fixed, creates)
	}
	pm.awaitRefresh(t)
}

// writeOne applies one write of the model under policy p, for the network
// policies with one backend call; it reports whether the write works.
func (pm *propMachine) writeOne(ch propChange, p store.WritePolicy) bool {
	switch p {
	case store.WriteCacheFirst:
		pm.m.queue(ch)
	case store.WriteCacheOnly:
		delete(pm.m.local, ch.id)
		if !ch.deleted {
			pm.m.local[ch.id] = ch.tok
		}
	default:
		if !pm.m.call() {
			return false
		}
		pm.m.backendWrite(ch)
		pm.m.unqueue(ch.id)
	}
	return true
}

func (pm *propMachine) drawWrite(t *rapid.T) (string, store.WritePolicy, []store.WriteOption) {
	if rapid.IntRange(0, 4).Draw(t, "cache-only") == 0 {
		id := rapid.SampledFrom(propLocalIDs).Draw(t, "id")
		return id, store.WriteCacheOnly, []store.WriteOption{store.WithWritePolicy(store.WriteCacheOnly), store.WithTags(localTag)}
	}
	id := drawID(t)
	p := drawNetworkOrBehind(t, "write policy")
	return id, p, []store.WriteOption{store.WithWritePolicy(p)}
}

func (pm *propMachine) save(t *rapid.T) {
	id, p, opts := pm.drawWrite(t)
	tok := pm.nextTok()
	before := pm.b.foregroundCalls.Load()
	v, err := pm.s.Save(pm.ctx, ckItem{ID: id, Tok: tok}, opts...)
	ok := pm.writeOne(propChange{id: id, tok: tok}, p)
	pm.expectCalls(t, before, "Save")
	switch {
	case ok && err != nil:
		pm.fail(t, "Save(%s=%s, %v): %v, want success", id, describeTok(tok), p, err)
	case !ok && err == nil:
		pm.fail(t, "Save(%s=%s, %v) succeeded, want the scheduled fault", id, describeTok(tok), p)
	case ok && v.Tok != tok:
		pm.fail(t, "Save(%s=%s, %v) returned %s", id, describeTok(tok), p, describeTok(v.Tok))
	}
}

func (pm *propMachine) delete(t *rapid.T) {
	id, p, opts := pm.drawWrite(t)
	before := pm.b.foregroundCalls.Load()
	err := pm.s.Delete(pm.ctx, id, opts...)
	ok := pm.writeOne(propChange{id: id, deleted: true}, p)
	pm.expectCalls(t, before, "Delete")
	if ok != (err == nil) {
		pm.fail(t, "Delete(%s, %v): %v, want success: %v", id, p, err, ok)
	}
}

// drawBatchIDs draws one to three IDs, an ID twice now and then.
func drawBatchIDs(t *rapid.T) []string {
	return rapid.SliceOfN(rapid.SampledFrom(propIDs), 1, 3).Draw(t, "ids")
}

func (pm *propMachine) saveAll(t *rapid.T) {
	ids := drawBatchIDs(t)
	p := drawNetworkOrBehind(t, "write policy")
	items := make([]ckItem, len(ids))
	for i, id := range ids {
		items[i] = ckItem{ID: id, Tok: pm.nextTok()}
	}
	before := pm.b.foregroundCalls.Load()
	saved, err := pm.s.SaveAll(pm.ctx, items, store.WithWritePolicy(p))
	done := 0
	for _, it := range items {
		if !pm.writeOne(propChange{id: it.ID, tok: it.Tok}, p) {
			break
		}
		done++
	}
	pm.expectCalls(t, before, "SaveAll")
	if (err == nil) != (done == len(items)) || len(saved) != done {
		pm.fail(t, "SaveAll(%v, %v) saved %d: %v; want %d saved", ids, p, len(saved), err, done)
	}
}

func (pm *propMachine) deleteAll(t *rapid.T) {
	ids := drawBatchIDs(t)
	p := drawNetworkOrBehind(t, "write policy")
	before := pm.b.foregroundCalls.Load()
	n, err := pm.s.DeleteAll(pm.ctx, ids, store.WithWritePolicy(p))
	done, existed := 0, 0
	for _, id := range ids {
		if p != store.WriteCacheFirst {
			if !pm.m.call() {
				break
			}
			pm.m.unqueue(id)
			if pm.m.backendDelete(id) {
				existed++
			}
		} else {
			pm.m.queue(propChange{id: id, deleted: true})
			existed++ // every queued delete counts
		}
		done++
	}
	pm.expectCalls(t, before, "DeleteAll")
	if (err == nil) != (done == len(ids)) || n != existed {
		pm.fail(t, "DeleteAll(%v, %v) = %d, %v; want %d deleted and success: %v", ids, p, n, err, existed, done == len(ids))
	}
}

func (pm *propMachine) transaction(t *rapid.T) {
	type op struct {
		id      string
		read    bool
		deleted bool
	}
	ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) op {
		return op{
			id:      drawID(t),
			read:    rapid.IntRange(0, 3).Draw(t, "read") == 0,
			deleted: rapid.IntRange(0, 3).Draw(t, "delete") == 0,
		}
	}), 1, 3).Draw(t, "tx")
	var chs []propChange // the last change per ID, in the order IDs were first written
	var before int64
	ctx := pm.ctx
	err := pm.s.Transaction(ctx, func(tx *store.Tx[ckItem, string]) error {
		for _, o := range ops {
			i := slices.IndexFunc(chs, func(c propChange) bool { return c.id == o.id })
			switch {
			case o.read:
				v, err := tx.Get(ctx, o.id)
				want := pm.m.value(o.id, store.FetchCacheFirst)
				if i >= 0 {
					want = chs[i].tok
				}
				if tok, ok := tokOf(v, err); ok && tok != want {
					pm.fail(t, "tx.Get(%s) = %s, want %s", o.id, describeTok(tok), describeTok(want))
				}
			case o.deleted:
				if err := tx.Delete(ctx, o.id); err != nil {
					return err
				}
			default:
				if _, err := tx.Save(ctx, ckItem{ID: o.id, Tok: pm.nextTok()}); err != nil {
					return err
				}
			}
			if o.read {
				continue
			}
			ch := propChange{id: o.id, tok: pm.tok, deleted: o.deleted}
			if o.deleted {
				ch.tok = 0
			}
			if i >= 0 {
				chs[i] = ch
			} else {
				chs = append(chs, ch)
			}
		}
		// What the reads above consumed of the schedule; the commit
		// follows.
		pm.m.skip, pm.m.fail = pm.sched.state()
		before = pm.b.foregroundCalls.Load()
		return nil
	})
	pm.m.calls = 0
	ok, rolledBack := pm.commit(chs)
	pm.expectCalls(t, before, "the commit of a Transaction")
	var te *store.TxError
	switch {
	case ok && err != nil:
		pm.fail(t, "Transaction %v: %v, want success", chs, err)
	case !ok && err == nil:
		pm.fail(t, "Transaction %v succeeded, want the scheduled fault", chs)
	case !ok && (!errors.As(err, &te) || te.RolledBack != rolledBack):
		pm.fail(t, "Transaction %v: %v, want a *TxError with RolledBack %v", chs, err, rolledBack)
	}
}

// commit applies a transaction's changes to the model as the store commits
// them without a backend transaction: read the original, write, and on a
// failure write the originals back, newest first.
func (pm *propMachine) commit(chs []propChange) (ok, rolledBack bool) {
	if len(chs) == 0 {
		return true, false
	}
	p := pm.policy
	if p == store.WriteCacheFirst {
		for _, ch := range chs {
			pm.m.queue(ch)
		}
		return true, false
	}
	var originals []propChange
	failed := false
	for _, ch := range chs {
		if !pm.m.call() {
			failed = true
			break
		}
		tok, present := pm.m.backendGet(ch.id)
		originals = append(originals, propChange{id: ch.id, tok: tok, deleted: !present})
		if !pm.m.call() {
			originals = originals[:len(originals)-1]
			failed = true
			break
		}
		pm.m.backendWrite(ch)
	}
	if !failed {
		for _, ch := range chs {
			pm.m.unqueue(ch.id)
		}
		return true, false
	}
	rolledBack = true
	for j := len(originals) - 1; j >= 0; j-- {
		if !pm.m.call() {
			rolledBack = false
			continue
		}
		pm.m.backendWrite(originals[j])
	}
	return false, rolledBack
}

// push simulates the pushes of one pending change in a Sync run: up to
// MaxAttempts (2) attempts, one backend call each. It reports whether the
// change was pushed.
func (pm *propMachine) push(id string) bool {
	pc, ok := pm.m.pendingOf(id)
	if !ok {
		return true
	}
	for range 2 {
		if pm.m.call() {
			pm.m.backendWrite(pc)
			pm.m.unqueue(id)
			return true
		}
	}
	return false
}

func (pm *propMachine) sync(t *rapid.T) {
	before := pm.b.foregroundCalls.Load()
	err := pm.s.Sync(pm.ctx)
	ok := true
	for _, pc := range slices.Clone(pm.m.pending) {
		ok = pm.push(pc.id) && ok
	}
	pm.expectCalls(t, before, "Sync")
	if ok != (err == nil) {
		pm.fail(t, "Sync: %v, want success: %v", err, ok)
	}
}

func (pm *propMachine) retryPending(t *rapid.T) {
	id := drawID(t)
	before := pm.b.foregroundCalls.Load()
	err := pm.s.RetryPending(pm.ctx, id)
	_, pending := pm.m.pendingOf(id)
	ok := pm.push(id)
	pm.expectPendingOp(t, "RetryPending", id, before, err, pending, ok)
}

func (pm *propMachine) cancelPending(t *rapid.T) {
	id := drawID(t)
	before := pm.b.foregroundCalls.Load()
	err := pm.s.CancelPending(pm.ctx, id)
	_, pending := pm.m.pendingOf(id)
	ok := !pending || pm.m.call()
	if pending && ok {
		pm.m.unqueue(id)
	}
	pm.expectPendingOp(t, "CancelPending", id, before, err, pending, ok)
}

// expectPendingOp checks the outcome of RetryPending or CancelPending of id:
// ErrNotPending when nothing was pending, else success as the model says.
func (pm *propMachine) expectPendingOp(t *rapid.T, what, id string, before int64, err error, pending, ok bool) {
	t.Helper()
	pm.expectCalls(t, before, what)
	switch {
	case !pending && !errors.Is(err, store.ErrNotPending):
		pm.fail(t, "%s(%s) with nothing pending: %v, want ErrNotPending", what, id, err)
	case pending && ok != (err == nil):
		pm.fail(t, "%s(%s): %v, want success: %v", what, id, err, ok)
	}
}

func (pm *propMachine) invalidate(t *rapid.T) {
	id := rapid.SampledFrom(append(slices.Clone(propIDs), propLocalIDs...)).Draw(t, "id")
	pm.s.Invalidate(id)
	delete(pm.m.local, id)
}

func (pm *propMachine) invalidateTags(t *rapid.T) {
	tag := rapid.SampledFrom([]string{localTag, "other"}).Draw(t, "tag")
	pm.s.InvalidateTags(tag)
	if tag == localTag {
		clear(pm.m.local)
	}
}

func (pm *propMachine) invalidateAll(*rapid.T) {
	pm.s.InvalidateAll()
	clear(pm.m.local)
}

func (pm *propMachine) setUnavailable(t *rapid.T) {
	pm.m.down = rapid.Bool().Draw(t, "down")
	pm.mb.SetUnavailable(pm.m.down)
}

// failCalls arms the schedule: the next pass calls work, the fail after
// them fail (FailNext is pass 0).
func (pm *propMachine) failCalls(t *rapid.T) {
	pass := rapid.IntRange(0, 4).Draw(t, "pass")
	fail := rapid.IntRange(1, 2).Draw(t, "fail")
	pm.sched.set(pass, fail)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestListingMatches checks the listing comparison of the property test.
func TestListingMatches(t *testing.T) {
	a, b, c, x, y := propItem{"a", 1}, propItem{"b", 2}, propItem{"c", 3}, propItem{"x", 4}, propItem{"y", 5}
	fixed, creates := []propItem{a, b, c}, []propItem{x, y}
	tests := []struct {
		got     []propItem
		limit   int
		partial bool
		ok      bool
	}{
		{[]propItem{a, b, c, x, y}, 0, false, true},
		{[]propItem{a, b, c, y, x}, 0, false, true},
		{[]propItem{a, b}, 2, false, true},
		{[]propItem{a, b, c, y}, 4, false, true},
		{[]propItem{b, a, c, x, y}, 0, false, false}, // backend order
		{[]propItem{a, b, x, c, y}, 0, false, false}, // a create before a backend item
		{[]propItem{a, c}, 2, false, false},          // b skipped (a pending delete must let the next in, not skip)
		{[]propItem{a, b, c, x}, 0, false, false},    // y missing
		{[]propItem{a, b, c, x, x}, 0, false, false}, // twice
		{[]propItem{a, c, y}, 0, true, true},         // a part of it
		{[]propItem{c, a}, 0, true, true},            // a partial cache promises no order
		{[]propItem{x, a}, 0, true, true},
		{[]propItem{a, a}, 0, true, false},
		{[]propItem{a, {"z", 9}}, 0, true, false},
		{[]propItem{a, c, y}, 2, true, false},
	}
	for i, tt := range tests {
		if got := listingMatches(tt.got, fixed, creates, tt.limit, tt.partial); got != tt.ok {
			t.Errorf("%d: listingMatches(%v, limit %d, partial %v) = %v, want %v", i, tt.got, tt.limit, tt.partial, got, tt.ok)
		}
	}
}

package store_test

// The write-behind durability checker: random concurrent workloads of
// write-behind and network writes, batches, transactions, Sync (with short
// retries, and in the background), RetryPending, CancelPending, reads that
// race them, cancelled and short-deadline contexts, and backend faults. At
// the end, every acknowledged write must be accounted for: it is the value
// the backend holds, or the one a pending change (PendingChanges, or Close's
// *UnsyncedError) holds, or a later write replaced it, or CancelPending
// dropped it. With no other writer, no conflict may be resolved either.
//
// The check runs at quiescent points within a history too (every client
// paused), from PendingChanges and the backend as they are then, so that a
// lost write is caught before a later write of its ID hides it.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// durWrite is one write of the workload.
type durWrite struct {
	id        string
	tok       int64 // 0: a delete
	call, ret int64 // ns since the history started
	acked     bool  // it returned nil: it must not be lost
	effective bool  // acked, or it failed in a way that may have left it applied
	what      string
}

func (w durWrite) String() string {
	return fmt.Sprintf("%s(%s) = %s at [%.1f, %.1f]µs", w.what, w.id, describeTok(w.tok), float64(w.call)/1e3, float64(w.ret)/1e3)
}

// durCancel is a CancelPending that returned nil: it dropped the pending
// change of id (whatever acknowledged write it held).
type durCancel struct {
	id        string
	call, ret int64
}

type durCounts struct {
	histories, ops, faults, acked int64
}

func TestWriteBehindDurability(t *testing.T) {
	budget := checkBudget(t, 10*time.Second, 0.25)
	deadline := time.Now().Add(budget)
	var c durCounts
	defer func() { // also when a history stops the test
		t.Logf("durability: %d histories, %d operations (%d acknowledged writes) checked, %d faults injected (budget %v)",
			c.histories, c.ops, c.acked, c.faults, budget)
	}()
	for n := 0; n == 0 || (time.Now().Before(deadline) && !t.Failed()); n++ {
		c.histories++
		checkDurability(t, n, &c)
	}
}

// durEnv is one history in progress.
type durEnv struct {
	s       *store.Store[ckItem, string]
	start   time.Time
	ids     []string
	policy  store.WritePolicy // Config.WritePolicy (transactions use it)
	mu      sync.Mutex
	writes  []durWrite
	cancels []durCancel
	ops     int
	errs    []string
}

func (e *durEnv) now() int64 { return int64(time.Since(e.start)) }

func (e *durEnv) record(ws ...durWrite) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writes = append(e.writes, ws...)
}

func (e *durEnv) surprise(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// ctx returns the context of one call: mostly a plain one, sometimes one
// already cancelled or with a deadline of a few hundred microseconds.
func (e *durEnv) ctx() (context.Context, context.CancelFunc) {
	switch r := rand.N(10); {
	case r == 0:
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	case r == 1:
		return context.WithTimeout(context.Background(), time.Duration(rand.N(300))*time.Microsecond)
	}
	return context.Background(), func() {}
}

func (e *durEnv) writePolicy() store.WritePolicy {
	if chance(0.5) {
		return store.WriteCacheFirst
	}
	return pick(store.WriteCacheAndNetwork, store.WriteNetworkFirst)
}

func checkDurability(t *testing.T, n int, c *durCounts) {
	f := newFaults(0.05+0.2*rand.Float64(), 100*time.Microsecond)
	f.slowWrites = true
	mb := memory.New[ckItem, string](memory.WithFault(f.hook))
	counter := &syncCounter{}
	cfg := store.Config[ckItem, string]{
		IDOf:            ckID,
		WritePolicy:     pick(store.WriteCacheFirst, store.WriteCacheAndNetwork, store.WriteNetworkFirst),
		Retry:           store.RetryConfig{MaxAttempts: 1 + rand.N(3), InitialDelay: 10 * time.Microsecond, MaxDelay: 50 * time.Microsecond, Jitter: store.NoJitter},
		MetricsReporter: counter,
	}
	if chance(0.3) {
		cfg.SyncInterval = time.Duration(200+rand.N(800)) * time.Microsecond
	}
	s, closeStore := openChecked(t, mb, cfg)
	defer closeStore() // the history's store goes with it, also when it fails early
	e := &durEnv{s: s, start: time.Now(), policy: cfg.WritePolicy}
	defer func() {
		c.ops += int64(e.ops)
		c.faults += f.injected.Load()
		for _, w := range e.writes {
			if w.acked {
				c.acked++
			}
		}
	}()
	for i := range 4 {
		e.ids = append(e.ids, fmt.Sprintf("k%d", i))
	}
	clients := 4 + rand.N(3)
	phases := 3 + rand.N(3)
	opsPerClient := 20 + rand.N(20)
	for phase := range phases {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range opsPerClient {
					e.step()
				}
			})
		}
		wg.Wait()
		e.ops += clients * opsPerClient
		if phase == phases-1 {
			break
		}
		// A quiescent point: what is pending, then what the backend
		// holds (a background Sync only moves a change from the first to
		// the second).
		f.on.Store(false)
		final, where := durableState(t, e.ids, s.PendingChanges(), mb)
		f.on.Store(true)
		e.check(t, n, fmt.Sprintf("after phase %d of %d", phase+1, phases), final, where, counter)
		if t.Failed() {
			break
		}
	}

	if t.Failed() {
		return
	}

	// The end: either the faults stop and a final Sync pushes everything,
	// or the backend goes down and Close must name what stays pending.
	ctx := context.Background()
	f.on.Store(false)
	byClose := chance(0.3)
	var pending []store.PendingChange[ckItem, string]
	if byClose {
		mb.SetUnavailable(true)
		cerr := closeStore()
		pending = s.PendingChanges()
		var uerr *store.UnsyncedError[string]
		switch {
		case len(pending) == 0 && cerr != nil:
			t.Errorf("Close with nothing pending: %v", cerr)
		case len(pending) > 0 && !errors.As(cerr, &uerr):
			t.Errorf("Close left %d changes pending but returned %v, not an *UnsyncedError", len(pending), cerr)
		case len(pending) > 0:
			var want []string
			for _, p := range pending {
				want = append(want, p.ID)
			}
			got := slices.Clone(uerr.IDs)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Close's UnsyncedError names %v, PendingChanges lists %v", got, want)
			}
		}
		mb.SetUnavailable(false)
	} else {
		if err := s.Sync(ctx); err != nil {
			t.Errorf("the final Sync, with no faults: %v", err)
		}
		pending = s.PendingChanges()
		if len(pending) > 0 {
			t.Errorf("after the final Sync with no faults, %d changes are pending (first: %s)", len(pending), pending[0].ID)
		}
	}
	final, where := durableState(t, e.ids, pending, mb)
	if !byClose {
		if err := closeStore(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	e.check(t, n, "at the end, by "+map[bool]string{true: "Close", false: "Sync"}[byClose], final, where, counter)
}

// durableState reads each ID's durable value: its pending change if it has
// one, else what the backend holds (read directly, with faults off).
func durableState(t *testing.T, ids []string, pending []store.PendingChange[ckItem, string], mb *memory.Backend[ckItem, string]) (map[string]int64, map[string]string) {
	t.Helper()
	final := map[string]int64{}
	where := map[string]string{}
	for _, id := range ids {
		v, err := mb.Get(context.Background(), id)
		tok, ok := tokOf(v, err)
		if !ok {
			t.Fatalf("reading %s from the backend: %v", id, err)
		}
		final[id], where[id] = tok, "the backend holds"
	}
	for _, p := range pending {
		final[p.ID], where[p.ID] = p.Value.Tok, "the pending change holds"
		if p.Deleted {
			final[p.ID] = 0
		}
	}
	return final, where
}

// check reports the writes lost so far, the surprises, and the conflicts.
func (e *durEnv) check(t *testing.T, n int, when string, final map[string]int64, where map[string]string, counter *syncCounter) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, msg := range e.errs {
		t.Error(msg)
	}
	e.errs = nil
	conflicts := counter.conflicts.Load()
	for _, msg := range durabilityViolations(e.ids, e.writes, e.cancels, final, where) {
		t.Errorf("history %d, %s (%d conflicts resolved so far): %s", n, when, conflicts, msg)
	}
	if conflicts > 0 && !t.Failed() {
		cs := counter.firstConflict.Load()
		at := int64(cs.at.Sub(e.start))
		var around []string
		for _, w := range e.writes {
			if w.id == cs.id && w.ret > at-3_000_000 && w.call < at+500_000 {
				around = append(around, fmt.Sprintf("      %v acked=%v effective=%v", w, w.acked, w.effective))
			}
		}
		t.Errorf("history %d, %s: Sync resolved %d conflicts with no other writer of the backend (a resolved conflict drops a change); the first, of %v at %.1fµs, after these writes of it:\n%s",
			n, when, conflicts, cs.id, float64(at)/1e3, strings.Join(around, "\n"))
	}
}

// durabilityViolations checks the end state of each ID against the writes
// of the history. final is each ID's value in the end (pending change, else
// backend); an acknowledged write is accounted for when it is that value,
// or the write that produced that value may have come after it, or a
// CancelPending may have dropped it after it.
func durabilityViolations(ids []string, writes []durWrite, cancels []durCancel, final map[string]int64, where map[string]string) []string {
	var out []string
	for _, id := range ids {
		var mine []durWrite
		for _, w := range writes {
			if w.id == id {
				mine = append(mine, w)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].call < mine[j].call })
		f := final[id]
		// mayFollow reports whether some write that could have produced the
		// final value, or a cancel, may have come after w.
		mayFollow := func(w durWrite) bool {
			for _, x := range mine {
				if x.effective && x.tok == f && x.ret > w.call && x != w {
					return true
				}
			}
			for _, cn := range cancels {
				if cn.id == id && cn.ret > w.call {
					return true
				}
			}
			return false
		}
		if f != 0 {
			i := slices.IndexFunc(mine, func(w durWrite) bool { return w.tok == f })
			switch {
			case i < 0:
				out = append(out, fmt.Sprintf("%s %s, which no write produced", where[id], describeTok(f)))
				continue
			case !mine[i].effective:
				out = append(out, fmt.Sprintf("%s %s, written by %s, which failed", where[id], describeTok(f), mine[i]))
			}
		}
		for _, w := range mine {
			if !w.acked || w.tok == f || mayFollow(w) {
				continue
			}
			by := "no write may have come after it"
			if f != 0 {
				by = "written by " + mine[slices.IndexFunc(mine, func(x durWrite) bool { return x.tok == f })].String() + ", which came before it"
			}
			var recent []string
			for _, x := range mine {
				if x.ret > w.call-2_000_000 { // the writes around it, for the reader
					recent = append(recent, fmt.Sprintf("      %v acked=%v effective=%v", x, x.acked, x.effective))
				}
			}
			out = append(out, fmt.Sprintf("acknowledged %v is lost: %s %s, %s; nothing cancelled it\n    the writes of %s around it:\n%s",
				w, where[id], describeTok(f), by, id, strings.Join(recent, "\n")))
		}
	}
	return out
}

// step runs one random operation.
func (e *durEnv) step() {
	ctx, cancel := e.ctx()
	defer cancel()
	id := pick(e.ids...)
	switch r := rand.N(100); {
	case r < 34: // Save
		p := e.writePolicy()
		tok := nextTok()
		call := e.now()
		_, err := e.s.Save(ctx, ckItem{ID: id, Tok: tok}, store.WithWritePolicy(p))
		e.record(durWrite{id: id, tok: tok, call: call, ret: e.now(), acked: err == nil, effective: err == nil, what: "Save[" + p.String() + "]"})
	case r < 42: // Delete
		p := e.writePolicy()
		call := e.now()
		err := e.s.Delete(ctx, id, store.WithWritePolicy(p))
		e.record(durWrite{id: id, call: call, ret: e.now(), acked: err == nil, effective: err == nil, what: "Delete[" + p.String() + "]"})
	case r < 47: // SaveAll, sometimes naming an ID twice
		p := e.writePolicy()
		items := make([]ckItem, 2+rand.N(2))
		for i := range items {
			items[i] = ckItem{ID: pick(e.ids...), Tok: nextTok()}
		}
		call := e.now()
		saved, err := e.s.SaveAll(ctx, items, store.WithWritePolicy(p))
		ret := e.now()
		for i, it := range items {
			ok := err == nil || i < len(saved)
			e.record(durWrite{id: it.ID, tok: it.Tok, call: call, ret: ret, acked: ok, effective: ok, what: "SaveAll[" + p.String() + "]"})
		}
	case r < 50: // DeleteAll: a failure does not say which deletes were applied
		p := e.writePolicy()
		ids := []string{id, pick(e.ids...)}
		call := e.now()
		_, err := e.s.DeleteAll(ctx, ids, store.WithWritePolicy(p))
		ret := e.now()
		for _, id := range ids {
			e.record(durWrite{id: id, call: call, ret: ret, acked: err == nil, effective: true, what: "DeleteAll[" + p.String() + "]"})
		}
	case r < 58:
		e.transaction(ctx)
	case r < 66: // Sync
		if err := e.s.Sync(ctx); err != nil {
			var serr *store.SyncError[string]
			if !errors.As(err, &serr) {
				e.surprise("Sync: %v", err)
			}
		}
	case r < 70:
		if err := e.s.RetryPending(ctx, id); err != nil && !errors.Is(err, store.ErrNotPending) {
			var serr *store.SyncError[string]
			if !errors.As(err, &serr) {
				e.surprise("RetryPending(%s): %v", id, err)
			}
		}
	case r < 74:
		call := e.now()
		if err := e.s.CancelPending(ctx, id); err == nil {
			e.mu.Lock()
			e.cancels = append(e.cancels, durCancel{id: id, call: call, ret: e.now()})
			e.mu.Unlock()
		}
	case r < 88:
		e.s.Get(ctx, id, store.WithFetchPolicy(pick(allFetchPolicies...)))
	case r < 94:
		e.s.GetAll(ctx, store.WithFetchPolicy(pick(allFetchPolicies...)))
	case r < 97:
		e.s.Invalidate(id)
	default:
		e.s.InvalidateAll()
	}
}

// transaction commits one to three writes under the store's policy.
func (e *durEnv) transaction(ctx context.Context) {
	type txw struct {
		id  string
		tok int64
	}
	var writes []txw // the last write per ID
	call := e.now()
	err := e.s.Transaction(ctx, func(tx *store.Tx[ckItem, string]) error {
		for range 1 + rand.N(3) {
			id := pick(e.ids...)
			tok := int64(0)
			if chance(0.75) {
				tok = nextTok()
				if _, err := tx.Save(ctx, ckItem{ID: id, Tok: tok}); err != nil {
					return err
				}
			} else if err := tx.Delete(ctx, id); err != nil {
				return err
			}
			if i := slices.IndexFunc(writes, func(w txw) bool { return w.id == id }); i >= 0 {
				writes[i].tok = tok
			} else {
				writes = append(writes, txw{id, tok})
			}
		}
		return nil
	})
	ret := e.now()
	var te *store.TxError
	// A commit that failed and was not entirely undone may have left its
	// writes applied.
	maybe := err != nil && errors.As(err, &te) && !te.RolledBack
	for _, w := range writes {
		e.record(durWrite{id: w.id, tok: w.tok, call: call, ret: ret, acked: err == nil, effective: err == nil || maybe, what: "Tx[" + e.policy.String() + "]"})
	}
}

// TestDurabilityInvariant checks durabilityViolations on hand-written
// histories: it must accept what a correct store may end with and report a
// lost write, an invented value and a failed write that took effect.
func TestDurabilityInvariant(t *testing.T) {
	w := func(tok, call, ret int64, acked bool) durWrite {
		return durWrite{id: "k", tok: tok, call: call, ret: ret, acked: acked, effective: acked, what: "Save"}
	}
	maybe := func(tok, call, ret int64) durWrite {
		return durWrite{id: "k", tok: tok, call: call, ret: ret, effective: true, what: "Tx"}
	}
	tests := []struct {
		name    string
		writes  []durWrite
		cancels []durCancel
		final   int64
		lost    bool
	}{
		{"the last write holds", []durWrite{w(1, 0, 1, true), w(2, 2, 3, true)}, nil, 2, false},
		{"an earlier write holds", []durWrite{w(1, 0, 1, true), w(2, 2, 3, true)}, nil, 1, true},
		{"concurrent writes, either holds", []durWrite{w(1, 0, 5, true), w(2, 1, 3, true)}, nil, 1, false},
		{"absent after an acknowledged save", []durWrite{w(1, 0, 1, true)}, nil, 0, true},
		{"a later delete", []durWrite{w(1, 0, 1, true), w(0, 2, 3, true)}, nil, 0, false},
		{"cancelled after it", []durWrite{w(1, 0, 1, true)}, []durCancel{{"k", 2, 3}}, 0, false},
		{"cancelled before it", []durWrite{w(1, 2, 3, true)}, []durCancel{{"k", 0, 1}}, 0, true},
		{"a failed write changes nothing", []durWrite{w(1, 0, 1, true), w(2, 2, 3, false)}, nil, 1, false},
		{"a failed write's value", []durWrite{w(1, 0, 1, true), w(2, 2, 3, false)}, nil, 2, true},
		{"a transaction that may have stayed applied", []durWrite{w(1, 0, 1, true), maybe(2, 2, 3)}, nil, 2, false},
		{"a value nobody wrote", []durWrite{w(1, 0, 1, true)}, nil, 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := durabilityViolations([]string{"k"}, tt.writes, tt.cancels, map[string]int64{"k": tt.final}, map[string]string{"k": "the backend holds"})
			if (len(got) > 0) != tt.lost {
				t.Errorf("violations %q, want some: %v", got, tt.lost)
			}
		})
	}
}

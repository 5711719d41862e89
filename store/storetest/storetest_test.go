package storetest_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
	"github.com/nexusstore/nexus/store/storetest"
)

type (
	item       = storetest.Item
	memBackend = memory.Backend[item, string]
)

func newMemory() *memBackend {
	return memory.New[item, string](memory.WithClone(item.Clone))
}

func TestRunOnMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Backend[item, string] { return newMemory() })
}

// TestRunOnTxBackend runs the suite against txMemory, exercising the
// transaction subtests, which the memory backend alone skips.
func TestRunOnTxBackend(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Backend[item, string] { return txMemory{newMemory()} })
}

// txMemory adds store.TxBackend to a memory backend, for this test only: a
// transaction buffers its writes and applies them one by one on Commit, so
// a concurrent reader may see a half-applied commit.
type txMemory struct{ *memBackend }

var _ store.TxBackend[item, string] = txMemory{}

func (b txMemory) Begin(ctx context.Context) (store.BackendTx[item, string], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &memTx{b: b.memBackend, ctx: ctx, writes: make(map[string]*item)}, nil
}

type memTx struct {
	b      *memBackend
	ctx    context.Context
	mu     sync.Mutex
	order  []string         // IDs in the order first written
	writes map[string]*item // nil: deleted
	done   bool
}

func (tx *memTx) Get(ctx context.Context, id string) (store.Versioned[item], error) {
	if err := ctx.Err(); err != nil {
		return store.Versioned[item]{}, err
	}
	tx.mu.Lock()
	w, ok := tx.writes[id]
	tx.mu.Unlock()
	switch {
	case !ok:
		return tx.b.GetVersioned(ctx, id)
	case w == nil:
		return store.Versioned[item]{}, store.ErrNotFound
	}
	return store.Versioned[item]{Item: w.Clone()}, nil
}

func (tx *memTx) Save(ctx context.Context, id string, it item) (store.Versioned[item], error) {
	if err := ctx.Err(); err != nil {
		return store.Versioned[item]{}, err
	}
	tx.write(id, new(it.Clone()))
	return store.Versioned[item]{Item: it.Clone()}, nil
}

func (tx *memTx) Delete(ctx context.Context, id string) (bool, error) {
	_, err := tx.Get(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	tx.write(id, nil)
	return err == nil, nil
}

func (tx *memTx) write(id string, w *item) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if _, ok := tx.writes[id]; !ok {
		tx.order = append(tx.order, id)
	}
	tx.writes[id] = w
}

func (tx *memTx) Commit() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		return store.ErrTxDone
	}
	tx.done = true
	for _, id := range tx.order {
		var err error
		if w := tx.writes[id]; w != nil {
			_, err = tx.b.Save(tx.ctx, id, *w)
		} else {
			_, err = tx.b.Delete(tx.ctx, id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (tx *memTx) Rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.done = true
	return nil
}

// Broken backends, each breaking one rule the suite checks.
type (
	// ignoresContext.Get does not check its context.
	ignoresContext struct{ *memBackend }
	// sortsByID returns GetAll results in ID order, not first-save order.
	sortsByID struct{ *memBackend }
	// unconditional.SaveVersioned ignores the expected version.
	unconditional struct{ *memBackend }
	// eagerTx writes through at tx.Save, before Commit.
	eagerTx   struct{ txMemory }
	eagerTxTx struct{ store.BackendTx[item, string] }
)

func (b ignoresContext) Get(_ context.Context, id string) (item, error) {
	return b.memBackend.Get(context.Background(), id)
}

func (b sortsByID) GetAll(ctx context.Context, q store.Query[item]) ([]item, error) {
	items, err := b.memBackend.GetAll(ctx, store.Query[item]{})
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.ID, b.ID) })
	return q.Apply(items), err
}

func (b sortsByID) GetAllVersioned(ctx context.Context, q store.Query[item]) ([]store.Versioned[item], error) {
	vs, err := b.memBackend.GetAllVersioned(ctx, store.Query[item]{})
	slices.SortFunc(vs, func(a, b store.Versioned[item]) int { return cmp.Compare(a.Item.ID, b.Item.ID) })
	kept := vs[:0]
	for _, v := range vs {
		if q.Match(v.Item) && (q.Limit <= 0 || len(kept) < q.Limit) {
			kept = append(kept, v)
		}
	}
	return kept, err
}

func (b unconditional) SaveVersioned(ctx context.Context, id string, it item, _ uint64) (store.Versioned[item], error) {
	return b.memBackend.SaveVersioned(ctx, id, it, store.VersionAny)
}

func (b eagerTx) Begin(ctx context.Context) (store.BackendTx[item, string], error) {
	tx, err := b.txMemory.Begin(ctx)
	return eagerTxTx{tx}, err
}

func (tx eagerTxTx) Save(ctx context.Context, id string, it item) (store.Versioned[item], error) {
	v, err := tx.BackendTx.(*memTx).b.SaveVersioned(ctx, id, it, store.VersionAny)
	if err == nil {
		_, err = tx.BackendTx.Save(ctx, id, it)
	}
	return v, err
}

// brokenEnv names, in a child process, the broken backend to run the suite
// against.
const brokenEnv = "STORETEST_BROKEN_BACKEND"

var brokenBackends = map[string]struct {
	new func() store.Backend[item, string]
	// fail are the subtests that must fail; may are those that may
	// (they fail by chance).
	fail, may []string
}{
	"shares memory": {
		new:  func() store.Backend[item, string] { return memory.New[item, string]() },
		fail: []string{"NoAliasing"},
	},
	"ignores context": {
		new:  func() store.Backend[item, string] { return ignoresContext{newMemory()} },
		fail: []string{"ContextCanceled/Get"},
	},
	"sorts by ID": {
		new:  func() store.Backend[item, string] { return sortsByID{newMemory()} },
		fail: []string{"GetAll/InsertionOrder"},
	},
	"writes unconditionally": {
		new: func() store.Backend[item, string] { return unconditional{newMemory()} },
		fail: []string{
			"Versioned/SaveVersioned/Present/Stale", "Versioned/SaveVersioned/Present/VersionAbsent",
			"Versioned/SaveVersioned/Deleted/Stale", "Versioned/SaveVersioned/Never/Version1",
		},
		may: []string{"Versioned/ConcurrentIncrements"},
	},
	"writes before Commit": {
		new:  func() store.Backend[item, string] { return eagerTx{txMemory{newMemory()}} },
		fail: []string{"Tx/Commit", "Tx/Rollback"},
	},
}

// TestRunCatchesBrokenBackends runs the suite, in a child process, against
// backends that each break one rule, and checks that exactly the subtests
// for that rule fail.
func TestRunCatchesBrokenBackends(t *testing.T) {
	if name := os.Getenv(brokenEnv); name != "" {
		storetest.Run(t, func(*testing.T) store.Backend[item, string] { return brokenBackends[name].new() })
		return
	}
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	for name, c := range brokenBackends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRunCatchesBrokenBackends$", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a backend that %s", name)
			}
			var unexpected []string
			failed := failedLeaves(out, "TestRunCatchesBrokenBackends/")
			for _, f := range failed {
				if !slices.Contains(c.fail, f) && !slices.Contains(c.may, f) {
					unexpected = append(unexpected, f)
				}
			}
			for _, f := range c.fail {
				if !slices.Contains(failed, f) {
					t.Errorf("subtest %s passed; want it to fail", f)
				}
			}
			if len(unexpected) > 0 {
				t.Errorf("subtests %v failed; want only %v", unexpected, c.fail)
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

// failedLeaves returns the names, without prefix, of the failed subtests in
// go test output that have no failed subtests of their own.
func failedLeaves(out []byte, prefix string) []string {
	var failed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "--- FAIL: "+prefix); ok {
			name, _, _ := strings.Cut(rest, " (")
			failed = append(failed, name)
		}
	}
	var leaves []string
	for _, f := range failed {
		if !slices.ContainsFunc(failed, func(g string) bool { return strings.HasPrefix(g, f+"/") }) {
			leaves = append(leaves, f)
		}
	}
	return leaves
}

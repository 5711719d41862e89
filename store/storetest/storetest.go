package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
)

// backend is the backend type the suite runs against.
type backend = store.Backend[Item, string]

// Run runs the conformance suite against the backends newBackend returns,
// one fresh, empty backend per subtest (newBackend gets the subtest's t, so
// it can register cleanups). It checks the store.Backend contract and, when
// the backend implements them, store.VersionedBackend and store.TxBackend;
// the subtests of a capability the backend lacks are skipped. Subtests do
// not run in parallel with each other.
func Run(t *testing.T, newBackend func(t *testing.T) store.Backend[Item, string]) {
	runSubtests(t, newBackend, []subtest[backend]{
		{"GetAbsent", testGetAbsent},
		{"SaveThenGet", testSaveThenGet},
		{"SaveReplaces", testSaveReplaces},
		{"Delete", testDelete},
		{"NoAliasing", testNoAliasing},
		{"ContextCanceled", testContextCanceled},
		{"Concurrent", testConcurrent},
	})
	t.Run("GetAll", func(t *testing.T) { runGetAll(t, newBackend) })
	t.Run("Versioned", func(t *testing.T) { runVersioned(t, newBackend) })
	t.Run("Tx", func(t *testing.T) { runTx(t, newBackend) })
}

// subtest is a check run against a fresh backend of type B.
type subtest[B any] struct {
	name string
	run  func(t *testing.T, b B)
}

// runSubtests runs each test as a subtest of t, against a fresh backend
// that the caller knows to be a B.
func runSubtests[B any](t *testing.T, newBackend func(t *testing.T) backend, tests []subtest[B]) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newBackend(t).(B)) })
	}
}

// require skips t unless newBackend's backends implement B, the capability
// named name.
func require[B any](t *testing.T, newBackend func(t *testing.T) backend, name string) {
	if _, ok := newBackend(t).(B); !ok {
		t.Skipf("the backend does not implement %s", name)
	}
}

// sample returns an item with every field set.
func sample(id string) Item {
	return Item{ID: id, Name: "name of " + id, Count: 1, Tags: []string{"red", "green"}}
}

func mustSave(t *testing.T, b backend, it Item) Item {
	t.Helper()
	got, err := b.Save(t.Context(), it.ID, it)
	if err != nil {
		t.Fatalf("Save(%q): %v", it.ID, err)
	}
	return got
}

func mustGet(t *testing.T, b backend, id string) Item {
	t.Helper()
	got, err := b.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return got
}

func mustGetAll(t *testing.T, b backend, q store.Query[Item]) []Item {
	t.Helper()
	got, err := b.GetAll(t.Context(), q)
	if err != nil {
		t.Fatalf("GetAll: %v", err)
	}
	return got
}

func wantNotFound(t *testing.T, b backend, id string) {
	t.Helper()
	if got, err := b.Get(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want an error matching store.ErrNotFound", id, got, err)
	}
}

// wantItems fails unless got holds want's items in want's order.
func wantItems(t *testing.T, what string, got []Item, want ...Item) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = equal(got[i], want[i])
	}
	if !same {
		t.Fatalf("%s = %v (%+v); want %v (%+v)", what, ids(got), got, ids(want), want)
	}
}

func testGetAbsent(t *testing.T, b backend) {
	wantNotFound(t, b, "absent")
}

func testSaveThenGet(t *testing.T, b backend) {
	it := sample("a")
	if got := mustSave(t, b, it); !equal(got, it) {
		t.Fatalf("Save returned %+v; want %+v", got, it)
	}
	if got := mustGet(t, b, "a"); !equal(got, it) {
		t.Fatalf("Get after Save = %+v; want %+v", got, it)
	}
	wantNotFound(t, b, "b")
}

func testSaveReplaces(t *testing.T, b backend) {
	mustSave(t, b, sample("a"))
	// No tags this time: a backend that merges instead of replacing keeps them.
	second := Item{ID: "a", Name: "second", Count: 2}
	if got := mustSave(t, b, second); !equal(got, second) {
		t.Fatalf("Save returned %+v; want %+v", got, second)
	}
	if got := mustGet(t, b, "a"); !equal(got, second) {
		t.Fatalf("Get after a second Save = %+v; want %+v", got, second)
	}
	wantItems(t, "GetAll", mustGetAll(t, b, store.Query[Item]{}), second)
}

func testDelete(t *testing.T, b backend) {
	ctx := t.Context()
	if existed, err := b.Delete(ctx, "a"); err != nil || existed {
		t.Fatalf("Delete of an absent item = %v, %v; want false, nil", existed, err)
	}
	mustSave(t, b, sample("a"))
	mustSave(t, b, sample("b"))
	if existed, err := b.Delete(ctx, "a"); err != nil || !existed {
		t.Fatalf("Delete of a stored item = %v, %v; want true, nil", existed, err)
	}
	wantNotFound(t, b, "a")
	if existed, err := b.Delete(ctx, "a"); err != nil || existed {
		t.Fatalf("second Delete = %v, %v; want false, nil", existed, err)
	}
	wantItems(t, "GetAll after Delete", mustGetAll(t, b, store.Query[Item]{}), sample("b"))
}

func runGetAll(t *testing.T, newBackend func(t *testing.T) backend) {
	// Saved out of ID order, so that a backend ordering by key is caught by
	// InsertionOrder.
	var saved []Item
	for i, id := range []string{"c", "a", "e", "b", "f", "d"} {
		saved = append(saved, Item{ID: id, Name: "item " + id, Count: i, Tags: []string{id}})
	}
	seed := func(t *testing.T) backend {
		b := newBackend(t)
		for _, it := range saved {
			mustSave(t, b, it)
		}
		return b
	}
	even := func(it Item) bool { return it.Count%2 == 0 }
	none := func(Item) bool { return false }

	t.Run("Empty", func(t *testing.T) {
		b := newBackend(t)
		if got := mustGetAll(t, b, store.Query[Item]{}); len(got) != 0 {
			t.Fatalf("GetAll of an empty backend = %v; want no items", ids(got))
		}
	})
	t.Run("InsertionOrder", func(t *testing.T) {
		b := seed(t)
		wantItems(t, "GetAll", mustGetAll(t, b, store.Query[Item]{}), saved...)

		// Saving again keeps the place; deleting and saving again moves to the end.
		resaved := saved[1]
		resaved.Name = "saved again"
		mustSave(t, b, resaved)
		if _, err := b.Delete(t.Context(), saved[0].ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustSave(t, b, saved[0])
		want := append([]Item{resaved}, saved[2:]...)
		want = append(want, saved[0])
		wantItems(t, "GetAll after re-saving one item and deleting and re-saving another",
			mustGetAll(t, b, store.Query[Item]{}), want...)
	})

	// The remaining subtests hold the backend to its own order, whatever it is.
	queries := []struct {
		name string
		q    store.Query[Item]
	}{
		{"Filter", store.Query[Item]{Filter: even}},
		{"Limit", store.Query[Item]{Limit: 2}},
		{"LimitAboveCount", store.Query[Item]{Limit: len(saved) + 1}},
		{"FilterAndLimit", store.Query[Item]{Filter: even, Limit: 2}},
		{"NoMatch", store.Query[Item]{Filter: none}},
		{"NoMatchAndLimit", store.Query[Item]{Filter: none, Limit: 1}},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			b := seed(t)
			all := mustGetAll(t, b, store.Query[Item]{})
			if len(all) != len(saved) {
				t.Fatalf("GetAll = %v; want the %d saved items", ids(all), len(saved))
			}
			got := mustGetAll(t, b, tt.q)
			want := tt.q.Apply(all)
			wantItems(t, fmt.Sprintf("GetAll(filter %t, limit %d)", tt.q.Filter != nil, tt.q.Limit), got, want...)
		})
	}
}

// testNoAliasing checks that callers and the backend share no memory: a
// caller modifying what it saved or got must not change what the backend
// returns next.
func testNoAliasing(t *testing.T, b backend) {
	ctx := t.Context()
	orig := Item{ID: "a", Name: "original", Tags: []string{"x", "y"}}
	input := orig.Clone()
	check := func(after string) {
		t.Helper()
		if got := mustGet(t, b, "a"); !equal(got, orig) {
			t.Fatalf("after %s, Get = %+v; want %+v (the backend shares memory with its caller)", after, got, orig)
		}
	}

	saved := mustSave(t, b, input)
	input.Tags[0] = "modified"
	check("modifying the Tags of the item passed to Save")

	if len(saved.Tags) > 0 {
		saved.Tags[0] = "modified"
		check("modifying the Tags of the item Save returned")
	}

	got := mustGet(t, b, "a")
	got.Tags[0] = "modified"
	check("modifying the Tags of the item Get returned")

	all := mustGetAll(t, b, store.Query[Item]{})
	if len(all) != 1 {
		t.Fatalf("GetAll = %v; want [a]", ids(all))
	}
	all[0].Tags[0] = "modified"
	all[0] = Item{ID: "a", Name: "replaced"}
	check("modifying the slice GetAll returned")

	vb, ok := b.(store.VersionedBackend[Item, string])
	if !ok {
		return
	}
	v, err := vb.GetVersioned(ctx, "a")
	if err != nil {
		t.Fatalf("GetVersioned: %v", err)
	}
	v.Item.Tags[0] = "modified"
	check("modifying the Tags of the item GetVersioned returned")

	vs, err := vb.GetAllVersioned(ctx, store.Query[Item]{})
	if err != nil {
		t.Fatalf("GetAllVersioned: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("GetAllVersioned returned %d items; want 1", len(vs))
	}
	vs[0].Item.Tags[0] = "modified"
	check("modifying the Tags of an item GetAllVersioned returned")

	input = orig.Clone()
	sv, err := vb.SaveVersioned(ctx, "a", input, store.VersionAny)
	if err != nil {
		t.Fatalf("SaveVersioned: %v", err)
	}
	input.Tags[0] = "modified"
	check("modifying the Tags of the item passed to SaveVersioned")
	sv.Item.Tags[0] = "modified"
	check("modifying the Tags of the item SaveVersioned returned")
}

// testContextCanceled checks that every method checks its context: with a
// context already cancelled, each fails with an error matching
// context.Canceled and changes nothing.
func testContextCanceled(t *testing.T, b backend) {
	it := sample("a")
	mustSave(t, b, it)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	changed := Item{ID: "a", Name: "changed"}

	type call struct {
		name string
		call func() error
	}
	calls := []call{
		{"Get", func() error { _, err := b.Get(ctx, "a"); return err }},
		{"GetAll", func() error { _, err := b.GetAll(ctx, store.Query[Item]{}); return err }},
		{"Save", func() error { _, err := b.Save(ctx, "a", changed); return err }},
		{"Delete", func() error { _, err := b.Delete(ctx, "a"); return err }},
	}
	if vb, ok := b.(store.VersionedBackend[Item, string]); ok {
		calls = append(calls,
			call{"GetVersioned", func() error { _, err := vb.GetVersioned(ctx, "a"); return err }},
			call{"GetAllVersioned", func() error { _, err := vb.GetAllVersioned(ctx, store.Query[Item]{}); return err }},
			call{"SaveVersioned", func() error { _, err := vb.SaveVersioned(ctx, "a", changed, store.VersionAny); return err }},
			call{"DeleteVersioned", func() error { _, err := vb.DeleteVersioned(ctx, "a", store.VersionAny); return err }},
		)
	}
	if tb, ok := b.(store.TxBackend[Item, string]); ok {
		calls = append(calls, call{"Begin", func() error {
			tx, err := tb.Begin(ctx)
			if err == nil {
				_ = tx.Rollback()
			}
			return err
		}})
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: err = %v; want an error matching context.Canceled", c.name, err)
			}
			if got := mustGet(t, b, "a"); !equal(got, it) {
				t.Errorf("after %s with a cancelled context, Get = %+v; want %+v unchanged", c.name, got, it)
			}
		})
	}
}

// testConcurrent runs saves, gets and deletes from several goroutines (run
// it with -race) and checks the final state.
func testConcurrent(t *testing.T, b backend) {
	const workers, perWorker = 8, 40
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := concurrentStep(ctx, b, w, i); err != nil {
					t.Errorf("worker %d, step %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Each worker keeps its even-numbered items; all of them share "shared".
	want := map[string]bool{"shared": true}
	for w := range workers {
		for i := 0; i < perWorker; i += 2 {
			want[workerID(w, i)] = true
		}
	}
	all := mustGetAll(t, b, store.Query[Item]{})
	if len(all) != len(want) {
		t.Fatalf("GetAll after the workers returned %d items; want %d", len(all), len(want))
	}
	for _, it := range all {
		if !want[it.ID] {
			t.Fatalf("GetAll after the workers returned %q, which should not exist", it.ID)
		}
		delete(want, it.ID) // a duplicate now fails the check above
	}
}

func workerID(w, i int) string { return fmt.Sprintf("w%d-%d", w, i) }

// concurrentStep is one worker step of testConcurrent.
func concurrentStep(ctx context.Context, b backend, w, i int) error {
	id := workerID(w, i)
	it := Item{ID: id, Name: "worker item", Count: i, Tags: []string{id}}
	if _, err := b.Save(ctx, id, it); err != nil {
		return fmt.Errorf("Save(%q): %w", id, err)
	}
	got, err := b.Get(ctx, id)
	if err != nil || !equal(got, it) {
		return fmt.Errorf("Get(%q) = %+v, %v; want %+v", id, got, err, it)
	}
	if i%2 == 1 {
		if existed, err := b.Delete(ctx, id); err != nil || !existed {
			return fmt.Errorf("Delete(%q) = %v, %v; want true, nil", id, existed, err)
		}
		if _, err := b.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get(%q) after Delete: err = %v; want store.ErrNotFound", id, err)
		}
	}
	shared := Item{ID: "shared", Name: fmt.Sprintf("worker %d", w), Count: i}
	if _, err := b.Save(ctx, "shared", shared); err != nil {
		return fmt.Errorf("Save(shared): %w", err)
	}
	if got, err := b.Get(ctx, "shared"); err != nil || got.ID != "shared" {
		return fmt.Errorf("Get(shared) = %+v, %v; want an item with ID shared", got, err)
	}
	if _, err := b.GetAll(ctx, store.Query[Item]{Limit: 5}); err != nil {
		return fmt.Errorf("GetAll: %w", err)
	}
	return nil
}

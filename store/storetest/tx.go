package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nexusstore/nexus/store"
)

// txBackend is the transactional backend type the suite runs against.
type txBackend = store.TxBackend[Item, string]

// blockLimit bounds reads made outside an open transaction: a backend whose
// reads wait for open transactions fails instead of hanging the suite.
const blockLimit = 10 * time.Second

// runTx checks the store.TxBackend contract, or skips when the backend does
// not implement it.
func runTx(t *testing.T, newBackend func(t *testing.T) backend) {
	require[txBackend](t, newBackend, "store.TxBackend")
	runSubtests(t, newBackend, []subtest[txBackend]{
		{"Commit", testTxCommit},
		{"Rollback", testTxRollback},
		{"GetAbsent", testTxGetAbsent},
	})
}

// The items of the transaction tests: the transaction creates created,
// replaces kept with changed, and deletes gone.
var (
	created = Item{ID: "created", Name: "created in the transaction", Tags: []string{"new"}}
	kept    = Item{ID: "kept", Name: "before the transaction", Count: 1}
	changed = Item{ID: "kept", Name: "changed in the transaction", Count: 2}
	gone    = Item{ID: "gone", Name: "deleted in the transaction"}
)

// beginWithWrites saves kept and gone, begins a transaction and makes the
// suite's writes in it, checking that the transaction sees them. The
// transaction is rolled back when the test ends (a no-op after Commit).
func beginWithWrites(t *testing.T, b txBackend) store.BackendTx[Item, string] {
	t.Helper()
	mustSave(t, b, kept)
	mustSave(t, b, gone)
	ctx := t.Context()
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })

	for _, it := range []Item{created, changed} {
		v, err := tx.Save(ctx, it.ID, it)
		if err != nil {
			t.Fatalf("tx.Save(%q): %v", it.ID, err)
		}
		if !equal(v.Item, it) {
			t.Fatalf("tx.Save returned %+v; want %+v", v.Item, it)
		}
		if got, err := tx.Get(ctx, it.ID); err != nil || !equal(got.Item, it) {
			t.Fatalf("tx.Get(%q) after tx.Save = %+v, %v; want its own write %+v", it.ID, got.Item, err, it)
		}
	}
	if existed, err := tx.Delete(ctx, gone.ID); err != nil || !existed {
		t.Fatalf("tx.Delete of a stored item = %v, %v; want true, nil", existed, err)
	}
	if got, err := tx.Get(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tx.Get after tx.Delete = %+v, %v; want an error matching store.ErrNotFound", got.Item, err)
	}
	if existed, err := tx.Delete(ctx, "never"); err != nil || existed {
		t.Fatalf("tx.Delete of an absent item = %v, %v; want false, nil", existed, err)
	}
	return tx
}

// wantOutside checks what a reader outside any transaction sees: want maps
// IDs to their items, nil for absent.
func wantOutside(t *testing.T, b txBackend, when string, want map[string]*Item) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), blockLimit)
	defer cancel()
	for id, w := range want {
		got, err := b.Get(ctx, id)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("%s, Get(%q) outside the transaction blocked for %v; reads must not wait for open transactions", when, id, blockLimit)
		case w == nil && !errors.Is(err, store.ErrNotFound):
			t.Fatalf("%s, Get(%q) outside the transaction = %+v, %v; want store.ErrNotFound", when, id, got, err)
		case w != nil && (err != nil || !equal(got, *w)):
			t.Fatalf("%s, Get(%q) outside the transaction = %+v, %v; want %+v", when, id, got, err, *w)
		}
	}
}

func testTxCommit(t *testing.T, b txBackend) {
	tx := beginWithWrites(t, b)
	wantOutside(t, b, "before Commit", map[string]*Item{created.ID: nil, kept.ID: &kept, gone.ID: &gone})
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	wantOutside(t, b, "after Commit", map[string]*Item{created.ID: &created, kept.ID: &changed, gone.ID: nil})
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback after Commit = %v; want nil", err)
	}
	wantOutside(t, b, "after Rollback after Commit", map[string]*Item{created.ID: &created, kept.ID: &changed, gone.ID: nil})
}

func testTxRollback(t *testing.T, b txBackend) {
	tx := beginWithWrites(t, b)
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantOutside(t, b, "after Rollback", map[string]*Item{created.ID: nil, kept.ID: &kept, gone.ID: &gone})
}

func testTxGetAbsent(t *testing.T, b txBackend) {
	tx, err := b.Begin(t.Context())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	if got, err := tx.Get(t.Context(), "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tx.Get of an absent item = %+v, %v; want an error matching store.ErrNotFound", got.Item, err)
	}
}

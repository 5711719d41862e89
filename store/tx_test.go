package store_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestTransactionCommit(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a", Name: "a0"}, User{ID: "b", Name: "b0"})
	err := f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
		a, err := tx.Get(bg, "a")
		if err != nil {
			return err
		}
		a.Name = "a1"
		if _, err := tx.Save(bg, a); err != nil {
			return err
		}
		if got, _ := tx.Get(bg, "a"); got.Name != "a1" {
			t.Errorf("tx.Get does not see the tx's own write: %+v", got)
		}
		if err := tx.Delete(bg, "b"); err != nil {
			return err
		}
		if _, err := tx.Get(bg, "b"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("tx.Get of a deleted item: %v", err)
		}
		if _, err := tx.Save(bg, User{ID: "c", Name: "c1"}); err != nil {
			return err
		}
		// The store's own methods see committed state, without deadlock.
		if got, err := f.s.Get(bg, "a"); err != nil || got.Name != "a0" {
			t.Errorf("store.Get inside the tx = %+v, %v; want the committed a0", got, err)
		}
		if _, err := f.s.Get(bg, "c"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an uncommitted create is visible: %v", err)
		}
		if _, err := f.s.Save(bg, User{ID: "z", Name: "outside"}); err != nil {
			t.Errorf("store.Save inside the tx: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"a": "a1", "c": "c1", "z": "outside"} {
		if b, _ := f.backendHas(id); b.Name != want {
			t.Errorf("backend %s = %+v, want %s", id, b, want)
		}
		if c, _ := f.cached(id); c.Name != want {
			t.Errorf("cache %s = %+v, want %s", id, c, want)
		}
	}
	if _, ok := f.backendHas("b"); ok {
		t.Error("b not deleted")
	}
}

func TestTransactionCallbackErrorAppliesNothing(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a", Name: "a0"})
	boom := errors.New("boom")
	var leaked *store.Tx[User, string]
	err := f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
		leaked = tx
		_, _ = tx.Save(bg, User{ID: "a", Name: "a1"})
		_, _ = tx.Save(bg, User{ID: "n", Name: "new"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transaction = %v, want the callback's error", err)
	}
	if b, _ := f.backendHas("a"); b.Name != "a0" {
		t.Errorf("backend changed: %+v", b)
	}
	if _, ok := f.backendHas("n"); ok {
		t.Error("n created")
	}
	if _, err := leaked.Save(bg, User{ID: "x"}); !errors.Is(err, store.ErrTxDone) {
		t.Errorf("Tx used after the callback: %v", err)
	}
}

func TestTransactionPanicAppliesNothingAndRepanics(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	f.seed(User{ID: "a", Name: "a0"})
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
			_, _ = tx.Save(bg, User{ID: "a", Name: "a1"})
			panic("kaboom")
		})
	}()
	ops := f.rec.Operations()
	if last := ops[len(ops)-1]; last.Operation != store.OpTransaction || last.Success {
		t.Errorf("the panicked transaction was reported as %+v", last)
	}
	if b, _ := f.backendHas("a"); b.Name != "a0" {
		t.Errorf("backend changed: %+v", b)
	}
	if c, ok := f.cached("a"); ok {
		t.Errorf("cache changed: %+v", c)
	}
	// The store still works: no lock was left held.
	if _, err := f.s.Save(bg, User{ID: "a", Name: "after"}); err != nil {
		t.Fatal(err)
	}
}

// Without a backend transaction, a commit that fails half-way is undone by
// compensating writes, in the backend and in the cache.
func TestTransactionCompensatingRollback(t *testing.T) {
	saves := 0
	var failSave func(n int) error
	f := newFixture(t, store.Config[User, string]{}, memory.WithFault(func(_ context.Context, op memory.Op, _ any) error {
		if op == memory.OpSave {
			saves++
			if failSave != nil {
				return failSave(saves)
			}
		}
		return nil
	}))
	f.seed(User{ID: "a", Name: "a0"}, User{ID: "b", Name: "b0"})
	if _, err := f.s.GetAll(bg); err != nil {
		t.Fatal(err)
	}
	saves = 0
	failSave = func(n int) error {
		if n == 3 {
			return store.ErrUnavailable
		}
		return nil
	}
	err := f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
		_, _ = tx.Save(bg, User{ID: "a", Name: "a1"})
		_, _ = tx.Save(bg, User{ID: "c", Name: "c1"}) // a create: undone by a delete
		_, _ = tx.Save(bg, User{ID: "b", Name: "b1"}) // fails
		return nil
	})
	var te *store.TxError
	if !errors.As(err, &te) || te.Atomic || !te.RolledBack || te.Applied != 2 || te.Total != 3 || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Transaction = %v (%+v)", err, te)
	}
	if msg := err.Error(); msg != "store: transaction: write 3 of 3 failed, the 2 applied rolled back by compensating writes: "+te.Err.Error() {
		t.Errorf("message = %q", msg)
	}
	for id, want := range map[string]string{"a": "a0", "b": "b0"} {
		if b, _ := f.backendHas(id); b.Name != want {
			t.Errorf("backend %s = %+v, want %s", id, b, want)
		}
		// The compensation wrote a's original again (a backend may stamp
		// fields on a save): the cache drops it. b's save failed, so b0
		// stays cached (to be revalidated). A read gets the backend's.
		if c, ok := f.cached(id); ok != (id == "b") {
			t.Errorf("cache %s = %+v, %v after the compensation", id, c, ok)
		}
		if u, err := f.s.Get(context.Background(), id); err != nil || u.Name != want {
			t.Errorf("Get %s = %+v, %v; want %s", id, u, err, want)
		}
	}
	if _, ok := f.backendHas("c"); ok {
		t.Error("the created c was not undone")
	}
	if _, ok := f.cached("c"); ok {
		t.Error("the created c is cached")
	}

	// When the undo fails too, the error says the backend may hold writes.
	saves = 0
	failSave = func(n int) error {
		if n >= 2 {
			return store.ErrUnavailable
		}
		return nil
	}
	err = f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
		_, _ = tx.Save(bg, User{ID: "a", Name: "a2"})
		_, _ = tx.Save(bg, User{ID: "b", Name: "b2"})
		return nil
	})
	if !errors.As(err, &te) || te.RolledBack || te.RollbackErr == nil || te.Applied != 1 {
		t.Fatalf("Transaction = %v", err)
	}
	// The backend may hold a2 now: the cache must not vouch for a0 any more.
	if c, ok := f.cached("a"); ok {
		t.Errorf("cache shows %+v after a failed undo; want it dropped", c)
	}
	if b, _ := f.backendHas("a"); b.Name != "a2" {
		t.Errorf("backend holds %+v, want the write the undo could not take back", b)
	}
}

func TestTransactionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, store.Config[User, string]{TransactionTimeout: time.Second})
		err := f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
			_, _ = tx.Save(bg, User{ID: "a"})
			time.Sleep(2 * time.Second)
			_, err := tx.Save(bg, User{ID: "b"})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Save after the timeout: %v", err)
			}
			return nil
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Transaction = %v, want DeadlineExceeded", err)
		}
		if _, ok := f.backendHas("a"); ok {
			t.Error("a timed-out transaction was applied")
		}
		// The caller's deadline bounds it too.
		ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
		defer cancel()
		err = f.s.Transaction(ctx, func(tx *store.Tx[User, string]) error {
			<-tx.Context().Done()
			return nil
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Transaction = %v, want DeadlineExceeded", err)
		}
		_ = f.s.Close(bg)
	})
}

func TestTransactionWriteBehind(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{WritePolicy: store.WriteCacheFirst})
	err := f.s.Transaction(bg, func(tx *store.Tx[User, string]) error {
		_, _ = tx.Save(bg, User{ID: "a"})
		_, _ = tx.Save(bg, User{ID: "b"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.s.PendingChanges(); len(p) != 2 {
		t.Errorf("pending = %+v", p)
	}
	if f.b.Len() != 0 {
		t.Error("write-behind transaction reached the backend before Sync")
	}
}

func TestTransactionNilCallback(t *testing.T) {
	f := newFixture(t, store.Config[User, string]{})
	if err := f.s.Transaction(bg, nil); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("nil callback: %v", err)
	}
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// These tests run the store over the Backend: its atomic commit path
// (TxBackend) and its conflict handling (VersionedBackend) against the real
// server.

func counterID(c counter) string { return c.ID }

func newStore(t *testing.T, b store.Backend[counter, string]) *store.Store[counter, string] {
	t.Helper()
	s, err := store.New(b, store.Config[counter, string]{IDOf: counterID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// failingTx fails the second save of every backend transaction.
type failingTx struct {
	*postgres.Backend[counter, string]
}

func (f failingTx) Begin(ctx context.Context) (store.BackendTx[counter, string], error) {
	tx, err := f.Backend.Begin(ctx)
	return &secondSaveFails{BackendTx: tx}, err
}

type secondSaveFails struct {
	store.BackendTx[counter, string]
	n int
}

func (s *secondSaveFails) Save(ctx context.Context, id string, c counter) (store.Versioned[counter], error) {
	if s.n++; s.n == 2 {
		return store.Versioned[counter]{}, fmt.Errorf("injected: %w", store.ErrUnavailable)
	}
	return s.BackendTx.Save(ctx, id, c)
}

func TestStoreTransactions(t *testing.T) {
	ctx := t.Context()
	b := open[counter, string](t, sharedPool(t), postgres.WithTable(newTable()))
	s := newStore(t, b)
	if _, err := s.SaveAll(ctx, []counter{{"alice", 100}, {"bob", 5}}); err != nil {
		t.Fatal(err)
	}
	err := s.Transaction(ctx, func(tx *store.Tx[counter, string]) error {
		a, _ := tx.Get(ctx, "alice")
		a.N -= 40
		_, _ = tx.Save(ctx, a)
		_, _ = tx.Save(ctx, counter{"carol", 40})
		return tx.Delete(ctx, "bob")
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.GetAll(ctx, store.Query[counter]{})
	if err != nil || len(all) != 2 || all[0] != (counter{"alice", 60}) || all[1] != (counter{"carol", 40}) {
		t.Errorf("table holds %+v, %v; want alice 60, carol 40", all, err)
	}

	// A transaction that fails half-way leaves nothing behind.
	fs := newStore(t, failingTx{b})
	err = fs.Transaction(ctx, func(tx *store.Tx[counter, string]) error {
		_, _ = tx.Save(ctx, counter{"alice", 0})
		_, _ = tx.Save(ctx, counter{"dave", 1})
		return nil
	})
	var te *store.TxError
	if !errors.As(err, &te) || !te.Atomic || !te.RolledBack {
		t.Fatalf("failing transaction: %v; want an atomic rollback", err)
	}
	if got, err := b.Get(ctx, "alice"); err != nil || got.N != 60 {
		t.Errorf("alice after the rolled-back transaction: %+v, %v; want 60", got, err)
	}
	if _, err := b.Get(ctx, "dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("dave after the rolled-back transaction: %v; want not found", err)
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nexusstore/nexus/store"
)

// Begin starts a transaction: an immediate SQLite transaction on one pooled
// connection, holding the database's write lock until Commit or Rollback
// (other writers wait, for up to the busy timeout; readers go on, seeing
// the last committed state). Keep it short. ctx bounds the whole
// transaction: when it is done, the transaction is rolled back.
func (b *Backend[T, ID]) Begin(ctx context.Context) (store.BackendTx[T, ID], error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", classify(err))
	}
	return &backendTx[T, ID]{b: b, tx: tx}, nil
}

// backendTx is the store.BackendTx of a Backend. Its reads see its own
// writes; its methods fail with an error matching store.ErrTxDone after
// Commit or Rollback.
type backendTx[T any, ID Key] struct {
	b  *Backend[T, ID]
	tx *sql.Tx
}

var _ store.BackendTx[struct{}, string] = (*backendTx[struct{}, string])(nil)

// Get reads an item as the transaction sees it, its own writes included.
func (t *backendTx[T, ID]) Get(ctx context.Context, id ID) (store.Versioned[T], error) {
	key, err := encodeKey(id)
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx get", id, err)
	}
	v, ok, err := t.b.read(ctx, t.tx, id, key)
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx get", id, err)
	}
	return v, nil
}

// Save creates or replaces an item, unconditionally: the transaction holds
// the write lock, so a version it read is still current.
func (t *backendTx[T, ID]) Save(ctx context.Context, id ID, item T) (store.Versioned[T], error) {
	key, data, err := t.b.encode(id, item)
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx save", id, err)
	}
	v, err := t.b.upsert(ctx, t.tx, key, data, item)
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx save", id, err)
	}
	return v, nil
}

// Delete removes an item and reports whether it existed.
func (t *backendTx[T, ID]) Delete(ctx context.Context, id ID) (bool, error) {
	key, err := encodeKey(id)
	if err != nil {
		return false, t.b.fail("tx delete", id, err)
	}
	deleted, err := t.b.remove(ctx, t.tx, key)
	if err != nil {
		return false, t.b.fail("tx delete", id, err)
	}
	return deleted, nil
}

// Commit makes the writes visible and releases the write lock.
func (t *backendTx[T, ID]) Commit() error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", classify(err))
	}
	return nil
}

// Rollback undoes the transaction's writes. After Commit, or a second time,
// it does nothing and returns nil.
func (t *backendTx[T, ID]) Rollback() error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("sqlite: rollback: %w", classify(err))
	}
	return nil
}

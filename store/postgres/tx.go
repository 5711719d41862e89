package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nexusstore/nexus/store"
)

// Begin starts a transaction: a READ COMMITTED PostgreSQL transaction on one
// connection from the pool, held until Commit or Rollback. Its Get locks the
// row it reads (SELECT ... FOR UPDATE), so a version read in the
// transaction stays current until it ends; its writes lock their rows too.
// Other writers of those rows wait; readers do not. Keep it short. ctx
// bounds the whole transaction: once it is done, every method fails and
// the transaction is rolled back.
func (b *Backend[T, ID]) Begin(ctx context.Context) (store.BackendTx[T, ID], error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", classify(err))
	}
	return &backendTx[T, ID]{b: b, tx: tx, ctx: ctx}, nil
}

// backendTx is the store.BackendTx of a Backend. Its reads see its own
// writes; its methods fail with an error matching store.ErrTxDone after
// Commit or Rollback.
type backendTx[T any, ID Key] struct {
	b   *Backend[T, ID]
	tx  pgx.Tx
	ctx context.Context // Begin's: bounds the whole transaction
}

var _ store.BackendTx[struct{}, string] = (*backendTx[struct{}, string])(nil)

// bound returns a context that ends when ctx or the transaction's context
// does.
func (t *backendTx[T, ID]) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.ctx.Done() == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if t.ctx.Err() != nil {
		// Ended already: AfterFunc would cancel ctx from another
		// goroutine, maybe after the query ran.
		cancel(context.Cause(t.ctx))
		return ctx, func() {}
	}
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// Get reads an item as the transaction sees it, its own writes included,
// and locks its row until the transaction ends.
func (t *backendTx[T, ID]) Get(ctx context.Context, id ID) (store.Versioned[T], error) {
	key, err := encodeKey(id)
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx get", id, err)
	}
	ctx, cancel := t.bound(ctx)
	defer cancel()
	v, ok, err := t.b.read(ctx, t.tx, t.b.stmt.getLock, id, key)
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx get", id, err)
	}
	return v, nil
}

// Save creates or replaces an item, unconditionally, and returns the version
// it has once committed.
func (t *backendTx[T, ID]) Save(ctx context.Context, id ID, item T) (store.Versioned[T], error) {
	key, data, err := t.b.encode(id, item)
	if err != nil {
		return store.Versioned[T]{}, t.b.fail("tx save", id, err)
	}
	ctx, cancel := t.bound(ctx)
	defer cancel()
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
	ctx, cancel := t.bound(ctx)
	defer cancel()
	deleted, err := t.b.remove(ctx, t.tx, key)
	if err != nil {
		return false, t.b.fail("tx delete", id, err)
	}
	return deleted, nil
}

// Commit makes the writes visible and releases the connection. A failed
// Commit applies nothing (the server rolls the transaction back), except
// when the connection is lost after the COMMIT was sent: then the outcome
// is unknown, as with any database.
func (t *backendTx[T, ID]) Commit() error {
	if err := t.tx.Commit(t.ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", classify(err))
	}
	return nil
}

// Rollback undoes the transaction's writes and releases the connection.
// After Commit, or a second time, it does nothing and returns nil. When the
// transaction's context is already done, the connection is closed instead,
// which rolls the transaction back all the same.
func (t *backendTx[T, ID]) Rollback() error {
	err := t.tx.Rollback(t.ctx)
	if err == nil || errors.Is(err, pgx.ErrTxClosed) || t.ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("postgres: rollback: %w", classify(err))
}

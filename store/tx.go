package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Tx is a transaction in progress, valid only inside the Transaction
// callback. Its writes are buffered and applied when the callback returns
// nil; Get sees them. Safe for use by several goroutines within the
// callback.
type Tx[T any, ID comparable] struct {
	s      *Store[T, ID]
	ctx    context.Context
	o      *op
	mu     sync.Mutex
	writes map[ID]int // index into changes
	chs    []change[T, ID]
	done   bool
}

// Context returns the transaction's context: the caller's, bounded by
// Config.TransactionTimeout.
func (tx *Tx[T, ID]) Context() context.Context { return tx.ctx }

func (tx *Tx[T, ID]) check(ctx context.Context) error {
	if tx.done {
		return ErrTxDone
	}
	if err := tx.ctx.Err(); err != nil {
		return fmt.Errorf("store: transaction: %w", err)
	}
	return ctx.Err()
}

// Get returns the transaction's own write of id if it made one, else the
// committed item (read under the store's fetch policy).
func (tx *Tx[T, ID]) Get(ctx context.Context, id ID) (T, error) {
	var zero T
	tx.mu.Lock()
	if err := tx.check(ctx); err != nil {
		tx.mu.Unlock()
		return zero, err
	}
	if i, ok := tx.writes[id]; ok {
		ch := tx.chs[i]
		tx.mu.Unlock()
		if ch.deleted {
			return zero, notFound(id)
		}
		return ch.value, nil
	}
	tx.mu.Unlock()
	v, _, err := tx.s.get(ctx, id, tx.s.cfg.FetchPolicy, tx.o)
	return v, err
}

// Save buffers a save of item, applied at commit.
func (tx *Tx[T, ID]) Save(ctx context.Context, item T) (T, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.check(ctx); err != nil {
		var zero T
		return zero, err
	}
	tx.buffer(change[T, ID]{id: tx.s.cfg.IDOf(item), value: item})
	return item, nil
}

// Delete buffers a delete of id, applied at commit.
func (tx *Tx[T, ID]) Delete(ctx context.Context, id ID) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.check(ctx); err != nil {
		return err
	}
	tx.buffer(change[T, ID]{id: id, deleted: true})
	return nil
}

// buffer keeps the latest change per ID, in the order IDs were first
// written.
func (tx *Tx[T, ID]) buffer(ch change[T, ID]) {
	if i, ok := tx.writes[ch.id]; ok {
		tx.chs[i] = ch
		return
	}
	tx.writes[ch.id] = len(tx.chs)
	tx.chs = append(tx.chs, ch)
}

// Transaction runs fn and, if it returns nil, applies its buffered writes
// as one unit under the store's write policy; nothing is visible outside the
// transaction before that. If fn returns an error or panics, nothing is
// applied and the error (or the panic, re-raised) reaches the caller. fn may
// call the store's own methods (they see committed state): no store-wide
// lock is held while it runs.
//
// With a network write policy the writes go to the backend first and to the
// cache after (even under WriteCacheAndNetwork, so that nothing shows
// before commit): in one backend transaction when the backend has them
// (TxBackend), else one by one, undoing a half-applied commit with
// compensating writes of the original values. A failed commit returns a
// *TxError saying which. With WriteCacheFirst the writes are queued for
// Sync together; with WriteCacheOnly they go to the cache together.
//
// The context, bounded by Config.TransactionTimeout, bounds the callback and
// the commit. Transactions are atomic but not isolated: a concurrent writer
// of the same IDs may commit between fn's reads and the commit.
func (s *Store[T, ID]) Transaction(ctx context.Context, fn func(tx *Tx[T, ID]) error) (err error) {
	policy := s.cfg.WritePolicy
	o, ctx := s.tel.start(ctx, OpTransaction, policy.Policy(), false)
	if fn == nil {
		err = fmt.Errorf("%w: Transaction: nil callback", ErrInvalidArgument)
		o.endN(err, 0)
		return err
	}
	if !s.gate.enter() {
		o.endN(ErrClosed, 0)
		return ErrClosed
	}
	defer s.gate.leave()
	tctx, cancel := context.WithTimeout(ctx, s.cfg.TransactionTimeout)
	defer cancel()
	tx := &Tx[T, ID]{s: s, ctx: tctx, o: o, writes: make(map[ID]int)}
	finish := func() {
		tx.mu.Lock()
		tx.done = true
		tx.mu.Unlock()
	}
	defer func() {
		if r := recover(); r != nil {
			finish()
			o.endN(fmt.Errorf("store: transaction: callback panicked: %v", r), 0)
			panic(r)
		}
	}()
	err = fn(tx)
	finish()
	n := 0
	switch {
	case err != nil:
	case tctx.Err() != nil:
		err = fmt.Errorf("store: transaction: %w", tctx.Err())
	case len(tx.chs) > 0:
		wo := writeOptions{policy: policy}
		if policy == WriteCacheAndNetwork {
			wo.policy = WriteNetworkFirst
		}
		_, _, err = s.write(tctx, tx.chs, wo, o, true)
		if err == nil {
			n = len(tx.chs)
		}
	}
	o.endN(err, n)
	return err
}

// TxError is the error of a transaction whose commit failed. Nothing of it
// stays applied unless RolledBack is false.
type TxError struct {
	// Err is the failure that stopped the commit.
	Err error
	// Applied is how many writes had been applied when it failed, of Total.
	Applied, Total int
	// Atomic is set when the backend transaction was rolled back (nothing
	// was ever visible); otherwise compensating writes undid the applied
	// ones.
	Atomic bool
	// RolledBack reports whether everything applied was undone.
	RolledBack bool
	// RollbackErr is why compensating writes failed, when they did: the
	// backend may then hold the first Applied writes.
	RollbackErr error
}

func (e *TxError) Error() string {
	switch {
	case e.Atomic:
		return fmt.Sprintf("store: transaction: commit of %d writes failed, rolled back by the backend transaction: %v", e.Total, e.Err)
	case e.RolledBack:
		return fmt.Sprintf("store: transaction: write %d of %d failed, the %d applied rolled back by compensating writes: %v", e.Applied+1, e.Total, e.Applied, e.Err)
	}
	return fmt.Sprintf("store: transaction: write %d of %d failed and compensating writes failed, the backend may hold the %d applied: %v (rollback: %v)", e.Applied+1, e.Total, e.Applied, e.Err, e.RollbackErr)
}

// Unwrap returns the failure and the rollback failure, if any.
func (e *TxError) Unwrap() []error {
	if e.RollbackErr != nil {
		return []error{e.Err, e.RollbackErr}
	}
	return []error{e.Err}
}

// applyTx applies changes in one backend transaction, filling res.
func (s *Store[T, ID]) applyTx(ctx context.Context, chs []change[T, ID], o *op, res []applied[T]) error {
	bc := o.startBackend(ctx, OpTransaction, false)
	err := func() error {
		btx, err := s.txb.Begin(bc.ctx)
		if err != nil {
			return err
		}
		for i, ch := range chs {
			if ch.deleted {
				res[i].existed, err = btx.Delete(bc.ctx, ch.id)
			} else {
				res[i].v, err = btx.Save(bc.ctx, ch.id, ch.value)
				res[i].known = s.vb != nil && res[i].v.Version != 0
			}
			if err != nil {
				return errors.Join(err, btx.Rollback())
			}
		}
		return btx.Commit()
	}()
	bc.end(err)
	if err != nil {
		clear(res)
	}
	return backendErr(OpTransaction, err)
}

// compensate undoes the applied changes done, newest first, by writing
// back the originals read before them (recording each undo in comp), and
// returns the *TxError for the failure cause at index at.
func (s *Store[T, ID]) compensate(ctx context.Context, done []change[T, ID], comp *compensation[T], o *op, at, total int, cause error) error {
	// The caller's context may be what failed; the undo must still run.
	uctx := context.WithoutCancel(ctx)
	comp.undone = make([]applied[T], len(done))
	comp.failed = make([]bool, len(done))
	var errs []error
	for j := len(done) - 1; j >= 0; j-- {
		undo := change[T, ID]{id: done[j].id, value: comp.originals[j].Item, deleted: comp.absent[j]}
		if err := s.applyOne(uctx, undo, o, &comp.undone[j]); err != nil {
			comp.failed[j] = true
			errs = append(errs, fmt.Errorf("undoing write %d (id %v): %w", j+1, undo.id, err))
		}
	}
	rbErr := errors.Join(errs...)
	return &TxError{Err: cause, Applied: at, Total: total, RolledBack: rbErr == nil, RollbackErr: rbErr}
}

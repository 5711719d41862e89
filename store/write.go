package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func (s *Store[T, ID]) writeOptions(opts []WriteOption) (writeOptions, error) {
	wo := writeOptions{policy: s.cfg.WritePolicy}
	for _, o := range opts {
		if o != nil {
			o.applyWrite(&wo)
		}
	}
	if !wo.policy.valid() {
		return wo, fmt.Errorf("%w: WithWritePolicy: unknown policy %v", ErrInvalidArgument, wo.policy)
	}
	return wo, nil
}

// change is one write of a batch: a save of value, or a delete.
type change[T any, ID comparable] struct {
	id      ID
	value   T
	deleted bool
}

// Save writes item under the write policy in effect (Config.WritePolicy, or
// WithWritePolicy) and returns it as stored (the backend may have changed
// it; write-behind and cache-only saves return item).
func (s *Store[T, ID]) Save(ctx context.Context, item T, opts ...WriteOption) (T, error) {
	out, _, err := s.writeOp(ctx, OpSave, opts, []change[T, ID]{{id: s.cfg.IDOf(item), value: item}}, true)
	if err != nil {
		var zero T
		return zero, err
	}
	return out[0].Item, nil
}

// SaveAll writes items under the write policy in effect. With a backend
// that has transactions (TxBackend) the backend writes are all-or-nothing;
// otherwise they are applied in order and stop at the first failure: the
// items saved so far are returned with the error (they are saved and cached)
// and the cache is rolled back for the rest. Use Transaction for
// all-or-nothing writes on any backend.
func (s *Store[T, ID]) SaveAll(ctx context.Context, items []T, opts ...WriteOption) ([]T, error) {
	chs := make([]change[T, ID], len(items))
	for i, it := range items {
		chs[i] = change[T, ID]{id: s.cfg.IDOf(it), value: it}
	}
	out, n, err := s.writeOp(ctx, OpSaveAll, opts, chs, false)
	saved := make([]T, 0, n)
	for _, v := range out[:n] {
		saved = append(saved, v.Item)
	}
	return saved, err
}

// Delete removes the item with the given ID under the write policy in
// effect. Deleting an absent item is not an error.
func (s *Store[T, ID]) Delete(ctx context.Context, id ID, opts ...WriteOption) error {
	_, _, err := s.writeOp(ctx, OpDelete, opts, []change[T, ID]{{id: id, deleted: true}}, true)
	return err
}

// DeleteAll removes the items with the given IDs and returns how many were
// deleted: for network policies the items the backend held, for
// WriteCacheFirst every delete queued, for WriteCacheOnly the entries the
// cache held. Partial failures behave as in SaveAll.
func (s *Store[T, ID]) DeleteAll(ctx context.Context, ids []ID, opts ...WriteOption) (int, error) {
	chs := make([]change[T, ID], len(ids))
	for i, id := range ids {
		chs[i] = change[T, ID]{id: id, deleted: true}
	}
	_, n, err := s.writeOp(ctx, OpDeleteAll, opts, chs, false)
	return n, err
}

// writeOp runs one public write operation: its options, its telemetry (one
// OperationMetric, failures included), the close gate and the batch.
// single operations report their item's ID.
func (s *Store[T, ID]) writeOp(ctx context.Context, kind OperationType, opts []WriteOption, chs []change[T, ID], single bool) ([]Versioned[T], int, error) {
	wo, err := s.writeOptions(opts)
	if err != nil {
		return nil, 0, s.rejected(ctx, kind, err)
	}
	o, ctx := s.tel.start(ctx, kind, wo.policy.Policy(), false)
	var out []Versioned[T]
	n := 0
	switch {
	case !s.gate.enter():
		err = ErrClosed
	default:
		out, n, err = s.write(ctx, chs, wo, o, false)
		s.gate.leave()
	}
	var id any
	if single {
		id = s.boxID(chs[0].id)
	}
	o.end(err, CacheResultNone, n, id)
	return out, n, err
}

// write applies a batch of changes under a write policy. It returns the
// stored values (in order), how many changes took effect (saved or, for
// deletes, existed), and the first error.
//
// With compensate (transactions) a failed batch leaves nothing applied: the
// backend is rolled back (see apply) and the cache keeps its values.
func (s *Store[T, ID]) write(ctx context.Context, chs []change[T, ID], wo writeOptions, o *op, compensate bool) ([]Versioned[T], int, error) {
	ids := make([]ID, len(chs))
	for i, ch := range chs {
		ids[i] = ch.id
	}
	unlock := s.lockIDs(ids)
	defer unlock()
	c := s.cache
	out := make([]Versioned[T], len(chs))
	var written, ev []idTags[ID]
	defer func() {
		for _, w := range written {
			s.cacheEvent(o, CacheWrite, w.id, w.tags)
		}
		s.reportEvicted(ctx, CacheEviction, ev)
	}()

	switch wo.policy {
	case WriteCacheOnly, WriteCacheFirst:
		n := 0
		now := time.Now()
		c.mu.Lock()
		for i, ch := range chs {
			e := c.m[ch.id]
			existed := e != nil && !e.deleted
			switch {
			case wo.policy == WriteCacheFirst:
				e = c.queue(ch.id, ch.value, ch.deleted, wo.tags, now, &ev)
				n++
			case ch.deleted:
				if e != nil {
					c.unqueue(e)
					c.remove(e, true)
				}
				if existed {
					n++
				}
				continue
			default:
				c.unqueue(e)
				e = c.write(ch.id, ch.value, false, wo.tags)
				e.localOnly, e.versionKnown = true, false
				c.evict(&ev)
				n++
			}
			out[i] = Versioned[T]{Item: ch.value}
			written = append(written, idTags[ID]{ch.id, e.tags})
		}
		c.mu.Unlock()
		return out, n, nil
	}

	// Network policies. Cache-and-network writes the cache first (undone
	// below for what the backend did not take); network-first after.
	optimistic := wo.policy == WriteCacheAndNetwork
	snaps := make([]snapshot[T, ID], len(chs))
	seqs := make([]uint64, len(chs))
	if optimistic {
		// An ID twice in a batch rolls back to its state before the batch,
		// not to the batch's own first write.
		var first map[ID]int
		if len(chs) > 1 {
			first = make(map[ID]int, len(chs))
		}
		c.mu.Lock()
		for i, ch := range chs {
			e := c.m[ch.id]
			if j, dup := first[ch.id]; dup {
				snaps[i] = snaps[j]
			} else {
				if first != nil {
					first[ch.id] = i
				}
				if e != nil {
					snaps[i].take(e)
				}
			}
			if e != nil {
				c.unqueue(e)
			}
			if ch.deleted {
				if e != nil {
					c.remove(e, true)
				}
				seqs[i] = c.seq.Load()
				continue
			}
			e = c.write(ch.id, ch.value, false, wo.tags)
			e.localOnly, e.versionKnown = false, false
			seqs[i] = e.modSeq
			written = append(written, idTags[ID]{ch.id, e.tags})
		}
		c.evict(&ev)
		c.mu.Unlock()
	}

	startSeq := c.seq.Load()
	res, done, err := s.apply(ctx, chs, o, compensate)
	if compensate && err != nil {
		// Undone in the backend, but a read may have cached a value in
		// between; and if the undo failed, the backend may hold the tx's
		// values: the cache drops what it cannot vouch for.
		var te *TxError
		undone := errors.As(err, &te) && te.RolledBack
		c.mu.Lock()
		for _, ch := range chs[:done] {
			if e := c.m[ch.id]; e != nil && e.pending == nil && (!undone || e.modSeq > startSeq) {
				c.remove(e, true)
			}
		}
		c.mu.Unlock()
		done = 0
	}

	n := 0
	c.mu.Lock()
	for i, ch := range chs {
		if i >= done {
			if optimistic && c.restore(ch.id, snaps[i], seqs[i], &ev) && snaps[i].present {
				written = append(written, idTags[ID]{ch.id, snaps[i].tags})
			}
			continue
		}
		r := res[i]
		out[i] = r.v
		if ch.deleted {
			if r.existed {
				n++
			}
			if e := c.m[ch.id]; e != nil && (!optimistic || e.modSeq != seqs[i]) {
				c.unqueue(e)
				c.remove(e, true)
			}
			continue
		}
		n++
		e := c.m[ch.id]
		if optimistic && (e == nil || e.modSeq != seqs[i]) {
			continue // changed since by a read of the backend's newer value
		}
		if e != nil {
			c.unqueue(e)
		}
		e = c.write(ch.id, r.v.Item, false, wo.tags)
		e.localOnly, e.version, e.versionKnown = false, r.v.Version, r.known
		if !optimistic {
			written = append(written, idTags[ID]{ch.id, e.tags})
		}
	}
	c.evict(&ev)
	c.mu.Unlock()
	return out, n, err
}

// applied is the backend's answer to one change.
type applied[T any] struct {
	v       Versioned[T]
	known   bool // v.Version is the backend's version
	existed bool // for deletes
}

// apply writes changes to the backend: in one backend transaction when the
// backend has them (all or nothing: done is 0 or len(chs)), else one by one,
// stopping at the first failure (done changes took effect). With compensate,
// a one-by-one failure undoes what was applied by writing back the values
// read before each write, and the error is a *TxError saying so.
func (s *Store[T, ID]) apply(ctx context.Context, chs []change[T, ID], o *op, compensate bool) (res []applied[T], done int, err error) {
	res = make([]applied[T], len(chs))
	if s.txb != nil && (len(chs) > 1 || compensate) {
		err := s.applyTx(ctx, chs, o, res)
		if err != nil {
			if compensate {
				err = &TxError{Err: err, Total: len(chs), Atomic: true, RolledBack: true}
			}
			return res, 0, err
		}
		return res, len(chs), nil
	}
	var originals []Versioned[T]
	var absent []bool
	for i, ch := range chs {
		if compensate {
			v, _, gerr := s.backendCall(ctx, o, OpGet, func(ctx context.Context) (Versioned[T], bool, error) {
				return s.backendGet(ctx, ch.id)
			})
			if gerr != nil && !isNotFound(gerr) {
				return res, i, s.compensate(ctx, chs[:i], originals, absent, o, i, len(chs), gerr)
			}
			originals = append(originals, v)
			absent = append(absent, gerr != nil)
		}
		if err := s.applyOne(ctx, ch, o, &res[i]); err != nil {
			if compensate {
				return res, i, s.compensate(ctx, chs[:i], originals, absent, o, i, len(chs), err)
			}
			return res, i, err
		}
	}
	return res, len(chs), nil
}

func (s *Store[T, ID]) applyOne(ctx context.Context, ch change[T, ID], o *op, r *applied[T]) error {
	var err error
	if ch.deleted {
		_, _, err = s.backendCall(ctx, o, OpDelete, func(ctx context.Context) (Versioned[T], bool, error) {
			var e error
			if s.vb != nil {
				r.existed, e = s.vb.DeleteVersioned(ctx, ch.id, VersionAny)
			} else {
				r.existed, e = s.backend.Delete(ctx, ch.id)
			}
			return Versioned[T]{}, false, e
		})
		return err
	}
	r.v, r.known, err = s.backendCall(ctx, o, OpSave, func(ctx context.Context) (Versioned[T], bool, error) {
		if s.vb != nil {
			v, e := s.vb.SaveVersioned(ctx, ch.id, ch.value, VersionAny)
			return v, true, e
		}
		v, e := s.backend.Save(ctx, ch.id, ch.value)
		return Versioned[T]{Item: v}, false, e
	})
	return err
}

// backendCall runs one backend call bracketed for the tracer.
func (s *Store[T, ID]) backendCall(ctx context.Context, o *op, kind OperationType, f func(context.Context) (Versioned[T], bool, error)) (Versioned[T], bool, error) {
	bc := o.startBackend(ctx, kind, false)
	v, known, err := f(bc.ctx)
	bc.end(err)
	return v, known, err
}

package store

import (
	"context"
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
		c.lock()
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
		c.unlock()
		return out, n, nil
	}

	// Network policies. Cache-and-network shows each write in the cache
	// before its backend call (claimOptimistic: the entry is busy until
	// the write settles); network-first only after it.
	optimistic := wo.policy == WriteCacheAndNetwork
	// A single write (the common case) keeps its bookkeeping on the stack.
	var one [1]claim[T, ID]
	var oneAt, oneOK [1]int
	claims, at, lastOK := one[:], oneAt[:], oneOK[:]
	if len(chs) == 1 {
		one[0].id = chs[0].id
	} else {
		claims, at = claimsFor(chs)
		lastOK = make([]int, len(claims))
	}
	c.lock()
	if optimistic {
		for i, ch := range chs {
			e := c.claimOptimistic(&claims[at[i]], ch, wo.tags)
			if !ch.deleted {
				written = append(written, idTags[ID]{ch.id, e.tags})
			}
		}
		c.evict(&ev)
	} else {
		for k := range claims {
			c.hold(&claims[k], claims[k].id)
		}
	}
	for k := range claims {
		c.track(claims[k].id)
		c.writing[c.bucket(claims[k].id)]++
		if claims[k].e == nil {
			claims[k].uncached = true
			c.writingNew++
		}
	}
	c.unlock()

	startSeq := c.seq.Load()
	var comp *compensation[T]
	if compensate {
		comp = &compensation[T]{}
	}
	res, done, err := s.apply(ctx, chs, o, comp)
	if comp != nil && err != nil && done > 0 {
		s.compensated(chs[:done], res[:done], comp, startSeq)
		done = 0
	}

	// The backend holds the last change of an ID that it took (a batch may
	// name an ID twice and fail on the second); an ID it took nothing of
	// rolls back.
	for k := range lastOK {
		lastOK[k] = -1
	}
	n := 0
	for i := range done {
		lastOK[at[i]] = i
		out[i] = res[i].v
		if !chs[i].deleted || res[i].existed {
			n++
		}
	}
	var refresh []ID
	var inv []invalidated[ID]
	c.lock()
	for k := range claims {
		c.writing[c.bucket(claims[k].id)]--
		if claims[k].uncached {
			c.writingNew--
		}
	}
	for k := range claims {
		cl := &claims[k]
		h := c.untrack(cl.id)
		if j := lastOK[k]; j >= 0 {
			e, again := c.settle(cl.id, chs[j], res[j], wo.tags, startSeq, cl.fresh, h, &inv)
			if e != nil && !optimistic {
				written = append(written, idTags[ID]{cl.id, e.tags})
			}
			if again {
				refresh = append(refresh, cl.id)
			}
			continue
		}
		if !optimistic {
			if c.abandon(cl, h, &inv) {
				refresh = append(refresh, cl.id)
			}
			continue
		}
		wrote, again := c.rollback(cl, h, &ev, &inv)
		if wrote && cl.snap.present {
			written = append(written, idTags[ID]{cl.id, cl.snap.tags})
		}
		if again {
			refresh = append(refresh, cl.id)
		}
	}
	c.evict(&ev)
	c.unlock()
	s.reportInvalidated(ctx, inv)
	for _, id := range refresh {
		s.refresh.changed(o, refreshKey[ID]{id: id})
	}
	return out, n, err
}

// claimsFor returns one claim per distinct ID of chs, in the order the IDs
// first appear, and for each change the index of its ID's claim.
func claimsFor[T any, ID comparable](chs []change[T, ID]) ([]claim[T, ID], []int) {
	at := make([]int, len(chs))
	claims := make([]claim[T, ID], 0, len(chs))
	index := make(map[ID]int, len(chs))
	for i, ch := range chs {
		k, ok := index[ch.id]
		if !ok {
			k = len(claims)
			index[ch.id] = k
			claims = append(claims, claim[T, ID]{id: ch.id})
		}
		at[i] = k
	}
	return claims, at
}

// compensated fixes the cache after a transaction's applied writes were
// undone by compensating writes (or failed to be). Where the undo worked,
// the backend holds the original item again, at a new version; where it
// failed, it holds the transaction's write (res). Pending changes based on
// an original's version move to the version the backend now holds, so that
// their conditional push does not conflict with the store's own writes;
// the other entries of the transaction's IDs are dropped (the store
// remembers the backend's version for a later write-behind change).
func (s *Store[T, ID]) compensated(done []change[T, ID], res []applied[T], comp *compensation[T], startSeq uint64) {
	c := s.cache
	c.lock()
	defer c.unlock()
	c.complete = false
	for j, ch := range done {
		// The backend changed under reads that started before: they must
		// not fill what they read.
		c.dropped(ch.id)
		e := c.m[ch.id]
		orig := comp.originals[j].Version
		if comp.absent[j] {
			orig = VersionAbsent
		}
		// What the backend holds now: the transaction's write where the
		// undo failed, the undo's otherwise.
		now, known := comp.undone[j].v.Version, comp.undone[j].known
		switch {
		case comp.failed[j] && ch.deleted:
			now, known = VersionAbsent, true
		case comp.failed[j]:
			now, known = res[j].v.Version, res[j].known
		case comp.absent[j]:
			now, known = VersionAbsent, true // undone by a delete
		}
		if e == nil {
			if known {
				c.remember(ch.id, now, c.seq.Load())
			} else {
				c.forget(ch.id)
			}
			continue
		}
		if pc := e.pending; pc != nil && pc.baseKnown && pc.base == orig && known {
			pc.base = now
		}
		// The transaction holds its entries busy; only a pending change is
		// another write to keep. The other entries go: even an undo that
		// wrote the original back may have changed it (a backend that
		// stamps fields on save), so the cache cannot vouch for them.
		if e.pending == nil {
			c.remove(e, true)
			if known {
				c.remember(ch.id, now, c.seq.Load())
			} else {
				c.forget(ch.id)
			}
		}
	}
}

// applied is the backend's answer to one change.
type applied[T any] struct {
	v       Versioned[T]
	known   bool // v.Version is the backend's version
	existed bool // for deletes
}

// compensation records what a transaction without a backend transaction
// needs to undo a half-applied commit: the originals read before each
// write, and what the undo writes did.
type compensation[T any] struct {
	originals []Versioned[T]
	absent    []bool       // the original did not exist
	undone    []applied[T] // the undo of each applied write; nil until an undo ran
	failed    []bool       // that undo failed
}

// apply writes changes to the backend: in one backend transaction when the
// backend has them (all or nothing: done is 0 or len(chs)), else one by one,
// stopping at the first failure (done changes took effect). With comp (a
// transaction), a one-by-one failure undoes what was applied by writing
// back the values read before each write, and the error is a *TxError
// saying so.
func (s *Store[T, ID]) apply(ctx context.Context, chs []change[T, ID], o *op, comp *compensation[T]) (res []applied[T], done int, err error) {
	res = make([]applied[T], len(chs))
	if s.txb != nil && (len(chs) > 1 || comp != nil) {
		err := s.applyTx(ctx, chs, o, res)
		if err != nil {
			if comp != nil {
				err = &TxError{Err: err, Total: len(chs), Atomic: true, RolledBack: true}
			}
			return res, 0, err
		}
		return res, len(chs), nil
	}
	for i, ch := range chs {
		if comp != nil {
			v, _, gerr := s.backendCall(ctx, o, OpGet, func(ctx context.Context) (Versioned[T], bool, error) {
				return s.backendGet(ctx, ch.id)
			})
			if gerr != nil && !isNotFound(gerr) {
				return res, i, s.compensate(ctx, chs[:i], comp, o, i, len(chs), gerr)
			}
			comp.originals = append(comp.originals, v)
			comp.absent = append(comp.absent, gerr != nil)
		}
		if err := s.applyOne(ctx, ch, o, &res[i]); err != nil {
			if comp != nil {
				return res, i, s.compensate(ctx, chs[:i], comp, o, i, len(chs), err)
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

// backendCall runs one backend call bracketed for the tracer; its failure
// is a *BackendError (see backendErr).
func (s *Store[T, ID]) backendCall(ctx context.Context, o *op, kind OperationType, f func(context.Context) (Versioned[T], bool, error)) (Versioned[T], bool, error) {
	bc := o.startBackend(ctx, kind, false)
	v, known, err := f(bc.ctx)
	bc.end(err)
	return v, known, backendErr(kind, err)
}

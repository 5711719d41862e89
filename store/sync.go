package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// SyncStatus is the state of the write-behind queue.
type SyncStatus uint8

const (
	// SyncStatusSynced: no change is pending.
	SyncStatusSynced SyncStatus = iota
	// SyncStatusPending: changes wait for Sync.
	SyncStatusPending
	// SyncStatusSyncing: a Sync run is pushing changes.
	SyncStatusSyncing
	// SyncStatusError: a pending change failed its last push.
	SyncStatusError
)

var syncStatusNames = [...]string{"synced", "pending", "syncing", "error"}

// String returns "synced", "pending", "syncing" or "error".
func (s SyncStatus) String() string {
	return enumName(syncStatusNames[:], s, "SyncStatus")
}

// SyncStatus reports the state of the write-behind queue.
func (s *Store[T, ID]) SyncStatus() SyncStatus {
	if s.syncing.Load() {
		return SyncStatusSyncing
	}
	c := s.cache
	c.lock()
	defer c.unlock()
	if c.pending.n == 0 {
		return SyncStatusSynced
	}
	for _, pc := range c.pending.all() {
		if pc.lastErr != nil {
			return SyncStatusError
		}
	}
	return SyncStatusPending
}

// PendingChanges lists the write-behind changes not yet pushed, oldest
// change first, with their attempts and last error. It works after Close.
func (s *Store[T, ID]) PendingChanges() []PendingChange[T, ID] {
	c := s.cache
	c.lock()
	defer c.unlock()
	out := make([]PendingChange[T, ID], 0, c.pending.n)
	for _, pc := range c.pending.all() {
		out = append(out, pc.public())
	}
	return out
}

func (c *cache[T, ID]) pendingCount() int {
	c.lock()
	defer c.unlock()
	return c.pending.n
}

func (c *cache[T, ID]) pendingIDs() []ID {
	c.lock()
	defer c.unlock()
	ids := make([]ID, 0, c.pending.n)
	for _, pc := range c.pending.all() {
		ids = append(ids, pc.id)
	}
	return ids
}

// SyncError is returned by Sync when changes could not be pushed; they stay
// pending (see PendingChanges).
type SyncError[ID comparable] struct {
	// Failed maps each change that failed to its last error.
	Failed map[ID]error
	// IDs lists the failed changes in push order.
	IDs []ID
	// Err is set when the run stopped early (its context ended).
	Err error
}

func (e *SyncError[ID]) Error() string {
	msg := fmt.Sprintf("store: sync: %d changes failed", len(e.IDs))
	if len(e.IDs) == 1 {
		msg = "store: sync: 1 change failed"
	}
	if len(e.IDs) > 0 {
		msg += fmt.Sprintf(" (first: id %v: %v)", e.IDs[0], e.Failed[e.IDs[0]])
	}
	if e.Err != nil {
		msg += fmt.Sprintf("; stopped: %v", e.Err)
	}
	return msg
}

// Unwrap returns the errors of the failed changes and the stop cause.
func (e *SyncError[ID]) Unwrap() []error {
	errs := make([]error, 0, len(e.IDs)+1)
	for _, id := range e.IDs {
		errs = append(errs, e.Failed[id])
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Sync pushes the pending write-behind changes to the backend in the order
// they were made (per ID, the latest state), retrying failed pushes per
// Config.Retry and resolving conflicts per Config.Conflict, then refreshes
// stale cached entries. Changes that still fail stay pending and Sync
// returns a *SyncError listing them.
func (s *Store[T, ID]) Sync(ctx context.Context) error {
	return s.syncOp(ctx, nil)
}

// RetryPending pushes the pending change of id now, as a Sync run of that
// one change. It returns an error matching ErrNotPending if there is none.
func (s *Store[T, ID]) RetryPending(ctx context.Context, id ID) error {
	if !s.cache.isPending(id) {
		return fmt.Errorf("%w: id %v", ErrNotPending, id)
	}
	return s.syncOp(ctx, []ID{id})
}

func (s *Store[T, ID]) syncOp(ctx context.Context, only []ID) error {
	o, ctx := s.tel.start(ctx, OpSync, PolicyNone, false)
	if !s.gate.enter() {
		o.endN(ErrClosed, 0)
		return ErrClosed
	}
	defer s.gate.leave()
	n, err := s.syncRun(ctx, o, only)
	o.endN(err, n)
	return err
}

func (c *cache[T, ID]) isPending(id ID) bool {
	c.lock()
	defer c.unlock()
	e := c.m[id]
	return e != nil && e.pending != nil
}

// CancelPending drops the pending change of id and restores the cache to the
// backend's value (watchers see it). If the backend cannot be read, the
// change stays pending and the error is returned.
func (s *Store[T, ID]) CancelPending(ctx context.Context, id ID) error {
	if s.closed.Load() {
		return ErrClosed
	}
	mu := s.lockID(id)
	defer mu.Unlock()
	if !s.cache.isPending(id) {
		return fmt.Errorf("%w: id %v", ErrNotPending, id)
	}
	v, known, err := s.backendGet(ctx, id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("store: cancel pending change of id %v: reading the backend: %w", id, err)
	}
	c := s.cache
	c.lock()
	defer c.unlock()
	e := c.m[id]
	if e == nil || e.pending == nil {
		return nil
	}
	c.unqueue(e)
	if err != nil {
		c.remove(e, true)
		c.remember(id, VersionAbsent, c.seq.Load())
		return nil
	}
	e = c.write(id, v.Item, false, nil)
	e.version, e.versionKnown = v.Version, known
	return nil
}

// syncRun is one Sync run, under ctx (the operation's, when o is
// instrumented): one started event, a push per pending change
// (with retries and conflict resolution), a refresh of stale entries, and
// one completed or failed event. It returns how many changes it pushed.
// only, if set, restricts the run to those IDs.
func (s *Store[T, ID]) syncRun(ctx context.Context, o *op, only []ID) (int, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.syncing.Store(true)
	defer s.syncing.Store(false)

	var start time.Time
	if s.tel.on {
		start = s.tel.now()
		s.tel.reportSync(ctx, SyncMetric{Event: SyncStarted, Timestamp: start})
	}
	ids := only
	if ids == nil {
		ids = s.cache.pendingIDs()
	}
	pushed := 0
	serr := &SyncError[ID]{Failed: make(map[ID]error)}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			serr.Err = err
			break
		}
		ok, err := s.push(ctx, o, id)
		if ok {
			pushed++
		}
		if err != nil {
			serr.IDs = append(serr.IDs, id)
			serr.Failed[id] = err
		}
	}
	if only == nil && serr.Err == nil {
		s.refreshStale(ctx, o)
	}
	var err error
	if len(serr.IDs) > 0 || serr.Err != nil {
		err = serr
	}
	if s.tel.on {
		now := s.tel.now()
		ev := SyncCompleted
		if err != nil {
			ev = SyncFailed
		}
		s.tel.reportSync(ctx, SyncMetric{Event: ev, Duration: now.Sub(start), ItemsSynced: pushed, Err: err, Timestamp: now})
	}
	return pushed, err
}

// refreshStale re-reads cached entries past their TTL; failures are
// reported as recovered errors and do not fail the run.
func (s *Store[T, ID]) refreshStale(ctx context.Context, o *op) {
	for _, id := range s.cache.staleIDs() {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.fetch(ctx, id, o, false); err != nil && !isNotFound(err) {
			o.recovered(err, OpSync, s.boxID(id))
			s.tel.handleError(err)
		}
	}
}

// push pushes id's pending change, retrying per Config.Retry. It reports
// whether something was pushed and the error that left the change pending.
func (s *Store[T, ID]) push(ctx context.Context, o *op, id ID) (bool, error) {
	r := s.cfg.Retry
	for attempt := 1; ; attempt++ {
		var start time.Time
		if s.tel.on {
			start = s.tel.now()
		}
		pushed, retry, err := s.pushOnce(ctx, o, id)
		if err == nil {
			return pushed, nil
		}
		if !retry || attempt >= r.MaxAttempts || isContextErr(err) || ctx.Err() != nil {
			// The run fails with it: Sync's own error metric counts it.
			return false, err
		}
		if s.tel.on {
			now := s.tel.now()
			s.tel.reportError(ctx, s.tel.errorMetric(err, OpSync, true, s.boxID(id), now))
			s.tel.reportSync(ctx, SyncMetric{Event: SyncRetried, Duration: now.Sub(start), Err: err, ItemID: s.boxID(id), Timestamp: now})
		}
		t := time.NewTimer(backoff(r, attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, err
		}
	}
}

// backoff is the wait after the given failed attempt: InitialDelay grown by
// Multiplier per attempt, capped at MaxDelay, randomized by ±Jitter.
func backoff(r RetryConfig, attempt int) time.Duration {
	d := float64(r.InitialDelay) * math.Pow(r.Multiplier, float64(attempt-1))
	d = min(d, float64(r.MaxDelay))
	if r.Jitter > 0 {
		d *= 1 + r.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// retryable reports whether a failed push may be retried. A panic in
// Retry.Retryable is contained: the push is not retried, and the error
// returned in place of err says so.
func (s *Store[T, ID]) retryable(err error) (retry bool, out error) {
	if isContextErr(err) || errors.Is(err, ErrConflict) {
		return false, err
	}
	if s.cfg.Retry.Retryable == nil {
		return true, err
	}
	defer func() {
		if r := recover(); r != nil {
			retry, out = false, fmt.Errorf("store: Retry.Retryable panicked: %v (deciding on: %w)", r, err)
		}
	}()
	return s.cfg.Retry.Retryable(err), err
}

// pushOnce makes one attempt at id's pending change, holding id's write
// lock so that the change cannot move under it. It returns whether a change
// was pushed, whether a failure may be retried, and the failure.
func (s *Store[T, ID]) pushOnce(ctx context.Context, o *op, id ID) (pushed, retry bool, err error) {
	mu := s.lockID(id)
	defer mu.Unlock()
	c := s.cache
	c.lock()
	e := c.m[id]
	var pc pendingChange[T, ID]
	if e != nil && e.pending != nil {
		pc = *e.pending
		c.track(id)
	}
	c.unlock()
	if e == nil || e.pending == nil {
		return false, false, nil // pushed by another run, or cancelled
	}
	expect := VersionAny
	if pc.baseKnown {
		expect = pc.base
	}
	r, err := s.pushChange(ctx, o, pc, expect)
	if err != nil {
		var cerr *ConflictError[T]
		if errors.As(err, &cerr) {
			c.lock()
			c.untrack(id)
			c.unlock()
			return s.resolve(ctx, o, pc, cerr)
		}
		retry, err = s.retryable(err)
		s.failed(id, err)
		return false, retry, err
	}
	refresh, inv := s.synced(id, pc, r)
	if inv != nil {
		s.reportInvalidated(ctx, []invalidated[ID]{*inv})
	}
	if refresh {
		s.refresh.changed(o, refreshKey[ID]{id: id})
	}
	return true, false, nil
}

// pushChange writes one pending change to the backend, conditionally on
// expect when the backend has versions.
func (s *Store[T, ID]) pushChange(ctx context.Context, o *op, pc pendingChange[T, ID], expect uint64) (applied[T], error) {
	var r applied[T]
	if s.vb == nil || expect == VersionAny {
		err := s.applyOne(ctx, change[T, ID]{id: pc.id, value: pc.value, deleted: pc.deleted}, o, &r)
		return r, err
	}
	kind := OpSave
	if pc.deleted {
		kind = OpDelete
	}
	_, _, err := s.backendCall(ctx, o, kind, func(ctx context.Context) (Versioned[T], bool, error) {
		var e error
		if pc.deleted {
			r.existed, e = s.vb.DeleteVersioned(ctx, pc.id, expect)
		} else {
			r.v, e = s.vb.SaveVersioned(ctx, pc.id, pc.value, expect)
			r.known = e == nil
		}
		return r.v, r.known, e
	})
	return r, err
}

// failed records a failed push on the pending change.
func (s *Store[T, ID]) failed(id ID, err error) {
	c := s.cache
	c.lock()
	defer c.unlock()
	c.untrack(id)
	if e := c.m[id]; e != nil && e.pending != nil {
		e.pending.attempts++
		e.pending.lastErr = err
	}
}

// synced settles a pushed change: the pending change is dropped and the
// cache takes the backend's answer, unless the change feed announced a
// later change of id while the push was in flight: then the entry goes,
// and synced reports that its watchers need a refresh.
func (s *Store[T, ID]) synced(id ID, pc pendingChange[T, ID], r applied[T]) (refresh bool, inv *invalidated[ID]) {
	c := s.cache
	c.lock()
	defer c.unlock()
	h := c.untrack(id)
	e := c.m[id]
	if e == nil || e.pending == nil {
		return false, nil
	}
	create := e.unsyncedCreate()
	c.unqueue(e)
	if pc.deleted {
		c.remove(e, false) // watchers saw the delete when it was made
		if h.resaved() {
			c.forget(id) // someone saved id around the delete
			return c.watchers.watching(id), nil
		}
		c.remember(id, VersionAbsent, c.seq.Load())
		return false, nil
	}
	if h.after(r.v.Version, r.known) {
		inv = &invalidated[ID]{idTags[ID]{id, e.tags}, true}
		c.remove(e, false)
		if r.known {
			c.remember(id, r.v.Version, c.seq.Load())
		}
		c.complete = false
		return c.watchers.watching(id), inv
	}
	// What the backend stored (it may have set fields) becomes the cached
	// value, and watchers see it, as after a write-through.
	value, version, known := e.value, e.version, e.versionKnown
	if r.known {
		value, version, known = r.v.Item, r.v.Version, true
	} else if s.vb == nil {
		value = r.v.Item
	}
	e = c.write(id, value, false, nil)
	e.version, e.versionKnown = version, known
	if create {
		c.order++
		e.order = c.order // the backend lists a new item last
	}
	return false, nil
}

// resolve settles a conflict per Config.Conflict. Every resolution is
// counted (conflict_resolved) and shown to watchers.
func (s *Store[T, ID]) resolve(ctx context.Context, o *op, pc pendingChange[T, ID], cerr *ConflictError[T]) (pushed, retry bool, err error) {
	cf := Conflict[T, ID]{
		ID: pc.id, Local: pc.value, LocalDeleted: pc.deleted, LocalTime: pc.updatedAt,
		Remote: cerr.Remote, RemoteDeleted: cerr.RemoteDeleted,
	}
	res := KeepRemote[T]()
	switch s.cfg.Conflict {
	case ConflictClientWins:
		res = KeepLocal[T]()
	case ConflictLatestWins:
		if cf.RemoteDeleted || cf.LocalTime.After(cf.Remote.Updated) {
			res = KeepLocal[T]()
		}
	case ConflictCustom:
		res, err = s.callResolver(cf)
		if err != nil {
			s.failed(pc.id, err)
			return false, false, err
		}
	}
	expect := cerr.Remote.Version
	if cerr.RemoteDeleted {
		expect = VersionAbsent
	}
	switch res.kind {
	case resolveSkip:
		s.failed(pc.id, cerr)
		return false, false, cerr
	case resolveKeepRemote:
		c := s.cache
		c.lock()
		if e := c.m[pc.id]; e != nil {
			c.unqueue(e)
			if cerr.RemoteDeleted {
				c.remove(e, true)
				c.remember(pc.id, VersionAbsent, c.seq.Load())
			} else {
				e = c.write(pc.id, cerr.Remote.Item, false, nil)
				e.version, e.versionKnown = cerr.Remote.Version, true
			}
		}
		c.unlock()
		s.conflictResolved(ctx, o, pc.id)
		return false, false, nil
	case resolveMerged:
		pc.value, pc.deleted = res.merged, false
	}
	if pc.deleted && cerr.RemoteDeleted {
		s.synced(pc.id, pc, applied[T]{}) // untracked: nothing heard
		s.conflictResolved(ctx, o, pc.id)
		return false, false, nil
	}
	r, err := s.pushChange(ctx, o, pc, expect)
	if err != nil {
		// A second conflict means the remote moved again: retry the whole
		// resolution on the next attempt.
		conflict := errors.Is(err, ErrConflict)
		retry, err = s.retryable(err)
		s.failed(pc.id, err)
		return false, conflict || retry, err
	}
	if res.kind == resolveMerged {
		c := s.cache
		c.lock()
		if e := c.m[pc.id]; e != nil {
			c.write(pc.id, pc.value, false, nil)
		}
		c.unlock()
	}
	s.synced(pc.id, pc, r) // untracked: nothing heard
	s.conflictResolved(ctx, o, pc.id)
	return true, false, nil
}

func (s *Store[T, ID]) callResolver(cf Conflict[T, ID]) (res Resolution[T], err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: ResolveConflict panicked for id %v: %v", cf.ID, r)
		}
	}()
	return s.cfg.ResolveConflict(cf), nil
}

func (s *Store[T, ID]) conflictResolved(ctx context.Context, o *op, id ID) {
	if s.tel.on {
		s.tel.reportSync(ctx, SyncMetric{Event: SyncConflictResolved, ItemID: s.boxID(id), Timestamp: s.tel.now()})
	}
}

// syncLoop runs Sync every interval until Close.
func (s *Store[T, ID]) syncLoop(every time.Duration) {
	defer s.bgDone.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		if s.cache.pendingCount() == 0 && len(s.cache.staleIDs()) == 0 {
			continue
		}
		o, ctx := s.tel.start(s.bg, OpSync, PolicyNone, true)
		n, err := s.syncRun(ctx, o, nil)
		o.endN(err, n)
		if err != nil && s.bg.Err() == nil {
			s.tel.handleError(err)
		}
	}
}

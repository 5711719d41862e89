package store

import "time"

// pendingChange is a write-behind change waiting for Sync. Per ID only the
// latest state is kept; the queue is ordered by when each ID last changed.
type pendingChange[T any, ID comparable] struct {
	id      ID
	value   T
	deleted bool
	tags    []string
	// base is the version the change was made on; unknown (push
	// unconditionally) when the store never saw the backend's version.
	base      uint64
	baseKnown bool
	queuedAt  time.Time // first queued
	updatedAt time.Time // last changed
	attempts  int
	lastErr   error

	prev, next *pendingChange[T, ID]
}

// PendingChange is a write-behind change not yet pushed to the backend, as
// listed by Store.PendingChanges.
type PendingChange[T any, ID comparable] struct {
	ID ID
	// Value is the item to save; zero for a delete.
	Value T
	// Deleted is set for a pending delete.
	Deleted bool
	// QueuedAt is when the first unsynced change to ID was made; UpdatedAt
	// when the latest was.
	QueuedAt, UpdatedAt time.Time
	// Attempts counts failed pushes since the change was queued.
	Attempts int
	// LastError is the error of the last failed push, nil if none.
	LastError error
}

type pendingQueue[T any, ID comparable] struct {
	head pendingChange[T, ID]
	n    int
}

func (q *pendingQueue[T, ID]) init() { q.head.prev, q.head.next = &q.head, &q.head }

func (q *pendingQueue[T, ID]) pushBack(pc *pendingChange[T, ID]) {
	pc.next, pc.prev = &q.head, q.head.prev
	q.head.prev.next = pc
	q.head.prev = pc
	q.n++
}

func (q *pendingQueue[T, ID]) remove(pc *pendingChange[T, ID]) {
	pc.prev.next, pc.next.prev = pc.next, pc.prev
	pc.prev, pc.next = nil, nil
	q.n--
}

func (q *pendingQueue[T, ID]) all() []*pendingChange[T, ID] {
	out := make([]*pendingChange[T, ID], 0, q.n)
	for pc := q.head.next; pc != &q.head; pc = pc.next {
		out = append(out, pc)
	}
	return out
}

func (q *pendingQueue[T, ID]) oldest() time.Time {
	var t time.Time
	for pc := q.head.next; pc != &q.head; pc = pc.next {
		if t.IsZero() || pc.queuedAt.Before(t) {
			t = pc.queuedAt
		}
	}
	return t
}

func (pc *pendingChange[T, ID]) public() PendingChange[T, ID] {
	return PendingChange[T, ID]{
		ID: pc.id, Value: pc.value, Deleted: pc.deleted, QueuedAt: pc.queuedAt,
		UpdatedAt: pc.updatedAt, Attempts: pc.attempts, LastError: pc.lastErr,
	}
}

// queue records a write-behind change of id in the cache and the pending
// queue, coalescing with an earlier change of the same ID. Callers hold c.mu.
func (c *cache[T, ID]) queue(id ID, v T, deleted bool, tags []string, now time.Time, ev *[]idTags[ID]) *entry[T, ID] {
	e := c.m[id]
	var pc *pendingChange[T, ID]
	if e != nil && e.pending != nil {
		pc = e.pending
		c.pending.remove(pc) // moves to the back: ordered by last change
	} else {
		pc = &pendingChange[T, ID]{id: id, queuedAt: now}
		if e != nil && e.versionKnown {
			pc.base, pc.baseKnown = e.version, true
		} else if k, ok := c.known[id]; ok && e == nil {
			pc.base, pc.baseKnown = k.version, true
		}
	}
	pc.value, pc.deleted, pc.updatedAt, pc.attempts, pc.lastErr = v, deleted, now, 0, nil
	if tags != nil {
		pc.tags = tags
	}
	c.pending.pushBack(pc)
	fresh := e == nil
	e = c.write(id, v, deleted, tags)
	e.localOnly = false
	e.pending = pc
	if fresh && pc.baseKnown {
		e.version, e.versionKnown = pc.base, true // what the store knew of the backend's item
	}
	c.evict(ev)
	return e
}

// unqueue drops id's pending change, if any. Callers hold c.mu.
func (c *cache[T, ID]) unqueue(e *entry[T, ID]) {
	if e != nil && e.pending != nil {
		c.pending.remove(e.pending)
		e.pending = nil
		c.changed(e)
	}
}

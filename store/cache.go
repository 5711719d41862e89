package store

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one cached item. Its fields are guarded by cache.mu, except
// expired, which a reader flips under the read lock.
type entry[T any, ID comparable] struct {
	id           ID
	value        T
	deleted      bool // tombstone of a pending delete
	localOnly    bool // written with WriteCacheOnly: no backend copy
	tags         []string
	stored       time.Time // set only when the cache has a TTL
	version      uint64
	versionKnown bool
	modSeq       uint64 // cache.seq at the last change
	order        uint64 // listing order
	pending      *pendingChange[T, ID]
	expired      atomic.Bool // an expiration was reported since the last write

	prev, next *entry[T, ID] // LRU list, most recent at head.next
}

// entryState is what a lookup found.
type entryState uint8

const (
	stateAbsent entryState = iota
	stateFresh
	stateStale
)

type lookup[T any] struct {
	value   T
	state   entryState
	deleted bool // a tombstone: the item is deleted locally
	// firstExpiry is set for the first lookup that finds the entry stale
	// since it was written: the one that reports the expiration.
	firstExpiry bool
}

// idTags names an entry (with its tags) that was written, evicted or
// invalidated under the lock, to report once the lock is released.
type idTags[ID comparable] struct {
	id   ID
	tags []string
}

// cache is the store's local state: entries, the write-behind queue and the
// watchers, all under one lock so that a change, its queueing and its
// notification are one atomic step.
type cache[T any, ID comparable] struct {
	mu      sync.RWMutex
	ttl     time.Duration
	maxSize int
	m       map[ID]*entry[T, ID]
	head    entry[T, ID] // LRU sentinel, used when maxSize > 0
	tags    map[string]map[ID]struct{}

	// seq counts changes; a backend read remembers it when it starts and
	// fills only entries nobody changed since (see fill).
	seq atomic.Uint64
	// dropSeq is seq at the last delete or invalidation: a read that started
	// before it must not resurrect what it dropped.
	dropSeq uint64
	order   uint64

	complete   bool // the entries are the whole backend listing
	completeAt time.Time

	pending  pendingQueue[T, ID]
	watchers watchers[T, ID]
}

func newCache[T any, ID comparable](ttl time.Duration, maxSize int) *cache[T, ID] {
	c := &cache[T, ID]{ttl: ttl, maxSize: maxSize, m: make(map[ID]*entry[T, ID]), tags: make(map[string]map[ID]struct{})}
	c.head.prev, c.head.next = &c.head, &c.head
	c.pending.init()
	return c
}

// get looks id up. With no TTL and no size bound it takes only the read lock
// and reads no clock.
func (c *cache[T, ID]) get(id ID) (l lookup[T]) {
	if c.maxSize > 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e := c.m[id]; e != nil {
			c.touch(e)
			c.read(e, &l)
		}
		return l
	}
	c.mu.RLock()
	if e := c.m[id]; e != nil {
		c.read(e, &l)
	}
	c.mu.RUnlock()
	return l
}

func (c *cache[T, ID]) read(e *entry[T, ID], l *lookup[T]) {
	l.value, l.deleted, l.state = e.value, e.deleted, stateFresh
	// Unsynced and cache-only entries have no backend copy to refresh from:
	// they never go stale.
	if c.ttl > 0 && e.pending == nil && !e.localOnly && time.Since(e.stored) > c.ttl {
		l.state = stateStale
		l.firstExpiry = e.expired.CompareAndSwap(false, true)
	}
}

// snapshot is an entry's state, to roll a write back to.
type snapshot[T any, ID comparable] struct {
	present      bool
	value        T
	deleted      bool
	localOnly    bool
	tags         []string
	stored       time.Time
	version      uint64
	versionKnown bool
	pending      *pendingChange[T, ID]
}

func (s *snapshot[T, ID]) take(e *entry[T, ID]) {
	*s = snapshot[T, ID]{
		present: true, value: e.value, deleted: e.deleted, localOnly: e.localOnly, tags: e.tags,
		stored: e.stored, version: e.version, versionKnown: e.versionKnown, pending: e.pending,
	}
}

func (c *cache[T, ID]) nextSeq() uint64 { return c.seq.Add(1) }

// write is the one place entries change value; callers hold c.mu and call
// evict once the entry's flags are set.
func (c *cache[T, ID]) write(id ID, v T, deleted bool, tags []string) *entry[T, ID] {
	e := c.m[id]
	if e == nil {
		c.order++
		e = &entry[T, ID]{id: id, order: c.order}
		c.m[id] = e
		if c.maxSize > 0 {
			c.pushFront(e)
		}
	} else if c.maxSize > 0 {
		c.touch(e)
	}
	e.value, e.deleted = v, deleted
	if tags != nil {
		c.setTags(e, tags)
	}
	if c.ttl > 0 {
		e.stored = time.Now()
	}
	e.modSeq = c.nextSeq()
	e.expired.Store(false)
	c.watchers.notify(id, v, deleted, e.order)
	return e
}

// remove drops id's entry (not its pending change: callers decide).
func (c *cache[T, ID]) remove(e *entry[T, ID], notify bool) {
	delete(c.m, e.id)
	if c.maxSize > 0 {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
	}
	c.setTags(e, nil)
	c.dropSeq = c.nextSeq()
	if notify {
		var zero T
		c.watchers.notify(e.id, zero, true, e.order)
	}
}

func (c *cache[T, ID]) setTags(e *entry[T, ID], tags []string) {
	for _, t := range e.tags {
		if set := c.tags[t]; set != nil {
			delete(set, e.id)
			if len(set) == 0 {
				delete(c.tags, t)
			}
		}
	}
	e.tags = nil
	if len(tags) == 0 {
		return
	}
	e.tags = slices.Clone(tags)
	for _, t := range e.tags {
		set := c.tags[t]
		if set == nil {
			set = make(map[ID]struct{})
			c.tags[t] = set
		}
		set[e.id] = struct{}{}
	}
}

func (c *cache[T, ID]) pushFront(e *entry[T, ID]) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *cache[T, ID]) touch(e *entry[T, ID]) {
	if c.head.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	c.pushFront(e)
}

// evict drops least recently used entries beyond maxSize. Entries with
// pending changes are never evicted (they are the only copy of a write).
func (c *cache[T, ID]) evict(ev *[]idTags[ID]) {
	if c.maxSize == 0 || len(c.m) <= c.maxSize {
		return
	}
	for e := c.head.prev; e != &c.head && len(c.m) > c.maxSize; {
		prev := e.prev
		if e.pending == nil {
			if ev != nil {
				*ev = append(*ev, idTags[ID]{e.id, e.tags})
			}
			c.remove(e, false)
			c.complete = false
		}
		e = prev
	}
}

// fill stores what a backend read returned, unless the entry changed since
// the read started (startSeq) or has a pending change, or the read may
// resurrect something deleted or invalidated meanwhile. It reports whether
// it wrote.
func (c *cache[T, ID]) fill(id ID, v Versioned[T], versionKnown bool, startSeq uint64, ev *[]idTags[ID]) (*entry[T, ID], bool) {
	e := c.m[id]
	if e != nil && (e.pending != nil || e.modSeq > startSeq) {
		return e, false
	}
	if e == nil && c.dropSeq > startSeq {
		return nil, false
	}
	e = c.write(id, v.Item, false, nil)
	e.localOnly = false
	e.version, e.versionKnown = v.Version, versionKnown
	c.evict(ev)
	return e, true
}

// dropAbsent removes id's entry after the backend said it does not exist,
// under the same rules as fill.
func (c *cache[T, ID]) dropAbsent(id ID, startSeq uint64) bool {
	e := c.m[id]
	if e == nil || e.pending != nil || e.localOnly || e.modSeq > startSeq {
		return false
	}
	c.remove(e, true)
	return true
}

// restore puts a snapshot back after a failed write, if the entry was not
// changed since (seq).
func (c *cache[T, ID]) restore(id ID, snap snapshot[T, ID], seq uint64, ev *[]idTags[ID]) bool {
	e := c.m[id]
	if e != nil && e.modSeq != seq {
		return false // a read filled it since: that is the backend's value
	}
	if !snap.present {
		if e != nil {
			c.remove(e, true)
		}
		return true
	}
	e = c.write(id, snap.value, snap.deleted, snap.tags)
	if snap.tags == nil {
		c.setTags(e, nil)
	}
	e.localOnly, e.version, e.versionKnown = snap.localOnly, snap.version, snap.versionKnown
	if snap.pending != nil && e.pending == nil {
		c.pending.pushBack(snap.pending)
		e.pending = snap.pending
	}
	if c.ttl > 0 {
		e.stored = snap.stored
	}
	c.evict(ev)
	return true
}

// listState reports whether the cache holds the complete listing and
// whether it is fresh.
func (c *cache[T, ID]) listState() (complete, fresh bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.complete, c.listFresh()
}

// listFresh reports whether the complete listing is within its TTL.
// Callers hold c.mu.
func (c *cache[T, ID]) listFresh() bool {
	return c.complete && (c.ttl == 0 || time.Since(c.completeAt) <= c.ttl)
}

// listing returns the cached items that match q, in listing order, and
// whether the cache holds the complete listing and it is fresh.
func (c *cache[T, ID]) listing(q Query[T]) (items []T, complete, fresh bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	complete = c.complete
	fresh = c.listFresh()
	es := make([]*entry[T, ID], 0, len(c.m))
	for _, e := range c.m {
		if !e.deleted && q.Match(e.value) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry[T, ID]) int { return compareUint(a.order, b.order) })
	if q.Limit > 0 && len(es) > q.Limit {
		es = es[:q.Limit]
	}
	items = make([]T, len(es))
	for i, e := range es {
		items[i] = e.value
	}
	return items, complete, fresh
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fillListing stores a backend listing read at startSeq. When full (no
// filter, no limit) entries the listing lacks are dropped as deleted
// remotely (except local-only and pending ones) and, if nothing interfered,
// the cache is marked complete. It returns the listing as the store sees it:
// pending local changes overlaid, pending creates that match q appended.
func (c *cache[T, ID]) fillListing(items []Versioned[T], versionKnown bool, idOf func(T) ID, q Query[T], full bool, startSeq uint64, ev *[]idTags[ID]) (out []T, wrote []idTags[ID]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	interfered := c.dropSeq > startSeq
	evictedBefore := len(*ev)
	seen := make(map[ID]struct{}, len(items))
	out = make([]T, 0, len(items))
	for _, v := range items {
		id := idOf(v.Item)
		seen[id] = struct{}{}
		e, ok := c.fill(id, v, versionKnown, startSeq, ev)
		if ok {
			wrote = append(wrote, idTags[ID]{id, e.tags})
		} else if e == nil || e.modSeq > startSeq {
			interfered = true
		}
		switch {
		case e == nil || ok:
			out = append(out, v.Item)
		case !e.deleted && q.Match(e.value):
			out = append(out, e.value) // a pending or newer local change
		}
	}
	for _, pc := range c.pending.all() {
		if _, ok := seen[pc.id]; !ok && !pc.deleted && q.Match(pc.value) {
			out = append(out, pc.value)
		}
	}
	if full {
		for id, e := range c.m {
			if _, ok := seen[id]; !ok && e.pending == nil && !e.localOnly && e.modSeq <= startSeq {
				c.remove(e, true)
			}
		}
		if !interfered && len(*ev) == evictedBefore {
			c.complete, c.completeAt = true, time.Now()
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, wrote
}

// invalidate drops entries chosen by pick, except those with pending
// changes, and forgets that the listing is complete.
func (c *cache[T, ID]) invalidate(pick func(yield func(*entry[T, ID]) bool)) []idTags[ID] {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.complete = false
	var out []idTags[ID]
	c.dropSeq = c.nextSeq()
	pick(func(e *entry[T, ID]) bool {
		if e.pending == nil {
			out = append(out, idTags[ID]{e.id, e.tags})
			c.remove(e, false)
		}
		return true
	})
	return out
}

// staleIDs lists entries past their TTL that have no pending change.
func (c *cache[T, ID]) staleIDs() []ID {
	if c.ttl == 0 {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []ID
	now := time.Now()
	for id, e := range c.m {
		if e.pending == nil && !e.localOnly && now.Sub(e.stored) > c.ttl {
			ids = append(ids, id)
		}
	}
	return ids
}

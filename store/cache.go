package store

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v4"
)

// entry is one cached item. Its fields are guarded by cache.mu, except
// expired, which a reader flips under the read lock.
//
// An entry is local while it holds a write the backend does not have yet:
// an unsynced write-behind change (pending) or a write-through in flight
// (busy). A local entry wins over what any backend read returns, is never
// filled, evicted or dropped by an invalidation, and (pending) never goes
// stale: it is the only copy of an acknowledged write.
type entry[T any, ID comparable] struct {
	id    ID
	value T
	// deleted: the item does not exist here (a pending or in-flight delete,
	// or a remembered not-found: absent).
	deleted bool
	// absent: a negative entry, the backend said the item does not exist
	// (Config.NotFoundTTL); it goes stale after that TTL.
	absent    bool
	localOnly bool // written with WriteCacheOnly: no backend copy
	// busy: a write-through of this ID is in flight and value is its
	// optimistic value; fills are refused until it ends.
	busy bool
	// invalidated: an invalidation hit the entry while busy; if the write
	// fails, the value before it must not come back.
	invalidated bool
	// unverified: a write-through failed, and may or may not have reached
	// the backend; the entry reads as stale until a backend read refills it.
	unverified   bool
	tags         []string
	stored       time.Time // set only when the entry can go stale (a TTL, or absent)
	version      uint64
	versionKnown bool
	modSeq       uint64 // cache.seq at the last change
	order        uint64 // listing order
	pending      *pendingChange[T, ID]
	dirty        bool // changed in the current critical section: published at unlock

	// view is what a cache hit reads, without a lock (see entryView).
	view atomic.Pointer[entryView[T]]
	// ref: read since the eviction sweep last passed (CLOCK recency; set
	// by hits without a lock, only when not set already).
	ref     atomic.Bool
	expired atomic.Bool // an expiration was reported since the last write

	prev, next *entry[T, ID] // recency list, most recently written at head.next
}

// entryView is an immutable snapshot of the fields of an entry that a
// cache hit reads. Writers change an entry's fields under the cache's lock
// and publish a new view of every entry they changed when they release it
// (cache.unlock), so a hit takes no lock and writes no shared memory: it
// sees the entry as the last critical section left it, never half of one.
type entryView[T any] struct {
	value      T
	deleted    bool
	absent     bool
	unverified bool
	// pinned: local or cache-only; such an entry never goes stale.
	pinned bool
	// local: the entry holds a write the backend does not have yet (see
	// entry.local); its value wins over what a backend read returns.
	local  bool
	stored time.Time
}

// local reports whether e holds a write the backend does not have yet.
func (e *entry[T, ID]) local() bool { return e.pending != nil || e.busy }

// unsyncedCreate reports whether e is an item the store created write-behind
// and never saw in the backend: a listing puts it after the backend's items.
func (e *entry[T, ID]) unsyncedCreate() bool {
	return e.pending != nil && (!e.versionKnown || e.version == VersionAbsent)
}

// localView returns id's published view if its entry is local (see
// entry.local), without taking the lock: a backend read that starts while
// id holds a local write answers with it (or a later one), never with what
// the backend held before that write reached it.
func (c *cache[T, ID]) localView(id ID) *entryView[T] {
	if e, ok := c.idx.Load(id); ok {
		if v := e.view.Load(); v != nil && v.local {
			return v
		}
	}
	return nil
}

// localViews returns the published views of every local entry, for a
// listing that starts (see localView); nil when there are none.
func (c *cache[T, ID]) localViews() map[ID]*entryView[T] {
	c.lock()
	defer c.unlock()
	if c.pending.n == 0 && c.busy == 0 {
		return nil
	}
	out := make(map[ID]*entryView[T], c.pending.n+c.busy)
	for id, e := range c.m {
		if e.local() {
			out[id] = e.view.Load()
		}
	}
	return out
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
	mu      sync.Mutex
	ttl     time.Duration
	negTTL  time.Duration // Config.NotFoundTTL; 0: no negative entries
	maxSize int
	m       map[ID]*entry[T, ID]
	// idx mirrors m for cache hits, which read it without c.mu (a
	// concurrent map whose loads write nothing); m stays the writers' map.
	idx     *xsync.Map[ID, *entry[T, ID]]
	dirtied []*entry[T, ID] // entries to publish at unlock
	// checkViews makes unlock verify every entry's view against its
	// fields (internal tests: a change that was not marked is caught in
	// the critical section that made it).
	checkViews func(e *entry[T, ID])
	head       entry[T, ID] // recency sentinel, used when maxSize > 0
	tags       map[string]map[ID]struct{}

	// seq counts changes; a backend read remembers it when it starts and
	// fills only entries nobody changed since (see fill).
	seq atomic.Uint64
	// dropSeq is seq at the last delete or invalidation of any entry (a
	// listing that started before it must not mark the cache complete), and
	// drops the same per bucket of IDs (a read of an ID that started before
	// its bucket's last drop must not resurrect what was dropped; a write
	// that started before it settles unverified). Buckets, not IDs, so that
	// it takes no memory per ID; a collision only costs a refused fill.
	dropSeq uint64
	drops   [64]uint64
	// writing counts the write-throughs in flight per bucket of IDs (the
	// buckets of drops), for changedSince; writingNew those of IDs the
	// cache had no entry for (a complete listing lacks their new items).
	writing    [64]int32
	writingNew int
	seed       maphash.Seed
	order      uint64
	busy       int // entries with a write-through in flight

	complete   bool // the entries are the whole backend listing
	completeAt time.Time
	// feedDown: the backend's change feed is not (yet, or no longer)
	// delivering every change, so entries that are not local read as stale.
	feedDown atomic.Bool

	pending  pendingQueue[T, ID]
	watchers watchers[T, ID]

	// inflight holds, with a change feed only (nil otherwise), what the
	// feed said of each ID a write-through is in flight for, until it
	// settles: a version later than the one the write returns means that
	// another writer's change followed it, and the cache must not keep the
	// write's value (see settle).
	inflight map[ID]heard

	// known holds, for IDs the cache has no entry for, the version of the
	// item as the store last learned it (VersionAbsent: absent), and when
	// (seq): the base of a write-behind change made without reading again,
	// so that it is pushed conditionally rather than blindly (see queue).
	known map[ID]knownVersion
}

type knownVersion struct{ version, seq uint64 }

// heard is what a change feed said of an ID while a write of it was in
// flight: the latest version a save announced, whether a delete was
// announced, and lost: events may have been missed (an unversioned event,
// or a feed outage).
type heard struct {
	version       uint64
	deleted, lost bool
}

// any reports whether the feed said anything of the ID (or may have
// missed something) while the write was in flight.
func (h heard) any() bool { return h.lost || h.deleted || h.version > 0 }

// resaved reports whether someone may have saved the ID while a delete of
// it was in flight (the delete's own echo is a delete).
func (h heard) resaved() bool { return h.lost || h.version > 0 }

// after reports whether h shows a change later than a save that the
// backend took at version (known: the backend reported it). A delete heard
// around the save may have followed it: it counts as later.
func (h heard) after(version uint64, known bool) bool {
	return h.lost || h.deleted || (h.version > 0 && (!known || h.version > version))
}

// maxKnown bounds cache.known; beyond it an arbitrary ID is forgotten
// (its next write-behind change is pushed unconditionally).
const maxKnown = 4096

func newCache[T any, ID comparable](ttl, negTTL time.Duration, maxSize int) *cache[T, ID] {
	c := &cache[T, ID]{ttl: ttl, negTTL: negTTL, maxSize: maxSize, m: make(map[ID]*entry[T, ID]),
		idx: xsync.NewMap[ID, *entry[T, ID]](), tags: make(map[string]map[ID]struct{}), seed: maphash.MakeSeed(),
		known: make(map[ID]knownVersion)}
	c.head.prev, c.head.next = &c.head, &c.head
	c.pending.init()
	return c
}

// lock takes the cache's lock, for reading or changing its state.
func (c *cache[T, ID]) lock() { c.mu.Lock() }

// unlock publishes the view of every entry changed since lock, then
// releases the lock: a change becomes visible to hits at once, whole, and
// before the operation that made it returns.
func (c *cache[T, ID]) unlock() {
	for i, e := range c.dirtied {
		e.dirty = false
		e.view.Store(&entryView[T]{
			value: e.value, deleted: e.deleted, absent: e.absent, unverified: e.unverified,
			pinned: e.local() || e.localOnly, local: e.local(), stored: e.stored,
		})
		c.dirtied[i] = nil
	}
	c.dirtied = c.dirtied[:0]
	if c.checkViews != nil {
		for _, e := range c.m {
			c.checkViews(e)
		}
	}
	c.mu.Unlock()
}

// changed marks e for publishing at unlock. Callers hold c.mu. c.write
// marks what it writes; a change of a viewed field (value, deleted, absent,
// unverified, stored, local state, localOnly) made without c.write marks
// its entry itself.
func (c *cache[T, ID]) changed(e *entry[T, ID]) {
	if !e.dirty {
		e.dirty = true
		c.dirtied = append(c.dirtied, e)
	}
}

// get looks id up without taking the cache's lock: a hit loads the entry
// from the read index and its published view, and writes nothing shared
// (with a size bound, it sets the entry's recency bit if it is not set).
// With no TTL it reads no clock.
func (c *cache[T, ID]) get(id ID) (l lookup[T]) {
	e, ok := c.idx.Load(id)
	if !ok {
		return l
	}
	v := e.view.Load()
	if v == nil {
		return l // inserted, not yet published: the write has not happened
	}
	if c.maxSize > 0 && !e.ref.Load() {
		e.ref.Store(true)
	}
	c.read(e, v, &l)
	return l
}

func (c *cache[T, ID]) read(e *entry[T, ID], v *entryView[T], l *lookup[T]) {
	l.value, l.deleted, l.state = v.value, v.deleted, stateFresh
	if c.ttl == 0 && !v.absent && !v.unverified && !c.feedDown.Load() {
		return // the default configuration: nothing goes stale
	}
	// Local and cache-only entries have no backend copy to refresh from:
	// they never go stale.
	if v.pinned {
		return
	}
	ttl := c.ttl
	if v.absent {
		ttl = c.negTTL
	}
	switch {
	case ttl > 0 && time.Since(v.stored) > ttl:
		l.state = stateStale
		l.firstExpiry = e.expired.CompareAndSwap(false, true)
	case v.unverified || c.feedDown.Load():
		l.state = stateStale
	}
}

// snapshot is an entry's state before a write-through, to roll back to.
type snapshot[T any, ID comparable] struct {
	present      bool
	order        uint64
	value        T
	deleted      bool
	absent       bool
	localOnly    bool
	tags         []string
	stored       time.Time
	version      uint64
	versionKnown bool
	pending      *pendingChange[T, ID]
}

func (s *snapshot[T, ID]) take(e *entry[T, ID]) {
	*s = snapshot[T, ID]{
		present: true, order: e.order, value: e.value, deleted: e.deleted, absent: e.absent, localOnly: e.localOnly, tags: e.tags,
		stored: e.stored, version: e.version, versionKnown: e.versionKnown, pending: e.pending,
	}
}

func (c *cache[T, ID]) nextSeq() uint64 { return c.seq.Add(1) }

// write is the one place entries change value; callers hold c.mu and call
// evict once the entry's flags are set. tags nil keeps the entry's tags.
// The entry becomes a plain, verified, present-or-deleted entry: callers
// set versions and local state after.
func (c *cache[T, ID]) write(id ID, v T, deleted bool, tags []string) *entry[T, ID] {
	e := c.m[id]
	if e == nil {
		c.order++
		e = &entry[T, ID]{id: id, order: c.order}
		c.m[id] = e
		c.idx.Store(id, e)
		delete(c.known, id) // the entry knows from now on
		if c.maxSize > 0 {
			c.pushFront(e)
		}
	} else {
		if c.maxSize > 0 {
			c.touch(e)
		}
		if e.deleted && !deleted && (e.absent || !e.versionKnown) {
			// An item where the store knows of none in the backend: new,
			// so last, as the backend lists it. (A pending delete of an
			// item it knew keeps the item's place: the backend never
			// deleted it.)
			c.order++
			e.order = c.order
		}
	}
	c.changed(e)
	e.value, e.deleted, e.absent, e.unverified = v, deleted, false, false
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

// dropped records that what the cache knew of id was dropped (a delete, an
// invalidation, a change another writer made) and returns the drop's seq.
// Callers hold c.mu.
func (c *cache[T, ID]) dropped(id ID) uint64 {
	seq := c.nextSeq()
	c.dropSeq = seq
	c.drops[c.bucket(id)] = seq
	return seq
}

// droppedAll records that everything the cache knew was dropped.
func (c *cache[T, ID]) droppedAll() {
	seq := c.nextSeq()
	c.dropSeq = seq
	for i := range c.drops {
		c.drops[i] = seq
	}
}

func (c *cache[T, ID]) bucket(id ID) uint64 {
	return maphash.Comparable(c.seed, id) % uint64(len(c.drops))
}

// notifyAbsent tells id's watchers that it does not exist, when the cache
// has no entry to remove (watchers may have seen a value that is gone).
// Callers hold c.mu.
func (c *cache[T, ID]) notifyAbsent(id ID) {
	if c.watchers.watching(id) {
		var zero T
		c.watchers.notify(id, zero, true, 0)
	}
}

// changedSince reports whether id's entry changed, or id was dropped,
// after seq, or a write-through of id is in flight (its backend call may
// have taken effect before a read that started earlier returns).
func (c *cache[T, ID]) changedSince(id ID, seq uint64) bool {
	c.lock()
	defer c.unlock()
	if e := c.m[id]; e != nil && e.modSeq > seq {
		return true
	}
	return c.droppedSince(id, seq) || c.writing[c.bucket(id)] > 0
}

// droppedSince reports whether id was dropped after seq.
func (c *cache[T, ID]) droppedSince(id ID, seq uint64) bool {
	return c.drops[c.bucket(id)] > seq
}

// remember records that id was at version (VersionAbsent: absent) as of
// seq, unless the cache holds an entry for it or knows of something later.
// Callers hold c.mu.
func (c *cache[T, ID]) remember(id ID, version, seq uint64) {
	if _, ok := c.m[id]; ok {
		return
	}
	if k, ok := c.known[id]; ok && k.seq > seq {
		return
	}
	if _, ok := c.known[id]; !ok && len(c.known) >= maxKnown {
		for other := range c.known {
			delete(c.known, other)
			break
		}
	}
	c.known[id] = knownVersion{version, seq}
}

// forget drops what the cache knows of id's version: its next
// write-behind change, made with no entry, is pushed unconditionally.
func (c *cache[T, ID]) forget(id ID) { delete(c.known, id) }

// remove drops id's entry (not its pending change: callers decide); the
// version it knew is remembered (see known).
func (c *cache[T, ID]) remove(e *entry[T, ID], notify bool) {
	delete(c.m, e.id)
	c.idx.Delete(e.id)
	if e.versionKnown && !e.local() {
		c.remember(e.id, e.version, c.seq.Load())
	}
	if c.maxSize > 0 {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
	}
	c.setTags(e, nil)
	c.dropped(e.id)
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

// evict drops entries beyond maxSize, least recently used first, as the
// CLOCK algorithm approximates it: from the tail of the recency list (the
// least recently written), an entry read since the sweep last passed gets a
// second chance (its bit is cleared and it moves to the head); the first
// one that was not read goes. Hits thus never take the lock to record
// recency. Local entries are never evicted (they are the only copy of a
// write).
func (c *cache[T, ID]) evict(ev *[]idTags[ID]) {
	if c.maxSize == 0 || len(c.m) <= c.maxSize {
		return
	}
	// Each entry is passed at most twice (once to clear its bit).
	for budget := 2 * len(c.m); len(c.m) > c.maxSize && budget > 0; budget-- {
		e := c.head.prev
		if e == &c.head {
			return
		}
		switch {
		case e.local():
			c.touch(e) // kept: look at the others
		case e.ref.Load():
			e.ref.Store(false)
			c.touch(e)
		default:
			if ev != nil {
				*ev = append(*ev, idTags[ID]{e.id, e.tags})
			}
			c.remove(e, false)
			c.complete = false
		}
	}
}

// fillable reports whether a backend read that started at startSeq may
// store its answer for id: the entry is not local and nobody changed it
// since, or, absent, nothing was dropped since (the read may have seen what
// a delete or an invalidation removed).
func (c *cache[T, ID]) fillable(id ID, e *entry[T, ID], startSeq uint64) bool {
	if e == nil {
		// Nor while a write-through of it is in flight (an uncached ID is
		// not held): a read that reached the backend before the write's
		// commit must not cache what another read, after it, no longer saw.
		return !c.droppedSince(id, startSeq) && c.writing[c.bucket(id)] == 0
	}
	return !e.local() && e.modSeq <= startSeq
}

// newer reports whether a backend read's answer v is at least as new as
// what e holds, by version, when both versions are known: then it lands
// whenever the read started (versions of one ID increase; the same version
// is the same item, filled again to renew its age), and an older answer
// never does; fillable's order of events decides otherwise.
func newer[T any, ID comparable](e *entry[T, ID], v Versioned[T], versionKnown bool) (newer, comparable bool) {
	if e == nil || e.local() || !e.versionKnown || !versionKnown || e.absent {
		return false, false
	}
	return v.Version >= e.version, true
}

// fill stores what a backend read that started at startSeq returned, if
// fillable (or newer). It reports whether it wrote.
func (c *cache[T, ID]) fill(id ID, v Versioned[T], versionKnown bool, startSeq uint64, ev *[]idTags[ID]) (*entry[T, ID], bool) {
	e := c.m[id]
	ok := c.fillable(id, e, startSeq)
	if n, cmp := newer(e, v, versionKnown); cmp {
		ok = n
	}
	if !ok {
		if e == nil && versionKnown {
			c.remember(id, v.Version, startSeq) // the base of a change made on what the read returned
		}
		return e, false
	}
	e = c.write(id, v.Item, false, nil)
	e.localOnly = false
	e.version, e.versionKnown = v.Version, versionKnown
	c.evict(ev)
	return e, true
}

// fillAbsent records that the backend said id does not exist, under the
// rules of fill: the entry is dropped or, with negative caching, replaced
// by a negative entry. It reports whether the cache changed.
func (c *cache[T, ID]) fillAbsent(id ID, startSeq uint64, ev *[]idTags[ID]) bool {
	e := c.m[id]
	// A cache-only value stays: it has no backend copy to be absent from.
	if !c.fillable(id, e, startSeq) || (e != nil && e.localOnly) {
		if e == nil {
			c.remember(id, VersionAbsent, startSeq)
		}
		return false
	}
	if c.negTTL == 0 {
		if e != nil {
			c.remove(e, true)
		} else {
			c.notifyAbsent(id)
		}
		c.remember(id, VersionAbsent, startSeq)
		return e != nil
	}
	if e != nil && e.absent && !e.unverified {
		e.stored = time.Now() // still absent: the negative entry is fresh again
		e.expired.Store(false)
		c.changed(e)
		return false
	}
	var zero T
	e = c.write(id, zero, true, nil)
	e.absent, e.localOnly, e.version, e.versionKnown = true, false, VersionAbsent, true
	e.stored = time.Now()
	c.evict(ev)
	return true
}

// claim is a write-through's hold on one ID, from before its backend call
// until it settles.
type claim[T any, ID comparable] struct {
	id      ID
	claimed bool          // claimOptimistic ran for id
	e       *entry[T, ID] // the busy entry of an optimistic write; nil if none
	snap    snapshot[T, ID]
	known   knownVersion // what the cache knew of id without an entry
	seq     uint64       // when the claim was made
	// fresh: the item is new to the backend as far as the store knows (no
	// entry, an unsynced create, a remembered not-found): once the backend
	// has the write, it lists it last, so the entry takes its place then.
	fresh bool
	// uncached: the cache had no entry for id when the write started.
	uncached bool
}

// claimOptimistic shows an optimistic write of id in the cache before its
// backend call: the entry becomes busy (fills refused) and holds the new
// value, or a tombstone for the delete of a cached item (the delete of an
// uncached one adds no entry). A pending change of id stays queued until
// the backend has the write that supersedes it. The first write of id in a
// batch takes the snapshot to roll back to. Callers hold c.mu and the ID's
// write lock; it returns the entry, nil if none.
func (c *cache[T, ID]) claimOptimistic(cl *claim[T, ID], ch change[T, ID], tags []string) *entry[T, ID] {
	e := c.m[ch.id]
	if !cl.claimed {
		cl.claimed, cl.seq = true, c.seq.Load()
		cl.fresh = e == nil || e.unsyncedCreate() || e.absent
		if e != nil {
			cl.snap.take(e)
		} else {
			cl.known = c.known[ch.id]
		}
	}
	var zero T
	switch {
	case !ch.deleted:
		e = c.write(ch.id, ch.value, false, tags)
	case e != nil:
		e = c.write(ch.id, zero, true, nil)
	default:
		return nil
	}
	if !e.busy {
		e.busy, e.invalidated = true, false
		c.busy++
	}
	e.localOnly, e.version, e.versionKnown = false, 0, false
	cl.e = e
	return e
}

// hold claims id's cached entry for a network-first write (or a
// transaction's commit) before its backend call: it becomes busy, so that
// every read, through the cache or the backend, sees the value it had
// until the write settles (a backend read would otherwise see the new
// value while a cache read still served the old one), and no racing fill
// lands. An uncached id is not held. Callers hold c.mu and the ID's write
// lock.
func (c *cache[T, ID]) hold(cl *claim[T, ID], id ID) {
	cl.id, cl.claimed = id, true
	e := c.m[id]
	cl.fresh = e == nil || e.unsyncedCreate() || e.absent
	if e != nil && !e.busy {
		e.busy, e.invalidated = true, false
		c.busy++
		c.changed(e)
		cl.e = e
	}
}

// settle records what the backend holds for id after a write-through that
// it took, which started at startSeq: the value it returned (or the
// delete). The entry's pending change, superseded, is dropped. If the
// change feed announced a later change of id while the write was in
// flight (h), the backend holds something newer than the write: the entry
// goes, and the store refreshes it for its watchers (refresh). Otherwise,
// if id was dropped meanwhile (an invalidation; without a feed, nothing
// says whether a writer followed), the value is kept but unverified.
// Callers hold c.mu.
func (c *cache[T, ID]) settle(id ID, ch change[T, ID], r applied[T], tags []string, startSeq uint64, fresh bool, h heard, inv *[]invalidated[ID]) (_ *entry[T, ID], refresh bool) {
	e := c.m[id]
	c.release(e)
	if ch.deleted {
		if e != nil {
			c.unqueue(e)
			// Watchers saw a tombstone already unless a later write of
			// the batch showed something else.
			c.remove(e, !e.deleted)
		} else {
			c.dropped(id) // a read in flight must not bring it back
			c.notifyAbsent(id)
		}
		if h.resaved() {
			// Someone saved id around the delete: it may exist again.
			c.forget(id)
			return nil, c.watchers.watching(id)
		}
		c.remember(id, VersionAbsent, c.seq.Load())
		return nil, false
	}
	if h.after(r.v.Version, r.known) {
		if e != nil {
			*inv = append(*inv, invalidated[ID]{idTags[ID]{id, e.tags}, true})
			c.unqueue(e)
			c.remove(e, false)
		} else {
			c.dropped(id)
		}
		if r.known {
			c.remember(id, r.v.Version, c.seq.Load())
		}
		c.complete = false
		return nil, c.watchers.watching(id)
	}
	c.unqueue(e)
	e = c.write(id, r.v.Item, false, tags)
	e.localOnly, e.version, e.versionKnown = false, r.v.Version, r.known
	e.unverified = c.droppedSince(id, startSeq)
	if fresh {
		c.order++
		e.order = c.order
	}
	return e, false
}

// abandon ends a network-first write-through that the backend did not
// take (it may have reached it anyway: a timeout after the commit). The
// held entry is marked for revalidation, unless an invalidation or another
// writer's change hit it meanwhile: then it goes (if it holds no pending
// change, which is an acknowledged write), and the store refreshes it for
// its watchers (refresh). Callers hold c.mu.
func (c *cache[T, ID]) abandon(cl *claim[T, ID], h heard, inv *[]invalidated[ID]) (refresh bool) {
	c.release(cl.e)
	remote := h.any()
	if e := cl.e; e != nil && c.m[cl.id] == e && e.pending == nil && (e.invalidated || remote) {
		*inv = append(*inv, invalidated[ID]{idTags[ID]{cl.id, e.tags}, remote})
		c.remove(e, false)
		c.complete = false
		return c.watchers.watching(cl.id)
	}
	c.unverify(cl.id)
	return false
}

// invalidated is an entry a write dropped when it settled, because an
// invalidation (remote: another writer's change heard through the change
// feed) hit it while the write was in flight: reported as a cache
// invalidation then.
type invalidated[ID comparable] struct {
	idTags[ID]
	remote bool
}

// track starts recording what the change feed says of id while a write of
// it is in flight; untrack stops and returns it. Callers hold c.mu and
// id's write lock (one write of an ID is in flight at a time).
func (c *cache[T, ID]) track(id ID) {
	if c.inflight != nil {
		c.inflight[id] = heard{}
	}
}

func (c *cache[T, ID]) untrack(id ID) heard {
	if c.inflight == nil {
		return heard{}
	}
	h := c.inflight[id]
	delete(c.inflight, id)
	return h
}

// release ends e's write-through, if it had one.
func (c *cache[T, ID]) release(e *entry[T, ID]) {
	if e != nil && e.busy {
		e.busy = false
		c.busy--
		c.changed(e)
	}
}

// rollback undoes an optimistic write the backend did not take. The value
// before it comes back, marked unverified (a failed write may still have
// reached the backend: a timeout after the commit), unless an invalidation
// dropped it meanwhile: then the entry goes, and the store refreshes it for
// its watchers (refresh). A pending change it held was never unqueued and
// shows again. It reports whether it wrote the old value back.
func (c *cache[T, ID]) rollback(cl *claim[T, ID], h heard, ev *[]idTags[ID], inv *[]invalidated[ID]) (wrote, refresh bool) {
	e := cl.e
	if e == nil {
		// The delete of an uncached item: nothing was shown, but a read
		// may have cached the item meanwhile.
		c.unverify(cl.id)
		return false, false
	}
	c.release(e)
	c.complete = false
	snap := &cl.snap
	if snap.pending != nil {
		// The acknowledged write-behind change is what the store shows.
		e = c.write(cl.id, snap.pending.value, snap.pending.deleted, nil)
		e.order = snap.order
		e.localOnly, e.version, e.versionKnown = false, snap.version, snap.versionKnown
		return true, false
	}
	if !snap.present || e.invalidated || snap.absent {
		// Watchers saw the write; what the backend holds is not known (a
		// failed write may have reached it): they hear of it by a refresh.
		if e.invalidated && snap.present && !snap.absent {
			*inv = append(*inv, invalidated[ID]{idTags[ID]{cl.id, snap.tags}, h.any()})
		}
		c.remove(e, snap.absent)
		switch {
		case snap.present && snap.versionKnown:
			c.remember(cl.id, snap.version, cl.seq)
		case !snap.present && cl.known.seq > 0:
			c.remember(cl.id, cl.known.version, cl.known.seq)
		}
		// Watchers are told the item is absent again if it was before the
		// write; if something dropped the entry meanwhile (another writer's
		// change heard through the feed, an invalidation) they need the
		// backend's value all the same.
		return false, (!snap.absent || e.invalidated || h.any()) && c.watchers.watching(cl.id)
	}
	e = c.write(cl.id, snap.value, snap.deleted, snap.tags)
	if snap.tags == nil {
		c.setTags(e, nil)
	}
	e.order = snap.order
	e.localOnly, e.version, e.versionKnown = snap.localOnly, snap.version, snap.versionKnown
	if !snap.localOnly {
		e.unverified = true
	}
	if c.ttl > 0 {
		e.stored = snap.stored
	}
	c.evict(ev)
	return true, false
}

// unverify marks id's entry for revalidation after a write-through failed
// before its value reached the cache (network-first): the backend may hold
// it anyway.
func (c *cache[T, ID]) unverify(id ID) {
	c.complete = false
	if e := c.m[id]; e != nil && !e.local() && !e.localOnly {
		e.unverified = true
		c.changed(e)
	}
}

// listState reports whether the cache holds the complete listing and
// whether it is fresh.
func (c *cache[T, ID]) listState() (complete, fresh bool) {
	c.lock()
	defer c.unlock()
	return c.listTrusted(), c.listFresh()
}

// listFresh reports whether the complete listing is within its TTL.
// Callers hold c.mu.
func (c *cache[T, ID]) listFresh() bool {
	return c.listTrusted() && (c.ttl == 0 || time.Since(c.completeAt) <= c.ttl)
}

// listTrusted reports whether the cache holds the complete listing and
// nothing may be missing from it right now: the feed is live, and no
// write-through of an ID it has no entry for is in flight (the backend may
// hold that item already). Callers hold c.mu.
func (c *cache[T, ID]) listTrusted() bool {
	return c.complete && !c.feedDown.Load() && c.writingNew == 0
}

// listing returns the cached items that match q, in listing order, and
// whether the cache holds the complete listing and it is fresh.
func (c *cache[T, ID]) listing(q Query[T]) (items []T, complete, fresh bool) {
	c.lock()
	defer c.unlock()
	complete = c.listTrusted()
	fresh = c.listFresh()
	es := make([]*entry[T, ID], 0, len(c.m))
	for _, e := range c.m {
		if !e.deleted && q.Match(e.value) {
			es = append(es, e)
		}
	}
	// The backend's items in its order, then the unsynced creates (as a
	// listing through the backend and a Sync put them).
	slices.SortFunc(es, func(a, b *entry[T, ID]) int {
		if ca, cb := a.unsyncedCreate(), b.unsyncedCreate(); ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return compareUint(a.order, b.order)
	})
	if q.Limit > 0 && len(es) > q.Limit {
		es = es[:q.Limit]
	}
	items = make([]T, len(es))
	for i, e := range es {
		items[i] = e.value
	}
	return items, complete, fresh
}

func sortByOrder[T any, ID comparable](es []*entry[T, ID]) {
	slices.SortFunc(es, func(a, b *entry[T, ID]) int { return compareUint(a.order, b.order) })
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

// localIDs returns the IDs of the local entries, or nil when there are
// none. A listing widens its backend query by them (see listThrough).
func (c *cache[T, ID]) localIDs() map[ID]struct{} {
	c.lock()
	defer c.unlock()
	if c.pending.n == 0 && c.busy == 0 {
		return nil
	}
	ids := make(map[ID]struct{}, c.pending.n+c.busy)
	for pc := c.pending.head.next; pc != &c.pending.head; pc = pc.next {
		ids[pc.id] = struct{}{}
	}
	if c.busy > 0 {
		for id, e := range c.m {
			if e.busy {
				ids[id] = struct{}{}
			}
		}
	}
	return ids
}

// fillListing stores a backend listing read at startSeq and returns it as
// the store sees it: local changes overlaid (an unsynced or in-flight
// write wins; a pending delete hides the item), local creates that match q
// appended in the order they were made, then q's limit applied. items may
// hold more than q selects (listThrough widens the query by the local IDs):
// it is filtered here.
//
// When full (no filter, no limit), entries the listing lacks are dropped as
// deleted remotely (except local and cache-only ones, and ones changed since
// startSeq) and, if nothing interfered, the cache is marked complete and the
// entries take the backend's order (the kept ones after it).
func (c *cache[T, ID]) fillListing(items []Versioned[T], versionKnown bool, idOf func(T) ID, q Query[T], full bool, startSeq uint64, startLocal map[ID]*entryView[T], ev *[]idTags[ID]) (out []T, wrote []idTags[ID]) {
	c.lock()
	defer c.unlock()
	interfered := c.dropSeq > startSeq
	evictedBefore := len(*ev)
	seen := make(map[ID]struct{}, len(items))
	out = make([]T, 0, len(items))
	for _, v := range items {
		id := idOf(v.Item)
		seen[id] = struct{}{}
		e, ok := c.fill(id, v, versionKnown, startSeq, ev)
		switch sl := startLocal[id]; {
		case (e == nil || !e.local()) && sl != nil:
			// A local write the listing started with reached the backend
			// (or was undone) meanwhile: the backend's answer may predate it.
			interfered = true
			if !sl.deleted && q.Match(sl.value) {
				out = append(out, sl.value)
			}
		case ok:
			wrote = append(wrote, idTags[ID]{id, e.tags})
			if q.Match(v.Item) {
				out = append(out, v.Item)
			}
		case e == nil:
			// Dropped since the read: the listing comes before that.
			interfered = true
			if q.Match(v.Item) {
				out = append(out, v.Item)
			}
		case e.local():
			// A local change: the caller sees the store's own writes.
			if !e.deleted && q.Match(e.value) {
				out = append(out, e.value)
			}
		default:
			// Something was cached since the read: it stays (the feed
			// drops it if it is older), but this call answers with what
			// the backend said during it. The cached value may come from a
			// read that started earlier and finished later (a not-found
			// filled after the item was saved).
			interfered = true
			if q.Match(v.Item) {
				out = append(out, v.Item)
			}
		}
	}
	if c.pending.n > 0 || c.busy > 0 || len(startLocal) > 0 {
		// Local creates the backend's answer lacks: the local entries, and
		// those the listing started with whose write reached the backend
		// meanwhile (after the backend's answer).
		var created []*entry[T, ID]
		var startCreated []*entryView[T]
		for id, e := range c.m {
			if _, ok := seen[id]; ok {
				continue
			}
			switch sl := startLocal[id]; {
			case e.local():
				if !e.deleted && q.Match(e.value) {
					created = append(created, e)
				}
			case sl != nil:
				interfered = true
				if !sl.deleted && q.Match(sl.value) {
					startCreated = append(startCreated, sl)
				}
			}
		}
		for id, sl := range startLocal {
			if _, ok := seen[id]; !ok && c.m[id] == nil {
				interfered = true
				if !sl.deleted && q.Match(sl.value) {
					startCreated = append(startCreated, sl)
				}
			}
		}
		sortByOrder(created)
		for _, e := range created {
			out = append(out, e.value)
		}
		for _, sl := range startCreated {
			out = append(out, sl.value)
		}
	}
	if full {
		var kept []*entry[T, ID]
		for id, e := range c.m {
			if _, ok := seen[id]; ok {
				continue
			}
			if e.local() || e.localOnly || e.modSeq > startSeq {
				kept = append(kept, e)
			} else if e.absent {
				continue // a negative entry is no item: nothing to drop
			} else {
				c.remove(e, true)
				c.remember(id, VersionAbsent, startSeq)
			}
		}
		if !interfered && len(*ev) == evictedBefore && !c.feedDown.Load() {
			c.complete, c.completeAt = true, time.Now()
			for _, v := range items {
				if e := c.m[idOf(v.Item)]; e != nil {
					c.order++
					e.order = c.order
				}
			}
			sortByOrder(kept)
			for _, e := range kept {
				c.order++
				e.order = c.order
			}
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, wrote
}

// invalidate drops the entries chosen by pick and forgets that the listing
// is complete. Local entries stay: a pending change is the only copy of a
// write, and an in-flight write is only marked (its undo, if it fails, will
// not bring back the value before it).
func (c *cache[T, ID]) invalidate(pick func(yield func(*entry[T, ID]) bool)) []idTags[ID] {
	c.lock()
	defer c.unlock()
	c.complete = false
	var out []idTags[ID]
	c.dropSeq = c.nextSeq()
	pick(func(e *entry[T, ID]) bool {
		switch {
		case e.busy:
			e.invalidated = true
			c.dropped(e.id)
		case e.pending == nil:
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
	c.lock()
	defer c.unlock()
	var ids []ID
	now := time.Now()
	for id, e := range c.m {
		if !e.local() && !e.localOnly && !e.absent && (e.unverified || now.Sub(e.stored) > c.ttl) {
			ids = append(ids, id)
		}
	}
	return ids
}

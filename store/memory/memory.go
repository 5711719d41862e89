package memory

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexusstore/nexus/store"
)

var (
	_ store.VersionedBackend[int, string] = (*Backend[int, string])(nil)
	_ store.DescribedBackend              = (*Backend[int, string])(nil)
)

// BackendInfo implements store.DescribedBackend: the memory backend is
// in-process and no database (InProcess set, System empty), so a tracer
// records its calls as INTERNAL spans without database attributes.
func (b *Backend[T, ID]) BackendInfo() store.BackendInfo {
	return store.BackendInfo{InProcess: true}
}

// Backend is an in-memory store.Backend and store.VersionedBackend. Create
// it with New; the zero value is not usable. It is safe for concurrent use.
type Backend[T any, ID comparable] struct {
	// Fixed at construction.
	clone       func(T) T // nil: items are copied as Go copies values
	quoteID     bool      // ID is a string kind: name it quoted in errors
	failureRate float64
	fault       func(ctx context.Context, op Op, id any) error
	feedQueue   int  // per subscription, before collapsing into a reset
	feed        bool // WithChangeFeed

	// Runtime controls and counters, read on every call without the lock.
	latency     atomic.Int64 // a time.Duration
	unavailable atomic.Bool
	calls       [numOps]atomic.Uint64
	live        atomic.Int64 // the number of stored items
	failN       atomic.Int64 // written under failMu
	failMu      sync.Mutex
	failErr     error

	mu       sync.RWMutex
	index    map[ID]*entry[T]
	order    []*entry[T]                    // first-save order; deleted entries stay until compact
	dead     int                            // deleted entries in order
	version  uint64                         // the last version handed out
	subs     map[*subscription[ID]]struct{} // change feed subscriptions
	feedDown bool                           // SetFeedDown
}

// entry is a stored item. Its value is replaced, never modified in place, so
// a copy taken under the lock can be cloned after the lock is released.
type entry[T any] struct {
	v       store.Versioned[T]
	deleted bool
}

// New returns an empty backend configured by opts. An option with an invalid
// value (a negative latency, a failure rate outside [0, 1], a clone function
// for another item type) panics, naming the option.
func New[T any, ID comparable](opts ...Option) *Backend[T, ID] {
	c, clone := newConfig[T](opts)
	b := &Backend[T, ID]{
		clone:       clone,
		quoteID:     reflect.TypeFor[ID]().Kind() == reflect.String,
		failureRate: c.failureRate,
		fault:       c.fault,
		index:       make(map[ID]*entry[T]),
		feedQueue:   c.feedQueue,
		feed:        c.feed,
	}
	b.latency.Store(int64(c.latency))
	return b
}

// Len returns the number of stored items. It is neither counted nor subject
// to injected latency and faults.
func (b *Backend[T, ID]) Len() int { return int(b.live.Load()) }

// Get returns the item with the given ID, or an error matching
// store.ErrNotFound that names the ID.
func (b *Backend[T, ID]) Get(ctx context.Context, id ID) (T, error) {
	v, err := b.GetVersioned(ctx, id)
	return v.Item, err
}

// GetVersioned is Get with the stored version.
func (b *Backend[T, ID]) GetVersioned(ctx context.Context, id ID) (store.Versioned[T], error) {
	if err := b.begin(ctx, OpGet, id, true); err != nil {
		return store.Versioned[T]{}, err
	}
	b.mu.RLock()
	e := b.index[id]
	var v store.Versioned[T]
	if e != nil {
		v = e.v
	}
	b.mu.RUnlock()
	if e == nil {
		return store.Versioned[T]{}, b.notFound(id)
	}
	v.Item = b.copy(v.Item)
	return v, nil
}

// GetAll returns the items that match q in the order they were first saved
// (saving an item again keeps its place; deleting and saving it again puts
// it last). The filter runs without the backend's lock held and gets items
// the backend still owns: it must not modify them. The slice is the
// caller's.
func (b *Backend[T, ID]) GetAll(ctx context.Context, q store.Query[T]) ([]T, error) {
	vs, err := b.GetAllVersioned(ctx, q)
	if err != nil {
		return nil, err
	}
	items := make([]T, len(vs))
	for i, v := range vs {
		items[i] = v.Item
	}
	return items, nil
}

// GetAllVersioned is GetAll with the stored versions.
func (b *Backend[T, ID]) GetAllVersioned(ctx context.Context, q store.Query[T]) ([]store.Versioned[T], error) {
	var noID ID
	if err := b.begin(ctx, OpGetAll, noID, false); err != nil {
		return nil, err
	}
	b.mu.RLock()
	n := len(b.index)
	if q.Filter == nil && q.Limit > 0 {
		n = min(n, q.Limit) // nothing past the limit can be returned
	}
	vs := make([]store.Versioned[T], 0, n)
	for _, e := range b.order {
		if len(vs) == n {
			break
		}
		if !e.deleted {
			vs = append(vs, e.v)
		}
	}
	b.mu.RUnlock()

	// Filter in place, outside the lock, so that a filter calling back into
	// the backend cannot deadlock; clone only what is kept.
	kept := vs[:0]
	for _, v := range vs {
		if q.Limit > 0 && len(kept) == q.Limit {
			break
		}
		if q.Match(v.Item) {
			v.Item = b.copy(v.Item)
			kept = append(kept, v)
		}
	}
	clear(vs[len(kept):]) // drop references to items not returned
	return kept, nil
}

// Save creates or replaces the item with the given ID and returns what was
// stored, with a new version.
func (b *Backend[T, ID]) Save(ctx context.Context, id ID, item T) (T, error) {
	v, err := b.SaveVersioned(ctx, id, item, store.VersionAny)
	return v.Item, err
}

// SaveVersioned saves item if the stored version equals expect
// (store.VersionAbsent: the item must not exist; store.VersionAny:
// unconditionally). Otherwise it returns a *store.ConflictError[T] carrying
// the stored value, or RemoteDeleted when there is none. Versions come from
// one counter for the whole backend, so the first save in a new backend gets
// version 1 and an item deleted and saved again never gets back a version it
// had (a stale expectation cannot match it).
func (b *Backend[T, ID]) SaveVersioned(ctx context.Context, id ID, item T, expect uint64) (store.Versioned[T], error) {
	if err := b.begin(ctx, OpSave, id, true); err != nil {
		return store.Versioned[T]{}, err
	}
	item = b.copy(item)
	b.mu.Lock()
	e := b.index[id]
	if ce := conflict(e, expect); ce != nil {
		b.mu.Unlock()
		return store.Versioned[T]{}, b.conflictError(ce)
	}
	b.version++
	v := store.Versioned[T]{Item: item, Version: b.version, Updated: time.Now()}
	if e != nil {
		e.v = v
	} else {
		e = &entry[T]{v: v}
		b.index[id] = e
		b.order = append(b.order, e)
		b.live.Add(1)
	}
	b.publishLocked(id, false, v.Version, v.Updated)
	b.mu.Unlock()
	v.Item = b.copy(v.Item)
	return v, nil
}

// Delete removes the item and reports whether it existed.
func (b *Backend[T, ID]) Delete(ctx context.Context, id ID) (bool, error) {
	return b.DeleteVersioned(ctx, id, store.VersionAny)
}

// DeleteVersioned deletes the item if the stored version equals expect
// (store.VersionAny: unconditionally), else returns a
// *store.ConflictError[T]. Deleting an absent item with expect
// store.VersionAbsent or store.VersionAny is not a conflict and reports
// false.
func (b *Backend[T, ID]) DeleteVersioned(ctx context.Context, id ID, expect uint64) (bool, error) {
	if err := b.begin(ctx, OpDelete, id, true); err != nil {
		return false, err
	}
	b.mu.Lock()
	e := b.index[id]
	if e == nil && expect == store.VersionAbsent {
		b.mu.Unlock()
		return false, nil
	}
	if ce := conflict(e, expect); ce != nil {
		b.mu.Unlock()
		return false, b.conflictError(ce)
	}
	if e != nil {
		delete(b.index, id)
		e.deleted = true
		b.dead++
		b.live.Add(-1)
		b.compactLocked()
		b.publishLocked(id, true, e.v.Version, time.Now())
	}
	b.mu.Unlock()
	return e != nil, nil
}

// conflict checks a conditional write against e, the stored entry (nil when
// absent), and returns the conflict, or nil when the write may proceed. The
// caller holds the lock.
func conflict[T any](e *entry[T], expect uint64) *store.ConflictError[T] {
	switch {
	case expect == store.VersionAny:
		return nil
	case e == nil:
		if expect == store.VersionAbsent {
			return nil
		}
		return &store.ConflictError[T]{RemoteDeleted: true, Expected: expect}
	case e.v.Version == expect:
		return nil
	}
	return &store.ConflictError[T]{Remote: e.v, Expected: expect}
}

// conflictError finishes a conflict outside the lock: the remote item
// becomes the caller's copy.
func (b *Backend[T, ID]) conflictError(ce *store.ConflictError[T]) error {
	if !ce.RemoteDeleted {
		ce.Remote.Item = b.copy(ce.Remote.Item)
	}
	return ce
}

// compactLocked drops deleted entries from order once they are the
// majority, which keeps deletes amortized O(1) and GetAll linear in the
// number of live items.
func (b *Backend[T, ID]) compactLocked() {
	if b.dead*2 <= len(b.order) {
		return
	}
	kept := b.order[:0]
	for _, e := range b.order {
		if !e.deleted {
			kept = append(kept, e)
		}
	}
	clear(b.order[len(kept):])
	b.order, b.dead = kept, 0
}

// copy returns item as the backend hands it over: cloned when WithClone
// was given.
func (b *Backend[T, ID]) copy(item T) T {
	if b.clone == nil {
		return item
	}
	return b.clone(item)
}

// notFound returns the error for an absent ID, e.g.
// `store: not found: id "u1"`.
func (b *Backend[T, ID]) notFound(id ID) error {
	if b.quoteID {
		return fmt.Errorf("%w: id %q", store.ErrNotFound, any(id)) // vet cannot see ID is a string kind
	}
	return fmt.Errorf("%w: id %v", store.ErrNotFound, id)
}

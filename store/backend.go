package store

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Backend is the source of truth behind the cache. Implementations must be
// safe for concurrent use. Optional capabilities (VersionedBackend,
// TxBackend) are found by type assertion, as database/sql does with drivers.
// The store/storetest package checks an implementation against this contract.
type Backend[T any, ID comparable] interface {
	// Get returns the item with the given ID, or an error matching
	// ErrNotFound when there is none.
	Get(ctx context.Context, id ID) (T, error)
	// GetAll returns the items that match q in the order they were first
	// saved (a re-save keeps an item's place; a delete then save moves it to
	// the end). storetest checks this order.
	GetAll(ctx context.Context, q Query[T]) ([]T, error)
	// Save creates or replaces the item with the given ID and returns the
	// item as saved (a backend that sets fields, such as timestamps, returns
	// them set).
	Save(ctx context.Context, id ID, item T) (T, error)
	// Delete removes the item and reports whether it existed.
	Delete(ctx context.Context, id ID) (bool, error)
}

// Query selects items for GetAll.
type Query[T any] struct {
	// Filter keeps the items for which it returns true; nil keeps all.
	Filter func(T) bool
	// Limit caps the number of items returned; 0 (or less) means no limit.
	// The store rejects a negative WithLimit before it reaches a backend.
	Limit int
}

// Match reports whether item passes q's filter.
func (q Query[T]) Match(item T) bool { return q.Filter == nil || q.Filter(item) }

// Apply filters items in place and truncates the result to q's limit.
func (q Query[T]) Apply(items []T) []T {
	if q.Filter != nil {
		kept := items[:0]
		for _, it := range items {
			if q.Filter(it) {
				kept = append(kept, it)
			}
		}
		clear(items[len(kept):])
		items = kept
	}
	if q.Limit > 0 && len(items) > q.Limit {
		items = items[:q.Limit]
	}
	return items
}

// Versions used as the expected version of a conditional write.
const (
	// VersionAbsent expects the item not to exist.
	VersionAbsent uint64 = 0
	// VersionAny writes unconditionally.
	VersionAny uint64 = math.MaxUint64
)

// Versioned is an item with the version the backend stores it at.
type Versioned[T any] struct {
	Item T
	// Version is at least 1 for a stored item and increases on every save.
	// The versions of one ID never repeat, even across a delete (a new item
	// starts above every version a deleted one had), so a change based on a
	// deleted item never matches its re-creation, and of two answers for an
	// ID the higher version is the newer.
	Version uint64
	// Updated is when the backend last saved the item, by the backend's
	// clock (ConflictLatestWins compares it with the local clock: keep them
	// in sync).
	Updated time.Time
}

// VersionedBackend is an optional capability: a backend that keeps a version
// per item supports optimistic concurrency. The store then remembers the
// version each cached item was read at and pushes write-behind changes
// conditionally, so that Sync detects conflicts and resolves them
// (Config.Conflict).
type VersionedBackend[T any, ID comparable] interface {
	Backend[T, ID]
	// GetVersioned is Get with the stored version.
	GetVersioned(ctx context.Context, id ID) (Versioned[T], error)
	// GetAllVersioned is GetAll with the stored versions.
	GetAllVersioned(ctx context.Context, q Query[T]) ([]Versioned[T], error)
	// SaveVersioned saves item if the stored version equals expect
	// (VersionAbsent: the item must not exist; VersionAny: unconditional).
	// Otherwise it returns a *ConflictError[T] carrying the stored value.
	SaveVersioned(ctx context.Context, id ID, item T, expect uint64) (Versioned[T], error)
	// DeleteVersioned deletes the item if the stored version equals expect
	// (VersionAny: unconditional), else returns a *ConflictError[T]. Deleting
	// an absent item with expect VersionAbsent or VersionAny is not a
	// conflict and reports false.
	DeleteVersioned(ctx context.Context, id ID, expect uint64) (bool, error)
}

// ConflictError is returned by a VersionedBackend when a conditional write
// finds another version. It matches ErrConflict.
type ConflictError[T any] struct {
	// Remote is the value the backend holds; zero when RemoteDeleted.
	Remote Versioned[T]
	// RemoteDeleted is set when the backend holds no item.
	RemoteDeleted bool
	// Expected is the version the write expected.
	Expected uint64
}

// Error says which version was expected and which was found.
func (e *ConflictError[T]) Error() string {
	if e.RemoteDeleted {
		return fmt.Sprintf("store: conflict: expected version %d, found no item", e.Expected)
	}
	if e.Expected == VersionAbsent {
		return fmt.Sprintf("store: conflict: expected no item, found version %d", e.Remote.Version)
	}
	return fmt.Sprintf("store: conflict: expected version %d, found version %d", e.Expected, e.Remote.Version)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError[T]) Is(target error) bool { return target == ErrConflict }

// TxBackend is an optional capability: a backend that applies several writes
// atomically. The store uses it to commit transactions, SaveAll and DeleteAll
// all-or-nothing; without it, it applies writes one by one and undoes a
// half-applied transaction with compensating writes.
type TxBackend[T any, ID comparable] interface {
	Backend[T, ID]
	// Begin starts a backend transaction. The context bounds the whole
	// transaction.
	Begin(ctx context.Context) (BackendTx[T, ID], error)
}

// BackendTx is a backend transaction, used by one goroutine. Its writes are
// invisible to others until Commit. Keep it short: a backend may hold a
// write lock until Commit (SQLite does), and the store makes no other
// backend call while one is open. The store calls either Commit or
// Rollback once; Rollback after Commit is a no-op returning nil. A failed
// Commit leaves nothing applied. The context given to Begin bounds the
// whole transaction; each method's context bounds that call.
type BackendTx[T any, ID comparable] interface {
	// Get reads id as the transaction sees it (its own writes included),
	// with the stored version (0 from a backend without versions); an
	// absent item is an error wrapping ErrNotFound.
	Get(ctx context.Context, id ID) (Versioned[T], error)
	// Save writes item and returns it with the version it will have once
	// committed (0 from a backend without versions).
	Save(ctx context.Context, id ID, item T) (Versioned[T], error)
	// Delete removes id and reports whether it existed.
	Delete(ctx context.Context, id ID) (bool, error)
	// Commit applies every write atomically.
	Commit() error
	// Rollback discards every write.
	Rollback() error
}

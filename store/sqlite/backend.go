package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/nexusstore/nexus/store"
)

// Compile-time checks of the capabilities a Backend offers.
var (
	_ store.Backend[struct{}, string]          = (*Backend[struct{}, string])(nil)
	_ store.VersionedBackend[struct{}, string] = (*Backend[struct{}, string])(nil)
	_ store.TxBackend[struct{}, int64]         = (*Backend[struct{}, int64])(nil)
)

// Backend is a store.Backend that keeps items as JSON in one table of a
// SQLite file. It also implements store.VersionedBackend and
// store.TxBackend. It is safe for concurrent use, also with other Backends
// and processes on the same file. Create it with Open and release it with
// Close.
type Backend[T any, ID Key] struct {
	db     *sql.DB
	stmt   statements
	table  string
	text   bool // TEXT keys, else INTEGER
	closed atomic.Bool
}

var _ store.DescribedBackend = (*Backend[struct{}, string])(nil)

// BackendInfo implements store.DescribedBackend: db.system.name "sqlite"
// and the item table as db.collection.name, so that tracers name backend
// calls "get items" and the like.
func (b *Backend[T, ID]) BackendInfo() store.BackendInfo {
	return store.BackendInfo{System: "sqlite", Collection: b.table}
}

// querier is what *sql.DB and *sql.Tx have in common, so that the backend
// and its transactions share one implementation of each operation.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open opens (creating it if needed) the SQLite database file at path and
// the item table in it (see WithTable), and returns a Backend for it. path is
// a file system path, not a URI; ":memory:" is refused, because each pooled
// connection would get its own empty database.
//
// Open checks an existing table: it must have the columns this package
// creates and an id column of the key type that ID needs (see Key). Errors
// are prefixed "sqlite: "; a bad argument or option matches
// store.ErrInvalidArgument.
func Open[T any, ID Key](path string, opts ...Option) (*Backend[T, ID], error) {
	cfg := config{table: DefaultTable}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := checkTable(cfg.table); err != nil {
		return nil, fmt.Errorf("sqlite: option WithTable: %w: %w", store.ErrInvalidArgument, err)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: %w: want a file system path", path, store.ErrInvalidArgument)
	}
	name, err := dsn(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	b := &Backend[T, ID]{db: db, stmt: newStatements(cfg.table), table: cfg.table, text: textKey[ID]()}
	// Open has no context of its own; creating a table is quick, and a
	// locked file is bounded by the busy timeout.
	if err := createTable(context.Background(), db, cfg.table, b.text); err != nil {
		db.Close()
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CANTOPEN {
			// SQLite's own message names neither the cause nor the file.
			return nil, fmt.Errorf("sqlite: open %q: %w (the directory must exist and be writable, and the path must not be a directory)", path, err)
		}
		return nil, fmt.Errorf("sqlite: open %q: %w", path, classify(err))
	}
	return b, nil
}

// Close closes the database. It is idempotent; the methods of a closed
// Backend return an error matching store.ErrClosed.
func (b *Backend[T, ID]) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Get returns the item with the given ID, or an error matching
// store.ErrNotFound.
func (b *Backend[T, ID]) Get(ctx context.Context, id ID) (T, error) {
	v, err := b.GetVersioned(ctx, id)
	return v.Item, err
}

// GetVersioned is Get with the stored version and the time of the last save.
func (b *Backend[T, ID]) GetVersioned(ctx context.Context, id ID) (store.Versioned[T], error) {
	if err := b.usable(); err != nil {
		return store.Versioned[T]{}, err
	}
	key, err := encodeKey(id)
	if err != nil {
		return store.Versioned[T]{}, b.fail("get", id, err)
	}
	v, ok, err := b.read(ctx, b.db, id, key)
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Versioned[T]{}, b.fail("get", id, err)
	}
	return v, nil
}

// GetAll returns the items that match q in the order their IDs were first
// saved. The filter runs in Go on each row as it is read, and reading stops
// at q.Limit matches; without a filter the limit is applied in SQL.
func (b *Backend[T, ID]) GetAll(ctx context.Context, q store.Query[T]) ([]T, error) {
	return list(ctx, b, q, func(item T, _, _ int64) T { return item })
}

// GetAllVersioned is GetAll with the stored versions.
func (b *Backend[T, ID]) GetAllVersioned(ctx context.Context, q store.Query[T]) ([]store.Versioned[T], error) {
	return list(ctx, b, q, versioned[T])
}

// Save creates or replaces the item with the given ID and returns it (the
// caller's value: what is stored is its JSON encoding). Every save adds 1
// to the version (see the package documentation for a new item's first
// version); an item keeps its place in GetAll's order when it is saved
// again.
func (b *Backend[T, ID]) Save(ctx context.Context, id ID, item T) (T, error) {
	_, err := b.SaveVersioned(ctx, id, item, store.VersionAny)
	if err != nil {
		return *new(T), err
	}
	return item, nil
}

// SaveVersioned saves item if the stored version equals expect
// (store.VersionAbsent: the item must not exist; store.VersionAny:
// unconditional). Otherwise it returns an error wrapping a
// *store.ConflictError[T] that carries the stored item. The check and the
// write happen in one immediate transaction, so concurrent conditional
// writers, in this process or another, cannot both succeed.
func (b *Backend[T, ID]) SaveVersioned(ctx context.Context, id ID, item T, expect uint64) (store.Versioned[T], error) {
	if err := b.usable(); err != nil {
		return store.Versioned[T]{}, err
	}
	key, data, err := b.encode(id, item)
	if err != nil {
		return store.Versioned[T]{}, b.fail("save", id, err)
	}
	var v store.Versioned[T]
	if expect == store.VersionAny {
		// One statement is atomic on its own: no transaction needed.
		v, err = b.upsert(ctx, b.db, key, data, item)
	} else {
		err = b.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			v, err = b.saveIf(ctx, tx, id, key, data, item, expect)
			return err
		})
	}
	if err != nil {
		return store.Versioned[T]{}, b.fail("save", id, err)
	}
	return v, nil
}

// Delete removes the item and reports whether it existed.
func (b *Backend[T, ID]) Delete(ctx context.Context, id ID) (bool, error) {
	return b.DeleteVersioned(ctx, id, store.VersionAny)
}

// DeleteVersioned deletes the item if the stored version equals expect
// (store.VersionAny: unconditional), else returns an error wrapping a
// *store.ConflictError[T]. Deleting an absent item with expect
// store.VersionAbsent or store.VersionAny reports false and no error. Like
// SaveVersioned, it checks and deletes in one immediate transaction.
func (b *Backend[T, ID]) DeleteVersioned(ctx context.Context, id ID, expect uint64) (bool, error) {
	if err := b.usable(); err != nil {
		return false, err
	}
	key, err := encodeKey(id)
	if err != nil {
		return false, b.fail("delete", id, err)
	}
	var deleted bool
	if expect == store.VersionAny {
		deleted, err = b.remove(ctx, b.db, key)
	} else {
		err = b.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			deleted, err = b.removeIf(ctx, tx, id, key, expect)
			return err
		})
	}
	if err != nil {
		return false, b.fail("delete", id, err)
	}
	return deleted, nil
}

// usable returns an error matching store.ErrClosed once Close was called.
func (b *Backend[T, ID]) usable() error {
	if b.closed.Load() {
		return fmt.Errorf("sqlite: %w", store.ErrClosed)
	}
	return nil
}

// inTx runs fn in a transaction, which the DSN makes immediate: it holds the
// write lock from BEGIN, so what fn reads cannot change before it writes.
func (b *Backend[T, ID]) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// encode returns the key and JSON document for a save.
func (b *Backend[T, ID]) encode(id ID, item T) (key any, data string, err error) {
	key, err = encodeKey(id)
	if err != nil {
		return nil, "", err
	}
	raw, err := json.Marshal(item)
	if err != nil {
		return nil, "", fmt.Errorf("encode item: %w", err)
	}
	return key, string(raw), nil
}

// read loads one row; ok is false when there is none.
func (b *Backend[T, ID]) read(ctx context.Context, q querier, id ID, key any) (v store.Versioned[T], ok bool, err error) {
	var data []byte
	var version, updated int64
	err = q.QueryRowContext(ctx, b.stmt.get, key).Scan(&data, &version, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	var item T
	if err := json.Unmarshal(data, &item); err != nil {
		return v, false, fmt.Errorf("decode item %s: %w", formatID(id), err)
	}
	return versioned(item, version, updated), true, nil
}

// upsert saves unconditionally.
func (b *Backend[T, ID]) upsert(ctx context.Context, q querier, key any, data string, item T) (store.Versioned[T], error) {
	now := time.Now().UnixNano()
	var version int64
	if err := q.QueryRowContext(ctx, b.stmt.upsert, key, data, now).Scan(&version); err != nil {
		return store.Versioned[T]{}, err
	}
	return versioned(item, version, now), nil
}

// saveIf saves at an expected version other than VersionAny. tx must hold
// the write lock, so that the conflict it reports is the state it saw.
func (b *Backend[T, ID]) saveIf(ctx context.Context, tx *sql.Tx, id ID, key any, data string, item T, expect uint64) (store.Versioned[T], error) {
	now := time.Now().UnixNano()
	var row *sql.Row
	if expect == store.VersionAbsent {
		row = tx.QueryRowContext(ctx, b.stmt.insert, key, data, now)
	} else {
		row = tx.QueryRowContext(ctx, b.stmt.update, key, data, now, storedVersion(expect))
	}
	var version int64
	err := row.Scan(&version)
	if err == nil {
		return versioned(item, version, now), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Versioned[T]{}, err
	}
	return store.Versioned[T]{}, b.conflict(ctx, tx, id, key, expect)
}

// remove deletes unconditionally.
func (b *Backend[T, ID]) remove(ctx context.Context, q querier, key any) (bool, error) {
	res, err := q.ExecContext(ctx, b.stmt.delete, key)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// removeIf deletes at an expected version other than VersionAny, in a
// transaction that holds the write lock.
func (b *Backend[T, ID]) removeIf(ctx context.Context, tx *sql.Tx, id ID, key any, expect uint64) (bool, error) {
	if expect != store.VersionAbsent {
		res, err := tx.ExecContext(ctx, b.stmt.deleteIf, key, storedVersion(expect))
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return n > 0, err
		}
	}
	err := b.conflict(ctx, tx, id, key, expect)
	var ce *store.ConflictError[T]
	if expect == store.VersionAbsent && errors.As(err, &ce) && ce.RemoteDeleted {
		return false, nil // absent, as expected: nothing to delete
	}
	return false, err
}

// conflict builds the *store.ConflictError for a conditional write that
// did not match, from the row as it is now.
func (b *Backend[T, ID]) conflict(ctx context.Context, q querier, id ID, key any, expect uint64) error {
	remote, ok, err := b.read(ctx, q, id, key)
	if err != nil {
		return err
	}
	return &store.ConflictError[T]{Remote: remote, RemoteDeleted: !ok, Expected: expect}
}

// storedVersion converts an expected version for SQL. Stored versions are
// positive int64s, so a larger expectation can never match; -1 keeps it
// from matching without overflowing the driver's int64.
func storedVersion(expect uint64) int64 {
	if expect > math.MaxInt64 {
		return -1
	}
	return int64(expect)
}

// versioned assembles a store.Versioned from a row's columns.
func versioned[T any](item T, version, updated int64) store.Versioned[T] {
	return store.Versioned[T]{Item: item, Version: uint64(version), Updated: time.Unix(0, updated)}
}

// list streams the rows in first-saved order, decodes them, keeps those that
// match q and stops at q.Limit, converting each with conv.
func list[T any, ID Key, R any](ctx context.Context, b *Backend[T, ID], q store.Query[T], conv func(T, int64, int64) R) ([]R, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	limit := int64(-1) // SQLite: no limit
	if q.Filter == nil && q.Limit > 0 {
		limit = int64(q.Limit)
	}
	rows, err := b.db.QueryContext(ctx, b.stmt.list, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get all: %w", classify(err))
	}
	defer rows.Close()
	out := []R{}
	var id, data sql.RawBytes // reused across rows; decoding copies what it keeps
	var version, updated int64
	for rows.Next() {
		if err := rows.Scan(&id, &data, &version, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: get all: %w", classify(err))
		}
		var item T
		if err := json.Unmarshal(data, &item); err != nil {
			return nil, fmt.Errorf("sqlite: get all: decode item %s: %w", formatRawID(id, b.text), err)
		}
		if !q.Match(item) {
			continue
		}
		out = append(out, conv(item, version, updated))
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: get all: %w", classify(err))
	}
	return out, nil
}

// fail wraps err for an operation on one ID.
func (b *Backend[T, ID]) fail(op string, id ID, err error) error {
	return fmt.Errorf("sqlite: %s %s: %w", op, formatID(id), classify(err))
}

// classify adds the store's sentinels to driver errors that have one: a
// locked database (the busy timeout ran out) is transient, so it matches
// store.ErrUnavailable; a finished *sql.Tx matches store.ErrTxDone.
func classify(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("%w: %w", store.ErrTxDone, err)
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	return err
}

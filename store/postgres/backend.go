package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/nexusstore/nexus/store"
)

// Compile-time checks of the capabilities a Backend offers.
var (
	_ store.Backend[struct{}, string]          = (*Backend[struct{}, string])(nil)
	_ store.VersionedBackend[struct{}, string] = (*Backend[struct{}, string])(nil)
	_ store.TxBackend[struct{}, int64]         = (*Backend[struct{}, int64])(nil)
	_ store.DescribedBackend                   = (*Backend[struct{}, string])(nil)
	_ store.ChangeFeed[string]                 = (*Backend[struct{}, string])(nil)
	_ store.PooledBackend                      = (*Backend[struct{}, string])(nil)
)

// Backend is a store.Backend that keeps items as JSONB in one PostgreSQL
// table, through a pgx connection pool that the caller owns. It also
// implements store.VersionedBackend, store.TxBackend, store.ChangeFeed and
// store.DescribedBackend. It is safe for concurrent use, also with other
// Backends and processes on the same table. Create it with New and release
// it with Close (which leaves the pool open).
type Backend[T any, ID Key] struct {
	pool *pgxpool.Pool
	stmt statements
	text bool // TEXT keys, else BIGINT
	info store.BackendInfo
	// tries bounds a read's tries on dead connections (retryStale): the
	// pool's size plus one.
	tries int
	feed  feedConfig

	closed atomic.Bool
	mu     sync.Mutex // guards subs
	subs   map[*subscription]struct{}
	// listening counts the subscriptions whose listener is connected.
	listening atomic.Int32
}

// New returns a Backend over pool for the table that WithTable names
// (default DefaultTable), creating the table, its sequence, functions and
// triggers when the table or one of its triggers is missing (see Schema; a
// lock keeps replicas that start together from racing). It checks an
// existing table: it must have the columns this package creates, with an id
// column of the key type that ID needs (see Key). ctx bounds this setup
// only.
//
// The caller owns pool: New does not close it, and neither does Close. The
// change feed's listeners connect with pool's connection settings (its
// BeforeConnect and AfterConnect hooks included) but on connections of
// their own, outside the pool.
//
// Errors are prefixed "postgres: "; a nil pool or a bad option matches
// store.ErrInvalidArgument, a server that cannot be reached
// store.ErrUnavailable.
func New[T any, ID Key](ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Backend[T, ID], error) {
	if pool == nil {
		return nil, fmt.Errorf("postgres: new: %w: nil pool", store.ErrInvalidArgument)
	}
	cfg := newConfig(opts)
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	text := textKey[ID]()
	if err := ensureSchema(ctx, pool, cfg.table, text); err != nil {
		return nil, fmt.Errorf("postgres: new: table %q: %w", cfg.table, classify(err))
	}
	var database string
	if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		return nil, fmt.Errorf("postgres: new: %w", classify(err))
	}
	pc := pool.Config()
	return &Backend[T, ID]{
		pool:  pool,
		stmt:  newStatements(cfg.table),
		text:  text,
		tries: int(pc.MaxConns) + 1,
		info: store.BackendInfo{
			System:        "postgresql",
			Collection:    cfg.table,
			Namespace:     database,
			ServerAddress: pc.ConnConfig.Host,
			ServerPort:    int(pc.ConnConfig.Port),
		},
		feed: feedConfig{
			conn:          pc.ConnConfig,
			beforeConnect: pc.BeforeConnect,
			afterConnect:  pc.AfterConnect,
			channel:       channelName(cfg.table),
			backoffMin:    cfg.backoffMin,
			backoffMax:    cfg.backoffMax,
			health:        healthInterval,
		},
		subs: make(map[*subscription]struct{}),
	}, nil
}

// BackendInfo describes the backend for telemetry: the system
// "postgresql", the table, the database, and the server's host and port as
// the pool's configuration names them (the first host, when it names
// several).
func (b *Backend[T, ID]) BackendInfo() store.BackendInfo { return b.info }

// Close stops the change feed's listeners (every subscription ends, as if
// its stop function had been called) and makes every method fail with an
// error matching store.ErrClosed. It does not close the pool. It is
// idempotent. It must not be called from a change feed callback, whose
// return it would wait for.
func (b *Backend[T, ID]) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	b.mu.Lock()
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.cancel()
	}
	for _, s := range subs {
		<-s.done
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
	var v store.Versioned[T]
	var ok bool
	err = b.retryStale(ctx, func() (err error) {
		v, ok, err = b.read(ctx, b.pool, b.stmt.get, id, key)
		return err
	})
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Versioned[T]{}, b.fail("get", id, err)
	}
	return v, nil
}

// GetAll returns the items that match q in the order their IDs were first
// saved. It reads the rows in that order in one query (one snapshot) and
// applies the Go filter to each as it arrives, stopping at q.Limit matches;
// without a filter the limit goes into the SQL. With a filter, the rows
// after the last match are still sent by the server (pgx reads a result to
// its end) but not decoded.
func (b *Backend[T, ID]) GetAll(ctx context.Context, q store.Query[T]) ([]T, error) {
	return list(ctx, b, q, func(item T, _ int64, _ time.Time) T { return item })
}

// GetAllVersioned is GetAll with the stored versions.
func (b *Backend[T, ID]) GetAllVersioned(ctx context.Context, q store.Query[T]) ([]store.Versioned[T], error) {
	return list(ctx, b, q, versioned[T])
}

// Save creates or replaces the item with the given ID and returns it (the
// caller's value: what is stored is its JSON encoding). Every save takes a
// new, higher version; an item keeps its place in GetAll's order when it is
// saved again.
func (b *Backend[T, ID]) Save(ctx context.Context, id ID, item T) (T, error) {
	if _, err := b.SaveVersioned(ctx, id, item, store.VersionAny); err != nil {
		return *new(T), err
	}
	return item, nil
}

// SaveVersioned saves item if the stored version equals expect
// (store.VersionAbsent: the item must not exist; store.VersionAny:
// unconditional). Otherwise it returns an error wrapping a
// *store.ConflictError[T] that carries the stored item. The check and the
// write are one statement (an UPDATE ... WHERE version = expect, or an
// INSERT ... ON CONFLICT DO NOTHING), so of concurrent conditional writers
// at one version, in any process, exactly one succeeds.
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
		v, err = b.upsert(ctx, b.pool, key, data, item)
	} else {
		v, err = b.saveIf(ctx, b.pool, id, key, data, item, expect)
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
// store.VersionAbsent or store.VersionAny reports false and no error. The
// check and the delete are one statement.
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
		deleted, err = b.remove(ctx, b.pool, key)
	} else {
		deleted, err = b.removeIf(ctx, b.pool, id, key, expect)
	}
	if err != nil {
		return false, b.fail("delete", id, err)
	}
	return deleted, nil
}

// PoolStats is a snapshot of the figures of a Backend's connection pool
// (the caller's pgxpool.Pool, which other users may share) and of its change
// feed's listener connections, which are not in the pool.
type PoolStats struct {
	// MaxConns is the pool's size limit; TotalConns = IdleConns +
	// AcquiredConns + ConstructingConns are the connections it holds now.
	MaxConns, TotalConns, IdleConns, AcquiredConns, ConstructingConns int32
	// AcquireCount counts successful acquires since the pool was created;
	// EmptyAcquireCount those that had to wait for a connection;
	// CanceledAcquireCount acquires abandoned by their context;
	// NewConnsCount connections opened.
	AcquireCount, EmptyAcquireCount, CanceledAcquireCount, NewConnsCount int64
	// AcquireDuration is the total time spent in successful acquires.
	AcquireDuration time.Duration
	// FeedListeners is the number of the Backend's change feed
	// subscriptions whose listener connection is up now.
	FeedListeners int
}

// PoolStats returns the pool's figures (from pgxpool.Pool.Stat) and the
// number of connected feed listeners.
func (b *Backend[T, ID]) PoolStats() PoolStats {
	s := b.pool.Stat()
	return PoolStats{
		MaxConns:             s.MaxConns(),
		TotalConns:           s.TotalConns(),
		IdleConns:            s.IdleConns(),
		AcquiredConns:        s.AcquiredConns(),
		ConstructingConns:    s.ConstructingConns(),
		AcquireCount:         s.AcquireCount(),
		EmptyAcquireCount:    s.EmptyAcquireCount(),
		CanceledAcquireCount: s.CanceledAcquireCount(),
		NewConnsCount:        s.NewConnsCount(),
		AcquireDuration:      s.AcquireDuration(),
		FeedListeners:        int(b.listening.Load()),
	}
}

// ConnPoolStats returns the pool's figures as store.PooledBackend asks for
// them (the store's Live, nexusotel's db.client.connection.* gauges).
func (b *Backend[T, ID]) ConnPoolStats() store.ConnPoolStats {
	s := b.pool.Stat()
	return store.ConnPoolStats{
		Max:      int(s.MaxConns()),
		Idle:     int(s.IdleConns()),
		Used:     int(s.AcquiredConns()),
		Timeouts: s.CanceledAcquireCount(),
	}
}

// usable returns an error matching store.ErrClosed once Close was called.
func (b *Backend[T, ID]) usable() error {
	if b.closed.Load() {
		return fmt.Errorf("postgres: %w", store.ErrClosed)
	}
	return nil
}

// encode returns the key and JSON document for a save. The document is
// passed as a string, which every pgx query execution mode sends as text.
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

// read loads one row with the statement sql (get, or getLock in a
// transaction); ok is false when there is none.
func (b *Backend[T, ID]) read(ctx context.Context, q querier, sql string, id ID, key any) (v store.Versioned[T], ok bool, err error) {
	var data []byte
	var version int64
	var updated time.Time
	err = q.QueryRow(ctx, sql, key).Scan(&data, &version, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
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
	var version int64
	var updated time.Time
	if err := q.QueryRow(ctx, b.stmt.upsert, key, data).Scan(&version, &updated); err != nil {
		return store.Versioned[T]{}, err
	}
	return versioned(item, version, updated), nil
}

// saveIf saves at an expected version other than VersionAny.
func (b *Backend[T, ID]) saveIf(ctx context.Context, q querier, id ID, key any, data string, item T, expect uint64) (store.Versioned[T], error) {
	for {
		var row pgx.Row
		if expect == store.VersionAbsent {
			row = q.QueryRow(ctx, b.stmt.insert, key, data)
		} else {
			row = q.QueryRow(ctx, b.stmt.update, key, data, storedVersion(expect))
		}
		var version int64
		var updated time.Time
		err := row.Scan(&version, &updated)
		if err == nil {
			return versioned(item, version, updated), nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return store.Versioned[T]{}, err
		}
		// No row written: the item was not at expect. Report what it is now.
		remote, ok, err := b.read(ctx, q, b.stmt.get, id, key)
		if err != nil {
			return store.Versioned[T]{}, err
		}
		if !ok && expect == store.VersionAbsent {
			continue // deleted since the insert found it: absent, as expected
		}
		// Versions never repeat, so an item read after an UPDATE ... WHERE
		// version = expect matched nothing cannot be at expect.
		return store.Versioned[T]{}, &store.ConflictError[T]{Remote: remote, RemoteDeleted: !ok, Expected: expect}
	}
}

// remove deletes unconditionally.
func (b *Backend[T, ID]) remove(ctx context.Context, q querier, key any) (bool, error) {
	tag, err := q.Exec(ctx, b.stmt.delete, key)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// removeIf deletes at an expected version other than VersionAny.
func (b *Backend[T, ID]) removeIf(ctx context.Context, q querier, id ID, key any, expect uint64) (bool, error) {
	if expect != store.VersionAbsent {
		tag, err := q.Exec(ctx, b.stmt.deleteIf, key, storedVersion(expect))
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() > 0 {
			return true, nil
		}
	}
	remote, ok, err := b.read(ctx, q, b.stmt.get, id, key)
	switch {
	case err != nil:
		return false, err
	case !ok && expect == store.VersionAbsent:
		return false, nil // absent, as expected: nothing to delete
	}
	return false, &store.ConflictError[T]{Remote: remote, RemoteDeleted: !ok, Expected: expect}
}

// storedVersion converts an expected version for SQL. Stored versions are
// positive BIGINTs, so a larger expectation can never match; -1 keeps it
// from matching without overflowing.
func storedVersion(expect uint64) int64 {
	if expect > math.MaxInt64 {
		return -1
	}
	return int64(expect)
}

// versioned assembles a store.Versioned from a row's columns.
func versioned[T any](item T, version int64, updated time.Time) store.Versioned[T] {
	return store.Versioned[T]{Item: item, Version: uint64(version), Updated: updated}
}

// list streams the rows in listing order, decodes them, keeps those that
// match q and stops at q.Limit, converting each with conv.
func list[T any, ID Key, R any](ctx context.Context, b *Backend[T, ID], q store.Query[T], conv func(T, int64, time.Time) R) ([]R, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	var out []R
	err := b.retryStale(ctx, func() (err error) {
		out, err = listOnce(ctx, b, q, conv)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: get all: %w", classify(err))
	}
	return out, nil
}

func listOnce[T any, ID Key, R any](ctx context.Context, b *Backend[T, ID], q store.Query[T], conv func(T, int64, time.Time) R) ([]R, error) {
	var limit any // NULL: no limit
	if q.Filter == nil && q.Limit > 0 {
		limit = int64(q.Limit)
	}
	rows, err := b.pool.Query(ctx, b.stmt.list, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []R{}
	var id string
	var data []byte
	var version int64
	var updated time.Time
	for rows.Next() {
		if err := rows.Scan(&id, &data, &version, &updated); err != nil {
			return nil, err
		}
		var item T
		if err := json.Unmarshal(data, &item); err != nil {
			return nil, fmt.Errorf("decode item %s: %w", formatRawID(id, b.text), err)
		}
		if !q.Match(item) {
			continue
		}
		out = append(out, conv(item, version, updated))
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// retryStale runs a read on the pool again when the connection it got
// turned out dead: opened before the server restarted or a connection was
// cut, its first use fails (57P01 "terminating connection due to
// administrator command", an EOF, a reset). pgx drops such a connection
// from the pool, so the next try gets another one; as database/sql does
// with driver.ErrBadConn, a read tries at most once per connection the
// pool may hold, plus one. Reads only: a write whose connection died after
// the statement was sent may have been applied, so a write fails with
// store.ErrUnavailable (the store's write-behind retries it; a
// write-through returns it).
func (b *Backend[T, ID]) retryStale(ctx context.Context, read func() error) error {
	err := read()
	for try := 1; try < b.tries && deadConn(err) && ctx.Err() == nil; try++ {
		err = read()
	}
	return err
}

// deadConn reports whether err says the connection a call used was dead,
// not that the server cannot be reached (a failed connect ends retrying).
func deadConn(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, connect := errors.AsType[*pgconn.ConnectError](err); connect {
		return false
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pe.Code == "57P01" || pe.Code == "57P02" // admin or crash shutdown
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		return !ne.Timeout()
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// fail wraps err for an operation on one ID.
func (b *Backend[T, ID]) fail(op string, id ID, err error) error {
	return fmt.Errorf("postgres: %s %s: %w", op, formatID(id), classify(err))
}

// classify adds the store's sentinels to driver errors that have one:
// failures to reach the server, and transient server states (shutting down,
// starting up, out of connections, a serialization failure or deadlock,
// which a retry may get past), match store.ErrUnavailable; values the
// server refuses (text it cannot hold, a CHECK constraint, a key too big to
// index) match store.ErrInvalidArgument; a closed pool matches
// store.ErrClosed; a finished transaction store.ErrTxDone. Context errors
// are left as they are.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("%w: %w", store.ErrTxDone, err)
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return fmt.Errorf("%w: the pool was closed: %w", store.ErrClosed, err)
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin or crash shutdown, cannot connect now
			pe.Code == "53300",                     // too many connections
			pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		case pe.Code == "22P05", pe.Code == "22021", // text the server cannot hold (NUL in a JSON string, bad encoding)
			pe.Code == "23514", // check violation
			pe.Code == "54000": // program limit exceeded (index row too large)
			return fmt.Errorf("%w: %w", store.ErrInvalidArgument, err)
		}
		return err
	}
	_, connect := errors.AsType[*pgconn.ConnectError](err)
	_, network := errors.AsType[net.Error](err)
	if connect || network || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

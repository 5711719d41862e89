// Package postgres is a store.Backend on PostgreSQL, through
// github.com/jackc/pgx/v5 and a pgxpool.Pool that the caller owns: the
// networked backend that many replicas of a service share, with a change
// feed that keeps their caches coherent.
//
// Create a pool, hand it to New, give the Backend to store.New, and Close
// the Backend before the pool:
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app")
//	...
//	defer pool.Close()
//	b, err := postgres.New[User, string](ctx, pool, postgres.WithTable("users"))
//	...
//	defer b.Close()
//
// Besides store.Backend it implements store.VersionedBackend (a version per
// item for optimistic concurrency), store.TxBackend (atomic multi-item
// writes), store.ChangeFeed (changes committed by anyone, through LISTEN and
// NOTIFY) and store.DescribedBackend (db.system.name "postgresql", the
// table, the database, the server's address), which the store finds by type
// assertion. PoolStats reports the pool's figures. It needs PostgreSQL 14 or
// later.
//
// # Storage and migration
//
// Each Backend owns one table (WithTable; default "items"), looked up
// through the connection's search_path:
//
//	CREATE TABLE items (
//		id      TEXT PRIMARY KEY CHECK (octet_length(id) <= 2048), -- BIGINT for integer IDs
//		data    JSONB NOT NULL,       -- the item, encoded by encoding/json
//		version BIGINT NOT NULL,      -- from the sequence items_version
//		ord     BIGINT NOT NULL,      -- listing order: the version of the first save
//		updated TIMESTAMPTZ NOT NULL  -- the time of the last save
//	);
//
// with a unique index on ord, and three triggers: items_stamp (BEFORE INSERT
// OR UPDATE) sets version, ord and updated; items_feed (AFTER INSERT, UPDATE
// or DELETE) and items_truncate (AFTER TRUNCATE) send the change feed's
// notifications. Schema returns the complete script, for running from a
// migration tool; it is idempotent. New runs it when the table or one of
// its triggers is missing (under an advisory lock, so replicas that start
// together do not race), and otherwise only checks the table: the columns
// must be there, with an id column of the key type that ID needs. The
// triggers do the bookkeeping, so writers that bypass this package (plain
// SQL, other languages) keep versions, order and the feed right too.
//
// Every save takes the next value of the table's sequence as its version,
// so versions grow with every save and never repeat, not even across a
// delete: a conditional write based on a deleted item cannot match its
// successor (the ABA problem). They are not consecutive per item. An insert
// takes its version as its place in GetAll's order; an update keeps the
// place; a delete then save moves the item to the end.
//
// Items are stored as JSONB: object keys are reordered and duplicates
// dropped, and a string holding the NUL character is refused (with an error
// matching store.ErrInvalidArgument). Save returns the caller's value.
// GetAll reads the rows in order in one query and applies the Go filter of
// its store.Query as they arrive, stopping at the limit; without a filter,
// the limit goes into the SQL.
//
// # IDs
//
// The ID type parameter is constrained by Key to string and integer kinds.
// String kinds make a TEXT key of at most MaxIDBytes (2048) bytes of valid
// UTF-8 without NUL; integer kinds make a BIGINT key (uint64 is excluded, and
// a uint above math.MaxInt64 is refused). Refused IDs give errors matching
// store.ErrInvalidArgument; the table's CHECK constraint holds the length
// limit for plain SQL writers too. The limit keeps the primary key within
// what a B-tree entry can hold and every notification under NOTIFY's
// 8000-byte payload limit. A table created for one key kind cannot be used
// with the other: New reports the mismatch.
//
// # Concurrency and transactions
//
// A Backend is safe for concurrent use, and any number of Backends, in any
// number of processes, can share a table. Conditional writes (SaveVersioned,
// DeleteVersioned with an expected version) check and write in one
// statement, so of concurrent writers at one version exactly one succeeds
// and the others get a *store.ConflictError carrying the stored item.
// Begin starts a READ COMMITTED transaction on one pooled connection; its
// Get locks the row it reads (SELECT ... FOR UPDATE) until the transaction
// ends, so a version read in it stays current; plain reads elsewhere never
// wait for it. Every method honours its context.
//
// # Change feed
//
// The feed trigger sends a notification on the channel "nexus.TABLE" for
// every row a committed transaction wrote, in commit order, with the
// payload
//
//	s,VERSION,MICROS,ID   a save: the new version
//	d,VERSION,MICROS,ID   a delete: the version the item had
//	r                     a TRUNCATE of the table
//
// where MICROS is the row's updated time (for a delete, the time of the
// delete) in Unix microseconds, by the server's clock: store.FeedEvent's
// Committed, from which the store measures the feed's lag. It is stamped
// when the row is written, so a long transaction's changes look older than
// their commit. PostgreSQL sends nothing for a rolled-back transaction, and
// collapses identical notifications within one transaction (which cannot
// happen here: versions differ). A notification leaves the server only
// when its transaction commits, so the lag is the time to deliver it
// (measured on loopback: well under a millisecond at the median, a few
// milliseconds at p99).
//
// Subscribe starts a listener goroutine on a connection of its own (not
// from the pool; it is made with the pool's configuration and its
// BeforeConnect and AfterConnect hooks), which LISTENs and delivers a
// store.FeedReset once it is listening, then a store.FeedChanged for each
// notification. Each subscription has its own connection and gets every
// event; Backends in other processes get them too.
//
// Failure modes, and what a subscriber sees:
//
//   - The server goes away (restart, crash, network): the connection fails
//     and the listener delivers a store.FeedError with the cause (matching
//     store.ErrUnavailable), then tries to connect again after a backoff
//     that starts at 100ms and doubles up to 5s, each delay varied by ±20%
//     (WithFeedBackoff), delivering a store.FeedError per failed attempt.
//     Once it listens again it delivers a store.FeedReset. Notifications
//     sent while it was away are lost for good (PostgreSQL keeps them only
//     for listening sessions): the reset tells the subscriber to distrust
//     what it cached.
//   - A connection that dies without the socket closing (a partition) is
//     found by a ping after 30s without notifications, and handled as above.
//   - A slow subscriber delays its own events only: they queue on the
//     server (PostgreSQL's notification queue holds 8GB by default; when it
//     fills, writing transactions fail at commit) and no writer waits for
//     it. Keep the callback short.
//   - A TRUNCATE, or a notification on the channel that this package did not
//     send (and cannot read), is delivered as a store.FeedReset.
//
// Close stops every subscription of the Backend; a subscription's stop
// function stops it alone. Both return once the callback will not be
// called again, and must not be called from the callback.
//
// # Errors
//
// Errors start with "postgres: ", name the operation and the ID, and wrap
// the store's sentinels where one applies: store.ErrNotFound,
// store.ErrConflict (through *store.ConflictError), store.ErrClosed after
// Close or once the pool was closed, store.ErrTxDone for a finished
// transaction, store.ErrUnavailable for a server that cannot be reached and
// for transient server states (shutting down or starting up, too many
// connections, a serialization failure or deadlock: a retry may succeed),
// store.ErrInvalidArgument for a bad option, ID or value. Context errors
// are wrapped as they are. The pgx error stays in the chain, for errors.As.
//
// After the server restarts, the pool still holds connections opened
// before; the first use of each fails. A read (Get, GetAll and their
// Versioned forms, outside a transaction) then tries again on another
// connection, at most once per connection the pool may hold plus one, as
// database/sql does; a write fails with store.ErrUnavailable, since the
// statement may have been applied (the store's write-behind retries it).
package postgres

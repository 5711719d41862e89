package postgres_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

func TestNewInvalidArguments(t *testing.T) {
	ctx := t.Context()
	if _, err := postgres.New[note, string](ctx, nil); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("New with a nil pool: %v; want ErrInvalidArgument", err)
	}
	pool := sharedPool(t)
	tests := []struct {
		opt  postgres.Option
		want string
	}{
		{postgres.WithTable(""), "option WithTable"},
		{postgres.WithTable("users; DROP TABLE users"), "not a plain identifier"},
		{postgres.WithTable("1users"), "not a plain identifier"},
		{postgres.WithTable(strings.Repeat("x", postgres.MaxTableName+1)), "longer than 48"},
		{postgres.WithFeedBackoff(0, time.Second), "option WithFeedBackoff"},
		{postgres.WithFeedBackoff(time.Second, time.Millisecond), "option WithFeedBackoff"},
	}
	for _, tt := range tests {
		_, err := postgres.New[note, string](ctx, pool, tt.opt)
		if !errors.Is(err, store.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "postgres: ") {
			t.Errorf("New(%s) = %v; want a postgres: error matching ErrInvalidArgument, mentioning %q", tt.want, err, tt.want)
		}
	}
	if _, err := postgres.Schema[string]("bad name"); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Schema with a bad name: %v; want ErrInvalidArgument", err)
	}
}

// TestExistingTables checks what New makes of tables it did not create.
func TestExistingTables(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)

	// A table made for string IDs is refused for integer IDs, and the other
	// way round.
	text := newTable()
	open[note, string](t, pool, postgres.WithTable(text))
	if _, err := postgres.New[note, int64](ctx, pool, postgres.WithTable(text)); err == nil || !strings.Contains(err.Error(), "this ID type needs BIGINT") {
		t.Errorf("New[int64] on a TEXT table: %v; want a key type mismatch", err)
	}
	integer := newTable()
	open[note, int32](t, pool, postgres.WithTable(integer))
	if _, err := postgres.New[note, string](ctx, pool, postgres.WithTable(integer)); err == nil || !strings.Contains(err.Error(), "this ID type needs TEXT") {
		t.Errorf("New[string] on a BIGINT table: %v; want a key type mismatch", err)
	}

	// A table of someone else's.
	other := newTable()
	execSQL(t, pool, `CREATE TABLE "`+other+`" (id text PRIMARY KEY, body text)`)
	if _, err := postgres.New[note, string](ctx, pool, postgres.WithTable(other)); err == nil || !strings.Contains(err.Error(), `without column "data"`) {
		t.Errorf("New on a foreign table: %v; want a missing column", err)
	}

	// The migration script, run by hand (twice: it is idempotent), makes a
	// table that New takes as it is.
	migrated := newTable()
	script, err := postgres.Schema[string](migrated)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, pool, script)
	execSQL(t, pool, script)
	b := open[note, string](t, pool, postgres.WithTable(migrated))
	mustSave(t, b, "a", note{ID: "a"})

	// A table that lost a trigger gets it back.
	execSQL(t, pool, `DROP TRIGGER "`+migrated+`_feed" ON "`+migrated+`"`)
	b = open[note, string](t, pool, postgres.WithTable(migrated))
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = $1`, migrated+"_feed").Scan(&n); err != nil || n != 1 {
		t.Errorf("feed triggers after New on a table without one: %d, %v; want 1", n, err)
	}
	if got, err := b.Get(ctx, "a"); err != nil || got.ID != "a" {
		t.Errorf("Get after New restored the trigger: %+v, %v", got, err)
	}
}

// TestConcurrentNew starts several Backends on one new table at once, as
// replicas starting together do: all succeed.
func TestConcurrentNew(t *testing.T) {
	pool := sharedPool(t)
	table := newTable()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range cap(errs) {
		wg.Go(func() {
			b, err := postgres.New[note, string](t.Context(), pool, postgres.WithTable(table))
			if err == nil {
				err = b.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestIntegerIDs(t *testing.T) {
	type invoice struct {
		ID    uint   `json:"id"`
		Cents uint32 `json:"cents"`
	}
	ctx := t.Context()
	b := open[invoice, uint](t, sharedPool(t), postgres.WithTable(newTable()))
	for _, id := range []uint{3, 1, math.MaxInt64} {
		mustSave(t, b, id, invoice{ID: id, Cents: 100})
	}
	if got, err := b.Get(ctx, math.MaxInt64); err != nil || got.ID != math.MaxInt64 {
		t.Errorf("Get(MaxInt64) = %+v, %v", got, err)
	}
	_, err := b.Get(ctx, 2)
	if !errors.Is(err, store.ErrNotFound) || err.Error() != "postgres: get 2: store: not found" {
		t.Errorf("Get(2) = %v; want `postgres: get 2: store: not found`", err)
	}
	if _, err := b.Save(ctx, math.MaxInt64+1, invoice{}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Save of a uint ID above MaxInt64: %v; want ErrInvalidArgument", err)
	}
	all, err := b.GetAll(ctx, store.Query[invoice]{})
	if err != nil || len(all) != 3 || all[0].ID != 3 || all[1].ID != 1 {
		t.Errorf("GetAll = %+v, %v; want first-saved order 3, 1, MaxInt64", all, err)
	}
}

func TestTextIDLimits(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)
	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	longest := strings.Repeat("é", postgres.MaxIDBytes/2) // 2 bytes each
	mustSave(t, b, longest, note{ID: "longest"})
	if got, err := b.Get(ctx, longest); err != nil || got.ID != "longest" {
		t.Errorf("Get of a %d-byte ID: %+v, %v", len(longest), got, err)
	}
	for name, id := range map[string]string{
		"too long":     longest + "x",
		"NUL":          "a\x00b",
		"invalid UTF8": "a\xffb",
	} {
		_, err := b.Save(ctx, id, note{})
		if !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Save of an ID %s: %v; want ErrInvalidArgument", name, err)
		}
		if _, err := b.Get(ctx, id); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("Get of an ID %s: %v; want ErrInvalidArgument", name, err)
		}
	}
	// Plain SQL cannot get past the limit either.
	_, err := pool.Exec(ctx, `INSERT INTO "`+table+`" (id, data) VALUES ($1, '{}')`, longest+"x")
	if err == nil || !strings.Contains(err.Error(), table+"_id_length") {
		t.Errorf("plain INSERT of a too long ID: %v; want the CHECK constraint to refuse it", err)
	}
}

func TestCodecErrors(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)
	type withFunc struct{ F func() }
	fb := open[withFunc, string](t, pool, postgres.WithTable(newTable()))
	if _, err := fb.Save(ctx, "f1", withFunc{F: func() {}}); err == nil || !strings.Contains(err.Error(), `"f1"`) {
		t.Errorf("Save of an unencodable item: %v; want an error naming the ID", err)
	}

	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	mustSave(t, b, "good", note{ID: "good"})
	mustSave(t, b, "bad", note{ID: "bad"})
	execSQL(t, pool, `UPDATE "`+table+`" SET data = '{"id": 12}' WHERE id = 'bad'`)
	if _, err := b.Get(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("Get of an undecodable item: %v; want an error naming the ID", err)
	}
	if _, err := b.GetAll(ctx, store.Query[note]{}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("GetAll over an undecodable item: %v; want an error naming the ID", err)
	}
	if _, err := b.GetAll(ctx, store.Query[note]{Limit: 1}); err != nil {
		t.Errorf("GetAll stopping before the undecodable item: %v", err)
	}
	// JSONB cannot hold a NUL character in a string.
	if _, err := b.Save(ctx, "nul", note{ID: "nul", Text: "a\x00b"}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Save of a text with NUL: %v; want ErrInvalidArgument", err)
	}
}

// TestPlainSQLWriters checks that the table's triggers keep versions and
// order right for writers that bypass this package.
func TestPlainSQLWriters(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)
	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	v1 := mustSave(t, b, "a", note{ID: "a"})
	execSQL(t, pool, `INSERT INTO "`+table+`" (id, data, version, ord) VALUES ('b', '{"id": "b"}', 1, 1)`)
	execSQL(t, pool, `UPDATE "`+table+`" SET data = '{"id": "a", "text": "sql"}', version = 1, ord = 99 WHERE id = 'a'`)
	a, err := b.GetVersioned(ctx, "a")
	if err != nil || a.Item.Text != "sql" || a.Version <= v1.Version {
		t.Errorf("after a plain UPDATE, a = %+v, %v; want the new text at a version above %d", a, err, v1.Version)
	}
	if bv, err := b.GetVersioned(ctx, "b"); err != nil || bv.Version <= v1.Version || bv.Version >= a.Version {
		t.Errorf("after a plain INSERT, b = %+v, %v; want a version from the sequence, between %d and %d", bv, err, v1.Version, a.Version)
	}
	all, err := b.GetAll(ctx, store.Query[note]{})
	if err != nil || len(all) != 2 || all[0].ID != "a" || all[1].ID != "b" {
		t.Errorf("GetAll = %+v, %v; want a, b (a plain UPDATE keeps the order)", all, err)
	}
}

func TestClosed(t *testing.T) {
	b, err := postgres.New[note, string](t.Context(), sharedPool(t), postgres.WithTable(newTable()))
	if err != nil {
		t.Fatal(err)
	}
	stop, err := b.Subscribe(func(store.FeedEvent[string]) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	stop() // after Close: nothing left to stop, and no hang
	ctx := t.Context()
	calls := map[string]func() error{
		"Get":             func() error { _, err := b.Get(ctx, "a"); return err },
		"GetAll":          func() error { _, err := b.GetAll(ctx, store.Query[note]{}); return err },
		"Save":            func() error { _, err := b.Save(ctx, "a", note{}); return err },
		"SaveVersioned":   func() error { _, err := b.SaveVersioned(ctx, "a", note{}, 1); return err },
		"Delete":          func() error { _, err := b.Delete(ctx, "a"); return err },
		"DeleteVersioned": func() error { _, err := b.DeleteVersioned(ctx, "a", 1); return err },
		"Begin":           func() error { _, err := b.Begin(ctx); return err },
		"Subscribe":       func() error { _, err := b.Subscribe(func(store.FeedEvent[string]) {}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, store.ErrClosed) || !strings.HasPrefix(err.Error(), "postgres: ") {
			t.Errorf("%s after Close: %v; want a postgres: error matching ErrClosed", name, err)
		}
	}
}

// TestClosedPool checks the error of a Backend whose pool its owner closed.
func TestClosedPool(t *testing.T) {
	pool := pgtest.Pool(t, pgtest.Shared(t).Database(t))
	b := open[note, string](t, pool)
	pool.Close()
	if _, err := b.Get(t.Context(), "a"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get on a closed pool: %v; want ErrClosed", err)
	}
}

func TestBackendInfoAndPoolStats(t *testing.T) {
	srv := pgtest.Shared(t)
	pool := sharedPool(t)
	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	var db string
	if err := pool.QueryRow(t.Context(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	want := store.BackendInfo{System: "postgresql", Collection: table, Namespace: db, ServerAddress: "127.0.0.1", ServerPort: srv.Port()}
	if got := b.BackendInfo(); got != want {
		t.Errorf("BackendInfo = %+v; want %+v", got, want)
	}

	before := b.PoolStats()
	mustSave(t, b, "a", note{ID: "a"})
	after := b.PoolStats()
	if after.AcquireCount <= before.AcquireCount || after.MaxConns != pool.Config().MaxConns || after.TotalConns < 1 {
		t.Errorf("PoolStats before %+v, after a save %+v; want one more acquire, MaxConns %d", before, after, pool.Config().MaxConns)
	}
	if after.FeedListeners != 0 {
		t.Errorf("FeedListeners = %d with no subscription", after.FeedListeners)
	}
	rec := subscribe(t, b)
	rec.next(t, store.FeedReset)
	if n := b.PoolStats().FeedListeners; n != 1 {
		t.Errorf("FeedListeners = %d with one listening subscription; want 1", n)
	}
}

// TestTransactionLocks checks that a row read in a transaction stays at its
// version until the transaction ends, and that the transaction's context
// bounds it.
func TestTransactionLocks(t *testing.T) {
	ctx := t.Context()
	b := open[note, string](t, sharedPool(t), postgres.WithTable(newTable()))
	v := mustSave(t, b, "a", note{ID: "a", Text: "before"})

	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got, err := tx.Get(ctx, "a")
	if err != nil || got.Version != v.Version {
		t.Fatalf("tx.Get = %+v, %v", got, err)
	}
	// Another writer waits for the lock.
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = b.SaveVersioned(wctx, "a", note{ID: "a", Text: "other"}, v.Version)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write of a row the transaction read: %v; want it to wait (and time out)", err)
	}
	saved, err := tx.Save(ctx, "a", note{ID: "a", Text: "tx"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if now, err := b.GetVersioned(ctx, "a"); err != nil || now.Version != saved.Version || now.Item.Text != "tx" {
		t.Errorf("after Commit: %+v, %v; want the transaction's write at version %d", now, err, saved.Version)
	}
	if _, err := tx.Get(ctx, "a"); !errors.Is(err, store.ErrTxDone) {
		t.Errorf("tx.Get after Commit: %v; want ErrTxDone", err)
	}

	// The context given to Begin bounds the transaction.
	bctx, cancelTx := context.WithCancel(ctx)
	tx, err = b.Begin(bctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Save(ctx, "b", note{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	cancelTx()
	if _, err := tx.Save(ctx, "c", note{ID: "c"}); !errors.Is(err, context.Canceled) {
		t.Errorf("tx.Save after Begin's context ended: %v; want context.Canceled", err)
	}
	if err := tx.Commit(); err == nil {
		t.Error("Commit after Begin's context ended succeeded")
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after a failed Commit: %v", err)
	}
	if _, err := b.Get(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a write of a transaction whose context ended is visible: %v", err)
	}
}

// TestVersionsNeverRepeat checks that versions keep growing across deletes,
// by this package or by plain SQL, and across Backends.
func TestVersionsNeverRepeat(t *testing.T) {
	ctx := t.Context()
	pool := sharedPool(t)
	table := newTable()
	b := open[note, string](t, pool, postgres.WithTable(table))
	var last uint64
	for i := range 5 {
		v := mustSave(t, b, "a", note{ID: "a"})
		if v.Version <= last {
			t.Fatalf("save %d: version %d after %d", i, v.Version, last)
		}
		last = v.Version
	}
	execSQL(t, pool, `DELETE FROM "`+table+`"`)
	b2 := open[note, string](t, pool, postgres.WithTable(table))
	v, err := b2.SaveVersioned(ctx, "a", note{ID: "a"}, store.VersionAbsent)
	if err != nil || v.Version <= last {
		t.Fatalf("save after a plain SQL delete: %+v, %v; want a version above %d", v, err, last)
	}
	if _, err := b.SaveVersioned(ctx, "a", note{ID: "a"}, last); !errors.Is(err, store.ErrConflict) {
		t.Errorf("write expecting the deleted incarnation's version: %v; want a conflict", err)
	}
}

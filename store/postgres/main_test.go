package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/internal/pgtest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// TestMain runs the tests with one shared PostgreSQL server (started on
// first use), and checks for leaked goroutines.
func TestMain(m *testing.M) { pgtest.Main(m) }

var sharedDSN atomic.Pointer[string]

// sharedPool returns a pool on a database of the shared server that the
// tests of this process share, closed when t ends. Tests keep apart by
// using tables of their own (newTable).
func sharedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	srv := pgtest.Shared(t)
	dsn := sharedDSN.Load()
	if dsn == nil {
		d := srv.Database(t)
		sharedDSN.CompareAndSwap(nil, &d)
		dsn = sharedDSN.Load()
	}
	return pgtest.Pool(t, *dsn)
}

var tables atomic.Int64

// newTable returns a table name no other test uses.
func newTable() string { return fmt.Sprintf("t%d", tables.Add(1)) }

// open returns a Backend over pool, closed when t ends.
func open[T any, ID postgres.Key](t testing.TB, pool *pgxpool.Pool, opts ...postgres.Option) *postgres.Backend[T, ID] {
	t.Helper()
	b, err := postgres.New[T, ID](context.Background(), pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// note is the item type of most tests.
type note struct {
	ID   string   `json:"id"`
	Text string   `json:"text"`
	Tags []string `json:"tags,omitempty"`
}

func mustSave[T any, ID postgres.Key](t testing.TB, b *postgres.Backend[T, ID], id ID, item T) store.Versioned[T] {
	t.Helper()
	v, err := b.SaveVersioned(context.Background(), id, item, store.VersionAny)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// execSQL runs sql on pool, as a writer that bypasses this package would.
func execSQL(t testing.TB, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

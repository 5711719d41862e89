package postgres_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

// The benchmarks compare the Backend with raw pgx calls on the same table
// and pool, doing the same work (the same SQL, JSON encoding and decoding):
// the difference is the Backend's own overhead on a network round trip.

// seeded returns a Backend on a new table holding n notes with IDs "0" to
// n-1, its pool and its table.
func seeded(b *testing.B, n int) (*postgres.Backend[note, string], *pgxpool.Pool, string) {
	pool := sharedPool(b)
	table := newTable()
	be := open[note, string](b, pool, postgres.WithTable(table))
	for i := range n {
		id := strconv.Itoa(i)
		mustSave(b, be, id, note{ID: id, Text: "some text", Tags: []string{"a", "b"}})
	}
	return be, pool, table
}

func BenchmarkGet(b *testing.B) {
	be, _, _ := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := be.Get(ctx, strconv.Itoa(i%100)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetRawPgx(b *testing.B) {
	_, pool, table := seeded(b, 100)
	ctx := context.Background()
	sql := `SELECT data, version, updated FROM "` + table + `" WHERE id = $1`
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var data []byte
		var v store.Versioned[note]
		var version int64
		if err := pool.QueryRow(ctx, sql, strconv.Itoa(i%100)).Scan(&data, &version, &v.Updated); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(data, &v.Item); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	be, _, _ := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i % 100)
		if _, err := be.Save(ctx, id, note{ID: id, Text: "changed"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveRawPgx(b *testing.B) {
	_, pool, table := seeded(b, 100)
	ctx := context.Background()
	sql := `INSERT INTO "` + table + `" (id, data) VALUES ($1, $2::jsonb)
ON CONFLICT (id) DO UPDATE SET data = excluded.data RETURNING version, updated`
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i % 100)
		data, err := json.Marshal(note{ID: id, Text: "changed"})
		if err != nil {
			b.Fatal(err)
		}
		var v store.Versioned[note]
		var version int64
		if err := pool.QueryRow(ctx, sql, id, string(data)).Scan(&version, &v.Updated); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveVersioned(b *testing.B) {
	be, _, _ := seeded(b, 1)
	ctx := context.Background()
	v, err := be.GetVersioned(ctx, "0")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if v, err = be.SaveVersioned(ctx, "0", v.Item, v.Version); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetAll100(b *testing.B) {
	be, _, _ := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if items, err := be.GetAll(ctx, store.Query[note]{}); err != nil || len(items) != 100 {
			b.Fatal(len(items), err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	be, _, _ := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := be.Get(ctx, strconv.Itoa(i%100)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

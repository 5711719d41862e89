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

// BenchmarkStoreGet and BenchmarkStoreSave go through a store.Store over
// the Backend: a network-only read (every call reaches the server) and a
// write-through save, so that, set against the raw pgx benchmarks, they
// give the store's own overhead on a network call.
func BenchmarkStoreGet(b *testing.B) {
	be, _, _ := seeded(b, 100)
	s := benchStoreOver(b, be)
	ctx := context.Background()
	netOnly := store.WithFetchPolicy(store.FetchNetworkOnly)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, strconv.Itoa(i%100), netOnly); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreSave(b *testing.B) {
	for _, feed := range []bool{true, false} {
		name := "feed"
		if !feed {
			name = "no_feed"
		}
		b.Run(name, func(b *testing.B) {
			be, _, _ := seeded(b, 100)
			var s *store.Store[note, string]
			if feed {
				s = benchStoreOver(b, be)
			} else {
				s = benchStoreOver(b, noFeed{be})
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				id := strconv.Itoa(i % 100)
				if _, err := s.Save(ctx, note{ID: id, Text: "changed"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// noFeed hides the Backend's change feed from the store, to measure what
// the feed costs a write (the server notifies the store's listener of its
// own write, and the store applies the echo).
type noFeed struct {
	*postgres.Backend[note, string]
}

func (noFeed) Subscribe(func(store.FeedEvent[string])) (func(), error) {
	return nil, store.ErrNoChangeFeed
}

// BenchmarkStoreGetHit is a cache hit of a store over the Backend: no
// network call at all.
func BenchmarkStoreGetHit(b *testing.B) {
	be, _, _ := seeded(b, 100)
	s := benchStoreOver(b, be)
	ctx := context.Background()
	if _, err := s.Get(ctx, "42"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "42"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStoreOver(b *testing.B, be store.Backend[note, string]) *store.Store[note, string] {
	s, err := store.New[note, string](be, store.Config[note, string]{IDOf: func(n note) string { return n.ID }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	// The feed's first reset makes the cache trusted; wait for it.
	for s.Live().CacheEntries == 0 {
		if _, err := s.Get(context.Background(), "0"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Get(context.Background(), "0"); err == nil && s.Live().CacheEntries > 0 {
			break
		}
	}
	return s
}

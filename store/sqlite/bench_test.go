package sqlite_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

// seeded returns a backend holding n notes, with IDs "0" to n-1.
func seeded(b *testing.B, n int) *sqlite.Backend[note, string] {
	be := open[note, string](b, tempDB(b))
	for i := range n {
		id := strconv.Itoa(i)
		mustSave(b, be, id, note{ID: id, Text: "some text", Tags: []string{"a", "b"}})
	}
	return be
}

func BenchmarkGet(b *testing.B) {
	be := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := be.Get(ctx, strconv.Itoa(i%100)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	be := seeded(b, 100)
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

func BenchmarkSave(b *testing.B) {
	be := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := strconv.Itoa(i % 100)
		if _, err := be.Save(ctx, id, note{ID: id, Text: "changed"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveVersioned(b *testing.B) {
	be := seeded(b, 1)
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
	be := seeded(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if items, err := be.GetAll(ctx, store.Query[note]{}); err != nil || len(items) != 100 {
			b.Fatal(len(items), err)
		}
	}
}

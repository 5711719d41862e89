package memory_test

import (
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func BenchmarkGet(b *testing.B) {
	ctx := b.Context()
	m := memory.New[int, string]()
	if _, err := m.Save(ctx, "a", 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Get(ctx, "a"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	m := memory.New[int, string]()
	if _, err := m.Save(b.Context(), "a", 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Get(b.Context(), "a"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSave(b *testing.B) {
	ctx := b.Context()
	m := memory.New[int, string]()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Save(ctx, "a", 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetAll100(b *testing.B) {
	ctx := b.Context()
	m := memory.New[int, int]()
	for i := range 100 {
		if _, err := m.Save(ctx, i, i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GetAll(ctx, store.Query[int]{}); err != nil {
			b.Fatal(err)
		}
	}
}

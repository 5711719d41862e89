package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// Item is the value every benchmark stores, caches and copies.
type Item struct {
	ID   string
	Name string
	Age  int
}

func itemID(it Item) string { return it.ID }

const (
	storeName = "bench"
	// numKeys items are cached for GetHit, GetMiss and Save (a power of
	// two, so that a key index is a mask away).
	numKeys = 1024
	// listSize items make the GetAll listing.
	listSize = 100
)

// keys are the IDs of the items, built once so that no benchmark formats
// a key in its loop.
var keys = func() []string {
	ks := make([]string, numKeys)
	for i := range ks {
		ks[i] = fmt.Sprintf("item-%04d", i)
	}
	return ks
}()

func item(i int) Item { return Item{ID: keys[i], Name: "name " + keys[i], Age: i} }

// newStore returns a store named storeName over a memory backend, holding
// items 0 to n-1 in its backend and its cache.
func newStore(tb testing.TB, c config, n int) *store.Store[Item, string] {
	tb.Helper()
	rep, rate := c.reporter(tb)
	s, err := store.New[Item, string](memory.New[Item, string](), store.Config[Item, string]{
		IDOf:            itemID,
		Name:            storeName,
		MetricsReporter: rep,
		Metrics:         store.MetricsConfig{SampleRate: rate},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx := context.Background()
	for i := range n {
		if _, err := s.Save(ctx, item(i)); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// floor is the bare map and sync.RWMutex: the least a cache in front of
// the same memory backend can cost, with no telemetry.
type floor struct {
	mu      sync.RWMutex
	m       map[string]Item
	list    []Item // the cached listing, for GetAll
	backend *memory.Backend[Item, string]
}

func newFloor(tb testing.TB, n int) *floor {
	f := &floor{m: make(map[string]Item, n), backend: memory.New[Item, string]()}
	for i := range n {
		it := item(i)
		if _, err := f.backend.Save(context.Background(), it.ID, it); err != nil {
			tb.Fatal(err)
		}
		f.m[it.ID] = it
		f.list = append(f.list, it)
	}
	return f
}

func (f *floor) get(id string) (Item, bool) {
	f.mu.RLock()
	it, ok := f.m[id]
	f.mu.RUnlock()
	return it, ok
}

// readThrough is a miss: the map lacks the key, the backend has it, the
// map is filled.
func (f *floor) readThrough(ctx context.Context, id string) (Item, error) {
	if it, ok := f.get(id); ok {
		return it, nil
	}
	it, err := f.backend.Get(ctx, id)
	if err != nil {
		return it, err
	}
	f.mu.Lock()
	f.m[id] = it
	f.mu.Unlock()
	return it, nil
}

func (f *floor) invalidate(id string) {
	f.mu.Lock()
	delete(f.m, id)
	f.mu.Unlock()
}

func (f *floor) save(ctx context.Context, it Item) (Item, error) {
	f.mu.Lock()
	f.m[it.ID] = it
	f.mu.Unlock()
	return f.backend.Save(ctx, it.ID, it)
}

func (f *floor) getAll() []Item {
	f.mu.RLock()
	out := make([]Item, len(f.list))
	copy(out, f.list)
	f.mu.RUnlock()
	return out
}

// op is one operation as the benchmarks run it: setup builds the subject
// for a configuration (nil for the floor) and returns the function the
// loop calls with an iteration's key index.
type op struct {
	items int
	store func(s *store.Store[Item, string]) func(ctx context.Context, i int) error
	floor func(f *floor) func(ctx context.Context, i int) error
	// writes says whether parallel goroutines each take their own slice of
	// the keys (writes, invalidations), rather than all reading all keys.
	writes bool
	// listing says whether the store's cache must hold a complete listing
	// before the loop (for GetAll).
	listing bool
}

var (
	getHit = op{
		items: numKeys,
		store: func(s *store.Store[Item, string]) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				_, err := s.Get(ctx, keys[i])
				return err
			}
		},
		floor: func(f *floor) func(context.Context, int) error {
			return func(_ context.Context, i int) error {
				if _, ok := f.get(keys[i]); !ok {
					return store.ErrNotFound
				}
				return nil
			}
		},
	}
	getMiss = op{
		items:  numKeys,
		writes: true,
		store: func(s *store.Store[Item, string]) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				s.Invalidate(keys[i])
				_, err := s.Get(ctx, keys[i])
				return err
			}
		},
		floor: func(f *floor) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				f.invalidate(keys[i])
				_, err := f.readThrough(ctx, keys[i])
				return err
			}
		},
	}
	save = op{
		items:  numKeys,
		writes: true,
		store: func(s *store.Store[Item, string]) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				_, err := s.Save(ctx, item(i))
				return err
			}
		},
		floor: func(f *floor) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				_, err := f.save(ctx, item(i))
				return err
			}
		},
	}
	getAll100 = op{
		items:   listSize,
		listing: true,
		store: func(s *store.Store[Item, string]) func(context.Context, int) error {
			return func(ctx context.Context, _ int) error {
				items, err := s.GetAll(ctx)
				if err == nil && len(items) != listSize {
					err = fmt.Errorf("GetAll returned %d items, want %d", len(items), listSize)
				}
				return err
			}
		},
		floor: func(f *floor) func(context.Context, int) error {
			return func(context.Context, int) error {
				if items := f.getAll(); len(items) != listSize {
					return fmt.Errorf("getAll returned %d items, want %d", len(items), listSize)
				}
				return nil
			}
		},
	}
)

func BenchmarkGetHit(b *testing.B)    { runOp(b, getHit, rawHits...) }
func BenchmarkGetMiss(b *testing.B)   { runOp(b, getMiss) }
func BenchmarkSave(b *testing.B)      { runOp(b, save) }
func BenchmarkGetAll100(b *testing.B) { runOp(b, getAll100) }

// runOp measures o serially and in parallel, on the floor, under every
// configuration, then on the extra subjects (the anchor caches).
func runOp(b *testing.B, o op, extra ...subject) {
	ctx := context.Background()
	subjects := []subject{{"map", func(tb testing.TB) func(context.Context, int) error {
		return o.floor(newFloor(tb, o.items))
	}}}
	for _, c := range configs {
		subjects = append(subjects, subject{c.name, func(tb testing.TB) func(context.Context, int) error {
			s := newStore(tb, c, o.items)
			if o.listing {
				// The first full listing marks the cache complete.
				if _, err := s.GetAll(ctx); err != nil {
					tb.Fatal(err)
				}
			}
			return o.store(s)
		}})
	}
	subjects = append(subjects, extra...)
	b.Run("serial", func(b *testing.B) {
		for _, sub := range subjects {
			b.Run(sub.name, func(b *testing.B) {
				do := sub.setup(b)
				seq := keySeq{n: o.items}
				b.ReportAllocs()
				for b.Loop() {
					if err := do(ctx, seq.next()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
	b.Run("parallel", func(b *testing.B) {
		for _, sub := range subjects {
			b.Run(sub.name, func(b *testing.B) {
				do := sub.setup(b)
				var goroutines atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					seq := parallelSeq(o, int(goroutines.Add(1)-1))
					for pb.Next() {
						if err := do(ctx, seq.next()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	})
}

// subject is what a benchmark runs on: setup returns the operation.
type subject struct {
	name  string
	setup func(testing.TB) func(ctx context.Context, i int) error
}

// keySeq cycles through the key indexes base to base+n-1, from base+j.
type keySeq struct{ base, n, j int }

func (s *keySeq) next() int {
	i := s.base + s.j
	if s.j++; s.j == s.n {
		s.j = 0
	}
	return i
}

// parallelSeq is the key sequence of parallel goroutine g: for reads every
// goroutine cycles through all the keys, each from its own starting point;
// for writes each takes its own slice of them, so that no two goroutines
// write or invalidate the same item.
func parallelSeq(o op, g int) keySeq {
	procs := runtime.GOMAXPROCS(0)
	if o.writes {
		n := max(o.items/procs, 1)
		return keySeq{base: (g % procs) * n, n: n}
	}
	return keySeq{n: o.items, j: (g % procs) * o.items / procs}
}

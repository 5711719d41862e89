package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"
)

// versionedMap is a versioned, thread-safe backend for internal tests,
// with random failures when fail is set.
type versionedMap struct {
	mu      sync.Mutex
	m       map[string]Versioned[item]
	version uint64
	fail    float64
}

func (b *versionedMap) failing() error {
	if b.fail > 0 && rand.Float64() < b.fail {
		return fmt.Errorf("%w: injected", ErrUnavailable)
	}
	return nil
}

func (b *versionedMap) GetVersioned(_ context.Context, id string) (Versioned[item], error) {
	if err := b.failing(); err != nil {
		return Versioned[item]{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.m[id]; ok {
		return v, nil
	}
	return Versioned[item]{}, ErrNotFound
}

func (b *versionedMap) GetAllVersioned(_ context.Context, q Query[item]) ([]Versioned[item], error) {
	if err := b.failing(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Versioned[item]
	for _, v := range b.m {
		if q.Match(v.Item) {
			out = append(out, v)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (b *versionedMap) SaveVersioned(_ context.Context, id string, it item, expect uint64) (Versioned[item], error) {
	if err := b.failing(); err != nil {
		return Versioned[item]{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.m[id]
	switch {
	case expect == VersionAny:
	case !ok && expect != VersionAbsent:
		return Versioned[item]{}, &ConflictError[item]{RemoteDeleted: true, Expected: expect}
	case ok && cur.Version != expect:
		return Versioned[item]{}, &ConflictError[item]{Remote: cur, Expected: expect}
	}
	b.version++
	v := Versioned[item]{Item: it, Version: b.version, Updated: time.Now()}
	b.m[id] = v
	return v, nil
}

func (b *versionedMap) DeleteVersioned(_ context.Context, id string, expect uint64) (bool, error) {
	if err := b.failing(); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.m[id]
	if ok && expect != VersionAny && cur.Version != expect {
		return false, &ConflictError[item]{Remote: cur, Expected: expect}
	}
	delete(b.m, id)
	return ok, nil
}

func (b *versionedMap) Get(ctx context.Context, id string) (item, error) {
	v, err := b.GetVersioned(ctx, id)
	return v.Item, err
}

func (b *versionedMap) GetAll(ctx context.Context, q Query[item]) ([]item, error) {
	vs, err := b.GetAllVersioned(ctx, q)
	out := make([]item, len(vs))
	for i, v := range vs {
		out[i] = v.Item
	}
	return out, err
}

func (b *versionedMap) Save(ctx context.Context, id string, it item) (item, error) {
	v, err := b.SaveVersioned(ctx, id, it, VersionAny)
	return v.Item, err
}

func (b *versionedMap) Delete(ctx context.Context, id string) (bool, error) {
	return b.DeleteVersioned(ctx, id, VersionAny)
}

// viewOf is the view e's fields call for.
func viewOf(e *entry[item, string]) entryView[item] {
	return entryView[item]{value: e.value, deleted: e.deleted, absent: e.absent, unverified: e.unverified,
		pinned: e.local() || e.localOnly, local: e.local(), stored: e.stored}
}

// Cache hits read an entry's published view, not its fields: every
// critical section must publish what it changed. Under random concurrent
// workloads (every write policy, reads, listings, invalidations, syncs,
// transactions, failures), every entry's view equals its fields whenever
// the cache's lock is released, and in the end the read index holds
// exactly the cache's entries.
func TestViewsMatchEntries(t *testing.T) {
	for _, cfg := range []Config[item, string]{
		{},
		{MaxCacheSize: 3},
		{CacheTTL: time.Hour, NotFoundTTL: time.Hour},
	} {
		b := &versionedMap{m: map[string]Versioned[item]{}, fail: 0.2}
		cfg.IDOf = func(it item) string { return it.ID }
		cfg.Retry = RetryConfig{MaxAttempts: 1}
		s, err := New[item, string](b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var bad sync.Once
		s.cache.lock()
		s.cache.checkViews = func(e *entry[item, string]) {
			if got, want := e.view.Load(), viewOf(e); got == nil || !reflect.DeepEqual(*got, want) {
				bad.Do(func() {
					t.Errorf("%+v: a critical section left entry %s's view %+v, its fields %+v", cfg, e.id, got, want)
				})
			}
		}
		s.cache.unlock()
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for i := range 400 {
					id := fmt.Sprint("k", r.IntN(6))
					wp := WithWritePolicy(WritePolicy(r.IntN(int(numWritePolicies))))
					fp := WithFetchPolicy(FetchPolicy(r.IntN(int(numFetchPolicies))))
					switch r.IntN(9) {
					case 0, 1:
						_, _ = s.Get(ctx, id, fp)
					case 2, 3:
						_, _ = s.Save(ctx, item{ID: id, Name: fmt.Sprint(w, i)}, wp, WithTags("t"))
					case 4:
						_ = s.Delete(ctx, id, wp)
					case 5:
						_, _ = s.GetAll(ctx, fp)
					case 6:
						s.Invalidate(id)
						if r.IntN(4) == 0 {
							s.InvalidateTags("t")
						}
					case 7:
						_ = s.Sync(ctx)
					case 8:
						_ = s.Transaction(ctx, func(tx *Tx[item, string]) error {
							_, err := tx.Save(ctx, item{ID: id, Name: "tx"})
							return err
						})
					}
				}
			})
		}
		wg.Wait()
		s.refresh.wait()
		c := s.cache
		c.lock()
		for id, e := range c.m {
			if ie, ok := c.idx.Load(id); !ok || ie != e {
				t.Errorf("%+v: the read index lacks entry %s", cfg, id)
			}
		}
		if n := c.idx.Size(); n != len(c.m) {
			t.Errorf("%+v: the read index holds %d entries, the cache %d", cfg, n, len(c.m))
		}
		c.unlock()
		b.fail = 0
		_ = s.Close(ctx)
	}
}

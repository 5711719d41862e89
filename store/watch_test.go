package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// latest drains what a watcher delivered so far and returns the last one.
func latest[V any](t *testing.T, ch <-chan V) V {
	t.Helper()
	v, ok := <-ch
	if !ok {
		t.Fatal("watch ended")
	}
	for {
		select {
		case next, ok := <-ch:
			if !ok {
				return v
			}
			v = next
		default:
			return v
		}
	}
}

// collect runs a Watch loop in a goroutine and hands each change over.
func collect[V any](seq func(func(V, error) bool)) (<-chan V, <-chan error) {
	vals := make(chan V, 100)
	errs := make(chan error, 1)
	go func() {
		defer close(vals)
		for v, err := range seq {
			if err != nil {
				errs <- err
				return
			}
			vals <- v
		}
	}()
	return vals, errs
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := newFixture(t, store.Config[User, string]{FetchPolicy: store.FetchCacheAndNetwork})
		f.seed(User{ID: "u1", Name: "v1"})
		vals, _ := collect(f.s.Watch(ctx, "u1"))
		synctest.Wait()
		if c := <-vals; c.Deleted || c.Value.Name != "v1" {
			t.Fatalf("first change = %+v, want the current value", c)
		}
		if _, err := f.s.Save(ctx, User{ID: "u1", Name: "v2"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if c := latest(t, vals); c.Value.Name != "v2" {
			t.Fatalf("after Save: %+v", c)
		}
		// A background refresh that finds a new backend value is seen too.
		f.seed(User{ID: "u1", Name: "v3"})
		if _, err := f.s.Get(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if c := latest(t, vals); c.Value.Name != "v3" {
			t.Fatalf("after refresh: %+v", c)
		}
		if err := f.s.Delete(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if c := latest(t, vals); !c.Deleted {
			t.Fatalf("after Delete: %+v, want Deleted", c)
		}
		// Other IDs are not delivered.
		if _, err := f.s.Save(ctx, User{ID: "u2"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case c := <-vals:
			t.Fatalf("change of another ID delivered: %+v", c)
		default:
		}
		cancel()
		synctest.Wait()
		if _, open := <-vals; open {
			t.Fatal("watch did not end with its context")
		}
		if err := f.s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWatchAbsentAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{})
		vals, errs := collect(f.s.Watch(ctx, "nobody"))
		synctest.Wait()
		if c := <-vals; !c.Deleted {
			t.Fatalf("watch of an absent item: %+v, want Deleted", c)
		}
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := <-errs; !errors.Is(err, store.ErrClosed) {
			t.Fatalf("after Close: %v, want ErrClosed", err)
		}
		for _, err := range f.s.Watch(ctx, "x") {
			if !errors.Is(err, store.ErrClosed) {
				t.Errorf("Watch after Close: %v", err)
			}
		}
	})
}

func TestWatchFirstReadFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.Config[User, string]{})
	f.b.SetUnavailable(true)
	n := 0
	for _, err := range f.s.Watch(ctx, "u1") {
		n++
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("err = %v", err)
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want 1 (the error)", n)
	}
}

// A slow consumer never blocks writers and sees the latest value.
func TestWatchSlowConsumerCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := newFixture(t, store.Config[User, string]{WritePolicy: store.WriteCacheOnly})
		if _, err := f.s.Save(ctx, User{ID: "u1", Age: 0}); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		seen := make(chan []int, 1)
		go func() {
			var ages []int
			for c := range f.s.Watch(ctx, "u1") {
				ages = append(ages, c.Value.Age)
				if len(ages) == 1 {
					<-release // stall while the writer runs
				}
			}
			seen <- ages
		}()
		synctest.Wait()
		for i := 1; i <= 1000; i++ { // would deadlock if a write waited for the consumer
			if _, err := f.s.Save(ctx, User{ID: "u1", Age: i}); err != nil {
				t.Fatal(err)
			}
		}
		close(release)
		synctest.Wait()
		cancel()
		ages := <-seen
		if len(ages) != 2 || ages[0] != 0 || ages[1] != 1000 {
			t.Errorf("slow consumer saw %v, want [0 1000]", ages)
		}
		if err := f.s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestWatchAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := newFixture(t, store.Config[User, string]{})
		f.seed(User{ID: "a", Name: "a", Age: 30}, User{ID: "b", Name: "b", Age: 10}, User{ID: "c", Name: "c", Age: 40})
		adult := store.WithFilter(func(u User) bool { return u.Age >= 18 })
		lists, _ := collect(f.s.WatchAll(ctx, adult, store.WithLimit(2)))
		synctest.Wait()
		if l := <-lists; !slices.Equal(names(l), []string{"a", "c"}) {
			t.Fatalf("first listing = %v", names(l))
		}
		steps := []struct {
			do   func() error
			want []string
		}{
			// b starts to match; the cache never listed it, so it comes last.
			{func() error { _, err := f.s.Save(ctx, User{ID: "b", Name: "b", Age: 20}); return err }, []string{"a", "c"}},
			{func() error { return f.s.Delete(ctx, "a") }, []string{"c", "b"}},
			{func() error { _, err := f.s.Save(ctx, User{ID: "b", Name: "b", Age: 5}); return err }, []string{"c"}},
			{func() error { _, err := f.s.Save(ctx, User{ID: "d", Name: "d", Age: 50}); return err }, []string{"c", "d"}},
		}
		for i, st := range steps {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if l := latest(t, lists); !slices.Equal(names(l), st.want) {
				t.Fatalf("step %d: listing = %v, want %v", i, names(l), st.want)
			}
		}
		cancel()
		synctest.Wait()
		if err := f.s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Watchers must not leak: closing the store ends every sequence, and the
// goroutines of the consumers exit (goleak checks at the end of the run).
func TestWatchManyNoLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, store.Config[User, string]{}, memory.WithLatency(time.Millisecond))
		done := make(chan struct{})
		for range 20 {
			go func() {
				for range f.s.Watch(ctx, "u1") {
				}
				done <- struct{}{}
			}()
			go func() {
				for range f.s.WatchAll(ctx) {
				}
				done <- struct{}{}
			}()
		}
		synctest.Wait()
		if err := f.s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for range 40 {
			<-done
		}
	})
}
